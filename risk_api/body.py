"""Request bodies: the size-bounded read (credit_core.http_body) and exact JSON parsing (big integers stay exact)."""

from __future__ import annotations

import json
import logging
import re
from decimal import Decimal
from typing import IO, Any

import orjson

from credit_core.http_body import read_body

logger = logging.getLogger(__name__)

# orjson reads an integer literal beyond 64 bits as a rounded float: bodies holding a run of 19+ digits go to the
# stdlib parser, whose integers are exact (the check is a C-speed regex scan; such bodies are rare).
_LONG_DIGITS = re.compile(rb"[0-9]{19}")


class BodyTooLarge(ValueError):
    """The body went past the configured limit (declared length, chunked or any other framing)."""


def read_limited(stream: IO[bytes], limit: int) -> bytes:
    """Read ``stream`` to its end, but raise BodyTooLarge as soon as more than ``limit`` bytes arrived."""
    body = read_body(stream, limit)
    if body is None:
        raise BodyTooLarge(f"body is larger than {limit} bytes")
    return body


def parse_json(data: bytes) -> Any:
    """The JSON value of ``data`` (UTF-8). NaN / Infinity and out-of-range floats come back as non-finite floats
    (rejected per field later); integers are exact. Raise ValueError with the reason when it is not JSON."""
    if not _LONG_DIGITS.search(data):
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            first = str(exc)
    else:
        first = None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"body is not UTF-8: {exc.reason} at byte {exc.start}") from None
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("body is not valid JSON: nested too deeply") from None
    except ValueError as exc:                   # JSONDecodeError, or an integer of more than 4300 digits
        raise ValueError(f"body is not valid JSON: {first or exc}") from None


def exact_ids(data: bytes, body: Any) -> None:
    """Replace, in place, every applicant id that was parsed as a float by its exact Decimal read from ``data``.

    ``body`` is ``parse_json(data)``: one applicant object or {"applicants": [...]}. Only runs when such an id is
    present (rare), as it parses the body a second time.
    """
    records = _records(body)
    if not any(type(r) is dict and type(r.get("id")) is float for r in records):
        return
    try:
        exact = _records(json.loads(data.decode("utf-8"), parse_float=Decimal))
    except RecursionError:
        raise ValueError("body is not valid JSON: nested too deeply") from None
    for rec, twin in zip(records, exact):
        if type(rec) is dict and type(rec.get("id")) is float and type(twin) is dict:
            rec["id"] = twin.get("id")


def _records(body: Any) -> list:
    if type(body) is dict and type(body.get("applicants")) is list:
        return body["applicants"]
    return [body] if type(body) is dict else []
