"""End-to-end topology throughput, latency and memory on each stack: `python -m bench.topology [--quick] [--stack]`.

Measured on each stack in turn (``--stack embedded|apache|both``, default
both): its broker (Tansu, or Apache Kafka 3.9), its HBase (the project's
emulator, or Apache HBase 2.6 + its Thrift server) and a risk API under
gunicorn with 2 workers; every figure names its stack and is set against a
reference measured on the same stack in the same run. Every run is on fresh
topics, consumer groups and HBase tables:

- the project's pipeline, 2 worker processes: N applicants preloaded on
  applicants.raw, then the workers start; applicants/s = (N - 1) / (time of the
  last output record - time of the first), from the records' producer
  timestamps (worker clock, same host). Decision events are published after
  the HBase write, so "decided" means "in HBase" (the HBase row count is
  checked after each run);
- the literal port (TOPOLOGY_MODE=literal, 2 workers): a faust agent per
  stage handling one message at a time, one HTTP call and one HBase put per
  applicant, as the Storm bolts did;
- with ``--baseline REV`` (``make bench BASELINE=REV``): the same pipeline
  run by REV's workers (a git worktree of that commit, its own app module)
  and by this tree's, alternating, in 4 pairs of 100,000 applicants on the
  same stack and input: the figure that shows a change made nothing slower;
- the metrics overhead: the same pipeline with the workers' Prometheus metrics
  on and with METRICS_ENABLED=false, alternating, in 4 pairs of 100,000
  applicants (``--only metrics`` runs just these): on may be at most 3% slower;
- raw broker pass-through on the same broker (TOPOLOGY_MODE=passthrough, 2
  workers): consume applicants.raw and produce the same records with no work,
  with the aiokafka consumer the pipeline uses (at least 100,000 records)
  and, in full mode, with a faust agent;
- latency applicants.raw -> HBase write at steady offered rates (500, 1,000,
  2,000 and 5,000/s for 10 s each; quick: 1,000 and 5,000/s for 4 s) and at
  half the pipeline's own maximum rate measured just before, each on fresh
  topics and workers: decision event ``saved_at`` - raw record timestamp,
  p50/p95/p99, and the highest of those rates holding p99 <= 250 ms;
- growth: the pipeline at 10k, 100k and 1M applicants (quick: 10k and the 30k
  run): microseconds per applicant and the workers' RSS, each against the
  smallest run;
- CPU microseconds per applicant of every process during the pipeline runs
  (/proc/<pid>/stat utime + stime, before and after): each worker, the risk
  API, the broker and the HBase process(es) (where the 2 cores go);
- each server process's start-up (seconds until it answers a real request)
  and RSS after the benchmark against its RSS at start-up.

While the workers run, the benchmark only polls end offsets (it shares the
cores); it reads the output records once they stop arriving.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import click
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.common import figure, write_result
from bench.stacks import STACK_OPTION, Servers, cpu_seconds, rss_mb, stacks_for, tagged
from credit_core.messages.envelope import build_message
from credit_core.synthetic import applicants
from deploy.services import WORKER_APP, FaustWorker, free_port, risk_api
from hbase_helper.writer import DecisionWriter
from credit_core.messages.keys import partition_for
from topology.settings import Settings
from topology.topics import ensure_topics, topic_names

PARTITIONS = 4
WORKERS = 2
TOKEN = "bench-" + uuid.uuid4().hex
FETCHED_AT = "2024-01-01T00:00:00Z"   # the producer's fetch time in the preloaded envelopes


class Stack:
    """One stack's broker and HBase (bench.stacks.Servers) and a risk API, for the whole benchmark of that stack."""

    def __init__(self, name: str, run_dir: Path):
        self.name = name
        self.run_dir = run_dir / name
        self.servers = Servers(name, run_dir)
        self.risk = risk_api(run_dir=self.run_dir, port=free_port(), token=TOKEN, workers=2)

    @property
    def broker(self):
        return self.servers.broker

    @property
    def hbase(self):
        return self.servers.hbase

    def __enter__(self):
        self.servers.__enter__()
        try:
            self.risk.start(timeout=60)
        except BaseException:
            self.servers.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.risk.stop()
        self.servers.stop()

    def env(self, tag: str, **extra) -> dict:
        env = dict(os.environ)
        env.update({
            "KAFKA_BROKER": self.broker.url, "TOPOLOGY_APP_ID": f"bench-{tag}", "TOPIC_PARTITIONS": str(PARTITIONS),
            "TOPIC_RAW": f"raw-{tag}", "TOPIC_CLEAN": f"clean-{tag}", "TOPIC_ELIGIBLE": f"eligible-{tag}",
            "TOPIC_SCORED": f"scored-{tag}", "TOPIC_DECISIONS": f"decisions-{tag}", "TOPIC_DLQ": f"dlq-{tag}",
            "TOPIC_PASSTHROUGH": f"pass-{tag}", "HBASE_HOST": self.hbase.host, "HBASE_PORT": str(self.hbase.port),
            "HBASE_TABLE_PREFIX": f"b{tag}", "RISK_API_URL": self.risk.url, "RISK_API_TOKEN": TOKEN,
            "FAUST_DATADIR": str(self.run_dir / "faust"),
        })
        env.update(extra)
        return env

    def cpu(self, workers) -> dict[str, float]:
        """CPU seconds so far of every process: the stack's servers, the risk API, each worker."""
        out = {role: cpu_seconds(pid) for role, pid in self.servers.pids().items()}
        out["risk_api"] = cpu_seconds(self.risk.pid())
        for i, w in enumerate(workers):
            out[f"worker{i}"] = cpu_seconds(w.pid())
        return out


