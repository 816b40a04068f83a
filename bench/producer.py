"""Producer: applicants/s from the applicant API to the broker, next to publishing the same messages with no API.

`python -m bench.producer [--quick]` starts its own MariaDB, Tansu broker and gunicorn applicant API
(free ports, temporary folder), loads synthetic rows through the real importer, then measures as
medians over repeats, each run into a fresh topic (deleted afterwards: Tansu keeps messages in RAM):

- reference: the same messages, pre-built in memory, published page by page with the producer's own
  publish() (same AIOKafkaProducer settings, acks awaited per page); no HTTP, no JSON, no checkpoint;
- the producer: `run_producer(settings, once=True)` from a fresh checkpoint (HTTP pages of 1,000,
  message building, publishing, acks awaited, durable checkpoint per page).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
import uuid
from pathlib import Path

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from applicant_api import db, schema
from bench.applicant_api import TOKEN, load_rows, start_gunicorn
from bench.common import figure, write_result
from credit_core.messages.envelope import build_message
from deploy.services import Broker, MariaDB, free_port
from producer.api_client import ApiClient
from producer.producer import publish, run_producer
from producer.settings import load_settings

logger = logging.getLogger(__name__)

TARGET = 20_000   # applicants/s API -> broker


def prebuilt_messages(settings) -> list[tuple[bytes, bytes]]:
    api = ApiClient(settings)
    try:
        out, after = [], 0
        while True:
            page = api.fetch(after, 5000)
            if not page.count:
                return out
            out.extend(build_message(a, page.fetched_at) for a in page.applicants)
            after = page.next_after
    finally:
        api.close()


async def publish_raw(settings, topic: str, messages: list[tuple[bytes, bytes]]) -> float:
    kafka = AIOKafkaProducer(bootstrap_servers=settings.bootstrap, acks="all", enable_idempotence=False,
                             linger_ms=settings.linger_ms, max_batch_size=settings.max_batch_bytes)
    await kafka.start()
    try:
        start = time.perf_counter()
        for first in range(0, len(messages), settings.batch):   # page by page, as the producer does
            await publish(kafka, topic, messages[first:first + settings.batch])
        return len(messages) / (time.perf_counter() - start)
    finally:
        await kafka.stop()


async def delete_topic(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([topic])
    except Exception as exc:  # freeing memory is best effort
        logger.warning("could not delete topic %s: %s", topic, exc)
    finally:
        await admin.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 rows, 3 repeats")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(argv)
    rows = args.rows or (20_000 if args.quick else 50_000)
    repeats = args.repeats or (3 if args.quick else 5)
    logging.basicConfig(level=logging.WARNING)

    producer_rates: list[float] = []
    raw_rates: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-producer-") as tmp:
        folder = Path(tmp)
        mariadb = MariaDB(run_dir=folder, port=free_port())
        broker = Broker(run_dir=folder, port=free_port())
        proc = None
        try:
            mariadb.start()
            broker.start()
            conn = db.connect(mariadb.url)
            schema.init_db(conn)
            conn.close()
            print(f"loading {rows:,} synthetic applicants ...", file=sys.stderr)
            count = load_rows(mariadb.url, rows, folder)
            proc, base = start_gunicorn(mariadb.url, 2, 4, folder / "gunicorn.log")
            base_settings = load_settings(api_url=base, api_token=TOKEN, broker=broker.url, log_every=3600.0)
            messages = prebuilt_messages(base_settings)
            assert len(messages) == count, (len(messages), count)
            for r in range(repeats + 1):          # the first round warms up and is not counted
                topic = f"bench.raw.{uuid.uuid4().hex[:8]}"
                raw = asyncio.run(publish_raw(base_settings, topic, messages))
                asyncio.run(delete_topic(broker.bootstrap, topic))
                topic = f"bench.raw.{uuid.uuid4().hex[:8]}"
                settings = base_settings.with_(topic=topic, checkpoint=str(folder / f"checkpoint-{r}"))
                start = time.perf_counter()
                summary = run_producer(settings, once=True)
                seconds = time.perf_counter() - start
                asyncio.run(delete_topic(broker.bootstrap, topic))
                if summary["published"] != count:
                    raise RuntimeError(f"published {summary['published']}, expected {count}")
                if r:
                    raw_rates.append(raw)
                    producer_rates.append(count / seconds)
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(15)
            broker.stop()
            mariadb.stop()

    figures = [figure("producer --once: API (gunicorn) -> broker, acks=all", producer_rates, "applicants/s",
                      reference="same messages pre-built, published with no API", reference_values=raw_rates,
                      target=TARGET)]
    write_result("producer", figures, quick=args.quick,
                 extra={"rows": count, "repeats": repeats, "page_limit": base_settings.batch,
                        "linger_ms": base_settings.linger_ms})


if __name__ == "__main__":
    main()
