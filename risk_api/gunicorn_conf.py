"""gunicorn settings for the risk API under any launcher (`gunicorn -c python:risk_api.gunicorn_conf ...`).

gunicorn answers some requests itself, before the app sees them (request line or headers too long, bad framing);
with this file those answers use the API's JSON error shape, as the OpenAPI document promises, whatever the worker
type. (`python -m risk_api serve` gets the same from the risk_api.server worker classes.)
"""

from __future__ import annotations

import logging

from risk_api import settings

logger = logging.getLogger(__name__)

# gunicorn's defaults, the limits the app and the OpenAPI document state.
limit_request_line = settings.MAX_REQUEST_LINE
limit_request_fields = settings.MAX_HEADER_FIELDS
limit_request_field_size = settings.MAX_HEADER_FIELD_BYTES


def post_worker_init(worker) -> None:
    """gunicorn hook, in each worker: its own error responses become JSON."""
    from gunicorn import util

    from risk_api.server import write_json_error
    util.write_error = write_json_error
