"""gunicorn settings for the risk API under any launcher (`gunicorn -c python:risk_api.gunicorn_conf ...`).

gunicorn answers some requests itself, before the app sees them (request line or headers too long, bad framing);
with this file those answers use the API's JSON error shape, as the OpenAPI document promises, whatever the worker
type. (`python -m risk_api serve` gets the same from the risk_api.server worker classes.)

Its hooks also run the workers' Prometheus metrics in multiprocess mode (see the end of the file).
"""

from __future__ import annotations

import logging

from risk_api import settings

logger = logging.getLogger(__name__)

SERVICE = "risk_api"          # the service label of its metrics (risk_api.app.SERVICE)

# gunicorn's defaults, the limits the app and the OpenAPI document state.
limit_request_line = settings.MAX_REQUEST_LINE
limit_request_fields = settings.MAX_HEADER_FIELDS
limit_request_field_size = settings.MAX_HEADER_FIELD_BYTES


def post_worker_init(worker) -> None:
    """gunicorn hook, in each worker: its own error responses become JSON."""
    from gunicorn import util

    from risk_api.server import write_json_error
    util.write_error = write_json_error


# Prometheus multiprocess mode (credit_core.metrics): the workers share PROMETHEUS_MULTIPROC_DIR, made (when the
# launcher gave none) and emptied before the first worker, a dead worker's live gauges dropped by the master.
# The imports wait inside the hooks: prometheus-client must not be imported before the variable is set.

def on_starting(server) -> None:
    """gunicorn hook, in the master before any worker: an empty metrics folder in PROMETHEUS_MULTIPROC_DIR."""
    from credit_core.metrics import gunicorn_on_starting

    gunicorn_on_starting(server)


def post_fork(server, worker) -> None:
    """gunicorn hook, in each new worker: counted among the live workers (credit_http_workers)."""
    from credit_core.http_metrics import worker_started

    worker_started(SERVICE)


def child_exit(server, worker) -> None:
    """gunicorn hook, in the master after a worker exited or was killed: its live gauges are dropped."""
    from credit_core.metrics import gunicorn_child_exit

    gunicorn_child_exit(server, worker)


def on_exit(server) -> None:
    """gunicorn hook, in the master at shutdown: a metrics folder it made itself is removed."""
    from credit_core.metrics import gunicorn_on_exit

    gunicorn_on_exit(server)


# `python -m risk_api serve` sets these on its own gunicorn application.
HOOKS = {"on_starting": on_starting, "post_fork": post_fork, "child_exit": child_exit, "on_exit": on_exit}
