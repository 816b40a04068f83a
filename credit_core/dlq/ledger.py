"""The replay ledger: one record per replayed dead letter, keyed by its ``topic/partition/offset``.

A replay reads the ledger first and leaves out the dead letters it names
(replaying one again takes ``--again``), then, once the broker has
acknowledged the replayed records on applicants.raw, appends one entry per
dead letter: the run, when, which attempt it made and where the replayed
record went.  The ledger is a topic (TOPIC_DLQ + ``.replays``, one
partition) so that it lives beside the DLQ on the same broker, whoever
runs the tool and from wherever.  Parsing never raises: an entry that is
not one is ignored.

``replay_status`` joins the ledger with the DLQ: a dead letter is ``new``
(never replayed), ``replayed``, or ``failed again`` when a later dead
letter says it was replayed from it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import orjson

from credit_core.dlq.records import DeadLetter

logger = logging.getLogger(__name__)

LEDGER_VERSION = 1
NEW, REPLAYED, FAILED_AGAIN = "new", "replayed", "failed again"


@dataclass(frozen=True)
class Replayed:
    """One ledger entry: a dead letter replayed once."""

    dead_letter: str                 # topic/partition/offset
    run: str
    at_ms: int
    attempt: int                     # the attempt the replayed record made
    raw: tuple[str, int, int] | None  # where the replayed record went (topic, partition, offset)
    app_id: int | None = None
    stage: str | None = None
    reason: str | None = None
    again: bool = False              # replayed although the ledger named it already (--again)
    fixed_sha256: str | None = None  # the replacement value's digest, when the original was not replayed as is


def ledger_entry(dl: DeadLetter, *, run: str, at_ms: int, attempt: int, raw: tuple[str, int, int] | None,
                 again: bool = False, fixed_sha256: str | None = None) -> tuple[bytes, bytes]:
    """(key, value) of the ledger record for replaying ``dl``."""
    value = {"v": LEDGER_VERSION, "dead_letter": dl.coordinates, "run": run, "at_ms": at_ms, "attempt": attempt,
             "raw": {"topic": raw[0], "partition": raw[1], "offset": raw[2]} if raw else None,
             "id": dl.app_id, "stage": dl.stage, "reason": dl.reason, "again": again}
    if fixed_sha256:
        value["fixed_sha256"] = fixed_sha256
    return dl.coordinates.encode(), orjson.dumps(value)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63 else None


def parse_entry(key: bytes | None, value: bytes | None) -> Replayed | None:
    """The entry in a ledger record, or None when it is not one (any bytes)."""
    try:
        rec = orjson.loads(value) if value else None
    except orjson.JSONDecodeError:
        return None
    if not isinstance(rec, dict) or not isinstance(rec.get("dead_letter"), str) or not isinstance(rec.get("run"), str):
        return None
    if key is not None and key != rec["dead_letter"].encode("utf-8", "replace"):
        return None
    raw = rec.get("raw")
    where = None
    if isinstance(raw, dict) and isinstance(raw.get("topic"), str) and _int(raw.get("partition")) is not None \
            and _int(raw.get("offset")) is not None:
        where = (raw["topic"], raw["partition"], raw["offset"])
    app_id = _int(rec.get("id"))
    return Replayed(dead_letter=rec["dead_letter"], run=rec["run"], at_ms=_int(rec.get("at_ms")) or 0,
                    attempt=_int(rec.get("attempt")) or 0, raw=where, app_id=app_id or None,
                    stage=rec.get("stage") if isinstance(rec.get("stage"), str) else None,
                    reason=rec.get("reason") if isinstance(rec.get("reason"), str) else None,
                    again=rec.get("again") is True,
                    fixed_sha256=rec.get("fixed_sha256") if isinstance(rec.get("fixed_sha256"), str) else None)


def ledger_index(records: Iterable[tuple[bytes | None, bytes | None]]) -> dict[str, list[Replayed]]:
    """Dead letter (topic/partition/offset) -> its replays, oldest first, from (key, value) ledger records."""
    out: dict[str, list[Replayed]] = {}
    for key, value in records:
        entry = parse_entry(key, value)
        if entry is not None:
            out.setdefault(entry.dead_letter, []).append(entry)
    for entries in out.values():
        entries.sort(key=lambda e: e.at_ms)
    return out


def failures_of_replays(dls: Iterable[DeadLetter]) -> dict[str, list[DeadLetter]]:
    """Dead letter (topic/partition/offset) -> the later dead letters of records replayed from it."""
    out: dict[str, list[DeadLetter]] = {}
    for dl in dls:
        if dl.replayed_from:
            out.setdefault(dl.replayed_from, []).append(dl)
    return out


def replay_status(dls: Iterable[DeadLetter], ledger: Mapping[str, list[Replayed]]) -> dict[str, str]:
    """Dead letter (topic/partition/offset) -> ``new``, ``replayed`` or ``failed again`` (its latest replay
    came back as a dead letter: one naming it in ``replayed_from`` with that replay's run)."""
    dls = list(dls)
    failed = failures_of_replays(dls)
    out = {}
    for dl in dls:
        name = dl.coordinates
        entries, failures = ledger.get(name), failed.get(name, [])
        if entries:   # the latest replay decides: one that failed again, then replayed again with --again...
            latest = entries[-1].run
            out[name] = FAILED_AGAIN if any(f.replay_run == latest for f in failures) else REPLAYED
        else:
            out[name] = FAILED_AGAIN if failures else NEW
    return out
