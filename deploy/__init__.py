"""How the pipeline starts: the one-command local stack and the cluster deployment files."""