def payloads(first_id: int, count: int, dirty_every: int = 100):
    """(partition, key, value) for ids first_id..; every dirty_every-th has letters in dti (a DLQ case).

    Every applicant is drawn afresh (not copied from a few templates): the
    filter memoises cleaned values per field, and repeated amounts, incomes
    and ratios would flatter it.
    """
    for rec in applicants(count, seed=7, first_id=first_id):
        app_id = int(rec["id"])
        if dirty_every and app_id % dirty_every == 0:
            rec["dti"] = "12.x5"
        key, value = build_message({**rec, "seq": app_id, "source": "bench", "created_at": None}, FETCHED_AT)
        yield partition_for(key, PARTITIONS), key, value


async def produce(bootstrap: str, topic: str, msgs, rate: float | None = None) -> None:
    """Publish (partition, key, value) as fast as possible, or paced at ``rate`` per second."""
    # Paced, it lingers 10 ms as a real producer would: batches of one or two records made Tansu's
    # partitions long lists of tiny batches, which its fetch walks (see run_latency).
    p = AIOKafkaProducer(bootstrap_servers=bootstrap, max_batch_size=1 << 20, linger_ms=2 if rate is None else 10)
    await p.start()
    try:
        if rate is None:
            pending = {}
            for partition, key, value in msgs:
                pending.setdefault(partition, []).append((key, value))
            futs = []
            for partition, items in pending.items():
                for i in range(0, len(items), 2000):
                    b = p.create_batch()
                    for key, value in items[i:i + 2000]:
                        if b.append(key=key, value=value, timestamp=None) is None:
                            futs.append(await p.send_batch(b, topic, partition=partition))
                            b = p.create_batch()
                            b.append(key=key, value=value, timestamp=None)
                    futs.append(await p.send_batch(b, topic, partition=partition))
            await asyncio.gather(*futs)
        else:
            start = time.perf_counter()
            futs = []
            for n, (partition, key, value) in enumerate(msgs):
                due = start + n / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                futs.append(await p.send(topic, value, key=key, partition=partition))
            await asyncio.gather(*futs)
    finally:
        await p.stop()


async def read_outputs(bootstrap: str, topics: list[str], on_message=None):
    """Every record on ``topics`` now: (time of first, time of last, distinct keys); producer timestamps."""
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest",
                         max_partition_fetch_bytes=8 << 20, fetch_max_wait_ms=50)
    await c.start()
    keys: set[bytes] = set()
    first = last = None    # producer (CreateTime) timestamps of the output records, in seconds
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(PARTITIONS)]
        c.assign(tps)
        await c.seek_to_beginning(*tps)
        idle = 0
        while idle < 3:    # three empty fetches in a row (Tansu answers each after the 50 ms max wait)
            batch = await c.getmany(timeout_ms=200, max_records=50000)
            idle = 0 if batch else idle + 1
            for msgs in batch.values():
                for m in msgs:
                    keys.add(m.key)
                    ts = m.timestamp / 1000
                    first = ts if first is None else min(first, ts)
                    last = ts if last is None else max(last, ts)
                    if on_message is not None:
                        on_message(m)
    finally:
        await c.stop()
    return first, last, keys


