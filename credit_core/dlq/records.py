"""A DLQ record read back as a ``DeadLetter`` view, and the pure filters and counts over dead letters.

``parse_dead_letter`` takes what a consumer gives for one applicants.dlq record
(key, value, topic, partition, offset, timestamp, headers) and never raises:
a value that is not a dead letter (any bytes a producer could write) gives a
view with ``readable`` False and the ``problem``.  The record's fields are
``credit_core.messages.dead_letter``'s: stage, reason, errors, the original
bytes (base64, maybe cut to DLQ_ORIGINAL_MAX), where it came from
(``source``: the raw record, or the item's provenance for later stages),
the application id, when it failed, and for a record that was replayed
from the DLQ the attempt and the dead letter it was replayed from.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import orjson

from credit_core.clock import MAX_TIME_MS
from credit_core.messages.envelope import MAX_ATTEMPT
from credit_core.messages.keys import is_app_id

logger = logging.getLogger(__name__)

MAX_STAGE_CHARS = 64
_SHA256 = re.compile(r"[0-9a-f]{64}")
_RELATIVE = re.compile(r"([0-9]{1,9})\s*(s|sec|m|min|h|d|w)", re.ASCII | re.IGNORECASE)
_UNIT_MS = {"s": 1_000, "sec": 1_000, "m": 60_000, "min": 60_000, "h": 3_600_000, "d": 86_400_000,
            "w": 604_800_000}


@dataclass(frozen=True)
class DeadLetter:
    """One applicants.dlq record: where it is, and what it says (see the module docstring)."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None = None             # the DLQ record's Kafka timestamp
    key: bytes | None = None                    # the DLQ record's key (the application id, when known)
    readable: bool = False                      # the value is a dead-letter record
    problem: str | None = None                  # what could not be read, if anything
    stage: str | None = None
    reason: str = ""
    errors: tuple[tuple[str, str], ...] = ()    # (field, reason)
    app_id: int | None = None
    original: bytes = b""                       # the failed message's bytes, as kept
    original_size: int = 0                      # its size before any cut
    original_truncated: bool = False
    original_sha256: str | None = None          # of the whole original
    original_key: bytes | None = None           # the failed message's key
    source: Mapping[str, Any] = field(default_factory=dict)
    failed_at: int | None = None                # epoch ms, when the stage dead-lettered it
    attempt: int = 1                            # 1 for a first delivery, n + 1 for a replay of attempt n
    replayed_from: str | None = None            # the dead letter this record was replayed from
    replay_run: str | None = None
    applicant: Any = None                       # the applicant as the stage read it, when it was kept
    minimal: bool = False                       # the full record could not be written
    value: bytes | None = None                  # the DLQ record's own bytes, kept only when unreadable
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def coordinates(self) -> str:
        """``topic/partition/offset``: the dead letter's name in replay provenance and the ledger."""
        return coordinates(self.topic, self.partition, self.offset)

    @property
    def position(self) -> str:
        """``partition:offset`` within its topic (what the CLI prints and takes)."""
        return f"{self.partition}:{self.offset}"

    @property
    def time_ms(self) -> int | None:
        """When it failed: ``failed_at``, else the DLQ record's timestamp."""
        return self.failed_at if self.failed_at is not None else self.timestamp_ms

    @property
    def original_complete(self) -> bool:
        """The whole original is here (not cut, not lost to an unreadable base64)."""
        return not self.original_truncated and len(self.original) == self.original_size

    @property
    def original_text(self) -> str | None:
        """The original as text when it is UTF-8, else None."""
        try:
            return self.original.decode("utf-8")
        except UnicodeDecodeError:
            return None

    @property
    def sha256_ok(self) -> bool | None:
        """Whether the kept original matches its recorded sha256 (None when that cannot be told)."""
        if self.original_sha256 is None or not self.original_complete:
            return None
        return hashlib.sha256(self.original).hexdigest() == self.original_sha256

    def came_from(self) -> str:
        """Where the failed message was, in words."""
        return describe_source(self.source)

    def to_json(self, **extra: Any) -> dict[str, Any]:
        """A JSON-ready dict for export: bytes as UTF-8 text when they are, else base64 (``*_encoding`` says)."""
        out: dict[str, Any] = {
            "dlq": {"topic": self.topic, "partition": self.partition, "offset": self.offset,
                    "timestamp_ms": self.timestamp_ms},
            "readable": self.readable,
            "id": self.app_id,
            "stage": self.stage,
            "reason": self.reason,
            "errors": [{"field": f, "reason": r} for f, r in self.errors],
            "failed_at": self.failed_at,
            "attempt": self.attempt,
            "replayed_from": self.replayed_from,
            "replay_run": self.replay_run,
            "source": dict(self.source),
            **_bytes_json("original", self.original),
            "original_size": self.original_size,
            "original_truncated": self.original_truncated,
            "original_sha256": self.original_sha256,
            **_bytes_json("original_key", self.original_key),
        }
        if self.applicant is not None:
            out["applicant"] = self.applicant
        if self.minimal:
            out["minimal"] = True
        if self.problem:
            out["problem"] = self.problem
        if self.value is not None:
            out.update(_bytes_json("value", self.value))
        out.update(extra)
        return out


