"""The worker's Prometheus metrics: records in and out per stage, batch durations, retries, end-to-end latency.

Recorded where the work happens, once per batch: the stage functions count
their outcomes in a ``Tally`` (a Counter of (outcome, reason)), the runner
hands it here with the batch's dead letters (rare: their reason is read back)
and the batch's duration.  With METRICS_ENABLED off every stage gets a
``NullStageMeter`` and nothing is recorded (no Tally is even built).
The scrape-time gauges (lag, stage state) are ``topology.worker.monitor``'s.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections import Counter as Tally
from typing import Any, Callable, Iterable, Sequence

import numpy as np
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from credit_core.jsoncodec import loads
from topology.stages.batching import DEAD_LETTERED

logger = logging.getLogger(__name__)

# The outcomes of credit_stage_records_out_total are topology.stages.batching's (the catalogue's, plus
# "eligible": decision's way on to submit). The causes of credit_retries_total:
RISK_API, HBASE, BROKER = "risk_api", "hbase", "broker"

BATCH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
MAX_REASON_LABEL = 100   # a dead letter's reason is one of the code's constants; cut anyway


def reason_label(reason: Any) -> str:
    text = reason if isinstance(reason, str) else "unknown"
    return text[:MAX_REASON_LABEL]


GRADES = frozenset("ABCDEFG")


def grade_label(decision: dict) -> str:
    """The applicant's grade as a label value: A-G, else "other" (a label value never comes from input as is)."""
    applicant = decision.get("applicant")
    grade = applicant.get("grade") if isinstance(applicant, dict) else None
    return grade if grade in GRADES else "other"


def dead_letter_reasons(dead: Iterable[tuple[int, bytes | None, bytes]]) -> Tally:
    """How many of the (partition, key, value) DLQ messages have each reason (read back from their JSON)."""
    reasons: Tally = Tally()
    for _, _, value in dead:
        try:
            reason = loads(value).get("reason")
        except Exception:
            reason = None
        reasons[reason_label(reason)] += 1
    return reasons


class BatchHistogram(Collector):
    """A histogram observed a batch of values at a time (numpy), for what is measured per applicant."""

    def __init__(self, name: str, documentation: str, buckets: Sequence[float],
                 registry: CollectorRegistry | None = REGISTRY):
        self.name = name
        self.documentation = documentation
        self._bounds = np.asarray(buckets, dtype=np.float64)
        self._counts = np.zeros(len(buckets) + 1, dtype=np.int64)
        self._sum = 0.0
        self._lock = threading.Lock()
        if registry is not None:
            registry.register(self)

    def observe_many(self, values: np.ndarray) -> None:
        if not len(values):
            return
        counts = np.bincount(np.searchsorted(self._bounds, values, side="left"), minlength=len(self._counts))
        with self._lock:
            self._counts += counts
            self._sum += float(values.sum())

    def collect(self):
        with self._lock:
            cumulative = np.cumsum(self._counts).tolist()
            total_sum = self._sum
        buckets = [(floatToGoString(b), c) for b, c in zip(self._bounds.tolist(), cumulative)]
        buckets.append(("+Inf", cumulative[-1]))
        yield HistogramMetricFamily(self.name, self.documentation, buckets=buckets, sum_value=total_sum)

    def describe(self):
        yield HistogramMetricFamily(self.name, self.documentation)


class WorkerMetrics:
    """The worker's metric families (one set per process: ``worker_metrics()``; tests pass their own registry)."""

    def __init__(self, registry: CollectorRegistry = REGISTRY):
        self.records_in = Counter("credit_stage_records_in", "Applicants that entered the stage (counted when "
                                  "their batch was delivered)", ["stage"], registry=registry)
        self.records_out = Counter("credit_stage_records_out", "Applicants that left the stage, by outcome and "
                                   "reason (the dead letter's reason or the policy rule)",
                                   ["stage", "outcome", "reason"], registry=registry)
        self.batch_duration = Histogram("credit_stage_batch_duration_seconds", "Time to handle and deliver one "
                                        "batch", ["stage"], buckets=BATCH_BUCKETS, registry=registry)
        self.retries = Counter("credit_retries", "Failures retried, by stage and cause (risk_api, hbase, broker)",
                               ["stage", "cause"], registry=registry)
        self.decisions_by_grade = Counter("credit_decisions_saved", "Decisions written to HBase, by decision "
                                          "(approve, decline), who decided (policy, model) and the applicant's "
                                          "grade (A-G)", ["decision", "decided_by", "grade"], registry=registry)
        self.latency = BatchHistogram("credit_end_to_end_latency_seconds", "Raw record timestamp to its HBase "
                                      "write done, per applicant saved", LATENCY_BUCKETS, registry=registry)

    def stage(self, name: str) -> "StageMeter":
        return StageMeter(self, name)


