"""The multi-host run: the apache stack on six network-namespace hosts, one worker host cut off and another killed."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import click

from deploy.local import Stack, build_stack, down, stack_env, up
from deploy.netns import Network, unavailable_reason
from deploy.placement import Placement, Spot
from deploy.services import ServiceError, wait_for

logger = logging.getLogger(__name__)

HOSTS = ("data", "db", "producer", "worker-1", "worker-2", "worker-3")
CUT_HOST = "worker-1"       # cut off the network for a while, then back
KILLED_HOST = "worker-2"    # every process killed with SIGKILL, never back
# Each host has its own ports, so every process takes its usual one.
PORTS = {"BROKER_PORT": 9092, "ZOOKEEPER_PORT": 2181, "HBASE_PORT": 9090, "MYSQL_PORT": 3306,
         "APPLICANT_API_PORT": 5001, "RISK_API_PORT": 5002, "PRODUCER_METRICS_PORT": 9464,
         "PROMETHEUS_PORT": 9095, "DASHBOARD_PORT": 5003,
         **{f"WORKER_{i}_WEB_PORT": 6066 for i in (1, 2, 3)}}
DEFAULT_APPLICANTS = 50_000
DEFAULT_DIRTY = 0.0             # every generated applicant is valid, so all of them cross the hosts (dirty rows
                                # stop at the import: the main job and its tests cover them)
DEFAULT_SEED = 42
DEFAULT_CHUNKS = 50             # the applicants reach the store in this many imports, evenly spread
DEFAULT_ARRIVAL_SECONDS = 80.0  # ... over this long: the producer polls, so the run lasts past both events
DEFAULT_CUT_AT = 10.0           # seconds after the producer started
DEFAULT_CUT_SECONDS = 30.0
DEFAULT_KILL_AT = 50.0          # after the cut host is back: each recovery is measured on its own
DEFAULT_STALL_TIMEOUT = 300.0   # give up when no applicant is accounted for this long
READY_TIMEOUT = 120.0
LOOPBACK = ("127.0.0.1", "localhost", "0.0.0.0", "[::]", "::1")


def placement_for(network: Network) -> Placement:
    """The stack on the network's hosts; Prometheus and the dashboard (not started by the run) on the gateway."""
    spot = {name: Spot(host.address, host.netns) for name, host in network.hosts.items()}
    subnet = network.gateway.rsplit(".", 1)[0]
    return Placement(data=spot["data"], db=spot["db"], producer=spot["producer"],
                     workers=tuple(spot[f"worker-{i}"] for i in (1, 2, 3)), monitoring=Spot(network.gateway),
                     client_hosts=(f"{subnet}.%",))


