"""Flask request metrics (requests and duration by route template, method and status) and the open GET /metrics.

Labels never carry what a client chose freely: ``route`` is the URL rule's template (``/api/v1/applicants/
<applicant_id>``), ``<unmatched>`` when no rule matched (404, 405, redirects), and ``method`` one of the standard
methods or ``other``; ``status`` is the answer's code. /metrics itself is counted like any route.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Iterable

from flask import Flask, Response, request

from credit_core import metrics

logger = logging.getLogger(__name__)

SERVICES = frozenset({"applicant_api", "risk_api"})
UNMATCHED = "<unmatched>"
OTHER_METHOD = "other"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
METRICS_PATH = "/metrics"
LABELS = ("service", "route", "method", "status")
REQUESTS = "credit_http_requests_total"
DURATION = "credit_http_request_duration_seconds"
WORKERS = "credit_http_workers"
_ROUTE_KEY = "credit_core.http_metrics.route"    # where the request's route template waits for the middleware


def request_metrics(pm: metrics.ProcessMetrics | None = None) -> tuple[Any, Any]:
    """(requests counter, duration histogram) of this process."""
    pm = pm or metrics.process_metrics()
    return (pm.counter(REQUESTS, "HTTP requests answered, by route template, method and status", LABELS),
            pm.histogram(DURATION, "Time to answer an HTTP request (to its last header), seconds", LABELS))


def workers_gauge(pm: metrics.ProcessMetrics | None = None) -> Any:
    """credit_http_workers{service}: the API's live gunicorn workers (a dead worker's share is dropped)."""
    pm = pm or metrics.process_metrics()
    return pm.gauge(WORKERS, "Worker processes serving the API (gunicorn workers alive)", ("service",),
                    multiprocess_mode="livesum")


def method_label(method: str) -> str:
    return method if method in METHODS else OTHER_METHOD


class _Instrumented:
    """WSGI middleware around the Flask app: times each request and counts it once its status is known."""

    def __init__(self, wsgi_app: Callable, service: str):
        self.wsgi_app = wsgi_app
        self.service = service

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        started = time.perf_counter()
        status: list[str] = []

        def start(code: str, headers: list, exc_info: Any = None):
            status[:] = [code]
            return start_response(code, headers, exc_info)

        try:
            return self.wsgi_app(environ, start)
        finally:
            self._record(environ, status[0][:3] if status else "500", time.perf_counter() - started)

    def _record(self, environ: dict, status: str, seconds: float) -> None:
        try:
            labels = (self.service, environ.get(_ROUTE_KEY, UNMATCHED),
                      method_label(environ.get("REQUEST_METHOD", "")), status)
            counter, histogram = request_metrics()
            counter.labels(*labels).inc()
            histogram.labels(*labels).observe(seconds)
        except Exception:                 # metrics never fail a request
            logger.exception("could not record the request's metrics")


def install(app: Flask, service: str, *, collectors: Callable[[], Iterable[Any]] = tuple) -> None:
    """Count and time every request of ``app`` as ``service``, and serve GET /metrics (no auth: counts only).

    ``collectors()`` gives extra collectors read at scrape time (e.g. the risk API's model reference).
    """
    if service not in SERVICES:
        raise ValueError(f"service must be one of {sorted(SERVICES)}, got {service!r}")
    app.wsgi_app = _Instrumented(app.wsgi_app, service)

    @app.teardown_request
    def _remember_route(exc: BaseException | None = None) -> None:
        rule = request.url_rule
        request.environ[_ROUTE_KEY] = rule.rule if rule is not None else UNMATCHED

    def metrics_view() -> Response:
        return Response(metrics.exposition(collectors()), status=200, content_type=metrics.CONTENT_TYPE)

    app.add_url_rule(METRICS_PATH, endpoint="metrics", view_func=metrics_view, methods=["GET"])


def worker_started(service: str) -> None:
    """gunicorn post_fork, in the new worker: count it among the live workers (and remember the master)."""
    metrics.gunicorn_post_fork()
    workers_gauge().labels(service).set(1)
