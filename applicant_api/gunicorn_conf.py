"""gunicorn settings for the applicant API (`gunicorn -c python:applicant_api.gunicorn_conf ...`).

gunicorn answers some requests itself, before the app sees them: a request
line over ``limit_request_line`` (414), too many or too long headers (431), an
unparsable request (400). Its own answers are HTML; here they are the API's
JSON error shape, as the OpenAPI document promises.

Its hooks also run the workers' Prometheus metrics in multiprocess mode (see the end of the file).
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

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
# The imports wait inside the hooks: prometheus-client must not be imported before the variable is set.

def on_starting(server) -> None:
    """gunicorn hook, in the master before any worker: an empty metrics folder in PROMETHEUS_MULTIPROC_DIR."""
    from credit_core.metrics import gunicorn_on_starting

    gunicorn_on_starting(server)


def post_fork(server, worker) -> None:
    """gunicorn hook, in each new worker: counted among the live workers (credit_http_workers)."""
    from applicant_api.app import SERVICE
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
