"""The applicants.dlq record: why a message failed, at which stage, where it came from and its original bytes.

``source`` is where the failed message came from: the raw record (topic,
partition, offset, timestamp_ms) for the filter stage, the item's provenance
for later stages; a record that was replayed from the DLQ adds ``attempt``,
``replayed_from`` and ``replay_run`` there (``credit_core.messages.envelope``).
``credit_core.dlq.records`` reads these records back.

``dead_letter`` never raises: when the full record cannot be serialised it
falls back to ``minimal_dlq_record`` (plain strings and 64-bit ints only).
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any, Mapping

from credit_core.clock import now_ms
from credit_core.jsoncodec import dumps
from credit_core.messages.keys import id_key, is_app_id, partition_for

MAX_REASON_CHARS = 2000     # a reason or field error longer than this is cut in a dead letter


def reason_text(value: Any) -> str:
    """``value`` as text for a dead letter (its repr unless a string), cut to MAX_REASON_CHARS."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= MAX_REASON_CHARS else text[:MAX_REASON_CHARS] + "..."


def _errors(errors: Any) -> list[dict[str, str]]:
    out = []
    for err in errors or []:
        if isinstance(err, Mapping):
            out.append({"field": reason_text(err.get("field", "$")), "reason": reason_text(err.get("reason", ""))})
        else:
            out.append({"field": "$", "reason": reason_text(err)})
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
        "reason": reason_text(reason),
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


def _replay_of(src: Mapping[str, Any]) -> dict[str, Any]:
    """The replay provenance (``credit_core.messages.envelope.replay_provenance``) a minimal record keeps."""
    out: dict[str, Any] = {}
    attempt = _small_int(src.get("attempt"))
    if attempt is not None:
        out["attempt"] = attempt
    for name in ("replayed_from", "replay_run"):
        value = src.get(name)
        if isinstance(value, str):
            out[name] = value[:400]
    return out


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
        "reason": reason_text(reason),
        "errors": [{"field": "$", "reason": reason_text(failure)}],
        "minimal": True,
        "original": base64.b64encode(kept).decode("ascii"),
        "original_size": len(original),
        "original_truncated": len(kept) < len(original),
        "original_sha256": hashlib.sha256(original).hexdigest(),
        "key": base64.b64encode(bytes(key[:1024])).decode("ascii") if key is not None else None,
        "source": {"topic": topic[:255] if isinstance(topic, str) else None,
                   "partition": _small_int(src.get("partition")), "offset": _small_int(src.get("offset")),
                   "timestamp_ms": _small_int(src.get("timestamp_ms")), **_replay_of(src)},
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
    if not is_app_id(app_id):
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
