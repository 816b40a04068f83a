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

logger = logging.getLogger(__name__)

PROVENANCE_KEYS = ("source", "seq", "fetched_at")


def now_ms() -> int:
    return int(time.time() * 1000)


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default (murmur2) partitioner gives ``key``: the same as the producer's."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def id_key(app_id: int) -> bytes:
    return str(app_id).encode()


def best_effort_id(applicant: Any, key: bytes | None) -> int | None:
    """The application id of a record that failed, when one can be read (from the record, else the key)."""
    if isinstance(applicant, Mapping):
        raw = applicant.get("id")
        if isinstance(raw, int) and not isinstance(raw, bool) and raw > 0:
            return raw
        if isinstance(raw, str) and raw.strip().isdigit():
            return int(raw.strip())
        if isinstance(raw, float) and raw.is_integer() and raw > 0:
            return int(raw)
    if key:
        try:
            text = key.decode("ascii").strip()
        except UnicodeDecodeError:
            return None
        if text.isdigit() and int(text) > 0:
            return int(text)
    return None


def source(topic: str, partition: int, offset: int, timestamp_ms: int | None) -> dict[str, Any]:
    return {"topic": topic, "partition": partition, "offset": offset, "timestamp_ms": timestamp_ms}


def provenance(envelope_provenance: Any, src: Mapping[str, Any]) -> dict[str, Any]:
    """The producer's provenance (source, seq, fetched_at) extended with where the raw message was."""
    out: dict[str, Any] = dict.fromkeys(PROVENANCE_KEYS)
    if isinstance(envelope_provenance, Mapping):
        # Types are normalised here so a sloppy producer cannot make the HBase writer refuse the decision.
        seq = envelope_provenance.get("seq")
        if isinstance(seq, int) and not isinstance(seq, bool) and seq >= 0:
            out["seq"] = seq
        elif isinstance(seq, str) and seq.strip().isdigit():
            out["seq"] = int(seq)
        for k in ("source", "fetched_at"):
            v = envelope_provenance.get(k)
            if isinstance(v, (str, int, float)) and not isinstance(v, bool):
                out[k] = str(v)[:255]
    out.update(src)
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
        "reason": reason,
        "errors": errors or [],
        "original": base64.b64encode(kept).decode("ascii"),
        "original_size": len(original),
        "original_truncated": len(kept) < len(original),
        "original_sha256": hashlib.sha256(original).hexdigest(),
        "key": base64.b64encode(key).decode("ascii") if key is not None else None,
        "source": dict(src) if src else None,
        "failed_at": failed_at if failed_at is not None else now_ms(),
    }
    if applicant is not None:
        rec["applicant"] = applicant
    return rec


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


def decision_event(dec: Mapping[str, Any], saved_at: int) -> dict[str, Any]:
    """The event published on ``decisions`` once the row is in HBase (the applicant itself stays in HBase)."""
    event = {k: v for k, v in dec.items() if k != "applicant"}
    event["saved_at"] = saved_at
    return event
