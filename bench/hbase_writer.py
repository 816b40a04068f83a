"""DecisionWriter speed: batched decision writes (main + index rows) vs the literal port's one put per applicant."""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time

from bench.common import figure, write_result

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer decisions and repeats")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from deploy.services import HBaseServer, free_port
    from hbase_helper import layout
    from hbase_helper.pool import make_pool
    from hbase_helper.settings import HBaseSettings
    from hbase_helper.writer import DecisionWriter, count_rows

    n = int(os.environ.get("BENCH_WRITER_DECISIONS", DEFAULT_QUICK_DECISIONS if args.quick else DEFAULT_DECISIONS))
    n_literal = min(n, DEFAULT_LITERAL)
    repeats = DEFAULT_QUICK_REPEATS if args.quick else DEFAULT_REPEATS
    now = time.time_ns() // 1_000_000
    with tempfile.TemporaryDirectory(prefix="bench-writer-") as run_dir:
        server = HBaseServer(run_dir=run_dir, port=free_port())
        server.start()
        try:
            batched, literal = [], []
            for rep in range(repeats):
                # batched: the save agent's path
                settings = HBaseSettings(host=server.host, port=server.port, table_prefix=f"b{rep}", pool_size=2)
                writer = DecisionWriter(settings, pool=make_pool(settings))
                decisions = [decision(i, now + i) for i in range(1, n + 1)]
                start = time.perf_counter()
                for i in range(0, n, BATCH):
                    writer.write(decisions[i:i + BATCH])
                batched.append(n / (time.perf_counter() - start))
                with writer.pool.connection() as conn:
                    assert count_rows(conn) == n and count_rows(conn, layout.INDEX_TABLE) == n
                # literal port: one put per applicant (the original SaveBolt), same cells
                settings = settings.with_(table_prefix=f"l{rep}")
                pool = make_pool(settings)
                rows = [layout.encode_main_row(d, now) for d in decisions[:n_literal]]
                start = time.perf_counter()
                with pool.connection() as conn:
                    table = conn.table(layout.MAIN_TABLE)
                    for key, cells in rows:
                        table.put(key, cells)
                literal.append(n_literal / (time.perf_counter() - start))
        finally:
            server.stop()
    figures = [figure(f"decisions written/s (batches of {BATCH})", batched, "decisions/s",
                      reference="one put per applicant", reference_values=literal, target=WRITE_TARGET)]
    write_result("hbase_writer", figures, quick=args.quick, extra={"decisions": n, "literal_decisions": n_literal})


if __name__ == "__main__":
    main()
