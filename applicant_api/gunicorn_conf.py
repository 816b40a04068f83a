"""gunicorn settings for the applicant API (`gunicorn -c python:applicant_api.gunicorn_conf ...`).

gunicorn answers some requests itself, before the app sees them: a request
line over ``limit_request_line`` (414), too many or too long headers (431), an
unparsable request (400). Its own answers are HTML; here they are the API's
JSON error shape, as the OpenAPI document promises.
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
