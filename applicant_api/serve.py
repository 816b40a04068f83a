"""Serve the applicant API under gunicorn: `python -m applicant_api serve [--bind H:P] [--workers N]`."""

from __future__ import annotations

import logging
import os
import sys

import click

logger = logging.getLogger(__name__)

# Each default can be changed through the environment variable named beside it.
DEFAULT_BIND = "127.0.0.1:5001"      # APPLICANT_API_BIND
DEFAULT_WORKERS = 2                  # APPLICANT_API_WORKERS
DEFAULT_THREADS = 4                  # APPLICANT_API_THREADS (gthread worker threads per process)
DEFAULT_TIMEOUT = 60                 # APPLICANT_API_WORKER_TIMEOUT (seconds)
APP_FACTORY = "applicant_api.app:create_app()"
GUNICORN_CONFIG = "python:applicant_api.gunicorn_conf"   # JSON for the errors gunicorn answers itself


def gunicorn_argv(bind: str = DEFAULT_BIND, workers: int = DEFAULT_WORKERS, threads: int = DEFAULT_THREADS,
                  timeout: int = DEFAULT_TIMEOUT, extra: tuple[str, ...] = (), *,
                  access_log: bool = True) -> list[str]:
    """The gunicorn command line (run with the current interpreter) for the app factory."""
    if not isinstance(bind, str) or ":" not in bind:
        raise ValueError(f"bind must be HOST:PORT, got {bind!r}")
    for name, value in (("workers", workers), ("threads", threads), ("timeout", timeout)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return [sys.executable, "-m", "gunicorn", "--bind", bind, "--workers", str(workers),
            "--worker-class", "gthread", "--threads", str(threads), "--timeout", str(timeout),
            "--config", GUNICORN_CONFIG,
            *(["--access-logfile", "-"] if access_log else []), "--error-logfile", "-", *extra, APP_FACTORY]


@click.command("serve", context_settings={"ignore_unknown_options": True})
@click.option("--bind", envvar="APPLICANT_API_BIND", default=DEFAULT_BIND, show_default=True,
              show_envvar=True, help="HOST:PORT to listen on.")
@click.option("--workers", envvar="APPLICANT_API_WORKERS", type=click.IntRange(1, 64), default=DEFAULT_WORKERS,
              show_default=True, show_envvar=True, help="gunicorn worker processes.")
@click.option("--threads", envvar="APPLICANT_API_THREADS", type=click.IntRange(1, 256), default=DEFAULT_THREADS,
              show_default=True, show_envvar=True, help="Threads per worker.")
@click.argument("gunicorn_args", nargs=-1, type=click.UNPROCESSED)
def serve_cmd(bind: str, workers: int, threads: int, gunicorn_args: tuple[str, ...]) -> None:
    """Run the applicant API under gunicorn (extra arguments go to gunicorn).

    Reads MYSQL_URL, APPLICANT_API_TOKEN (required unless APPLICANT_API_AUTH=off) and the other
    APPLICANT_API_* settings from the environment.
    """
    from applicant_api.settings import ConfigError, load_settings

    try:
        load_settings()  # fail here, with a clear message, rather than in every worker
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    timeout = int(os.environ.get("APPLICANT_API_WORKER_TIMEOUT") or DEFAULT_TIMEOUT)
    argv = gunicorn_argv(bind, workers, threads, timeout, gunicorn_args)
    logger.info("exec %s", " ".join(argv))
    os.execv(argv[0], argv)


if __name__ == "__main__":
    serve_cmd()
