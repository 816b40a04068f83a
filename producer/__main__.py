"""`python -m producer [--once] [--interval S] [--batch N]`: applicant API -> Kafka topic applicants.raw."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

import click
import orjson

from credit_core.metrics import MULTIPROC_ENV
from producer.api_client import ApiRejected
from producer.checkpoint import CheckpointError
from producer.metrics import start_server
from producer.producer import Producer
from producer.settings import load_settings

logger = logging.getLogger(__name__)


async def _main(producer: Producer, once: bool) -> dict:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, producer.stop)
    return await producer.run(once=once)


@click.command()
@click.option("--once", is_flag=True, help="Publish what the API has now, print a JSON summary, exit.")
@click.option("--interval", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds between polls once drained (PRODUCER_INTERVAL, default 2).")
@click.option("--batch", type=click.IntRange(1, 5000), default=None,
              help="Applicants per API page (PRODUCER_BATCH, default 1000).")
@click.option("--checkpoint", type=click.Path(dir_okay=False), default=None,
              help="Checkpoint file (PRODUCER_CHECKPOINT, default .run/producer.checkpoint).")
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG level.")
def main(once: bool, interval: float | None, batch: int | None, checkpoint: str | None, verbose: bool) -> None:
    """Poll the applicant API and publish each applicant to Kafka (at-least-once, durable cursor).

    The checkpoint advances only after the broker acknowledged a page, so a restart (even after
    kill -9) skips nothing; after a crash some applicants may be published twice (at-least-once).
    When the API or the broker is down it waits with backoff and resumes; it never exits for that.

    Configuration comes from the environment: APPLICANT_API_URL, APPLICANT_API_TOKEN, KAFKA_BROKER,
    TOPIC_RAW, PRODUCER_CHECKPOINT, PRODUCER_INTERVAL, PRODUCER_BATCH, PRODUCER_LOG_EVERY ...
    Prometheus metrics: GET /metrics on PRODUCER_METRICS_HOST:PRODUCER_METRICS_PORT (127.0.0.1:9464; 0 = off).
    """
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        settings = load_settings(interval=interval, batch=batch, checkpoint=checkpoint)
    except (TypeError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None
    # One process: its metrics stay in it, whatever PROMETHEUS_MULTIPROC_DIR (gunicorn's) the shell holds.
    os.environ.pop(MULTIPROC_ENV, None)
    start_server(settings)
    try:
        summary = asyncio.run(_main(Producer(settings), once))
    except (ApiRejected, CheckpointError) as exc:
        click.echo(f"producer: {exc}", err=True)
        sys.exit(2)
    if once:
        click.echo(orjson.dumps(summary).decode())


if __name__ == "__main__":
    main()
