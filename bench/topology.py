"""End-to-end topology throughput, latency and memory: `python -m bench.topology [--quick]`.

Measured on a private local stack (Tansu broker, embedded HBase server, risk
API under gunicorn with 2 workers), every run on fresh topics, consumer
groups and HBase tables:

- the project's pipeline, 2 worker processes: N applicants preloaded on
  applicants.raw, then the workers start; applicants/s = (N - 1) / (time of the
  last output record - time of the first), from the records' producer
  timestamps (worker clock, same host). Decision events are published after
  the HBase write, so "decided" means "in HBase" (the HBase row count is
  checked after each run);
- the literal port (TOPOLOGY_MODE=literal, 2 workers): a faust agent per
  stage handling one message at a time, one HTTP call and one HBase put per
  applicant, as the Storm bolts did;
- raw broker pass-through (TOPOLOGY_MODE=passthrough, 2 workers): consume
  applicants.raw and produce the same records with no work, with the
  aiokafka consumer the pipeline uses (at least 100,000 records) and, in full
  mode, with a faust agent;
- latency applicants.raw -> HBase write at steady offered rates (500, 1,000,
  2,000 and 5,000/s for 10 s each; quick: 1,000 and 5,000/s for 4 s), each on
  fresh topics and workers: decision event ``saved_at`` - raw record
  timestamp, p50/p95/p99, and the highest rate holding p99 < 250 ms;
- growth: the pipeline at 10k, 100k and 1M applicants (quick: 10k and the 30k
  run): microseconds per applicant and the workers' RSS, each against the
  smallest run, and CPU microseconds per applicant of every process (where
  the 2 cores go).

While the workers run, the benchmark only polls end offsets (it shares the
cores); it reads the output records once they stop arriving.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.common import figure, write_result
from deploy.services import Broker, HBaseServer, free_port, risk_api
from hbase_helper.settings import HBaseSettings
from hbase_helper.writer import DecisionWriter
from topology.process import WorkerProcess
from topology.records import partition_for
from topology.settings import Settings
from topology.testdata import envelope, raw_applicant
from topology.topics import ensure_topics, topic_names

PARTITIONS = 4
WORKERS = 2
TOKEN = "bench-" + uuid.uuid4().hex


def cpu_seconds(pid: int) -> float:
    """user + system CPU of a process and its reaped children... plus live children (gunicorn workers)."""
    total = 0.0
    pids = [pid]
    try:
        kids = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
        pids += [int(k) for k in kids]
    except OSError:
        pass
    for p in pids:
        try:
            fields = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError):
            pass
    return total


def rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Stack:
    """Broker, HBase server and risk API for the whole benchmark."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.broker = Broker(run_dir=run_dir, port=free_port())
        self.hbase = HBaseServer(run_dir=run_dir, port=free_port())
        self.risk = risk_api(run_dir=run_dir, port=free_port(), token=TOKEN, workers=2)

    def __enter__(self):
        for svc in (self.broker, self.hbase, self.risk):
            svc.start(timeout=60)
        return self

    def __exit__(self, *exc):
        for svc in (self.risk, self.hbase, self.broker):
            svc.stop()

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
        out = {"broker": cpu_seconds(self.broker.pid()), "hbase_server": cpu_seconds(self.hbase.pid()),
               "risk_api": cpu_seconds(self.risk.pid())}
        for i, w in enumerate(workers):
            out[f"worker{i}"] = cpu_seconds(w.pid)
        return out


def payloads(first_id: int, count: int, dirty_every: int = 100):
    """(partition, key, value) for ids first_id..; every dirty_every-th has letters in dti (a DLQ case).

    Every applicant is drawn afresh (not copied from a few templates): the
    filter memoises cleaned values per field, and repeated amounts, incomes
    and ratios would flatter it.
    """
    rng = random.Random(7)
    for app_id in range(first_id, first_id + count):
        rec = raw_applicant(app_id, rng)
        if dirty_every and app_id % dirty_every == 0:
            rec["dti"] = "12.x5"
        key = str(app_id).encode()
        yield partition_for(key, PARTITIONS), key, envelope(rec, app_id, source="bench")


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
                raise TimeoutError(f"only {len(keys)} of {expected} arrived in {timeout:.0f}s")
            for w in workers:
                if not w.alive():
                    raise RuntimeError(f"worker {w.pid} died:\n{w.log_tail()}")
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


