"""A fault drill on the local stack: the main job with processes killed and stopped mid-run and poison published.

``python -m deploy.faults [--applicants 50000]`` runs the main job's import
and pipeline and, as the decisions come in, kills a worker with SIGKILL three
times, kills the HBase server and brings it back, stops the risk API for a
while, kills the producer, and publishes the hostile messages of
``topology.testdata.poison_messages`` onto applicants.raw.  It ends with one
JSON line: what happened when, and whether every applicant and every poison
message is accounted for exactly once (HBase rows or dead letters).
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time

import click
import orjson

from applicant_api.schema import reset_db
from deploy.job import hbase_row_count, reset_state, synthetic_file
from deploy.local import Stack, build_stack, down, up
from deploy.tally import OutcomeTally

logger = logging.getLogger(__name__)

DEFAULT_APPLICANTS = 50_000
DEFAULT_STALL_TIMEOUT = 180.0


def schedule(stack: Stack, *, kill_broker: bool = False) -> list[tuple[float, str, callable]]:
    """(progress fraction, what, action): the faults, in the order they fire."""
    workers = stack.workers

    def kill_restart(svc, pause: float):
        def act():
            svc.kill()
            time.sleep(pause)
            svc.start()
        return act

    def stop_start(svc, pause: float):
        def act():
            svc.stop()
            time.sleep(pause)
            svc.start()
        return act

    return [
        (0.10, f"kill -9 {workers[0].name}", kill_restart(workers[0], 1.0)),
        (0.20, "publish poison onto applicants.raw", lambda: publish_poison(stack)),
        (0.30, "kill -9 hbase, back after 8 s", kill_restart(stack.hbase, 8.0)),
        (0.45, "stop risk-api for 10 s", stop_start(stack.risk_api, 10.0)),
        (0.55, "kill -9 producer", kill_restart(stack.producer, 1.0)),
        (0.65, f"kill -9 {workers[-1].name}", kill_restart(workers[-1], 1.0)),
        (0.80, f"kill -9 {workers[0].name}", kill_restart(workers[0], 1.0)),
    ] + ([(0.40, "kill -9 broker (memory only: what it held is lost), up again", lambda: restart_broker(stack))]
         if kill_broker else [])


def restart_broker(stack: Stack) -> None:
    stack.broker.kill()
    up(stack, [stack.broker])   # a fresh, empty broker with the topics created again


def recover_lost(stack: Stack) -> dict:
    """Reconcile the store with HBase and the DLQ and send the missing applicants again (deploy reconcile)."""
    from deploy.local import stack_env
    from deploy.reconcile import Sources, reconcile
    from deploy.republish import republish_ids

    env = stack_env(stack)
    sources = Sources.from_env(env)
    rec = reconcile(sources)
    sent = republish_ids(rec.missing, mysql_url=sources.mysql_url, env=env) if rec.missing else 0
    return {"missing": len(rec.missing), "lost": len(rec.lost), "both": len(rec.both), "republished": sent,
            "sample": rec.missing[:5]}


def poison(seed: int = 7) -> list[tuple[str, bytes | None, bytes | None]]:
    from topology.testdata import poison_messages

    return poison_messages(random.Random(seed))


def publish_poison(stack: Stack) -> None:
    from aiokafka import AIOKafkaProducer

    from topology.settings import Settings

    topic = Settings.from_env({**stack.producer.extra_env}).topic_raw

    async def run():
        producer = AIOKafkaProducer(bootstrap_servers=stack.broker.bootstrap, max_request_size=8 << 20)
        await producer.start()
        try:
            futures = [await producer.send(topic, value, key=key, headers=[("poison", kind.encode())])
                       for kind, key, value in poison()]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    asyncio.run(run())


def run_faults(stack: Stack, *, applicants: int, seed: int, dirty: float, stall_timeout: float,
               kill_broker: bool = False) -> dict:
    from applicant_api.importer import import_file

    down(stack)
    reset_state(stack)
    timeline: list[dict] = []
    try:
        up(stack, stack.infrastructure)
        reset_db(stack.mariadb.url)
        report = import_file(synthetic_file(stack, applicants, seed, dirty), url=stack.mariadb.url,
                             batch_size=2_000, source="synthetic")
        expected = report.imported + len(poison())
        started = time.monotonic()
        with OutcomeTally(stack.broker.bootstrap) as tally:
            up(stack, stack.applications)
            faults = sorted(schedule(stack, kill_broker=kill_broker), key=lambda f: f[0])
            errors: list[BaseException] = []

            def inject():
                try:
                    for fraction, what, act in faults:
                        while tally.accounted() < fraction * expected:
                            time.sleep(0.1)
                        at, accounted = round(time.monotonic() - started, 1), tally.accounted()
                        click.echo(f"fault at {accounted}/{expected} ({at}s): {what}", err=True)
                        act()
                        timeline.append({"at_s": at, "accounted": accounted, "fault": what})
                except BaseException as exc:  # reported by the main thread
                    errors.append(exc)

            injector = threading.Thread(target=inject, name="faults", daemon=True)
            injector.start()
            recovered = None
            if kill_broker:
                # What the killed broker held is gone: wait until nothing moves, then reconcile and republish.
                wait_quiet(tally, expected, quiet=20.0)
                recovered = recover_lost(stack)
                click.echo(f"reconcile after the broker crash: {recovered}", err=True)
            tally.wait_for(expected, stall_timeout=stall_timeout, on_stall=lambda: "\n".join(
                svc.status() for svc in stack.services))
            injector.join(timeout=60)
            if errors:
                raise errors[0]
            seconds = time.monotonic() - started
            time.sleep(2.0)   # late duplicates (replays after the kills) would show here
            outcome = tally.snapshot()
        hbase_rows = hbase_row_count(stack)
        decided = outcome["approved"] + outcome["declined_model"] + outcome["declined_policy"]
        return {
            "applicants": report.rows, "imported": report.imported, "poison": len(poison()),
            "hbase_rows": hbase_rows, "decisions": outcome["decisions"], "dlq": outcome["dlq"],
            "both": outcome["both"], "seconds": round(seconds, 1), "faults": timeline,
            **({"recovered_after_broker_crash": recovered} if kill_broker else {}),
            "reconciled": (hbase_rows == decided == outcome["decisions"]
                           and hbase_rows + outcome["dlq"] == expected and not outcome["both"]),
        }
    finally:
        down(stack)


def wait_quiet(tally: OutcomeTally, expected: int, *, quiet: float) -> None:
    """Return when every applicant is accounted for, or nothing changed for ``quiet`` seconds."""
    last, since = -1, time.monotonic()
    while tally.accounted() < expected and time.monotonic() - since < quiet:
        now = tally.accounted()
        if now != last:
            last, since = now, time.monotonic()
        time.sleep(0.5)


@click.command()
@click.option("--applicants", default=DEFAULT_APPLICANTS, show_default=True, type=click.IntRange(1000))
@click.option("--seed", default=7, show_default=True)
@click.option("--dirty", default=0.02, show_default=True, type=click.FloatRange(0, 1))
@click.option("--stall-timeout", default=DEFAULT_STALL_TIMEOUT, show_default=True,
              help="seconds without progress before giving up")
@click.option("--kill-broker", is_flag=True,
              help="also kill -9 the (memory-only) broker at 40%, then reconcile and republish what it lost")
def main(applicants: int, seed: int, dirty: float, stall_timeout: float, kill_broker: bool) -> None:
    """Run the fault drill and print its JSON summary; exit 1 unless everything reconciles."""
    logging.basicConfig(level=logging.WARNING)
    summary = run_faults(build_stack(), applicants=applicants, seed=seed, dirty=dirty, stall_timeout=stall_timeout,
                         kill_broker=kill_broker)
    click.echo(orjson.dumps(summary).decode())
    if not summary["reconciled"]:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
