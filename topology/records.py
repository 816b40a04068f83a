"""The messages between agents, as plain dicts built by pure functions (no faust Record per message: it costs too much).

Internal topics (applicants.clean, .eligible, .scored) carry JSON arrays of
items; every item in one message has an application id whose key hashes to
the partition the message is on, and the message key is the first item's id,
so the "keyed by application id" placement holds for each applicant (with
``STAGE_BATCH=1`` each message is exactly one applicant keyed by its id).
``decisions`` and ``applicants.dlq`` carry one JSON object per applicant.

- clean / eligible item: ``{"id", "applicant": cleaned record, "provenance", "ingested_at"}``
- scored item: a decision (``decision()`` below), the contract with ``hbase_helper.writer``
- DLQ record: ``dlq_record()`` below
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from typing import Any, Mapping

from aiokafka.partitioner import murmur2

from credit_core.fields import MAX_INT, parse_int
from hbase_helper.layout import MAX_TIME_MS
from topology.codec import dumps

logger = logging.getLogger(__name__)

PROVENANCE_KEYS = ("source", "seq", "fetched_at", "created_at")
MAX_APP_ID = MAX_INT        # the applications table's BIGINT id
MAX_SEQ = MAX_INT           # the producer's sequence, a BIGINT too
MAX_REASON_CHARS = 2000     # a reason or field error longer than this is cut in a dead letter


def now_ms() -> int:
    return int(time.time() * 1000)


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default (murmur2) partitioner gives ``key``: the same as the producer's."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def id_key(app_id: int) -> bytes:
    return str(app_id).encode()


def plain_int(value: Any, *, lo: int, hi: int) -> int | None:
    """``value`` as an int in ``lo..hi`` when it is one exactly (``credit_core.fields.parse_int``), else None.

    Keys come as bytes: only ASCII ones can hold a plain decimal.
    """
    if isinstance(value, (bytes, bytearray)):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            return None
    try:
        return parse_int(value, lo=lo, hi=hi)
    except (TypeError, ValueError):
        return None


def best_effort_id(applicant: Any, key: bytes | None) -> int | None:
    """The application id of a record that failed, when one can be read exactly (from the record, else the key)."""
    if isinstance(applicant, Mapping):
        found = plain_int(applicant.get("id"), lo=1, hi=MAX_APP_ID)
        if found is not None:
            return found
    if key:
        return plain_int(key, lo=1, hi=MAX_APP_ID)
    return None


def source(topic: str, partition: int, offset: int, timestamp_ms: int | None) -> dict[str, Any]:
    return {"topic": topic, "partition": partition, "offset": offset, "timestamp_ms": timestamp_ms}


def provenance(envelope_provenance: Any, src: Mapping[str, Any], ingested_at: int) -> dict[str, Any]:
    """The producer's provenance (source, seq, fetched_at, created_at) extended with where the raw message was.

    Types and ranges are normalised here so that nothing a producer writes can
    make a later stage fail to serialise or store the decision: ``seq`` is an
    int in 0..2^63-1 or None; a raw record without a timestamp (Kafka's -1, or
    any negative value) gets the ingest time, and ``timestamp_source`` says
    which one it is.
    """
    out: dict[str, Any] = dict.fromkeys(PROVENANCE_KEYS)
    if isinstance(envelope_provenance, Mapping):
        out["seq"] = plain_int(envelope_provenance.get("seq"), lo=0, hi=MAX_SEQ)
        for k in ("source", "fetched_at", "created_at"):
            v = envelope_provenance.get(k)
            if isinstance(v, str):
                out[k] = v[:255]
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                out[k] = str(v)[:255]
        replay = envelope_provenance.get("replay")
        if isinstance(replay, Mapping):
            # A reconciliation replay's marker, kept as one short JSON string (HBase provenance holds scalars).
            marker = {str(k)[:32]: str(v)[:255] for k, v in list(replay.items())[:8] if v is not None}
            out["replay"] = dumps(marker).decode()
    out.update(src)
    if _is_time_ms(out.get("timestamp_ms")):
        out["timestamp_source"] = "kafka"
    else:
        out["timestamp_ms"] = ingested_at
        out["timestamp_source"] = "ingested"
    return out


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_APP_ID


def _is_time_ms(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_TIME_MS


def _id_error(item: Any) -> str | None:
    if not isinstance(item, dict):
        return f"an item must be a JSON object, got a JSON {type(item).__name__}"
    if not _is_id(item.get("id")):
        return f"id: must be a whole number in 1..{MAX_APP_ID}, got {_reason_text(item.get('id'))[:64]}"
    return None


def item_error(item: Any) -> str | None:
    """Why a clean / eligible item breaks its contract, or None.

    The contract: ``{"id", "applicant", "provenance", "ingested_at"}`` with an id in BIGINT range.
    """
    why = _id_error(item)
    if why is not None:
        return why
    if not isinstance(item.get("applicant"), dict):
        return "applicant: must be an object"
    if not isinstance(item.get("provenance"), dict):
        return "provenance: must be an object"
    if not _is_time_ms(item.get("ingested_at")):
        return "ingested_at: must be epoch milliseconds"
    return None


def decision_item_error(item: Any) -> str | None:
    """Why a scored item cannot even be looked at (not an object with an id); the rest is hbase_helper's contract."""
    return _id_error(item)