async def watch(bootstrap: str, topics: list[str], expected: int, timeout: float, on_message=None, workers=()):
    """Wait until ``expected`` distinct keys are on ``topics``; (time of first, time of last, keys).

    The benchmark shares the 2 cores with what it measures, so while the
    workers run it only polls the topics' end offsets (one small request every
    0.25 s, instead of decoding 10k records/s); the records are read once the
    offsets have not moved for 0.75 s (polling resumes if some are missing).
    Tansu reports an end offset as the last batch's base offset + 1
    (DESIGN.md), so "stopped moving" is the signal, not the count; the rates
    come from the records' own timestamps either way.
    """
    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await c.start()
    deadline = time.monotonic() + timeout
    tps = [TopicPartition(t, p) for t in topics for p in range(PARTITIONS)]
    keys: set[bytes] = set()
    try:
        seen, still = None, 0.0
        while True:
            if time.monotonic() > deadline:
                tails = "".join(f"\n-- {w.name}:\n{w.tail_log(20)}" for w in workers)
                raise TimeoutError(f"only {len(keys)} of {expected} arrived in {timeout:.0f}s{tails}")
            for w in workers:
                if not w.is_running():
                    raise RuntimeError(f"{w.name} died:\n{w.tail_log()}")
            await asyncio.sleep(0.25)
            ends = await c.end_offsets(tps)
            total = sum(ends.values())
            still = still + 0.25 if total == seen and total > 0 else 0.0
            seen = total
            if still >= 0.75:
                first, last, keys = await read_outputs(bootstrap, topics)
                if len(keys) >= expected:
                    if on_message is not None:   # once, now that every record is there
                        first, last, keys = await read_outputs(bootstrap, topics, on_message)
                    return first, last, keys
                still = 0.0
    finally:
        await c.stop()


async def delete_topics(bootstrap: str, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_topics(names)
    except Exception as exc:  # freeing broker memory is best effort
        print(f"  (could not delete topics: {exc})", file=sys.stderr)
    finally:
        await admin.close()


def drop_tables(stack: Stack, prefix: str) -> None:
    """Delete a run's tables so later runs do not pay for a bigger SQLite file."""
    import happybase

    conn = happybase.Connection(stack.hbase.host, stack.hbase.port, table_prefix=prefix, timeout=60000)
    try:
        for name in (n.decode() for n in conn.tables()):
            conn.delete_table(name, disable=True)
    finally:
        conn.close()


@dataclass(frozen=True)
class Baseline:
    """Another commit's source tree, whose workers run the same pipeline for a side-by-side figure."""

    rev: str
    tree: Path

    @property
    def app(self) -> str:
        """The faust app module of that commit (it moved from topology.app to topology.worker.app)."""
        return WORKER_APP if (self.tree / "topology" / "worker" / "app.py").exists() else "topology.app"

    def env(self, env: dict) -> dict:
        return {**env, "PYTHONPATH": str(self.tree)}


@contextlib.contextmanager
def baseline_tree(rev: str | None, parent: Path):
    """A detached git worktree of ``rev`` under ``parent`` (None: no baseline), removed afterwards."""
    if not rev:
        yield None
        return
    root = Path(__file__).resolve().parent.parent
    tree = parent / "baseline"
    subprocess.run(["git", "-C", str(root), "worktree", "add", "--detach", str(tree), rev], check=True,
                   capture_output=True)
    commit = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], check=True,
                            capture_output=True, text=True).stdout.strip()
    try:
        yield Baseline(commit, tree)
    finally:
        subprocess.run(["git", "-C", str(root), "worktree", "remove", "--force", str(tree)], capture_output=True)


def start_workers(stack: Stack, env: dict, tag: str, n: int = WORKERS, app: str = WORKER_APP) -> list[FaustWorker]:
    workers = [FaustWorker(name=f"worker-{tag}-{i}", run_dir=stack.run_dir, env=env, app=app) for i in range(n)]
    for w in workers:
        w.start()
    return workers


def stop_workers(workers) -> None:
    for w in workers:
        w.stop(timeout=15)


