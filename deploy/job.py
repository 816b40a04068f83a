"""The main job: generate, import, publish, decide and save N applicants on the local stack, then reconcile."""

from __future__ import annotations

import logging
import os
import time

import click

from applicant_api.schema import reset_db
from deploy.local import Stack, down, health_lines, monitoring_lines, up
from deploy.services import FaustWorker, WorkerHealth
from deploy.tally import OutcomeTally

logger = logging.getLogger(__name__)

DEFAULT_IMPORT_BATCH = 2_000
HEALTH_POLL_EVERY = 1.0     # seconds between two rounds of GET /health on the workers while the job waits


def reset_state(stack: Stack) -> None:
    """Start from a clean slate (services stopped): no HBase rows, no producer checkpoint, no broker data
    (Tansu keeps nothing on restart; Apache Kafka's log folder goes)."""
    import shutil

    for path in [*stack.stored_data(), stack.run_dir / "producer.checkpoint"]:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def synthetic_file(stack: Stack, applicants: int, seed: int, dirty: float) -> Path:
    from credit_core.synthetic import generate

    data_dir = stack.run_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / f"synthetic-{applicants}-s{seed}-d{dirty:g}.csv.gz"
    if not path.exists():
        tmp = path.with_suffix(".tmp.gz")
        generate(tmp, rows=applicants, seed=seed, dirty=dirty)
        tmp.replace(path)
    return path


def hbase_row_count(stack: Stack) -> int:
    from hbase_helper.writer import count_rows

    return count_rows(host=stack.hbase.host, port=stack.hbase.port)


def run_job(stack: Stack, *, applicants: int, dirty: float, seed: int, keep_running: bool,
            stall_timeout: float) -> dict:
    from applicant_api.importer import import_file

    click.echo("stopping any earlier run and starting from a clean slate", err=True)
    down(stack)
    reset_state(stack)
    finished = False
    try:
        up(stack, stack.infrastructure)
        reset_db(stack.mariadb.url)

        path = synthetic_file(stack, applicants, seed, dirty)
        click.echo(f"importing {path.name}", err=True)
        started = time.monotonic()
        report = import_file(path, url=stack.mariadb.url, batch_size=DEFAULT_IMPORT_BATCH, source="synthetic")
        imported = report.imported
        invalid = report.rejected
        click.echo(f"imported {imported} applicants, rejected {invalid} invalid rows", err=True)
        for reject in report.rejects[:5]:
            click.echo(f"  rejected line {reject.line_no}: {reject.reason}", err=True)

        broker_pid = stack.broker.pid()
        with OutcomeTally(stack.broker.bootstrap) as tally:
            up(stack, stack.applications)
            up(stack, stack.monitoring)
            for line in monitoring_lines(stack):
                click.echo(line, err=True)
            tally.wait_for(imported, stall_timeout=stall_timeout,
                           on_stall=lambda: _explain_stall(stack, broker_pid),
                           watch=CrashWatch(stack.workers))
            seconds = time.monotonic() - started
            outcome = tally.snapshot()

        hbase_rows = hbase_row_count(stack)
        decided = outcome["approved"] + outcome["declined_model"] + outcome["declined_policy"]
        summary = {
            "applicants": report.rows,
            "invalid": invalid,
            "declined_policy": outcome["declined_policy"],
            "approved": outcome["approved"],
            "declined_model": outcome["declined_model"],
            "hbase_rows": hbase_rows,
            "dlq": outcome["dlq"],
            "decisions": outcome["decisions"],
            "seconds": round(seconds, 2),
            "per_second": round(imported / seconds, 1) if seconds else None,
        }
        summary["reconciled"] = (
            applicants == report.rows == invalid + imported
            and imported == hbase_rows + outcome["dlq"]
            and hbase_rows == decided == outcome["decisions"]
            and not outcome["both"]
        )
        finished = True
        return summary
    finally:
        if not (keep_running and finished):
            down(stack)
        else:
            click.echo("--keep-running: the stack stays up; stop it with `python -m deploy.local down`", err=True)
            for line in monitoring_lines(stack):
                click.echo(line, err=True)


def crash_report(worker: str, health: WorkerHealth | None) -> str | None:
    """What to fail with when ``health`` says a stage of ``worker`` crashed (the pipeline cannot finish: its
    records stay where that stage left them); None while none has."""
    crashed = health.crashed() if health is not None else {}
    if not crashed:
        return None
    stages = "; ".join(f"stage {name!r} crashed" + (f": {stage.error}" if stage.error else "")
                       for name, stage in crashed.items())
    return (f"{worker}: {stages}. The applicants it holds cannot be decided; the worker's health: "
            f"{health.describe()}")


class CrashWatch:
    """Called while the job waits: at most every ``every`` seconds, asks each worker's /health and fails the job
    (ClickException naming the worker and stage, with its log tail) when a stage has crashed, rather than
    waiting out the stall timeout."""

    def __init__(self, workers: list[FaustWorker], every: float = HEALTH_POLL_EVERY):
        self.workers = list(workers)
        self.every = every
        self._next = 0.0

    def __call__(self) -> None:
        if time.monotonic() < self._next:
            return
        for worker in self.workers:
            report = crash_report(worker.name, worker.health())
            if report is not None:
                raise click.ClickException(f"{report}\n--- {worker.name} log tail ---\n{worker.tail_log(20)}")
        self._next = time.monotonic() + self.every


def _explain_stall(stack: Stack, broker_pid: int | None) -> str:
    """Why the job stalled: each service's state and log tail, then (last, where the eye lands) the lost
    applicants by count and sample."""
    lines = [svc.status() for svc in stack.services]
    lines += health_lines(stack.workers)
    for svc in stack.applications:
        lines.append(f"--- {svc.name} log tail ---\n{svc.tail_log(8)}")
    lines.append("--- reconciliation ---")
    now = stack.broker.pid()
    if now != broker_pid:
        lines.append(f"the broker was restarted or died during the run (pid {broker_pid}, now {now})"
                     + (": Apache Kafka keeps its log" if stack.name == "apache" else
                        ": the embedded broker keeps messages in memory only, a restart loses them all."))
    lines.append(lost_report(stack))
    return "\n".join(lines)


def lost_report(stack: Stack) -> str:
    """deploy.reconcile over the stack: which applicants are lost (count and sample), or that none is."""
    from deploy.local import stack_env
    from deploy.reconcile import Sources, reconcile, stall_report

    try:
        return stall_report(reconcile(Sources.from_env({**os.environ, **stack_env(stack)})),
                            durable_broker=stack.name == "apache")
    except Exception as exc:  # the stall report must come out whatever is broken
        logger.exception("reconciliation failed")
        return f"could not reconcile the store with HBase and the DLQ: {type(exc).__name__}: {exc}"

