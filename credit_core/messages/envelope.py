"""The producer's applicants.raw message: key = application id, value = ``{"applicant", "provenance"}``.

``build_message`` is the producer's side, ``parse`` the cleaning stage's:
a value that is a bare applicant object (no envelope) is accepted too.
"""

from __future__ import annotations

from typing import Any, Mapping

import orjson

from credit_core.messages.keys import MAX_APP_ID, plain_int

# What the producer moves from the API's applicant into the provenance (besides its own fetched_at).
STORE_PROVENANCE = ("seq", "source", "created_at")


def build_message(applicant: dict[str, Any], fetched_at: str) -> tuple[bytes, bytes]:
    """(key, value) for one applicant as the API served it: key = application id,
    value = {"applicant": record fields, "provenance": {seq, source, created_at, fetched_at}}.

    Moves seq, source and created_at out of ``applicant`` in place (pages are built once, used once).
    """
    pop = applicant.pop
    provenance = {"seq": pop("seq", None), "source": pop("source", None), "created_at": pop("created_at", None),
                  "fetched_at": fetched_at}
    return str(applicant["id"]).encode(), orjson.dumps({"applicant": applicant, "provenance": provenance})


class Rejected(Exception):
    """A raw message refused: the reason, per-field errors, and what could be read of it (id, applicant)."""

    def __init__(self, reason: str, errors: list[dict[str, str]] | None = None, app_id: int | None = None,
                 applicant: Any = None):
        super().__init__(reason)
        self.reason = reason
        self.errors = errors or []
        self.app_id = app_id
        self.applicant = applicant


def parse(value: bytes | None, max_bytes: int) -> tuple[Mapping[str, Any], Any]:
    """(applicant, producer provenance) from a raw message value; Rejected with the reason otherwise."""
    if value is None or len(value) == 0:
        raise Rejected("empty message", [{"field": "$", "reason": "message has no value"}])
    if len(value) > max_bytes:
        raise Rejected("payload too large",
                       [{"field": "$", "reason": f"{len(value)} bytes is more than the limit of {max_bytes}"}])
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        try:
            value.decode("utf-8")
        except UnicodeDecodeError as uexc:
            raise Rejected("not UTF-8", [{"field": "$", "reason": f"invalid UTF-8 at byte {uexc.start}"}]) from None
        raise Rejected("not JSON", [{"field": "$", "reason": str(exc)}]) from None
    if not isinstance(data, dict):
        raise Rejected("not a JSON object", [{"field": "$", "reason": f"got a JSON {type(data).__name__}"}])
    applicant = data.get("applicant")
    if isinstance(applicant, dict):
        return applicant, data.get("provenance")
    if "applicant" in data:
        raise Rejected("bad envelope", [{"field": "applicant", "reason": "must be an object"}])
    return data, None  # a bare applicant object


def best_effort_id(applicant: Any, key: bytes | None) -> int | None:
    """The application id of a record that failed, when one can be read exactly (from the record, else the key)."""
    if isinstance(applicant, Mapping):
        found = plain_int(applicant.get("id"), lo=1, hi=MAX_APP_ID)
        if found is not None:
            return found
    if key:
        return plain_int(key, lo=1, hi=MAX_APP_ID)
    return None