def coordinates(topic: str, partition: int, offset: int) -> str:
    return f"{topic}/{partition}/{offset}"


def parse_coordinates(text: str) -> tuple[str, int, int] | None:
    """(topic, partition, offset) from ``topic/partition/offset`` (a topic name has no '/'), else None."""
    if not isinstance(text, str):
        return None
    topic, _, rest = text.rpartition("/")
    topic, _, part = topic.rpartition("/")
    if not topic or not (part.isascii() and part.isdigit() and rest.isascii() and rest.isdigit()):
        return None
    return topic, int(part), int(rest)


def _bytes_json(name: str, data: bytes | None) -> dict[str, Any]:
    if data is None:
        return {name: None}
    try:
        return {name: data.decode("utf-8"), f"{name}_encoding": "utf-8"}
    except UnicodeDecodeError:
        return {name: base64.b64encode(data).decode("ascii"), f"{name}_encoding": "base64"}


# -- parsing ---------------------------------------------------------------------------------------------------

def loads_json(value: bytes) -> Any:
    """JSON from bytes: orjson, else the stdlib (integers beyond 64 bits); ValueError when neither reads it."""
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as first:
        try:
            return json.loads(value.decode("utf-8"))
        except (ValueError, RecursionError, UnicodeDecodeError):
            raise ValueError(str(first)) from None


def _int(value: Any, lo: int, hi: int) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi else None


def _text(value: Any, limit: int = 4000) -> str | None:
    return value[:limit] if isinstance(value, str) else None


def _b64(value: Any) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return None


def _errors(value: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list):
        return ()
    out = []
    for err in value:
        if isinstance(err, Mapping):
            out.append((str(err.get("field", "$"))[:4000], str(err.get("reason", ""))[:4000]))
        else:
            out.append(("$", str(err)[:4000]))
    return tuple(out)


def _headers(headers: Any) -> tuple[tuple[str, bytes], ...]:
    try:
        pairs = headers.items() if isinstance(headers, Mapping) else (headers or ())
        return tuple((str(k), bytes(v) if isinstance(v, (bytes, bytearray)) else str(v).encode())
                     for k, v in pairs)
    except (TypeError, ValueError):
        return ()


def parse_dead_letter(*, topic: str, partition: int, offset: int, timestamp: int | None = None,
                      key: bytes | None = None, value: bytes | None = None, headers: Any = ()) -> DeadLetter:
    """The ``DeadLetter`` view of one DLQ record; never raises (see the module docstring)."""
    where = {"topic": str(topic), "partition": _int(partition, -2**31, 2**31 - 1) or 0,
             "offset": _int(offset, 0, 2**63 - 1) or 0, "timestamp_ms": _int(timestamp, 0, MAX_TIME_MS),
             "key": bytes(key) if isinstance(key, (bytes, bytearray)) else None, "headers": _headers(headers)}
    raw = bytes(value) if isinstance(value, (bytes, bytearray)) else None
    try:
        return _parse(where, raw)
    except Exception as exc:  # whatever the bytes: a view saying what is wrong, never a crash
        return DeadLetter(**where, problem=f"unreadable: {type(exc).__name__}: {exc}"[:4000], value=raw)


