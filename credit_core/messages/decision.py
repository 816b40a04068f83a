"""A decision on one applicant: what the save stage writes to HBase (``hbase_helper``'s input contract), on
applicants.scored, and the event published on ``decisions`` once it is stored.

``decision`` builds one (the screening and scoring stages), ``validate_decision``
checks one against the writer's contract (the save stage before writing,
``hbase_helper.writer`` always), ``decision_item_error`` is the least an item of
applicants.scored must be to be looked at, ``decision_event`` the published event.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from credit_core.clock import MAX_TIME_MS, now_ms
from credit_core.messages.item import id_error

DECISIONS = ("approve", "decline")
DECIDED_BY = ("policy", "model")
MAX_ID = 10**20 - 1             # 20 digits: any unsigned 64-bit id (HBase row keys hold 20 digits)
MAX_OFFSET = 2**63 - 1
MAX_PARTITION = 2**31 - 1

EVENT_KEYS = ("id", "decision", "decided_by", "probability_of_default", "risk_band", "reasons", "model_version",
              "policy_version", "threshold", "provenance", "ingested_at", "decided_at")


def decision(item: Mapping[str, Any], *, verdict: str, decided_by: str, reasons: list,
             policy_version: str, probability_of_default: float | None = None, risk_band: str | None = None,
             model_version: str | None = None, threshold: float | None = None,
             decided_at: int | None = None) -> dict[str, Any]:
    """The decision (``verdict``: approve or decline) on the applicant of a clean / eligible ``item``."""
    if verdict not in DECISIONS:
        raise ValueError(f"decision must be approve or decline, got {verdict!r}")
    if decided_by not in DECIDED_BY:
        raise ValueError(f"decided_by must be policy or model, got {decided_by!r}")
    return {
        "id": item["id"],
        "applicant": item["applicant"],
        "decision": verdict,
        "decided_by": decided_by,
        "probability_of_default": probability_of_default,
        "risk_band": risk_band,
        "reasons": reasons,
        "model_version": model_version,
        "policy_version": policy_version,
        "threshold": threshold,
        "provenance": item["provenance"],
        "ingested_at": item["ingested_at"],
        "decided_at": decided_at if decided_at is not None else now_ms(),
    }


def decision_item_error(item: Any) -> str | None:
    """Why a scored item cannot even be looked at (not an object with an id); the rest is ``validate_decision``."""
    return id_error(item)


def decision_event(dec: Mapping[str, Any], saved_at: int) -> dict[str, Any]:
    """The event published on ``decisions`` once the row is in HBase: the decision's own keys, not the applicant.

    Only the contract's keys, which the HBase writer has checked and written,
    so whatever else a scored message carried cannot make the event unwritable.
    """
    event = {k: dec.get(k) for k in EVENT_KEYS}
    event["saved_at"] = saved_at
    return event


# -- the writer's contract ------------------------------------------------------

class DecisionError(ValueError):
    """A decision dict breaks the writer's contract; ``field`` names what is wrong."""

    def __init__(self, field: str, reason: str, app_id: Any = None):
        where = f" (application {app_id})" if app_id is not None else ""
        super().__init__(f"{field}: {reason}{where}")
        self.field = field
        self.reason = reason
        self.app_id = app_id


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_id(app_id: Any) -> int:
    """``app_id`` when it is an int in 1..MAX_ID; TypeError or ValueError otherwise."""
    if not _is_int(app_id):
        raise TypeError(f"application id must be an int, got {type(app_id).__name__} {app_id!r}")
    if not 1 <= app_id <= MAX_ID:
        raise ValueError(f"application id must be in 1..{MAX_ID}, got {app_id}")
    return app_id


def _finite_or_none(dec: Mapping[str, Any], name: str, app_id: int, lo=None, hi=None) -> None:
    value = dec.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise DecisionError(name, f"must be a finite number or null, got {value!r}", app_id)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise DecisionError(name, f"must be in {lo}..{hi}, got {value!r}", app_id)


def _str_or_none(dec: Mapping[str, Any], name: str, app_id: int) -> None:
    value = dec.get(name)
    if value is not None and not isinstance(value, str):
        raise DecisionError(name, f"must be a string or null, got {value!r}", app_id)