def start_workers(stack: Stack, env: dict, tag: str, n: int = WORKERS) -> list[WorkerProcess]:
    return [WorkerProcess(env, log_file=stack.run_dir / f"worker-{tag}-{i}.log", cwd=stack.run_dir).start()
            for i in range(n)]


def stop_workers(workers) -> None:
    for w in workers:
        w.stop(timeout=15)


def run_throughput(stack: Stack, mode: str, n: int, timeout: float, **extra_env) -> dict:
    """One run: preload n, start the workers, time first -> last output; CPU per applicant; RSS at the end."""
    tag = uuid.uuid4().hex[:8]
    env = stack.env(tag, TOPOLOGY_MODE=mode, **extra_env)
    settings = Settings.from_env(env)
    bootstrap = stack.broker.bootstrap
    asyncio.run(ensure_topics(settings))
    asyncio.run(produce(bootstrap, settings.topic_raw, payloads(1, n)))
    outputs = [settings.topic_passthrough] if mode == "passthrough" else [settings.topic_decisions,
                                                                         settings.topic_dlq]
    workers = start_workers(stack, env, tag)
    try:
        cpu0 = stack.cpu(workers)
        first, last, keys = asyncio.run(watch(bootstrap, outputs, n, timeout, workers=workers))
        cpu1 = stack.cpu(workers)
        rss = [rss_mb(w.pid) for w in workers]
        if not all(w.alive() for w in workers):
            raise RuntimeError(f"a worker died:\n{workers[0].log_tail()}")
    finally:
        stop_workers(workers)
    rows = None
    if mode != "passthrough":
        writer = DecisionWriter(HBaseSettings.from_env(host=stack.hbase.host, port=stack.hbase.port,
                                                       table_prefix=env["HBASE_TABLE_PREFIX"]))
        rows = writer.count_rows()
        drop_tables(stack, env["HBASE_TABLE_PREFIX"])
    asyncio.run(delete_topics(bootstrap, topic_names(settings)))
    seconds = last - first
    return {"mode": mode, "n": n, "per_second": (n - 1) / seconds if seconds > 0 else float("nan"),
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small runs, one repeat (~1.5 minutes)")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("-n", type=int, default=None, help="applicants per pipeline run")
    parser.add_argument("--only", choices=("pipeline", "latency", "growth"), default=None,
                        help="run only this part (no result file is written)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # stop the stack on kill, too
    quick = args.quick
    repeats = args.repeats or (1 if quick else 3)
    n_pipe = args.n or (30_000 if quick else 200_000)
    n_literal = 2_000 if quick else 10_000
    rates = list(QUICK_RATES if quick else RATES)
    latency_seconds = 4 if quick else 10
    growth = sorted(set(QUICK_GROWTH if quick else GROWTH))

    runs: list[dict] = []

    def record(result):
        runs.append(result)
        cpu = result["cpu_us_per_applicant"]
        print(f"  {result['mode']:<12} {result.get('env', '')!s:<26} n={result['n']:>9,} "
              f"{result['per_second']:>9,.0f}/s  rows={result['hbase_rows']}  rss={result['rss_mb']}  "
              f"cpu us/applicant={cpu}", flush=True)
        return result["per_second"]

    def print_latency(rows):
        for r in rows:
            print(f"  latency at {r['rate']:>6,.0f}/s: p50 {r['p50_ms']:.0f} ms, p95 {r['p95_ms']:.0f} ms, "
                  f"p99 {r['p99_ms']:.0f} ms (n={r['n']:,})", flush=True)

    if args.only:
        with tempfile.TemporaryDirectory(prefix="bench-topology-") as tmp, Stack(Path(tmp)) as stack:
            if args.only == "pipeline":
                for _ in range(repeats):
                    record(run_throughput(stack, "pipeline", n_pipe, 600))
            elif args.only == "growth":
                for n in growth:
                    record(run_throughput(stack, "pipeline", n, 3600))
            else:
                print_latency([run_latency(stack, rate, latency_seconds) for rate in rates])
        return
    with tempfile.TemporaryDirectory(prefix="bench-topology-") as tmp, Stack(Path(tmp)) as stack:
        pipeline, literal, pass_kafka, pass_faust = [], [], [], []
        pipeline_runs = []
        for _ in range(repeats):
            pipeline.append(record(run_throughput(stack, "pipeline", n_pipe, 600)))
            pipeline_runs.append(runs[-1])
            # A raw pass-through of 30,000 lasts ~0.15 s: the second worker's join alone can double it,
            # so it gets at least 100,000 records.
            pass_kafka.append(record(run_throughput(stack, "passthrough", max(n_pipe, 100_000), 600)))
            if not quick:   # the faust-agent reference is not one the issue asks for; quick mode skips it
                pass_faust.append(record(run_throughput(stack, "passthrough", n_pipe, 600, RAW_CONSUMER="faust")))
            literal.append(record(run_throughput(stack, "literal", n_literal, 900)))
        sizes = {n_pipe: pipeline_runs[0]}
        for n in growth:
            if n not in sizes:
                record(run_throughput(stack, "pipeline", n, 3600))
                sizes[n] = runs[-1]
        latency = [run_latency(stack, rate, latency_seconds) for rate in rates]
        print_latency(latency)

    figures = [
        figure("pipeline applicants/s (2 workers) vs literal port", pipeline, "applicants/s",
               reference="literal port (2 workers)", reference_values=literal, target=10_000),
        figure("pipeline applicants/s vs raw pass-through (aiokafka)", pipeline, "applicants/s",
               reference="raw pass-through, aiokafka consumer", reference_values=pass_kafka),
    ]
    if pass_faust:
        figures.append(figure("pipeline applicants/s vs pass-through (faust agent)", pipeline, "applicants/s",
                              reference="raw pass-through, faust agent", reference_values=pass_faust))
    for r in latency:
        for q in ("p50", "p95", "p99"):
            figures.append(figure(f"latency raw->HBase {q} at {r['rate']:,.0f}/s", [r[f"{q}_ms"]], "ms",
                                  higher_is_better=False,
                                  target=LATENCY_P99_TARGET_MS if q == "p99" else None))
    holding = [r["rate"] for r in latency if r["p99_ms"] < LATENCY_P99_TARGET_MS]
    offered = ", ".join(f"{r:,}" for r in rates)
    figures.append(figure(f"highest offered rate with p99 < {LATENCY_P99_TARGET_MS} ms (of {offered})",
                          [max(holding) if holding else 0.0], "applicants/s"))
    # Growth: per-applicant wall time and worker memory at each size, each against the smallest run.
    ordered = sorted(sizes.items())
    small_n, small = ordered[0]
    for n, run in ordered[1:]:
        figures.append(figure(f"growth: us per applicant at {n:,} applicants", [1e6 / run["per_second"]], "us",
                              higher_is_better=False, reference=f"at {small_n:,}",
                              reference_values=[1e6 / small["per_second"]]))
    for n, run in ordered[1:]:
        figures.append(figure(f"growth: worker RSS after {n:,} applicants (max)", [max(run["rss_mb"])], "MB",
                              higher_is_better=False, reference=f"after {small_n:,}",
                              reference_values=[max(small["rss_mb"])]))
    write_result("topology", figures, quick=quick, extra={"runs": runs, "latency": latency})


if __name__ == "__main__":
    main()
