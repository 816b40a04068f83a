"""A fault drill on the local stack: the main job with processes killed and stopped mid-run and poison published.

``python -m deploy.faults [--applicants 50000]`` runs the main job's import
and pipeline and, as the decisions come in, kills a worker with SIGKILL three
times, kills the HBase server and brings it back, stops the risk API for a
while, kills the producer, and publishes the hostile messages of
``deploy.poison.poison_messages`` onto applicants.raw.  It ends with one
JSON line: what happened when, and whether every applicant and every poison
message is accounted for exactly once (HBase rows or dead letters).

``--kill-broker`` is the embedded broker's crash instead: a worker and HBase
killed, then at 40% the broker (memory only: every message and every
consumer offset it held is gone); the recovery is the documented one (stop
the broker's clients, start everything again, ``deploy reconcile
--republish``), and the run ends when the store and HBase agree.
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

    def down_for(svc, pause: float, *, kill: bool = True):
        def act():
            if kill:
                svc.kill()
            else:
                svc.stop()
            time.sleep(pause)
            svc.start()
        return act

    if kill_broker:
        # The broker keeps the DLQ and the consumer offsets too: no poison here (its dead letters would die with
        # the broker), and nothing after the crash is timed by the tally (a consumer that lives through it is
        # blind to what comes after). What counts is the store against HBase, by reconcile.
        return [
            (0.10, f"kill -9 {workers[0].name}", down_for(workers[0], 1.0)),
            (0.30, "kill -9 hbase, back after 8 s", down_for(stack.hbase, 8.0)),
            (0.40, "kill -9 broker (memory only: all it held is lost); stop its clients, start all again",
             lambda: restart_broker(stack)),
        ]
    return [
        (0.10, f"kill -9 {workers[0].name}", down_for(workers[0], 1.0)),
        (0.20, "publish poison onto applicants.raw", lambda: publish_poison(stack)),
        (0.30, "kill -9 hbase, back after 8 s", down_for(stack.hbase, 8.0)),
        (0.45, "stop risk-api for 10 s", down_for(stack.risk_api, 10.0, kill=False)),
        (0.55, "kill -9 producer", down_for(stack.producer, 1.0)),
        (0.65, f"kill -9 {workers[-1].name}", down_for(workers[-1], 1.0)),
        (0.80, f"kill -9 {workers[0].name}", down_for(workers[0], 1.0)),
    ]


def restart_broker(stack: Stack) -> None:
    """kill -9 the broker, then what an operator does: stop its clients, start a fresh broker, start them again.

    Tansu keeps nothing, not even the consumer groups' offsets.  A client
    still running when the new broker comes up carries its old positions
    over: a worker commits them to the new groups, and everything published
    below them (republished applicants included) is skipped (measured: 4,957
    of 49,004 applicants never read when the workers were restarted only after
    the broker).  So the workers and the producer stop first, as in
    ``deploy.local down`` then ``up``.
    """
    stack.broker.kill()
    for svc in [*stack.workers, stack.producer]:
        svc.stop()
    up(stack, [stack.broker, *stack.workers, stack.producer])


def reconcile_stack(stack: Stack, *, republish: bool = False) -> dict:
    """`python -m deploy reconcile [--republish]` on the stack: the store against HBase and the DLQ."""
    from deploy.local import stack_env
    from deploy.reconcile import Sources, reconcile
    from deploy.republish import republish_ids

    env = stack_env(stack)
    sources = Sources.from_env(env)
    rec = reconcile(sources)
    sent = republish_ids(rec.missing, mysql_url=sources.mysql_url, env=env) if republish and rec.missing else 0
    return {"store": rec.store, "hbase": rec.hbase, "missing": len(rec.missing), "lost": len(rec.lost),
            "both": len(rec.both), "republished": sent, "sample": rec.missing[:5], "reconciled": rec.reconciled}


def wait_reconciled(stack: Stack, *, timeout: float) -> dict:
    """Reconcile every few seconds until nothing is missing (or ``timeout``); the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        rec = reconcile_stack(stack)
        if rec["reconciled"] or time.monotonic() > deadline:
            return rec
        time.sleep(3.0)


def poison(seed: int = 7) -> list[tuple[str, bytes | None, bytes | None]]:
    from deploy.poison import poison_messages

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

            def fire(what: str, act, at: float, accounted: int) -> None:
                try:
                    act()
                    timeline.append({"at_s": at, "accounted": accounted, "fault": what})
                except BaseException as exc:  # reported by the main thread
                    errors.append(exc)

            def inject():
                # Each fault in a thread of its own: a risk API kept down for 10 s does not hold up the next one.
                running = []
                for fraction, what, act in faults:
                    while tally.accounted() < fraction * expected:
                        time.sleep(0.1)
                    at, accounted = round(time.monotonic() - started, 1), tally.accounted()
                    click.echo(f"fault at {accounted}/{expected} ({at}s): {what}", err=True)
                    running.append(threading.Thread(target=fire, args=(what, act, at, accounted), daemon=True))
                    running[-1].start()
                for thread in running:
                    thread.join()

            injector = threading.Thread(target=inject, name="faults", daemon=True)
            injector.start()
            if kill_broker:
                return broker_crash_summary(stack, tally, injector, timeline, errors, report, expected, started,
                                            stall_timeout=stall_timeout)
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
            "both": outcome["both"], "seconds": round(seconds, 1),
            "faults": sorted(timeline, key=lambda f: f["at_s"]),
            "reconciled": (hbase_rows == decided == outcome["decisions"]
                           and hbase_rows + outcome["dlq"] == expected and not outcome["both"]),
        }
    finally:
        down(stack)


def broker_crash_summary(stack: Stack, tally: OutcomeTally, injector: threading.Thread, timeline: list,
                         errors: list, report, expected: int, started: float, *, stall_timeout: float) -> dict:
    """After the broker's crash: wait until nothing moves, reconcile and republish, then until nothing is missing."""
    while not any("broker" in f["fault"] for f in timeline) and injector.is_alive():
        time.sleep(0.5)   # the broker and its clients are back (a fault is logged once done)
    injector.join(timeout=60)
    if errors:
        raise errors[0]
    wait_quiet(tally, expected, quiet=20.0)
    recovered = reconcile_stack(stack, republish=True)
    click.echo(f"reconcile --republish after the broker crash: {recovered}", err=True)
    final = wait_reconciled(stack, timeout=stall_timeout)
    return {"applicants": report.rows, "imported": report.imported, "seconds": round(time.monotonic() - started, 1),
            "faults": sorted(timeline, key=lambda f: f["at_s"]), "after_crash": recovered, "final": final,
            "reconciled": final["reconciled"] and final["hbase"] == report.imported}


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
