"""The producer's applicants.raw message: key = application id, value = ``{"applicant", "provenance"}``.

``build_message`` is the producer's side, ``parse`` the cleaning stage's:
a value that is a bare applicant object (no envelope) is accepted too.

A dead letter replayed to applicants.raw (``python -m deploy dlq replay``)
carries its replay provenance in Kafka record headers, not in the value: a
replayed value may be the dead letter's original bytes, which need not be
JSON.  ``replay_headers`` writes them, ``replay_provenance`` reads them into
the provenance keys ``attempt`` (2 for the first replay: the record failed
once), ``replayed_from`` (the dead letter, ``topic/partition/offset``) and
``replay_run``; the cleaning stage adds them to the item's provenance (so
they reach HBase) and to the source of a new dead letter (so a record that
fails again says which attempt it was).  A first delivery has no headers:
attempt 1.
"""

from __future__ import annotations

from typing import Any, Mapping

import orjson

from credit_core.jsoncodec import dumps
from credit_core.messages.keys import MAX_APP_ID, id_key, plain_int

# What the producer moves from the API's applicant into the provenance (besides its own fetched_at).
STORE_PROVENANCE = ("seq", "source", "created_at")

# The replay headers of an applicants.raw record and the provenance key each one fills.
ATTEMPT_HEADER = "credit-attempt"              # ASCII decimal, >= 2
REPLAYED_FROM_HEADER = "credit-replayed-from"  # the dead letter replayed: "<dlq topic>/<partition>/<offset>"
REPLAY_RUN_HEADER = "credit-replay-run"        # the replay run's id
REPLAY_KEYS = {ATTEMPT_HEADER: "attempt", REPLAYED_FROM_HEADER: "replayed_from", REPLAY_RUN_HEADER: "replay_run"}
MAX_ATTEMPT = 1_000_000
MAX_HEADER_TEXT = 400                          # a topic name (<= 249) plus two numbers, with room


def replay_headers(*, attempt: int, replayed_from: str, run: str) -> list[tuple[str, bytes]]:
    """The headers of a replayed applicants.raw record (see the module docstring)."""
    if isinstance(attempt, bool) or not isinstance(attempt, int) or not 2 <= attempt <= MAX_ATTEMPT:
        raise ValueError(f"attempt must be an int in 2..{MAX_ATTEMPT}, got {attempt!r}")
    return [(ATTEMPT_HEADER, str(attempt).encode()), (REPLAYED_FROM_HEADER, replayed_from.encode()),
            (REPLAY_RUN_HEADER, run.encode())]


def _header_text(value: Any) -> str | None:
    if not isinstance(value, (bytes, bytearray)) or not 0 < len(value) <= MAX_HEADER_TEXT:
        return None
    try:
        text = bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        return None
    return text if text.isprintable() else None


def replay_provenance(headers: Any) -> dict[str, Any]:
    """The provenance keys (attempt, replayed_from, replay_run) a record's replay headers give; {} for none.

    ``headers`` as aiokafka gives them (a sequence of (name, bytes)) or faust (that, or a mapping). A header
    that is malformed (not UTF-8, too long, an attempt that is not a plain number in 2..MAX_ATTEMPT) is
    ignored: any bytes may come from a producer, and none of them may fail the record.
    """
    out: dict[str, Any] = {}
    try:
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        for name, value in pairs:
            key = REPLAY_KEYS.get(name) if isinstance(name, str) else None
            if key is None:
                continue
            text = _header_text(value)
            if text is None:
                continue
            if key == "attempt":
                if not (text.isascii() and text.isdigit() and len(text) <= 7 and 2 <= int(text) <= MAX_ATTEMPT):
                    continue
                out[key] = int(text)
            else:
                out[key] = text
    except (TypeError, ValueError):
        return {}
    return out


def build_message(applicant: dict[str, Any], fetched_at: str) -> tuple[bytes, bytes]:
    """(key, value) for one applicant as the API served it: key = application id,
    value = {"applicant": record fields, "provenance": {seq, source, created_at, fetched_at}}.

    Moves seq, source and created_at out of ``applicant`` in place (pages are built once, used once).
    """
    pop = applicant.pop
    provenance = {"seq": pop("seq", None), "source": pop("source", None), "created_at": pop("created_at", None),
                  "fetched_at": fetched_at}
    return envelope(applicant["id"], applicant, provenance)


def envelope(app_id: int, applicant: Mapping[str, Any], provenance: Mapping[str, Any]) -> tuple[bytes, bytes]:
    """(key, value) of an applicants.raw message: key = the application id, value = {"applicant", "provenance"}."""
    return id_key(app_id), dumps({"applicant": applicant, "provenance": provenance})


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