def run_throughput(stack: Stack, mode: str, n: int, timeout: float, *, baseline: Baseline | None = None,
                   **extra_env) -> dict:
    """One run: preload n, start the workers (``baseline``'s when given), time first -> last output; CPU per
    applicant; RSS at the end."""
    tag = uuid.uuid4().hex[:8]
    env = stack.env(tag, TOPOLOGY_MODE=mode, **extra_env)
    settings = Settings.from_env(env)
    bootstrap = stack.broker.bootstrap
    asyncio.run(ensure_topics(settings))
    asyncio.run(produce(bootstrap, settings.topic_raw, payloads(1, n)))
    outputs = [settings.topic_passthrough] if mode == "passthrough" else [settings.topic_decisions,
                                                                         settings.topic_dlq]
    if baseline is None:
        workers = start_workers(stack, env, tag)
    else:
        workers = start_workers(stack, baseline.env(env), tag, app=baseline.app)
    try:
        cpu0 = stack.cpu(workers)
        first, last, keys = asyncio.run(watch(bootstrap, outputs, n, timeout, workers=workers))
        cpu1 = stack.cpu(workers)
        rss = [rss_mb(w.pid()) for w in workers]
        if not all(w.is_running() for w in workers):
            raise RuntimeError(f"a worker died:\n{workers[0].tail_log()}")
    finally:
        stop_workers(workers)
    rows = None
    if mode != "passthrough":
        writer = DecisionWriter(settings.hbase)
        rows = writer.count_rows()
        drop_tables(stack, env["HBASE_TABLE_PREFIX"])
    asyncio.run(delete_topics(bootstrap, topic_names(settings)))
    seconds = last - first
    return {"mode": mode if baseline is None else f"{mode}@{baseline.rev}", "n": n, "per_second": (n - 1) / seconds if seconds > 0 else float("nan"),
            "seconds": seconds, "hbase_rows": rows, "rss_mb": rss,
            "cpu_us_per_applicant": {k: round((cpu1[k] - cpu0[k]) / n * 1e6, 1) for k in cpu0},
            **({"env": extra_env} if extra_env else {})}


def run_latency(stack: Stack, rate: float, seconds: float) -> dict:
    """Offer ``rate`` applicants/s for ``seconds`` to a warmed-up pipeline; raw timestamp -> HBase write latency.

    Each rate gets fresh topics, consumer groups, tables and workers: Tansu's
    fetch cost grows with the number of record batches in a partition (1.5 ms
    of broker CPU per fetch at 2,000 batches, 12 ms at 20,000, 190 ms at
    40,000, where Kafka uses an index), so rates run one after another on the
    same topics measured the stand-in broker's history, not the pipeline.
    Latency is the decision event's ``saved_at`` (taken right after the HBase
    write) minus the raw record's timestamp (taken when the producer appended
    it, so its linger counts).
    """
    tag = uuid.uuid4().hex[:8]
    env = stack.env(tag)
    settings = Settings.from_env(env)
    bootstrap = stack.broker.bootstrap
    asyncio.run(ensure_topics(settings))
    outputs = [settings.topic_decisions, settings.topic_dlq]
    workers = start_workers(stack, env, tag)
    latencies: list[float] = []

    def on_message(m):
        if m.topic == settings.topic_decisions:
            event = orjson.loads(m.value)
            if event["id"] > 1000:     # not the warm-up
                latencies.append(event["saved_at"] - event["provenance"]["timestamp_ms"])

    try:
        asyncio.run(produce(bootstrap, settings.topic_raw, payloads(1, 1000, dirty_every=0)))
        asyncio.run(watch(bootstrap, outputs, 1000, 120, workers=workers))
        n = int(rate * seconds)
        asyncio.run(produce(bootstrap, settings.topic_raw, payloads(1001, n, dirty_every=0), rate=rate))
        asyncio.run(watch(bootstrap, outputs, 1000 + n, seconds + 120, on_message, workers=workers))
    finally:
        stop_workers(workers)
    asyncio.run(delete_topics(bootstrap, topic_names(settings)))
    drop_tables(stack, env["HBASE_TABLE_PREFIX"])
    latencies.sort()
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return {"rate": rate, "seconds": seconds, "n": len(latencies), "p50_ms": q[49], "p95_ms": q[94],
            "p99_ms": q[98], "max_ms": latencies[-1]}