@functools.cache
def worker_metrics() -> WorkerMetrics:
    """The process's worker metrics, on prometheus-client's default registry (created on first use)."""
    return WorkerMetrics()


class StageMeter:
    """Records one stage's batches in WorkerMetrics."""

    enabled = True

    def __init__(self, metrics: WorkerMetrics, stage: str):
        self.stage = stage
        self._metrics = metrics
        self._in = metrics.records_in.labels(stage)
        self._duration = metrics.batch_duration.labels(stage)
        self._out: dict[tuple[str, str], Any] = {}

    def tally(self) -> Tally | None:
        """A fresh Tally for a stage function to count its outcomes in."""
        return Tally()

    def _out_child(self, outcome: str, reason: str):
        child = self._out.get((outcome, reason))
        if child is None:
            child = self._out[(outcome, reason)] = self._metrics.records_out.labels(self.stage, outcome, reason)
        return child

    def delivered(self, tally: Tally | None, dead: Sequence[tuple[int, bytes | None, bytes]] = ()) -> None:
        """A batch was delivered: its outcomes (``tally``) and its dead letters; records in is their sum."""
        n = 0
        if tally:
            for (outcome, reason), count in tally.items():
                if count:
                    self._out_child(outcome, reason).inc(count)
                    n += count
        if dead:
            for reason, count in dead_letter_reasons(dead).items():
                self._out_child(DEAD_LETTERED, reason).inc(count)
                n += count
        if n:
            self._in.inc(n)

    def batch(self, seconds: float) -> None:
        self._duration.observe(seconds)

    def retry_hook(self, cause: str) -> Callable[[BaseException], None] | None:
        """An ``on_retry`` callback that counts credit_retries_total{stage, cause}."""
        child = self._metrics.retries.labels(self.stage, cause)
        return lambda exc: child.inc()

    def saved(self, saved_at: int, decisions: Sequence[dict]) -> None:
        """Decisions written to HBase at ``saved_at`` (epoch ms): their counts by grade, and the latency from each
        raw record's timestamp."""
        by_grade = Tally((d.get("decision"), d.get("decided_by"), grade_label(d)) for d in decisions)
        for labels, count in by_grade.items():
            self._metrics.decisions_by_grade.labels(*labels).inc(count)
        stamps = [d["provenance"].get("timestamp_ms") for d in decisions]
        try:
            ms = np.array(stamps, dtype=np.int64)
        except (TypeError, ValueError, OverflowError):
            ms = np.array([t for t in stamps if isinstance(t, int) and 0 < t < 2**62], dtype=np.int64)
        ms = ms[ms > 0]
        self._metrics.latency.observe_many(np.maximum(saved_at - ms, 0) / 1000.0)


class NullStageMeter:
    """METRICS_ENABLED off: every recording is a no-op and stage functions are given no Tally."""

    enabled = False

    def __init__(self, stage: str):
        self.stage = stage

    def tally(self) -> None:
        return None

    def delivered(self, tally, dead=()) -> None:
        pass

    def batch(self, seconds: float) -> None:
        pass

    def retry_hook(self, cause: str) -> None:
        return None

    def saved(self, saved_at: int, decisions) -> None:
        pass


def stage_meter(stage: str, enabled: bool) -> StageMeter | NullStageMeter:
    """The meter of ``stage``: recording into the process's metrics, or a no-op one."""
    return worker_metrics().stage(stage) if enabled else NullStageMeter(stage)
