"""DecisionWriter speed on each stack's HBase: batched decision writes (main + index rows) vs one put per applicant."""

from __future__ import annotations

import logging
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import click

from bench.common import figure, write_result
from bench.stacks import STACK_OPTION, Servers, stacks_for, tagged

logger = logging.getLogger(__name__)

DEFAULT_DECISIONS = 20_000      # BENCH_WRITER_DECISIONS
DEFAULT_QUICK_DECISIONS = 4_000
DEFAULT_LITERAL = 2_000         # the per-applicant reference is slow; its rate needs fewer rows
DEFAULT_REPEATS = 5
DEFAULT_QUICK_REPEATS = 3
BATCH = 500                     # decisions per write() call, as the save agent's take() batches
WRITE_TARGET = 10_000           # decisions/s (issue 5: pipeline target)


def decision(app_id: int, raw_ts: int) -> dict:
    applicant = {
        "id": app_id, "member_id": app_id + 7, "loan_amnt": 10_000.0, "funded_amnt": 10_000.0,
        "funded_amnt_inv": 9_975.0, "term": 36, "int_rate": 12.39, "installment": 334.02, "grade": "B",
        "sub_grade": "B3", "emp_title": "Engineer", "emp_length": 10, "home_ownership": "RENT",
        "annual_inc": 24_000.0 + app_id, "verification_status": "Verified", "issue_d": "2014-12",
        "purpose": "debt_consolidation", "addr_state": "CA", "dti": 17.5, "delinq_2yrs": 0,
        "earliest_cr_line": "2001-01", "inq_last_6mths": 1, "open_acc": 9, "pub_rec": 0, "revol_bal": 5_000.0,
        "revol_util": 45.2, "total_acc": 20, "bc_open_to_buy": 0.0, "bc_util": 31.5,
        "total_il_high_credit_limit": 12_000.0, "loan_status": None,
    }
    return {"id": app_id, "applicant": applicant, "decision": "approve", "decided_by": "model",
            "probability_of_default": 0.0731, "risk_band": "B",
            "reasons": [{"code": "LOW_PD", "text": "probability of default below threshold"}],
            "model_version": "lr-1", "policy_version": "policy-v1", "threshold": 0.2,
            "provenance": {"topic": "applicants.raw", "partition": app_id % 4, "offset": app_id,
                           "timestamp_ms": raw_ts, "source": "bench", "seq": app_id},
            "ingested_at": raw_ts + 3, "decided_at": raw_ts + 40}


def write_rates(host: str, port: int, n: int, n_literal: int, tag: str) -> tuple[float, float]:
    """Decisions/s written by DecisionWriter in batches, and by one put per applicant, on fresh tables."""
    from hbase_helper import layout
    from hbase_helper.pool import make_pool
    from hbase_helper.settings import HBaseSettings
    from hbase_helper.writer import DecisionWriter, count_rows

    now = time.time_ns() // 1_000_000
    # batched: the save agent's path
    settings = HBaseSettings(host=host, port=port, table_prefix=f"b{tag}", pool_size=2)
    writer = DecisionWriter(settings, pool=make_pool(settings))
    decisions = [decision(i, now + i) for i in range(1, n + 1)]
    start = time.perf_counter()
    for i in range(0, n, BATCH):
        writer.write(decisions[i:i + BATCH])
    batched = n / (time.perf_counter() - start)
    with writer.pool.connection() as conn:
        assert count_rows(conn) == n and count_rows(conn, layout.INDEX_TABLE) == n
    # literal port: one put per applicant (the original SaveBolt), same cells
    settings = settings.with_(table_prefix=f"l{tag}")
    pool = make_pool(settings)    # creates the tables, outside the timed part
    rows = [layout.encode_main_row(d, now) for d in decisions[:n_literal]]
    with pool.connection() as conn:
        table = conn.table(layout.MAIN_TABLE)
        start = time.perf_counter()
        for key, cells in rows:
            table.put(key, cells)
        literal = n_literal / (time.perf_counter() - start)
    return batched, literal


@click.command(help=__doc__)
@click.option("--quick", is_flag=True, help="Fewer decisions and repeats.")
@STACK_OPTION
def main(quick: bool, stack: str) -> None:
    logging.basicConfig(level=logging.WARNING)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # stop the servers on kill, too
    n = int(os.environ.get("BENCH_WRITER_DECISIONS", DEFAULT_QUICK_DECISIONS if quick else DEFAULT_DECISIONS))
    n_literal = min(n, DEFAULT_LITERAL)
    repeats = DEFAULT_QUICK_REPEATS if quick else DEFAULT_REPEATS
    figures = []
    with tempfile.TemporaryDirectory(prefix="bench-writer-") as run_dir:
        for name in stacks_for(stack):
            print(f"== stack {name}", flush=True)
            with Servers(name, Path(run_dir), broker=False) as servers:
                # Uncounted first round, on both stacks alike: HBase's JVMs compile their write path under load
                # (its first round ran at a quarter of the third's speed).
                write_rates(servers.hbase.host, servers.hbase.port, n, n_literal, "warm")
                rates = [write_rates(servers.hbase.host, servers.hbase.port, n, n_literal, str(rep))
                         for rep in range(repeats)]
            figures.append(figure(tagged(f"decisions written/s (batches of {BATCH})", name),
                                  [b for b, _ in rates], "decisions/s", reference="one put per applicant",
                                  reference_values=[lit for _, lit in rates], target=WRITE_TARGET))
    write_result("hbase_writer", figures, quick=quick, extra={"decisions": n, "literal_decisions": n_literal})


if __name__ == "__main__":
    main()
