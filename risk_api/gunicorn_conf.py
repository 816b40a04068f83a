"""gunicorn settings for the risk API under any launcher (`gunicorn -c python:risk_api.gunicorn_conf ...`).

gunicorn answers some requests itself, before the app sees them (request line or headers too long, bad framing);
with this file those answers use the API's JSON error shape, as the OpenAPI document promises, whatever the worker
type. (`python -m risk_api serve` gets the same from the risk_api.server worker classes.)

Its hooks also run the workers' Prometheus metrics in multiprocess mode (see the end of the file).
"""

from __future__ import annotations

import logging

from credit_core.metrics import gunicorn_hooks
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
# credit_core.metrics imports prometheus-client only inside the hooks, after the variable is set.
# `python -m risk_api serve` sets HOOKS on its own gunicorn application.
HOOKS = gunicorn_hooks(SERVICE)
on_starting = HOOKS["on_starting"]
post_fork = HOOKS["post_fork"]
child_exit = HOOKS["child_exit"]
on_exit = HOOKS["on_exit"]
