"""The items of the internal topics applicants.clean and applicants.eligible.

Those topics carry JSON arrays of items; every item in one message has an
application id whose key hashes to the partition the message is on, and the
message key is the first item's id, so the "keyed by application id"
placement holds for each applicant (with ``STAGE_BATCH=1`` each message is
exactly one applicant keyed by its id).

An item: ``{"id", "applicant": cleaned record, "provenance", "ingested_at"}``.
``raw_message`` turns an item (or a decision) back into the applicants.raw
message that starts its applicant over (the replay of a dead letter).
"""

from __future__ import annotations

from typing import Any, Mapping

from credit_core.clock import MAX_TIME_MS
from credit_core.fields import MAX_INT
from credit_core.jsoncodec import dumps, loads
from credit_core.messages.dead_letter import reason_text
from credit_core.messages.envelope import envelope
from credit_core.messages.keys import MAX_APP_ID, is_app_id, plain_int

PROVENANCE_KEYS = ("source", "seq", "fetched_at", "created_at")
MAX_SEQ = MAX_INT           # the producer's sequence, a BIGINT too


def source(topic: str, partition: int, offset: int, timestamp_ms: int | None) -> dict[str, Any]:
    """Where a raw message was: the stage's part of an item's provenance."""
    return {"topic": topic, "partition": partition, "offset": offset, "timestamp_ms": timestamp_ms}


def is_time_ms(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_TIME_MS


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
    if is_time_ms(out.get("timestamp_ms")):
        out["timestamp_source"] = "kafka"
    else:
        out["timestamp_ms"] = ingested_at
        out["timestamp_source"] = "ingested"
    return out


def clean_item(record: dict[str, Any], envelope_provenance: Any, src: Mapping[str, Any],
               ingested_at: int) -> dict[str, Any]:
    """The item for a cleaned record (``credit_core.fields.clean_record``'s output) from the raw message at ``src``."""
    return {"id": record["id"], "applicant": record, "provenance": provenance(envelope_provenance, src, ingested_at),
            "ingested_at": ingested_at}


def raw_message(item: Mapping[str, Any]) -> tuple[bytes, bytes]:
    """(key, value) of the applicants.raw message that takes ``item``'s applicant through the pipeline again
    from the start: the producer's envelope around the item's (cleaned) applicant and producer provenance.

    For a dead letter of a later stage (decision, submit, save), whose
    original is an item or a decision rather than a raw message: cleaning is
    idempotent (a cleaned record cleans to itself), so the filter stage takes
    the applicant back, and the producer's ``seq``, ``source``,
    ``fetched_at`` and ``created_at`` order it with its earlier records in
    HBase.  Where the item was (topic, partition, offset, attempt...) is not
    carried: the new raw record has its own, and the replay headers say the
    rest.  A reconciliation's ``replay`` marker (kept as a JSON string) is
    carried back as the object it was.  KeyError/TypeError when ``item``
    has no applicant object; orjson's TypeError when it cannot be written.
    """
    applicant = item["applicant"]
    if not isinstance(applicant, Mapping):
        raise TypeError("the item's applicant is not an object")
    prov = item.get("provenance")
    prov = prov if isinstance(prov, Mapping) else {}
    producer: dict[str, Any] = {k: prov[k] for k in PROVENANCE_KEYS if prov.get(k) is not None}
    marker = prov.get("replay")
    if isinstance(marker, str):
        try:
            marker = loads(marker)
        except Exception:
            marker = None
    if isinstance(marker, Mapping):
        producer["replay"] = dict(marker)
    return envelope(item["id"], dict(applicant), producer)


def id_error(item: Any) -> str | None:
    """Why ``item`` is not even an object with a valid application id, or None."""
    if not isinstance(item, dict):
        return f"an item must be a JSON object, got a JSON {type(item).__name__}"
    if not is_app_id(item.get("id")):
        return f"id: must be a whole number in 1..{MAX_APP_ID}, got {reason_text(item.get('id'))[:64]}"
    return None


def item_error(item: Any) -> str | None:
    """Why a clean / eligible item breaks its contract, or None.

    The contract: ``{"id", "applicant", "provenance", "ingested_at"}`` with an id in BIGINT range.
    """
    why = id_error(item)
    if why is not None:
        return why
    if not isinstance(item.get("applicant"), dict):
        return "applicant: must be an object"
    if not isinstance(item.get("provenance"), dict):
        return "provenance: must be an object"
    if not is_time_ms(item.get("ingested_at")):
        return "ingested_at: must be epoch milliseconds"
    return None