LATENCY_P99_TARGET_MS = 250
RATES = (500, 1000, 2000, 5000)          # offered applicants/s for the latency sweep
QUICK_RATES = (1000, 5000)
GROWTH = (10_000, 100_000, 1_000_000)    # applicants per run for the growth series
QUICK_GROWTH = (10_000,)                 # + the quick pipeline run (30,000)
WARM_UP = 10_000                         # applicants in the uncounted first run on each stack
BASELINE_PAIRS = 4                       # with --baseline: pairs of runs, this tree's and the baseline's
BASELINE_N = 100_000                     # ... of at least this many applicants each
METRICS_TARGET_RATIO = 0.97             # issue 13: metrics on at most 3% slower than off
METRICS_PAIRS = 4                        # pairs of runs with the workers' metrics on and off (BASELINE_N each)


@dataclass(frozen=True)
class Plan:
    """Sizes and repeats of one benchmark run (the same on every stack)."""

    quick: bool
    repeats: int
    n_pipe: int
    n_literal: int
    rates: tuple[int, ...]
    latency_seconds: float
    growth: tuple[int, ...]
    baseline: Baseline | None = None

    @classmethod
    def make(cls, quick: bool, repeats: int | None, n: int | None, baseline: Baseline | None = None) -> Plan:
        return cls(baseline=baseline, quick=quick, repeats=repeats or (1 if quick else 3), n_pipe=n or (30_000 if quick else 200_000),
                   n_literal=2_000 if quick else 10_000, rates=QUICK_RATES if quick else RATES,
                   latency_seconds=4 if quick else 10, growth=tuple(sorted(set(QUICK_GROWTH if quick else GROWTH))))


def show_run(result: dict) -> dict:
    cpu = result["cpu_us_per_applicant"]
    print(f"  {result['mode']:<12} {result.get('env', '')!s:<26} n={result['n']:>9,} "
          f"{result['per_second']:>9,.0f}/s  rows={result['hbase_rows']}  rss={result['rss_mb']}  "
          f"cpu us/applicant={cpu}", flush=True)
    return result


def show_latency(r: dict) -> dict:
    print(f"  latency at {r['rate']:>6,.0f}/s: p50 {r['p50_ms']:.0f} ms, p95 {r['p95_ms']:.0f} ms, "
          f"p99 {r['p99_ms']:.0f} ms (n={r['n']:,})", flush=True)
    return r


def half_rate(pipeline: list[float]) -> int:
    """Half the pipeline's own maximum rate as measured in this run (median of the repeats), in hundreds."""
    return max(100, int(round(statistics.median(pipeline) / 2, -2)))


def pipeline_pairs(stack: Stack, baseline: Baseline | None, pairs: int, n: int) -> tuple[list[dict], list[dict]]:
    """``pairs`` pipeline runs of ``n`` of this tree and, with a baseline, as many of the baseline's,
    alternating which goes first so that neither side always follows the other."""
    runs: dict[str, list[dict]] = {"new": [], "baseline": []}
    for i in range(pairs):
        order = ("new", "baseline") if i % 2 == 0 else ("baseline", "new")
        for side in order if baseline is not None else ("new",):
            base = baseline if side == "baseline" else None
            runs[side].append(show_run(run_throughput(stack, "pipeline", n, 600, baseline=base)))
    return runs["new"], runs["baseline"]


def metrics_pairs(stack: Stack, plan: Plan) -> tuple[list[dict], list[dict]]:
    """The metrics overhead: METRICS_PAIRS pairs of at least BASELINE_N, the workers' metrics on against
    METRICS_ENABLED=false, alternating which goes first."""
    n = max(plan.n_pipe, BASELINE_N)
    runs: dict[str, list[dict]] = {"on": [], "off": []}
    for i in range(METRICS_PAIRS):
        for side in ("on", "off") if i % 2 == 0 else ("off", "on"):
            extra = {} if side == "on" else {"METRICS_ENABLED": "false"}
            runs[side].append(show_run(run_throughput(stack, "pipeline", n, 600, **extra)))
    return runs["on"], runs["off"]


def baseline_pairs(stack: Stack, plan: Plan) -> tuple[list[dict], list[dict]]:
    """The side-by-side runs against the baseline commit: BASELINE_PAIRS pairs of at least BASELINE_N.

    Apart from the pipeline repeats: a 30,000 run lasts ~3.5 s, where one late consumer-group join decides
    the figure, and one quick repeat cannot show a few percent either way."""
    return pipeline_pairs(stack, plan.baseline, BASELINE_PAIRS, max(plan.n_pipe, BASELINE_N))


