"""`python -m deploy` is `python -m deploy.local`."""
from deploy.local import cli

cli()
