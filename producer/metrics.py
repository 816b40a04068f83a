"""The producer's metrics, and the HTTP server that exports them (PRODUCER_METRICS_HOST:PRODUCER_METRICS_PORT)."""

from __future__ import annotations

import logging
import threading
from typing import Any

from credit_core.metrics import process_metrics
from producer.api_client import ERROR_KINDS
from producer.settings import ProducerSettings

logger = logging.getLogger(__name__)

PUBLISHED = "credit_producer_applicants_published_total"
PAGES = "credit_producer_pages_fetched_total"
API_ERRORS = "credit_producer_api_errors_total"
CHECKPOINT = "credit_producer_checkpoint_position"


class ProducerMetrics:
    """The producer's counters and its checkpoint gauge, in this process's registry."""

    def __init__(self) -> None:
        pm = process_metrics()
        self.published = pm.counter(PUBLISHED, "Applicants published to the raw topic and acknowledged by the "
                                               "broker (a republished one counts again)")
        self.pages = pm.counter(PAGES, "Pages read from the applicant API (an empty poll included)")
        self.api_errors = pm.counter(API_ERRORS, "Failed applicant API page requests, by kind: connection, "
                                                 "server_error, throttled, bad_page, rejected", ("kind",))
        self.checkpoint = pm.gauge(CHECKPOINT, "The producer's durable cursor: the seq of the last applicant "
                                               "the broker acknowledged (0 before the first)")
        for kind in ERROR_KINDS:           # every kind exported from the start: a rate over 0 is a rate
            self.api_errors.labels(kind)

    def api_error(self, kind: str) -> None:
        self.api_errors.labels(kind if kind in ERROR_KINDS else "connection").inc()


def start_server(settings: ProducerSettings) -> tuple[Any, threading.Thread] | None:
    """Serve GET /metrics on PRODUCER_METRICS_HOST:PRODUCER_METRICS_PORT in a daemon thread; None when the port is 0
    (off) or taken (logged: publishing matters more than its metrics, and Prometheus shows the target down)."""
    if settings.metrics_port == 0:
        logger.info("PRODUCER_METRICS_PORT=0: no metrics server")
        return None
    from prometheus_client import start_http_server

    try:
        server = start_http_server(settings.metrics_port, addr=settings.metrics_host,
                                   registry=process_metrics().registry)
    except OSError as exc:
        logger.error("metrics server not started on %s:%d (%s): set PRODUCER_METRICS_PORT to a free port, or 0",
                     settings.metrics_host, settings.metrics_port, exc)
        return None
    logger.info("metrics at http://%s:%d/metrics", settings.metrics_host, settings.metrics_port)
    return server
