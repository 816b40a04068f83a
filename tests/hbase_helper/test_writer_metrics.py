"""hbase_helper.metrics: the decision writer counts the rows it writes per table, times each write, and counts the
retries its caller makes (real HBase server, both stacks)."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY, CollectorRegistry

from deploy.services import free_port
from hbase_helper import layout
from hbase_helper.metrics import HBaseWriterMetrics, writer_metrics
from hbase_helper.pool import make_pool
from hbase_helper.writer import DecisionWriter


def sample(registry, name, **labels) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def test_rows_per_table_and_one_duration_per_write(store_settings, store_make_decision):
    registry = CollectorRegistry()
    writer = DecisionWriter(store_settings, pool=make_pool(store_settings), metrics=HBaseWriterMetrics(registry))
    writer.write([store_make_decision(i) for i in range(1, 31)])
    # One application twice in one call: one main row (two history cells), two time-index rows.
    writer.write([store_make_decision(40, decided_at=1), store_make_decision(40, decided_at=2, raw_ts=5),
                  store_make_decision(41)])
    assert writer.count_rows() == 32 and writer.count_rows(layout.INDEX_TABLE) == 33
    assert sample(registry, "credit_hbase_rows_written_total", table=layout.MAIN_TABLE) == 32
    assert sample(registry, "credit_hbase_rows_written_total", table=layout.INDEX_TABLE) == 33
    assert sample(registry, "credit_hbase_write_duration_seconds_count") == 2
    assert sample(registry, "credit_hbase_write_duration_seconds_sum") > 0
    assert sample(registry, "credit_hbase_write_retries_total") == 0
    writer.count_retry()
    assert sample(registry, "credit_hbase_write_retries_total") == 1


def test_a_failed_write_counts_nothing_written(store_settings, store_make_decision):
    registry = CollectorRegistry()
    down = DecisionWriter(store_settings.with_(port=free_port(), timeout_ms=2000),
                          metrics=HBaseWriterMetrics(registry))
    with pytest.raises(Exception):
        down.write([store_make_decision(1)])
    assert sample(registry, "credit_hbase_rows_written_total", table=layout.MAIN_TABLE) == 0
    assert sample(registry, "credit_hbase_write_duration_seconds_count") == 0


def test_the_default_is_the_process_metrics_and_false_is_none(store_settings):
    assert DecisionWriter(store_settings).metrics is writer_metrics()
    assert REGISTRY.get_sample_value("credit_hbase_write_retries_total") is not None
    quiet = DecisionWriter(store_settings, metrics=False)
    assert quiet.metrics is None
    quiet.count_retry()        # a no-op
