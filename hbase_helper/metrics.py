"""The HBase writer's Prometheus metrics: rows written per table, write duration, write retries."""

from __future__ import annotations

import functools
import logging

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

logger = logging.getLogger(__name__)

# One write() call sends up to thousands of rows: from a few ms on the emulator to seconds on a loaded HBase.
WRITE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class HBaseWriterMetrics:
    """credit_hbase_rows_written_total{table}, credit_hbase_write_duration_seconds, credit_hbase_write_retries_total."""

    def __init__(self, registry: CollectorRegistry = REGISTRY):
        self.rows_written = Counter("credit_hbase_rows_written", "Rows written to HBase by the decision writer "
                                    "(replays included)", ["table"], registry=registry)
        self.write_duration = Histogram("credit_hbase_write_duration_seconds", "Duration of one decision-writer "
                                        "write (every row of a batch)", buckets=WRITE_BUCKETS, registry=registry)
        self.write_retries = Counter("credit_hbase_write_retries", "HBase writes that failed and were retried",
                                     registry=registry)

    def written(self, rows_by_table: dict[str, int], seconds: float) -> None:
        """One successful write: its rows per table and how long it took."""
        for table, rows in rows_by_table.items():
            if rows:
                self.rows_written.labels(table).inc(rows)
        self.write_duration.observe(seconds)

    def retried(self) -> None:
        """A failed write its caller is about to retry."""
        self.write_retries.inc()


@functools.cache
def writer_metrics() -> HBaseWriterMetrics:
    """The process's HBase writer metrics, on prometheus-client's default registry (created on first use)."""
    return HBaseWriterMetrics()