def measure(stack: Stack, plan: Plan) -> dict:
    """Every run of one stack: pipeline, its references, growth, the latency sweep and half the max rate."""
    passthrough, faust_passthrough, literal = [], [], []
    # The JVMs compile their hot paths during the first seconds under load, which cost several hundred us of
    # Kafka and HBase CPU per applicant in a 30,000 run: one run first, not counted, on every stack alike.
    print("  warm-up (not counted):", flush=True)
    show_run(run_throughput(stack, "pipeline", WARM_UP, 600))
    pipeline_runs, _ = pipeline_pairs(stack, None, plan.repeats, plan.n_pipe)
    paired_runs, baseline_runs = baseline_pairs(stack, plan) if plan.baseline is not None else ([], [])
    metrics_on, metrics_off = metrics_pairs(stack, plan)
    for _ in range(plan.repeats):
        # A raw pass-through of 30,000 lasts ~0.15 s: the second worker's join alone can double it,
        # so it gets at least 100,000 records.
        passthrough.append(show_run(run_throughput(stack, "passthrough", max(plan.n_pipe, 100_000), 600)))
        if not plan.quick:   # the faust-agent reference is not one the issue asks for; quick mode skips it
            faust_passthrough.append(show_run(run_throughput(stack, "passthrough", plan.n_pipe, 600,
                                                             RAW_CONSUMER="faust")))
        literal.append(show_run(run_throughput(stack, "literal", plan.n_literal, 900)))
    sizes = {plan.n_pipe: pipeline_runs[0]}
    for n in plan.growth:
        if n not in sizes:
            sizes[n] = show_run(run_throughput(stack, "pipeline", n, 3600))
    latency = [show_latency(run_latency(stack, rate, plan.latency_seconds)) for rate in plan.rates]
    pipeline = [r["per_second"] for r in pipeline_runs]
    half = show_latency(run_latency(stack, half_rate(pipeline), plan.latency_seconds))
    return {"pipeline_runs": pipeline_runs, "paired_runs": paired_runs, "baseline_runs": baseline_runs,
            "metrics_on": metrics_on, "metrics_off": metrics_off, "passthrough": passthrough,
            "faust_passthrough": faust_passthrough, "literal": literal, "sizes": sizes, "latency": latency, "half": half}


def per_second(runs: list[dict]) -> list[float]:
    return [r["per_second"] for r in runs]


def worker_cpu(runs: list[dict]) -> list[float]:
    """Each run's worker CPU microseconds per applicant (the mean of its workers)."""
    out = []
    for run in runs:
        workers = [v for k, v in run["cpu_us_per_applicant"].items() if k.startswith("worker")]
        out.append(sum(workers) / len(workers))
    return out


def cpu_figures(stack: Stack, pipeline_runs: list[dict]) -> list[dict]:
    """CPU microseconds per applicant of each process during the pipeline runs (median of the repeats).

    A worker's figure includes its start-up (imports, joining the group: about 1 CPU-second), which weighs
    ~30 us per applicant on the quick 30,000 run and ~5 us on the full 200,000 one."""
    def per_run(run: dict, roles) -> float:
        return sum(v for k, v in run["cpu_us_per_applicant"].items() if k in roles)

    workers = [k for k in pipeline_runs[0]["cpu_us_per_applicant"] if k.startswith("worker")]
    groups = [(f"a worker (mean of {len(workers)})", workers, len(workers)),
              ("risk API (gunicorn, 2 workers)", ["risk_api"], 1)]
    groups += [(stack.servers.label(role), [role], 1) for role in stack.servers.roles]
    groups.append(("all processes", list(pipeline_runs[0]["cpu_us_per_applicant"]), 1))
    return [figure(tagged(f"CPU per applicant: {label}", stack.name),
                   [per_run(run, roles) / count for run in pipeline_runs], "us", higher_is_better=False)
            for label, roles, count in groups]