def _parse(where: dict[str, Any], value: bytes | None) -> DeadLetter:
    if not value:
        return DeadLetter(**where, problem="the record has no value", value=value)
    try:
        rec = loads_json(value)
    except ValueError as exc:
        return DeadLetter(**where, problem=f"not JSON: {exc}"[:4000], value=value)
    if not isinstance(rec, dict):
        return DeadLetter(**where, problem=f"not a dead letter: a JSON {type(rec).__name__}", value=value)
    stage = _text(rec.get("stage"), MAX_STAGE_CHARS)
    problems = []
    if stage is None:
        problems.append("no stage")
    original = _b64(rec.get("original"))
    if original is None:
        if rec.get("original") not in (None, ""):
            problems.append("its original is not base64")
        original = b""
    size = _int(rec.get("original_size"), 0, 2**63 - 1)
    size = len(original) if size is None else size
    truncated = rec.get("original_truncated") is True or size > len(original)
    sha = rec.get("original_sha256")
    source = rec.get("source") if isinstance(rec.get("source"), dict) else {}
    attempt = _int(source.get("attempt"), 1, MAX_ATTEMPT) or 1
    readable = stage is not None
    return DeadLetter(
        **where,
        readable=readable,
        problem="; ".join(problems) or None,
        stage=stage,
        reason=_text(rec.get("reason")) or "",
        errors=_errors(rec.get("errors")),
        app_id=rec.get("id") if is_app_id(rec.get("id")) else None,
        original=original,
        original_size=size,
        original_truncated=truncated,
        original_sha256=sha if isinstance(sha, str) and _SHA256.fullmatch(sha) else None,
        original_key=_b64(rec.get("key")),
        source=source,
        failed_at=_int(rec.get("failed_at"), 0, MAX_TIME_MS),
        attempt=attempt,
        replayed_from=_text(source.get("replayed_from"), 1000),
        replay_run=_text(source.get("replay_run"), 200),
        applicant=rec.get("applicant"),
        minimal=rec.get("minimal") is True,
        value=None if readable else value,
    )


def from_record(record: Any) -> DeadLetter:
    """The view of an aiokafka ConsumerRecord of the DLQ topic."""
    return parse_dead_letter(topic=record.topic, partition=record.partition, offset=record.offset,
                             timestamp=record.timestamp, key=record.key, value=record.value,
                             headers=getattr(record, "headers", ()))


# -- presentation helpers -------------------------------------------------------------------------------------

def format_time(ms: int | None) -> str:
    """Epoch ms as ``YYYY-MM-DD HH:MM:SS.mmm`` UTC ('-' when unknown)."""
    if ms is None:
        return "-"
    try:
        return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    except (OverflowError, OSError, ValueError):
        return str(ms)


def describe_source(source: Mapping[str, Any]) -> str:
    """Where a failed message was (a dead letter's ``source``), in words."""
    if not source:
        return "unknown"
    parts = []
    topic = source.get("topic")
    if topic is not None:
        parts.append(f"{topic} partition {source.get('partition')} offset {source.get('offset')}")
    if source.get("timestamp_ms") is not None:
        parts.append(f"record time {format_time(_int(source.get('timestamp_ms'), 0, MAX_TIME_MS))}")
    for name, label in (("seq", "seq"), ("source", "producer source"), ("fetched_at", "fetched at"),
                        ("created_at", "created at")):
        if source.get(name) is not None:
            parts.append(f"{label} {source.get(name)}")
    return ", ".join(parts) or "unknown"


# -- filters (pure) -----------------------------------------------------------------------------------------------

def parse_time(text: str, now_ms: int) -> int:
    """Epoch ms from ``text``: ``now``; a duration ago (``30s``, ``15m``, ``2h``, ``7d``, ``1w``); an ISO-8601
    date or time (UTC when it names no zone); or epoch milliseconds. ValueError with the accepted forms."""
    raw = text.strip() if isinstance(text, str) else ""
    if raw.lower() == "now":
        return now_ms
    m = _RELATIVE.fullmatch(raw)
    if m:
        return now_ms - int(m.group(1)) * _UNIT_MS[m.group(2).lower()]
    if raw.isascii() and raw.isdigit() and len(raw) <= 15:
        return int(raw)
    try:
        when = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"not a time: {text!r} (use now, 30s / 15m / 2h / 7d ago, an ISO-8601 date or time "
                         "such as 2024-05-01T12:00:00Z (UTC unless a zone is given), or epoch milliseconds)")
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return int(when.timestamp() * 1000)