def chunk_files(folder: Path, applicants: int, chunks: int, seed: int, dirty: float) -> list[Path]:
    """The synthetic applicants as ``chunks`` files with disjoint id ranges (made once, kept in ``folder``)."""
    from credit_core.synthetic import DEFAULT_ID_START, MAX_ID_STEP, generate

    if not 1 <= chunks <= applicants:
        raise ValueError(f"chunks must be in 1..applicants, got {chunks!r}")
    folder.mkdir(parents=True, exist_ok=True)
    sizes = [applicants // chunks + (1 if i < applicants % chunks else 0) for i in range(chunks)]
    paths, first = [], DEFAULT_ID_START
    for i, size in enumerate(sizes):
        path = folder / f"arrivals-{applicants}-{chunks}-s{seed}-d{dirty:g}-{i:03d}.csv.gz"
        if not path.exists():
            tmp = path.with_suffix(".tmp.gz")
            generate(tmp, rows=size, seed=seed + i, dirty=dirty, id_start=first)
            tmp.replace(path)
        paths.append(path)
        first += MAX_ID_STEP * size + 1
    return paths


@dataclass
class Arrivals:
    """Imports the chunk files into the store one by one, evenly over ``seconds``, in a thread."""

    paths: list[Path]
    url: str
    seconds: float
    imported: int = 0
    rejected: int = 0
    rows: int = 0
    error: BaseException | None = None
    _thread: threading.Thread | None = field(default=None, repr=False)

    def start(self) -> Arrivals:
        self._thread = threading.Thread(target=self._run, name="arrivals", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        from applicant_api.importer import import_file

        started = time.monotonic()
        try:
            for i, path in enumerate(self.paths):
                time.sleep(max(0.0, started + i * self.seconds / len(self.paths) - time.monotonic()))
                report = import_file(path, url=self.url, source="synthetic", create_schema=False,
                                     writer_process=False)
                self.imported += report.imported
                self.rejected += report.rejected
                self.rows += report.rows
        except BaseException as exc:   # surfaced by join
            self.error = exc

    def join(self) -> None:
        self._thread.join()
        if self.error is not None:
            raise ServiceError(f"importing the arrivals failed: {self.error!r}")


def listeners(network: Network, name: str) -> list[str]:
    """The TCP addresses processes of host ``name`` listen on ('10.231.7.2:9092')."""
    out = network.run(name, ["ss", "-ltnH"], capture_output=True, text=True, check=True).stdout
    return sorted({line.split()[3] for line in out.splitlines() if line.strip()})


def loopback_shortcuts(stack: Stack) -> list[str]:
    """Every setting given to a process (environment and command line) that names a loopback or wildcard address."""
    found = []
    for svc in stack.infrastructure + stack.applications:
        values = [*getattr(svc, "extra_env", {}).values(), *svc.command()]
        for generated in ("properties", "site"):   # Kafka's server.properties, HBase's hbase-site.xml
            if hasattr(svc, generated):
                values += getattr(svc, generated)().values()
        found += [f"{svc.name}: {value}" for value in values
                  if any(f"{addr}:" in value or f"//{addr}" in value or value == addr for addr in LOOPBACK)]
    return found


def hbase_duplicates(stack: Stack) -> dict:
    """Rows of the decisions table, time-index rows, and the decisions tables' rows holding more than one decision
    (an application decided twice; each applicant arrives once here)."""
    from hbase_helper import layout
    from hbase_helper.pool import connect
    from hbase_helper.settings import HBaseSettings

    with connect(HBaseSettings.from_env(stack_env(stack))) as conn:
        rows = doubled = 0
        for _key, cells in conn.table(layout.MAIN_TABLE).scan(columns=[b"d"], batch_size=2000):
            rows += 1
            doubled += sum(1 for column in cells if column.startswith(layout.HISTORY_PREFIX)) > 1
        index_rows = sum(1 for _ in conn.table(layout.INDEX_TABLE).scan(filter=b"KeyOnlyFilter()", batch_size=5000))
    return {"rows": rows, "index_rows": index_rows, "rows_with_several_decisions": doubled}


def worker_on(stack: Stack, network: Network, name: str):
    """The faust worker running on host ``name``."""
    (worker,) = [w for w in stack.workers if w.netns == network.hosts[name].netns]
    return worker


def wait_ready(stack: Stack, timeout: float = READY_TIMEOUT) -> None:
    """Until every worker's GET /ready answers 200 (its groups have their partitions, every stage started)."""
    import requests

    def ready() -> bool:
        for worker in stack.workers:
            try:
                if requests.get(f"http://{worker.web_host}:{worker.web_port}/ready", timeout=2).status_code != 200:
                    return False
            except requests.RequestException:
                return False
        return True

    wait_for(ready, timeout, interval=0.5, what="every worker ready")


def run_multihost(run_dir: Path, *, applicants: int = DEFAULT_APPLICANTS, dirty: float = DEFAULT_DIRTY,
                  seed: int = DEFAULT_SEED, chunks: int = DEFAULT_CHUNKS,
                  arrival_seconds: float = DEFAULT_ARRIVAL_SECONDS, cut_at: float = DEFAULT_CUT_AT,
                  cut_seconds: float = DEFAULT_CUT_SECONDS, kill_at: float = DEFAULT_KILL_AT,
                  stall_timeout: float = DEFAULT_STALL_TIMEOUT, echo=click.echo) -> dict:
    """Run ``applicants`` through the apache stack spread over six hosts; meanwhile cut CUT_HOST off the network at
    ``cut_at`` for ``cut_seconds`` and kill every process of KILLED_HOST at ``kill_at`` (seconds after the producer
    started). Returns the report: reconciliation, HBase duplicates, and each group's recovery from each event."""
    reason = unavailable_reason()
    if reason:
        raise ServiceError(f"the multi-host run needs network namespaces: {reason}")
    if not 0 < cut_at < cut_at + cut_seconds < kill_at:
        raise ValueError("the cut must start after the producer and end before the kill")
    from applicant_api.schema import reset_db
    from deploy.group_watch import GroupWatch
    from deploy.reconcile import Sources, reconcile
    from deploy.tally import OutcomeTally
    from topology.settings import Settings

    run_dir = Path(run_dir)
    for stale in ("kafka", "hbase-apache", "producer.checkpoint"):
        path = run_dir / stale
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    paths = chunk_files(run_dir / "data", applicants, chunks, seed, dirty)
    report: dict = {"applicants": applicants, "hosts": {}}
    with Network(HOSTS) as network:
        report["hosts"] = {name: host.address for name, host in network.hosts.items()}
        stack = build_stack(run_dir, stack="apache", placement=placement_for(network), ports=PORTS)
        env = stack_env(stack)
        app_id = Settings.from_env({**os.environ, **env}).app_id
        try:
            up(stack, stack.infrastructure)
            reset_db(stack.mariadb.url)
            with OutcomeTally(stack.broker.bootstrap) as tally, \
                    GroupWatch(stack.broker.bootstrap, [app_id, f"{app_id}-raw"]) as watch:
                up(stack, [stack.applicant_api, stack.risk_api, *stack.workers])
                wait_ready(stack)
                report["listeners"] = {name: listeners(network, name) for name in HOSTS}
                report["loopback_settings"] = loopback_shortcuts(stack)
                arrivals = Arrivals(paths, stack.mariadb.url, arrival_seconds).start()
                up(stack, [stack.producer])
                started = time.monotonic()
                events = _events(network, started, cut_at=cut_at, cut_seconds=cut_seconds, kill_at=kill_at,
                                 echo=echo)
                arrivals.join()
                echo(f"{arrivals.imported} applicants imported ({arrivals.rejected} invalid rows rejected); "
                     f"waiting for every one to be decided or dead-lettered", err=True)
                tally.wait_for(arrivals.imported, stall_timeout=stall_timeout,
                               on_stall=lambda: _stall_report(stack, network))
                report["seconds"] = round(time.monotonic() - started, 1)
                time.sleep(2 * watch.every)   # one more sample of every group after the last commit
                outcome = tally.snapshot()
            report["recovery"] = recoveries(watch, network, events)
            report["group_watch_errors"] = watch.errors
            result = reconcile(Sources.from_env({**os.environ, **env}))
            report.update(invalid=arrivals.rejected, imported=arrivals.imported, outcome=outcome,
                          reconciliation={"store": result.store, "hbase": result.hbase, "dlq": result.dlq,
                                          "missing": len(result.missing), "both": len(result.both),
                                          "reconciled": result.reconciled},
                          hbase=hbase_duplicates(stack),
                          cut_worker_alive=worker_on(stack, network, CUT_HOST).is_running(),
                          killed_host_processes=network.pids(KILLED_HOST))
        finally:
            down(stack)
    report["leftovers"] = network.leftovers()
    return report


def _events(network: Network, started: float, *, cut_at: float, cut_seconds: float, kill_at: float,
            echo) -> dict[str, tuple[str, float]]:
    """Cut, restore and kill on schedule; each event's host and monotonic time."""
    def sleep_until(offset: float) -> None:
        time.sleep(max(0.0, started + offset - time.monotonic()))

    sleep_until(cut_at)
    network.cut(CUT_HOST)
    cut = time.monotonic()
    echo(f"cut {CUT_HOST} ({network.hosts[CUT_HOST].address}) off the network", err=True)
    sleep_until(cut_at + cut_seconds)
    network.restore(CUT_HOST)
    restored = time.monotonic()
    echo(f"restored {CUT_HOST}'s link after {time.monotonic() - cut:.1f}s", err=True)
    sleep_until(kill_at)
    kill = time.monotonic()
    pids = network.kill_all(KILLED_HOST)
    echo(f"killed every process of {KILLED_HOST} with SIGKILL (pids {pids})", err=True)
    return {"cut": (CUT_HOST, cut), "restore": (CUT_HOST, restored), "kill": (KILLED_HOST, kill)}


def recoveries(watch, network: Network, events: dict[str, tuple[str, float]]) -> dict[str, list[dict]]:
    """Per event, per group: the lost host's partitions, when they were reassigned and served again; for the cut
    host, also when it owned partitions again after its link came back."""
    from deploy.group_watch import owner_again_after, recovery

    out = {}
    for kind in ("cut", "kill"):
        host, at = events[kind]
        address = network.hosts[host].address
        out[kind] = []
        for group in watch.groups:
            history = watch.history(group)
            entry = recovery(group, history, event_at=at, host=address).to_dict()
            if kind == "cut":
                again = owner_again_after(history, since=events["restore"][1], host=address)
                entry["owner_again_after_restore_s"] = None if again is None else round(again, 2)
            out[kind].append(entry)
    return out


def _stall_report(stack: Stack, network: Network) -> str:
    """Why the run stalled: each process's state and the applications' log tails."""
    lines = [svc.status() for svc in stack.infrastructure + stack.applications]
    for svc in stack.applications:
        lines.append(f"--- {svc.name} log tail ---\n{svc.tail_log(12)}")
    return "\n".join(lines)


@click.command("multihost")
@click.option("--applicants", default=DEFAULT_APPLICANTS, show_default=True, type=click.IntRange(DEFAULT_CHUNKS))
@click.option("--cut-seconds", default=DEFAULT_CUT_SECONDS, show_default=True, type=click.FloatRange(1, 60))
@click.option("--run-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the run keeps its data (default: <CREDIT_RUN_DIR or .run>/multihost).")
def multihost_cmd(applicants: int, cut_seconds: float, run_dir: Path | None) -> None:
    """The multi-host run (root only): six hosts from network namespaces, one worker host cut off for
    --cut-seconds and another killed; prints the report as JSON, exits 1 unless it reconciles exactly."""
    import orjson

    from deploy.local import DEFAULT_RUN_DIR

    run_dir = run_dir or Path(os.environ.get("CREDIT_RUN_DIR") or DEFAULT_RUN_DIR) / "multihost"
    logging.getLogger("applicant_api.importer").setLevel(logging.WARNING)   # not a line per arrival
    try:
        report = run_multihost(run_dir, applicants=applicants, cut_seconds=cut_seconds,
                               kill_at=DEFAULT_CUT_AT + cut_seconds + 10)
    except (ServiceError, subprocess.CalledProcessError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    if not (report["reconciliation"]["reconciled"] and not report["hbase"]["rows_with_several_decisions"]):
        raise SystemExit(1)