def _reason_text(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= MAX_REASON_CHARS else text[:MAX_REASON_CHARS] + "..."


def _errors(errors: Any) -> list[dict[str, str]]:
    out = []
    for err in errors or []:
        if isinstance(err, Mapping):
            out.append({"field": _reason_text(err.get("field", "$")), "reason": _reason_text(err.get("reason", ""))})
        else:
            out.append({"field": "$", "reason": _reason_text(err)})
    return out


def dlq_record(*, stage: str, reason: str, errors: list[dict[str, str]] | None, original: bytes | None,
               key: bytes | None, src: Mapping[str, Any] | None, app_id: int | None, max_original: int,
               failed_at: int | None = None, applicant: Any = None) -> dict[str, Any]:
    """A dead letter: why it failed, where it came from and the original bytes (base64, cut to ``max_original``)."""
    original = original if original is not None else b""
    kept = original[:max_original]
    rec = {
        "id": app_id,
        "stage": stage,
        "reason": _reason_text(reason),
        "errors": _errors(errors),
        "original": base64.b64encode(kept).decode("ascii"),
        "original_size": len(original),
        "original_truncated": len(kept) < len(original),
        "original_sha256": hashlib.sha256(original).hexdigest(),
        "key": base64.b64encode(key).decode("ascii") if key is not None else None,
        "source": dict(src) if isinstance(src, Mapping) else None,
        "failed_at": failed_at if failed_at is not None else now_ms(),
    }
    if applicant is not None:
        rec["applicant"] = applicant
    return rec


def _small_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and -2**63 <= value < 2**63 else None


def minimal_dlq_record(*, stage: str, reason: str, src: Any, original: Any, key: Any, max_original: int,
                       failure: str) -> dict[str, Any]:
    """The dead letter written when the full one cannot be built or serialised: plain strings and 64-bit ints only."""
    original = original if isinstance(original, (bytes, bytearray)) else b""
    key = key if isinstance(key, (bytes, bytearray)) else None
    src = src if isinstance(src, Mapping) else {}
    topic = src.get("topic")
    kept = bytes(original[:max_original])
    return {
        "id": None,
        "stage": str(stage),
        "reason": _reason_text(reason),
        "errors": [{"field": "$", "reason": _reason_text(failure)}],
        "minimal": True,
        "original": base64.b64encode(kept).decode("ascii"),
        "original_size": len(original),
        "original_truncated": len(kept) < len(original),
        "original_sha256": hashlib.sha256(original).hexdigest(),
        "key": base64.b64encode(bytes(key[:1024])).decode("ascii") if key is not None else None,
        "source": {"topic": topic[:255] if isinstance(topic, str) else None,
                   "partition": _small_int(src.get("partition")), "offset": _small_int(src.get("offset")),
                   "timestamp_ms": _small_int(src.get("timestamp_ms"))},
        "failed_at": now_ms(),
    }


def dead_letter(*, stage: str, reason: str, errors: list | None, original: bytes | None, key: bytes | None,
                src: Any, app_id: int | None, partitions: int, max_original: int,
                applicant: Any = None) -> tuple[int, bytes | None, bytes]:
    """The (partition, key, value) DLQ message for a failure; never raises.

    Keyed by the application id when one is known exactly (so its dead letters
    share a partition with its other records), else by the original key.  When
    the full record cannot be serialised (an applicant nested deeper than
    orjson writes, a number it cannot hold...) it is retried without the
    parsed applicant, then a minimal record (stage, reason, where, the
    original bytes) is written instead.
    """
    if not _is_id(app_id):
        app_id = None
    dkey = id_key(app_id) if app_id is not None else (bytes(key) if isinstance(key, (bytes, bytearray)) else None)
    failure = ""
    for keep_applicant in ((True, False) if applicant is not None else (False,)):
        try:
            value = dumps(dlq_record(stage=stage, reason=reason, errors=errors, original=original, key=key,
                                     src=src, app_id=app_id, max_original=max_original,
                                     applicant=applicant if keep_applicant else None))
            break
        except Exception as exc:
            failure = f"the full dead letter could not be written: {type(exc).__name__}: {exc}"
    else:
        value = dumps(minimal_dlq_record(stage=stage, reason=reason, src=src, original=original, key=key,
                                         max_original=max_original, failure=failure))
    if dkey:
        partition = partition_for(dkey, partitions)
    else:
        raw = src.get("partition") if isinstance(src, Mapping) else None
        partition = raw % partitions if _small_int(raw) is not None else 0
    return partition, dkey, value


def item_dead_letter(*, stage: str, item: Mapping[str, Any], reason: str, errors: list, partitions: int,
                     max_original: int, applicant: Any = None) -> tuple[int, bytes | None, bytes]:
    """The DLQ message for an internal item (clean, eligible or a decision) with a valid id that failed a stage."""
    return dead_letter(stage=stage, reason=reason, errors=errors, original=item_bytes(item), key=id_key(item["id"]),
                       src=item.get("provenance"), app_id=item["id"], partitions=partitions,
                       max_original=max_original, applicant=applicant)


def item_bytes(item: Any) -> bytes:
    """An internal item as bytes for a dead letter's ``original``: its JSON, else its repr."""
    try:
        return dumps(item)
    except Exception:
        try:
            return repr(item).encode("utf-8", "replace")
        except Exception:
            return b""


def decision(item: Mapping[str, Any], *, decision: str, decided_by: str, reasons: list,
             policy_version: str, probability_of_default: float | None = None, risk_band: str | None = None,
             model_version: str | None = None, threshold: float | None = None,
             decided_at: int | None = None) -> dict[str, Any]:
    """The decision on one applicant: what save writes to HBase (hbase_helper.writer's input contract)."""
    if decision not in ("approve", "decline"):
        raise ValueError(f"decision must be approve or decline, got {decision!r}")
    if decided_by not in ("policy", "model"):
        raise ValueError(f"decided_by must be policy or model, got {decided_by!r}")
    return {
        "id": item["id"],
        "applicant": item["applicant"],
        "decision": decision,
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


EVENT_KEYS = ("id", "decision", "decided_by", "probability_of_default", "risk_band", "reasons", "model_version",
              "policy_version", "threshold", "provenance", "ingested_at", "decided_at")


def decision_event(dec: Mapping[str, Any], saved_at: int) -> dict[str, Any]:
    """The event published on ``decisions`` once the row is in HBase: the decision's own keys, not the applicant.

    Only the contract's keys, which the HBase writer has checked and written,
    so whatever else a scored message carried cannot make the event unwritable.
    """
    event = {k: dec.get(k) for k in EVENT_KEYS}
    event["saved_at"] = saved_at
    return event
