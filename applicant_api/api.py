"""The applicants resource: keyset-paged list, one applicant by id, and transactional POST."""

from __future__ import annotations

import logging
import re
from collections import Counter
from typing import Any

import orjson
from flask import Blueprint, current_app, request

from applicant_api import repository
from applicant_api.fields import FIELDS, RecordError, clean_record
from applicant_api.jsonio import error_response, json_response, raw_json_response
from applicant_api.settings import DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT

logger = logging.getLogger(__name__)

bp = Blueprint("applicants", __name__, url_prefix="/api/v1/applicants")

DEFAULT_SOURCE = "api"
SOURCE_PATTERN = re.compile(r"^[A-Za-z0-9_.:\-]{1,64}$")
MAX_SEQ = 2**64 - 1
_DIGITS = re.compile(r"[0-9]{1,20}")
MAX_BIGINT = 2**63 - 1     # integer fields are BIGINT columns
INT_FIELDS = tuple(f.name for f in FIELDS if f.kind == "int")


def _state():
    return current_app.extensions["applicant_api"]


def _query_int(name: str, default: int, lo: int, hi: int) -> tuple[int | None, dict | None]:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default, None
    if not _DIGITS.fullmatch(raw):
        return None, {"field": name, "reason": f"must be a whole number, got {raw!r}"}
    value = int(raw)
    if not lo <= value <= hi:
        return None, {"field": name, "reason": f"must be between {lo} and {hi}, got {value}"}
    return value, None


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


@bp.get("/<int:applicant_id>")
def get_applicant(applicant_id: int):
    with _state().pool.connection() as conn:
        text = repository.one(conn, applicant_id)
    if text is None:
        return error_response(404, f"applicant {applicant_id} not found")
    return raw_json_response(text.encode())


def _records_from_body() -> tuple[list[Any] | None, Any]:
    """The posted records, or (None, error response)."""
    if not request.is_json:
        return None, error_response(415, "the body must be JSON (Content-Type: application/json)")
    raw = request.get_data(cache=False)  # bounded by MAX_CONTENT_LENGTH: larger bodies raise 413
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return None, error_response(400, f"the body is not valid JSON: {exc}")
    items = payload if isinstance(payload, list) else [payload]
    if not items:
        return None, error_response(400, "the list of applicants is empty")
    limit = _state().settings.max_post_records
    if len(items) > limit:
        return None, error_response(413, f"at most {limit} applicants per request, got {len(items)}")
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
        errors.extend({"index": index, "field": name, "reason": f"must be <= {MAX_BIGINT}, got {record[name]}"}
                      for name in INT_FIELDS if record[name] is not None and record[name] > MAX_BIGINT)
        cleaned.append(record)
        source = item.get("source", DEFAULT_SOURCE)
        if not isinstance(source, str) or not SOURCE_PATTERN.match(source):
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
