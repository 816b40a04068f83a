"""`python -m deploy` is `python -m deploy.local`, plus the multi-host run (`python -m deploy multihost`)."""
from deploy.local import cli
from deploy.multihost import multihost_cmd

cli.add_command(multihost_cmd)
cli()