def stack_figures(stack: Stack, m: dict) -> list[dict]:
    name = stack.name
    pipeline = per_second(m["pipeline_runs"])
    figures = [
        figure(tagged("pipeline applicants/s (2 workers) vs literal port", name), pipeline, "applicants/s",
               reference="literal port (2 workers)", reference_values=per_second(m["literal"]), target=10_000),
        figure(tagged("pipeline applicants/s vs its raw pass-through (aiokafka)", name), pipeline, "applicants/s",
               reference="raw pass-through, aiokafka consumer", reference_values=per_second(m["passthrough"])),
    ]
    if m["baseline_runs"]:
        rev = m["baseline_runs"][0]["mode"].split("@", 1)[1]
        n, paired = m["baseline_runs"][0]["n"], m["paired_runs"]
        figures.append(figure(tagged(f"pipeline applicants/s ({n:,}) vs the same at commit {rev}", name),
                              per_second(paired), "applicants/s", reference=f"commit {rev}, same stack and input",
                              reference_values=per_second(m["baseline_runs"])))
        figures.append(figure(tagged(f"worker CPU us per applicant ({n:,}) vs commit {rev}", name),
                              worker_cpu(paired), "us", higher_is_better=False,
                              reference=f"commit {rev}", reference_values=worker_cpu(m["baseline_runs"])))
    n = m["metrics_on"][0]["n"]
    figures.append(figure(tagged(f"pipeline applicants/s ({n:,}) with metrics on vs off", name),
                          per_second(m["metrics_on"]), "applicants/s", reference="METRICS_ENABLED=false, same run",
                          reference_values=per_second(m["metrics_off"]), target_ratio=METRICS_TARGET_RATIO))
    figures.append(figure(tagged(f"worker CPU us per applicant ({n:,}) with metrics on vs off", name),
                          worker_cpu(m["metrics_on"]), "us", higher_is_better=False,
                          reference="METRICS_ENABLED=false", reference_values=worker_cpu(m["metrics_off"])))
    if m["faust_passthrough"]:
        figures.append(figure(tagged("pipeline applicants/s vs pass-through (faust agent)", name), pipeline,
                              "applicants/s", reference="raw pass-through, faust agent",
                              reference_values=per_second(m["faust_passthrough"])))
    for r in m["latency"]:
        for q in ("p50", "p95", "p99"):
            figures.append(figure(tagged(f"latency raw->HBase {q} at {r['rate']:,.0f}/s", name), [r[f"{q}_ms"]],
                                  "ms", higher_is_better=False,
                                  target=LATENCY_P99_TARGET_MS if q == "p99" else None))
    half = m["half"]
    for q in ("p50", "p99"):
        figures.append(figure(tagged(f"latency raw->HBase {q} at half the pipeline's max ({half['rate']:,.0f}/s)",
                                     name), [half[f"{q}_ms"]], "ms", higher_is_better=False,
                              target=LATENCY_P99_TARGET_MS if q == "p99" else None))
    offered = sorted([*m["latency"], half], key=lambda r: r["rate"])
    holding = [r["rate"] for r in offered if r["p99_ms"] <= LATENCY_P99_TARGET_MS]
    rates = ", ".join(f"{r['rate']:,.0f}" for r in offered)
    figures.append(figure(tagged(f"highest offered rate with p99 <= {LATENCY_P99_TARGET_MS} ms (of {rates})", name),
                          [max(holding) if holding else 0.0], "applicants/s"))
    # Growth: per-applicant wall time and worker memory at each size, each against the smallest run.
    ordered = sorted(m["sizes"].items())
    small_n, small = ordered[0]
    for n, run in ordered[1:]:
        figures.append(figure(tagged(f"growth: us per applicant at {n:,} applicants", name),
                              [1e6 / run["per_second"]], "us", higher_is_better=False, reference=f"at {small_n:,}",
                              reference_values=[1e6 / small["per_second"]]))
    for n, run in ordered[1:]:
        figures.append(figure(tagged(f"growth: worker RSS after {n:,} applicants (max)", name),
                              [max(run["rss_mb"])], "MB", higher_is_better=False, reference=f"after {small_n:,}",
                              reference_values=[max(small["rss_mb"])]))
    return figures + cpu_figures(stack, m["pipeline_runs"]) + stack.servers.figures()


