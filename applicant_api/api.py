"""The applicants resource: keyset-paged list, one applicant by id, and transactional POST."""

from __future__ import annotations

import logging
import re
from collections import Counter
from typing import Any

import orjson
from flask import Blueprint, current_app, request

from applicant_api import repository
from credit_core.fields import MAX_INT, RecordError, clean_record, parse_int
from applicant_api.body import body_too_large, request_body
from applicant_api.jsonio import error_response, json_response, raw_json_response
from applicant_api.settings import DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT

logger = logging.getLogger(__name__)

bp = Blueprint("applicants", __name__, url_prefix="/api/v1/applicants")

DEFAULT_SOURCE = "api"
SOURCE_PATTERN = re.compile(r"[A-Za-z0-9_.:\-]{1,64}", re.ASCII)   # always fullmatch
MAX_SEQ = 2**64 - 1        # seq is BIGINT UNSIGNED
MIN_ID, MAX_ID = 1, MAX_INT
# An integer in a URL: ASCII digits, and a zero fraction is allowed ("42.0" is the integer 42, as in JSON Schema).
_URL_INT = re.compile(r"([0-9]+)(?:\.0+)?", re.ASCII)


def _state():
    return current_app.extensions["applicant_api"]


def _query_int(name: str, default: int, lo: int, hi: int) -> tuple[int | None, dict | None]:
    raw = request.args.get(name)
    if raw is None:
        return default, None
    value, reason = _url_int(raw, lo, hi)
    if reason:
        return None, {"field": name, "reason": reason}
    return value, None


def _url_int(raw: str, lo: int, hi: int) -> tuple[int | None, str | None]:
    """(the integer, None) or (None, the reason): no spaces, signs, exponents or other scripts' digits."""
    m = _URL_INT.fullmatch(raw)
    if m is None:
        return None, f"must be a whole number in ASCII decimal digits 0-9, got {raw[:40]!r}"
    try:
        return parse_int(m.group(1), lo=lo, hi=hi), None
    except ValueError as exc:
        return None, str(exc)


@bp.get("")
def list_applicants():
    after, err_after = _query_int("after", 0, 0, MAX_SEQ)
    limit, err_limit = _query_int("limit", DEFAULT_PAGE_LIMIT, 1, MAX_PAGE_LIMIT)
    errors = [e for e in (err_after, err_limit) if e]
    if errors:
        return error_response(400, "invalid query parameters", errors)
    with _state().pool.connection() as conn:
        rows = repository.page(conn, after, limit)
    # Rows arrive as JSON text from MariaDB: assemble the envelope without decoding them again.
    next_after = rows[-1][0] if rows else None
    body = b"".join((
        b'{"applicants":[', ",".join(r[1] for r in rows).encode(), b'],"next_after":',
        orjson.dumps(next_after), b',"count":', str(len(rows)).encode(), b"}",
    ))
    return raw_json_response(body)


@bp.get("/<applicant_id>")
def get_applicant(applicant_id):
    applicant_id, reason = _url_int(applicant_id, MIN_ID, MAX_ID)
    if reason:
        return error_response(400, "invalid applicant id", [{"field": "id", "reason": reason}])
    with _state().pool.connection() as conn:
        text = repository.one(conn, applicant_id)
    if text is None:
        return error_response(404, f"applicant {applicant_id} not found")
    return raw_json_response(text.encode())


def _records_from_body() -> tuple[list[Any] | None, Any]:
    """The posted records, or (None, error response)."""
    if not request.is_json:
        return None, error_response(415, "the body must be JSON (Content-Type: application/json)")
    limit = _state().settings.max_body
    raw = request_body(request, limit)
    if raw is None:
        return None, body_too_large(limit)
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return None, error_response(400, f"the body is not valid JSON: {exc}")
    items = payload if isinstance(payload, list) else [payload]
    if not items:
        return None, error_response(400, "the list of applicants is empty")
    limit = _state().settings.max_post_records
    if len(items) > limit:
        # a documented maxItems, like any other schema rule: 400 (413 is for bytes)
        return None, error_response(400, f"at most {limit} applicants per request, got {len(items)}; nothing was stored",
                                    [{"field": "$", "reason": f"must hold at most {limit} applicants"}])
    return items, None


@bp.post("")
def create_applicants():
    items, failure = _records_from_body()
    if failure is not None:
        return failure
    cleaned: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    sources: list[str] = []
    for index, item in enumerate(items):
        try:
            record = clean_record(item)
        except RecordError as exc:
            errors.extend({"index": index, **e} for e in exc.as_list())
            continue
        cleaned.append(record)
        source = item.get("source", DEFAULT_SOURCE)
        if not isinstance(source, str) or not SOURCE_PATTERN.fullmatch(source):
            errors.append({"index": index, "field": "source",
                           "reason": "must be 1-64 characters of letters, digits and _ . : -"})
        sources.append(source)
    if errors:
        return error_response(400, f"{len({e['index'] for e in errors})} of {len(items)} applicants are invalid;"
                                   " nothing was stored", errors)
    repeated = sorted(i for i, n in Counter(r["id"] for r in cleaned).items() if n > 1)
    if repeated:
        return error_response(409, "the request repeats ids; nothing was stored", duplicates=repeated)
    try:
        with _state().pool.connection() as conn:
            stored = repository.insert(conn, cleaned, sources)
    except repository.DuplicateIds as exc:
        return error_response(409, "some ids exist already; nothing was stored", duplicates=exc.ids)
    except repository.RejectedValue as exc:
        return error_response(400, "the database refused a value; nothing was stored",
                              [{"field": exc.field, "reason": exc.reason}])
    logger.info("stored %d applicants", len(stored))
    return json_response({"created": len(stored),
                          "applicants": [{"id": i, "seq": s} for i, s in stored]}, 201)