def _int_field(mapping: Mapping[str, Any], name: str, app_id: int, hi: int, *, prefix: str = "") -> None:
    value = mapping.get(name)
    if not _is_int(value) or not 0 <= value <= hi:
        raise DecisionError(prefix + name, f"must be an int in 0..{hi}, got {value!r}", app_id)


_STR = frozenset((str,))


def _is_mapping(value: Any) -> bool:
    return type(value) is dict or isinstance(value, Mapping)


def validate_decision(dec: Any) -> int:
    """Check a decision dict against the writer's contract; return its id or raise DecisionError.

    A missing, negative or absurd ``provenance.timestamp_ms`` is not an error:
    the record is then timed by ``ingested_at`` (see ``hbase_helper.layout.encode_rows``).
    """
    if not _is_mapping(dec):
        raise DecisionError("decision", f"must be a dict, got {type(dec).__name__}")
    app_id = dec.get("id")
    try:
        check_id(app_id)
    except (TypeError, ValueError) as exc:
        raise DecisionError("id", str(exc)) from None
    applicant = dec.get("applicant")
    if not _is_mapping(applicant):
        raise DecisionError("applicant", "must be a dict of cleaned fields", app_id)
    if "" in applicant or not set(map(type, applicant)) <= _STR:   # the usual case in C: plain str keys
        for key in applicant:
            if not isinstance(key, str) or not key:
                raise DecisionError("applicant", f"field names must be non-empty strings, got {key!r}", app_id)
    if applicant.get("id", app_id) != app_id:
        raise DecisionError("applicant.id", f"{applicant.get('id')!r} differs from the decision's id", app_id)
    if dec.get("decision") not in DECISIONS:
        raise DecisionError("decision", f"must be one of {', '.join(DECISIONS)}, got {dec.get('decision')!r}",
                            app_id)
    if dec.get("decided_by") not in DECIDED_BY:
        raise DecisionError("decided_by",
                            f"must be one of {', '.join(DECIDED_BY)}, got {dec.get('decided_by')!r}", app_id)
    probability = dec.get("probability_of_default")
    if not (probability is None or (type(probability) is float and 0.0 <= probability <= 1.0)):
        _finite_or_none(dec, "probability_of_default", app_id, 0, 1)   # NaN and inf take the full check
    threshold = dec.get("threshold")
    if not (threshold is None or (type(threshold) is float and -math.inf < threshold < math.inf)):
        _finite_or_none(dec, "threshold", app_id)
    for name in ("risk_band", "model_version", "policy_version"):
        value = dec.get(name)
        if value is not None and type(value) is not str:
            _str_or_none(dec, name, app_id)
    reasons = dec.get("reasons", [])
    if not isinstance(reasons, list) or not all(_is_mapping(r) and isinstance(r.get("code"), str)
                                                for r in reasons):
        raise DecisionError("reasons", "must be a list of objects with a string 'code'", app_id)
    prov = dec.get("provenance")
    if not _is_mapping(prov):
        raise DecisionError("provenance", "must be a dict (topic, partition, offset, timestamp_ms, ...)", app_id)
    topic = prov.get("topic")
    if not isinstance(topic, str) or not topic or len(topic) > 255:
        raise DecisionError("provenance.topic", f"must be a topic name, got {topic!r}", app_id)
    _int_field(prov, "partition", app_id, MAX_PARTITION, prefix="provenance.")
    _int_field(prov, "offset", app_id, MAX_OFFSET, prefix="provenance.")
    for key, value in prov.items():  # the producer's own fields (source, seq, fetched_at...) are kept as given
        if not isinstance(key, str) or not (value is None or isinstance(value, (str, int, float))):
            raise DecisionError(f"provenance.{key}", f"must be a JSON scalar, got {value!r}", app_id)
    for name in ("ingested_at", "decided_at"):
        value = dec.get(name)
        if not _is_int(value) or not 0 <= value <= MAX_TIME_MS:
            raise DecisionError(name, f"must be epoch milliseconds (int), got {value!r}", app_id)
    return app_id
