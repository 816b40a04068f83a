"""gunicorn settings for the applicant API (`gunicorn -c python:applicant_api.gunicorn_conf ...`).

gunicorn answers some requests itself, before the app sees them: a request
line over ``limit_request_line`` (414), too many or too long headers (431), an
unparsable request (400). Its own answers are HTML; here they are the API's
JSON error shape, as the OpenAPI document promises.

Its hooks also run the workers' Prometheus metrics in multiprocess mode (see the end of the file).
"""

from __future__ import annotations

import logging

from credit_core.metrics import gunicorn_hooks

logger = logging.getLogger(__name__)

SERVICE = "applicant_api"     # the service label of its metrics (applicant_api.app.SERVICE)

# gunicorn's defaults, named so the OpenAPI document can state them.
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """Drop-in for gunicorn.util.write_error: the same response, with a JSON body."""
    from gunicorn import util

    from applicant_api.httperrors import raw_response

    # for 414/431 gunicorn's message repeats the offending line or header: our explanation says enough
    detail = "" if status_int in (414, 431) else mesg
    util.write_nonblock(sock, raw_response(status_int, reason, detail))


def post_worker_init(worker) -> None:
    """gunicorn hook, in each worker: its error responses become JSON."""
    from gunicorn import util

    util.write_error = write_json_error


# Prometheus multiprocess mode (credit_core.metrics): the workers share PROMETHEUS_MULTIPROC_DIR, made (when the
# launcher gave none) and emptied before the first worker, a dead worker's live gauges dropped by the master.
# credit_core.metrics imports prometheus-client only inside the hooks, after the variable is set.
_METRICS_HOOKS = gunicorn_hooks(SERVICE)
on_starting = _METRICS_HOOKS["on_starting"]
post_fork = _METRICS_HOOKS["post_fork"]
child_exit = _METRICS_HOOKS["child_exit"]
on_exit = _METRICS_HOOKS["on_exit"]