def stage_is(dl: DeadLetter, stages: Iterable[str]) -> bool:
    """The dead letter's stage is one of ``stages`` (case-insensitive); any stage when there are none."""
    wanted = {s.lower() for s in stages}
    return not wanted or (dl.stage or "").lower() in wanted


def reason_has(dl: DeadLetter, reasons: Iterable[str]) -> bool:
    """The reason (or a field error) contains one of ``reasons`` (case-insensitive); any when there are none."""
    wanted = [r.lower() for r in reasons]
    if not wanted:
        return True
    texts = [dl.reason.lower(), *(f"{f}: {r}".lower() for f, r in dl.errors)]
    return any(w in t for w in wanted for t in texts)


def within(dl: DeadLetter, since_ms: int | None, until_ms: int | None) -> bool:
    """It failed at or after ``since_ms`` and before ``until_ms`` (an unknown time passes only without bounds)."""
    if since_ms is None and until_ms is None:
        return True
    t = dl.time_ms
    if t is None:
        return False
    return (since_ms is None or t >= since_ms) and (until_ms is None or t < until_ms)


def named(dl: DeadLetter, ids: Iterable[int], positions: Iterable[tuple[int, int]]) -> bool:
    """It is one of the chosen positions (partition, offset) or names one of the chosen application ids;
    any dead letter when nothing is chosen."""
    ids, positions = set(ids), set(positions)
    if not ids and not positions:
        return True
    return (dl.partition, dl.offset) in positions or (dl.app_id is not None and dl.app_id in ids)


@dataclass(frozen=True)
class Selection:
    """Which dead letters a command acts on: the chosen ones (positions or application ids, either), and of
    those the ones that pass every filter given (stage, reason, time)."""

    stages: frozenset[str] = frozenset()
    reasons: tuple[str, ...] = ()
    since_ms: int | None = None
    until_ms: int | None = None
    ids: frozenset[int] = frozenset()
    positions: frozenset[tuple[int, int]] = frozenset()

    @property
    def chooses(self) -> bool:
        """Anything narrows the selection (a replay of everything must be asked for)."""
        return bool(self.stages or self.reasons or self.since_ms is not None or self.until_ms is not None
                    or self.ids or self.positions)

    def matches(self, dl: DeadLetter) -> bool:
        return (named(dl, self.ids, self.positions) and stage_is(dl, self.stages) and reason_has(dl, self.reasons)
                and within(dl, self.since_ms, self.until_ms))


def select(dls: Iterable[DeadLetter], selection: Selection) -> list[DeadLetter]:
    """The dead letters ``selection`` matches, oldest first (time, then partition and offset)."""
    return sort_by_time(dl for dl in dls if selection.matches(dl))


def sort_by_time(dls: Iterable[DeadLetter]) -> list[DeadLetter]:
    return sorted(dls, key=lambda d: (d.time_ms if d.time_ms is not None else -1, d.partition, d.offset))


# -- counts (pure) -------------------------------------------------------------------------------------------------

def stats(dls: Iterable[DeadLetter], status: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Counts over dead letters: total, by stage, by (stage, reason), by attempt, by replay status
    (``status``: coordinates -> status word), those naming no application, cut originals, first and last time."""
    dls = list(dls)
    times = [d.time_ms for d in dls if d.time_ms is not None]
    by_reason = Counter((d.stage or "?", d.reason if d.readable else "(unreadable record)") for d in dls)
    out: dict[str, Any] = {
        "total": len(dls),
        "unreadable": sum(1 for d in dls if not d.readable),
        "by_stage": dict(sorted(Counter(d.stage or "?" for d in dls).items())),
        "by_reason": [{"stage": s, "reason": r, "count": n}
                      for (s, r), n in sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0]))],
        "by_attempt": {str(a): n for a, n in sorted(Counter(d.attempt for d in dls).items())},
        "without_id": sum(1 for d in dls if d.app_id is None),
        "original_truncated": sum(1 for d in dls if d.original_truncated),
        "first_failed_at": min(times) if times else None,
        "last_failed_at": max(times) if times else None,
    }
    if status is not None:
        out["by_status"] = dict(sorted(Counter(status.get(d.coordinates, "new") for d in dls).items()))
    return out
