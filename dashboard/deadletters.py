"""Dead letters as the dashboard shows them, and the store the DLQ tail fills.

The records are read by credit_core.dlq.records (its ``DeadLetter`` view); here they are summed up and shown in
full, counted by stage and reason, the latest kept whole (their bytes cut to what is shown), and indexed by
application id for the lookup."""

from __future__ import annotations

import base64
import collections
import dataclasses
import logging
import threading
from dataclasses import dataclass
from typing import Any

from credit_core.dlq.records import DeadLetter

logger = logging.getLogger(__name__)

PREVIEW_BYTES = 4096          # bytes of the original shown as text
MAX_GROUPS = 500              # distinct (stage, reason) pairs counted; the rest count as OTHER
OTHER = "(other reasons)"
PER_ID = 20                   # dead letters remembered per application id (the latest)
UNREADABLE = "unreadable dead letter"


def stage_of(dl: DeadLetter) -> str:
    return dl.stage or "?"


def reason_of(dl: DeadLetter) -> str:
    """Its reason; for a record that is no dead letter, that it is unreadable."""
    if not dl.readable:
        return UNREADABLE
    return (dl.reason or "?")[:500]


def first_error(dl: DeadLetter) -> str | None:
    if not dl.errors:
        return dl.problem
    field, reason = dl.errors[0]
    return (f"{field}: {reason}" if field and field != "$" else reason)[:500]


def summary(dl: DeadLetter) -> dict[str, Any]:
    """The short form: who, where, why, when."""
    return {"id": dl.app_id, "stage": stage_of(dl), "reason": reason_of(dl), "failed_at": dl.time_ms,
            "attempt": dl.attempt, "first_error": first_error(dl),
            "dlq": {"partition": dl.partition, "offset": dl.offset}}


def detail(dl: DeadLetter) -> dict[str, Any]:
    """Everything the lookup shows: the errors, where the failed message came from, its original bytes (as text
    and base64, cut to PREVIEW_BYTES), the attempt and what it was replayed from."""
    shown = (dl.original if dl.readable else (dl.value or b""))[:PREVIEW_BYTES]
    source = dict(dl.source) if dl.source else {}
    return {
        **summary(dl),
        "errors": [{"field": f, "reason": r} for f, r in dl.errors][:50],
        "problem": dl.problem,
        "original_text": shown.decode("utf-8", errors="replace"),
        "original_base64": base64.b64encode(shown).decode("ascii"),
        "original_shown": len(shown),
        "original_size": dl.original_size if dl.readable else len(dl.value or b""),
        "original_truncated": dl.original_truncated,
        "source": {k: source.get(k) for k in ("topic", "partition", "offset", "timestamp_ms", "seq", "source")},
        "replayed_from": dl.replayed_from,
        "minimal": dl.minimal,
    }


def _trimmed(dl: DeadLetter) -> DeadLetter:
    """The dead letter with what is shown of its bytes only (a dead letter may keep 64 KiB of original)."""
    if len(dl.original) <= PREVIEW_BYTES and len(dl.value or b"") <= PREVIEW_BYTES and dl.applicant is None:
        return dl
    return dataclasses.replace(dl, original=dl.original[:PREVIEW_BYTES], applicant=None,
                               value=None if dl.value is None else dl.value[:PREVIEW_BYTES])


@dataclass
class TailStatus:
    """How the DLQ reader is doing."""

    connected: bool = False
    topic_exists: bool | None = None
    error: str | None = None
    partitions: int = 0
    records: int = 0
    last_record_at: float | None = None       # wall clock when the last dead letter was read
    last_poll_at: float | None = None


class DeadLetterStore:
    """What the DLQ tail has read: counts by stage and reason, the latest dead letters whole, and an index of
    application id -> its dead letters (summaries); thread-safe."""

    def __init__(self, *, keep: int, index_max: int):
        self._lock = threading.Lock()
        self._latest: collections.deque[DeadLetter] = collections.deque(maxlen=keep)
        self._groups: dict[tuple[str, str], int] = {}
        self._by_id: dict[int, list[tuple]] = {}     # id -> ((stage, reason), time, attempt, partition, offset)
        self._interned: dict[tuple[str, str], tuple[str, str]] = {}
        self._index_max = index_max
        self.index_full = False
        self.status = TailStatus()

    def add(self, letter: DeadLetter, now: float) -> None:
        with self._lock:
            self.status.records += 1
            self.status.last_record_at = now
            self._latest.append(_trimmed(letter))
            stage, reason = stage_of(letter), reason_of(letter)
            group = (stage, reason)
            if group not in self._groups and len(self._groups) >= MAX_GROUPS:
                group = (stage, OTHER)
            self._groups[group] = self._groups.get(group, 0) + 1
            if letter.app_id is not None:
                entries = self._by_id.get(letter.app_id)
                if entries is None:
                    if len(self._by_id) >= self._index_max:
                        self.index_full = True
                        return
                    entries = self._by_id[letter.app_id] = []
                # one copy of each (stage, reason) however many dead letters share it
                key = self._interned.setdefault(group, group) if len(self._interned) < MAX_GROUPS else group
                entries.append((key, letter.time_ms, letter.attempt, letter.partition, letter.offset))
                del entries[:-PER_ID]

    def reset(self) -> None:
        """Forget everything (the reader starts the topic again from its beginning)."""
        with self._lock:
            self._latest.clear()
            self._groups.clear()
            self._by_id.clear()
            self._interned.clear()
            self.index_full = False
            self.status.records = 0

    def groups(self) -> list[dict[str, Any]]:
        """Counts by stage and reason, largest first."""
        with self._lock:
            items = sorted(self._groups.items(), key=lambda kv: (-kv[1], kv[0]))
        return [{"stage": s, "reason": r, "count": n} for (s, r), n in items]

    def latest(self, n: int) -> list[DeadLetter]:
        """The ``n`` dead letters read last, newest first."""
        with self._lock:
            return list(reversed(self._latest))[:n]

    def for_id(self, app_id: int) -> tuple[list[dict[str, Any]], list[DeadLetter]]:
        """(summaries of every dead letter remembered for ``app_id``, oldest first; the ones still among the
        latest, whole)."""
        with self._lock:
            compact = list(self._by_id.get(app_id, ()))
            whole = [d for d in self._latest if d.app_id == app_id]
        summaries = [{"id": app_id, "stage": stage, "reason": reason, "failed_at": t, "attempt": attempt,
                      "dlq": {"partition": partition, "offset": offset}}
                     for (stage, reason), t, attempt, partition, offset in compact]
        return summaries, whole

    def status_json(self) -> dict[str, Any]:
        with self._lock:
            s = self.status
            return {"connected": s.connected, "topic_exists": s.topic_exists, "error": s.error,
                    "partitions": s.partitions, "records": s.records, "last_record_at": s.last_record_at,
                    "last_poll_at": s.last_poll_at, "index_full": self.index_full}

    def set_status(self, **changes: Any) -> None:
        with self._lock:
            for name, value in changes.items():
                setattr(self.status, name, value)