def summary(stack: Stack, figures: list[dict], m: dict) -> str:
    """The closing note's line for one stack, from its figures."""
    by_name = {f["name"]: f for f in figures}

    def get(prefix: str) -> dict:
        return next(f for name, f in by_name.items() if name.startswith(prefix))

    vs_pass = get("pipeline applicants/s vs its raw pass-through")
    half = get("latency raw->HBase p99 at half")
    best = get("highest offered rate")
    cpu = "; ".join(f"{f['name'].split(': ', 1)[1].rsplit(' [', 1)[0]} {f['median']:,.0f}"
                    for f in figures if f["name"].startswith("CPU per applicant"))
    servers = "; ".join(
        f"{stack.servers.label(role)} {stack.servers.start_seconds[role]:.1f} s, "
        f"{get(f'memory: {stack.servers.label(role)} ').get('median'):,.0f} MB"
        for role in stack.servers.roles)
    return (f"{stack.name}: pipeline {vs_pass['median']:,.0f} applicants/s = {vs_pass['ratio']:.3f}x its raw "
            f"pass-through ({vs_pass['reference']['median']:,.0f}/s); p99 {half['median']:,.0f} ms at "
            f"{m['half']['rate']:,.0f}/s (half its max); highest offered rate with p99 <= {LATENCY_P99_TARGET_MS} "
            f"ms: {best['median']:,.0f}/s; CPU us per applicant: {cpu}; start-up and RSS after the run: {servers}.")


def run_part(stack: Stack, part: str, plan: Plan) -> None:
    """One part alone (--only), printed and not written."""
    if part == "pipeline":
        new, base = pipeline_pairs(stack, plan.baseline, plan.repeats, plan.n_pipe)
        if base:
            med = statistics.median
            print(f"  median {med(per_second(new)):,.0f}/s against {med(per_second(base)):,.0f}/s at "
                  f"{base[0]['mode']}; worker CPU {med(worker_cpu(new)):.1f} against {med(worker_cpu(base)):.1f} "
                  "us per applicant", flush=True)
    elif part == "metrics":
        print("  warm-up (not counted):", flush=True)    # as in the full run: the JVMs compile their hot paths
        show_run(run_throughput(stack, "pipeline", WARM_UP, 600))
        on, off = metrics_pairs(stack, plan)
        med = statistics.median
        print(f"  metrics on: median {med(per_second(on)):,.0f}/s against {med(per_second(off)):,.0f}/s off "
              f"(ratio {med(per_second(on)) / med(per_second(off)):.3f}); worker CPU {med(worker_cpu(on)):.1f} "
              f"against {med(worker_cpu(off)):.1f} us per applicant", flush=True)
    elif part == "growth":
        for n in plan.growth:
            show_run(run_throughput(stack, "pipeline", n, 3600))
    else:
        for rate in plan.rates:
            show_latency(run_latency(stack, rate, plan.latency_seconds))


@click.command(help=__doc__.splitlines()[0])
@click.option("--quick", is_flag=True, help="Small runs, one repeat (about 1.5 minutes a stack, plus JVM start-up).")
@click.option("--repeats", type=int, default=None, help="Pipeline runs (and their references) per stack.")
@click.option("-n", "n", type=int, default=None, help="Applicants per pipeline run.")
@click.option("--only", type=click.Choice(["pipeline", "latency", "growth", "metrics"]), default=None,
              help="Run only this part (no result file is written).")
@click.option("--baseline", envvar="BENCH_BASELINE", default=None,
              help="Also run this commit's workers (a git revision), alternating with this tree's, in "
                   f"{BASELINE_PAIRS} pairs of {BASELINE_N:,} applicants [env BENCH_BASELINE].")
@STACK_OPTION
def main(quick: bool, repeats: int | None, n: int | None, only: str | None, baseline: str | None,
         stack: str) -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # stop the stack on kill, too
    figures, runs, latency, notes = [], {}, {}, []
    with tempfile.TemporaryDirectory(prefix="bench-topology-") as tmp, \
            baseline_tree(baseline, Path(tmp)) as base:
        plan = Plan.make(quick, repeats, n, base)
        for name in stacks_for(stack):
            print(f"== stack {name}", flush=True)
            with Stack(name, Path(tmp)) as s:
                if only:
                    run_part(s, only, plan)
                    continue
                m = measure(s, plan)
                these = stack_figures(s, m)    # while the servers run: their RSS after the benchmark
                notes.append(summary(s, these, m))
            figures += these
            runs[name] = [*m["pipeline_runs"], *m["paired_runs"], *m["baseline_runs"], *m["metrics_on"],
                          *m["metrics_off"], *m["passthrough"], *m["faust_passthrough"], *m["literal"],
                          *(r for k, r in sorted(m["sizes"].items()) if k != plan.n_pipe)]
            latency[name] = [*m["latency"], m["half"]]
    if only:
        return
    for note in notes:
        print(note)
    write_result("topology", figures, quick=quick, extra={"runs": runs, "latency": latency, "notes": notes})


if __name__ == "__main__":
    main()
