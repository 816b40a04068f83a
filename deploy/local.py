"""The local stack: `python -m deploy.local up | down | status` on 127.0.0.1."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import click

from deploy.services import Broker, HBaseServer, MariaDB, Service, ServiceError

logger = logging.getLogger(__name__)

# Each default can be changed through the environment variable named beside it.
DEFAULT_RUN_DIR = Path(__file__).resolve().parent.parent / ".run"   # CREDIT_RUN_DIR
DEFAULT_BROKER_PORT = 9092                                          # BROKER_PORT
DEFAULT_MYSQL_PORT = 3307                                           # MYSQL_PORT
DEFAULT_HBASE_PORT = 9090                                           # HBASE_PORT


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise click.UsageError(f"{name} must be a port number, got {raw!r}") from None


def stack(run_dir: Path | None = None) -> list[Service]:
    """The services of the local stack, in start order."""
    run_dir = Path(run_dir or os.environ.get("CREDIT_RUN_DIR") or DEFAULT_RUN_DIR)
    return [
        Broker(run_dir=run_dir, port=_env_int("BROKER_PORT", DEFAULT_BROKER_PORT)),
        MariaDB(run_dir=run_dir, port=_env_int("MYSQL_PORT", DEFAULT_MYSQL_PORT)),
        HBaseServer(run_dir=run_dir, port=_env_int("HBASE_PORT", DEFAULT_HBASE_PORT)),
    ]


def stack_env(services: list[Service]) -> dict[str, str]:
    """The environment variables that point every component at this stack."""
    env: dict[str, str] = {}
    for svc in services:
        if isinstance(svc, Broker):
            env["KAFKA_BROKER"] = svc.url
        elif isinstance(svc, MariaDB):
            env["MYSQL_URL"] = svc.url
        elif isinstance(svc, HBaseServer):
            env["HBASE_HOST"] = svc.host
            env["HBASE_PORT"] = str(svc.port)
    return env


def up(services: list[Service]) -> None:
    for svc in services:
        started = svc.start()
        click.echo(f"{svc.name}: {'started' if started else 'already running'}", err=True)


def down(services: list[Service]) -> None:
    for svc in reversed(services):
        stopped = svc.stop()
        click.echo(f"{svc.name}: {'stopped' if stopped else 'was not running'}", err=True)


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG level.")
def cli(verbose: bool) -> None:
    """Run the credit-risk pipeline's local stack on 127.0.0.1."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@cli.command("up")
def up_cmd() -> None:
    """Start every service (idempotent) and wait until each answers."""
    services = stack()
    try:
        up(services)
    except ServiceError as exc:
        raise click.ClickException(str(exc)) from None
    for line in (svc.status() for svc in services):
        click.echo(line)


@cli.command("down")
def down_cmd() -> None:
    """Stop exactly the processes `up` started, and wait for them."""
    down(stack())


@cli.command("status")
def status_cmd() -> None:
    """One line per service."""
    for svc in stack():
        click.echo(svc.status())


@cli.command("env")
def env_cmd() -> None:
    """Print the environment variables that point components at the stack (for `eval`)."""
    for key, value in stack_env(stack()).items():
        click.echo(f"export {key}={value}")


if __name__ == "__main__":
    cli()
