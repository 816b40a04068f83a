"""Real prometheus-client registries holding the metric catalogue, for the dashboard's tests.

The exposition text they write is what the processes serve."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SCORE_BUCKETS = tuple(i / 10 for i in range(1, 11))


class WorkerMetrics:
    """A worker's catalogue metrics in their own registry."""

    def __init__(self):
        self.registry = r = CollectorRegistry()
        self.records_in = Counter("credit_stage_records_in_total", "in", ["stage"], registry=r)
        self.records_out = Counter("credit_stage_records_out_total", "out", ["stage", "outcome", "reason"],
                                   registry=r)
        self.batch = Histogram("credit_stage_batch_duration_seconds", "batch", ["stage"], registry=r)
        self.latency = Histogram("credit_end_to_end_latency_seconds", "e2e", buckets=LATENCY_BUCKETS, registry=r)
        self.retries = Counter("credit_retries_total", "retries", ["stage", "cause"], registry=r)
        self.lag_available = Gauge("credit_consumer_lag_available", "lag ok", registry=r)
        self.rows = Counter("credit_hbase_rows_written_total", "rows", ["table"], registry=r)
        self.saved_by_grade = Counter("credit_decisions_saved_total", "saved", ["decision", "decided_by", "grade"],
                                      registry=r)

    def text(self) -> str:
        return generate_latest(self.registry).decode()


class RiskApiMetrics:
    """The risk API's score histogram, decisions and training reference."""

    def __init__(self, reference: dict[str, float], model_version: str = "m-1"):
        self.registry = r = CollectorRegistry()
        self.model_version = model_version
        self.scores = Histogram("credit_risk_score_probability", "scores", ["model_version"], buckets=SCORE_BUCKETS,
                                registry=r)
        self.decisions = Counter("credit_risk_decisions_total", "decisions", ["outcome", "model_version"],
                                 registry=r)
        share = Gauge("credit_risk_model_reference_share", "reference", ["model_version", "bin"], registry=r)
        for bin_, value in reference.items():
            share.labels(model_version=model_version, bin=bin_).set(value)

    def text(self) -> str:
        return generate_latest(self.registry).decode()


class ProducerMetrics:
    def __init__(self):
        self.registry = r = CollectorRegistry()
        self.published = Counter("credit_producer_applicants_published_total", "published", registry=r)

    def text(self) -> str:
        return generate_latest(self.registry).decode()
