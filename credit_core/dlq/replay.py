"""What a replay publishes on applicants.raw for a dead letter, and which dead letters a replay run takes.

A replayed record starts its applicant over at the filter stage:

- a dead letter of the filter stage holds the raw message itself: its
  original key and bytes are published as they were (after a fix of the
  cleaning rules), or the bytes an operator fixed (``fixed_value``);
- a dead letter of a later stage (decision, submit, save) holds an item or a
  decision (or, from the stage's safety net, a whole internal message of
  items): each applicant in it is published in the producer's envelope
  (``credit_core.messages.item.raw_message``), keyed by its id, so it is
  cleaned, screened, scored and saved again from the start; when the
  original was cut (DLQ_ORIGINAL_MAX), the applicant the stage kept in the
  dead letter is used.

Every replayed record carries the replay headers
(``credit_core.messages.envelope.replay_headers``): attempt = the dead
letter's attempt + 1, the dead letter's ``topic/partition/offset`` and the
run.  ``plan`` leaves out what must not be replayed by accident: a dead
letter the ledger names (unless ``again``), one whose next attempt would
pass ``max_attempts``, and an older dead letter of an application whose
newer one is replayed in the same run.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from credit_core.dlq.ledger import Replayed
from credit_core.dlq.records import DeadLetter, format_time, loads_json
from credit_core.messages.envelope import replay_headers
from credit_core.messages.item import raw_message
from credit_core.messages.keys import id_key, is_app_id

logger = logging.getLogger(__name__)

RAW_STAGE = "filter"   # the stage whose dead letters hold raw messages (topology.stages.cleaning.STAGE)

Message = tuple[bytes | None, bytes]   # (key, value) for applicants.raw


class NotReplayable(ValueError):
    """A dead letter holds nothing that can be published again; the message says why."""


def _item_messages(data: Any) -> list[Message]:
    items = data if isinstance(data, list) else [data]
    out = []
    for item in items:
        if isinstance(item, Mapping) and is_app_id(item.get("id")) and isinstance(item.get("applicant"), Mapping):
            try:
                out.append(raw_message(item))
            except (KeyError, TypeError, ValueError):
                continue
    return out


def replay_messages(dl: DeadLetter, fixed_value: bytes | None = None) -> list[Message]:
    """The applicants.raw (key, value) messages that replay ``dl``; NotReplayable with the reason.

    ``fixed_value`` replaces the original: published as given, keyed by the
    dead letter's application id (else the original key).
    """
    if not dl.readable:
        raise NotReplayable(f"not a dead-letter record ({dl.problem})")
    if fixed_value is not None:
        return [(id_key(dl.app_id) if dl.app_id is not None else dl.original_key, fixed_value)]
    if dl.original_complete and dl.sha256_ok is False:
        raise NotReplayable("its original does not match the sha256 recorded with it")
    if dl.stage == RAW_STAGE:
        if not dl.original_complete:
            raise NotReplayable(f"its original was cut to {len(dl.original):,} of {dl.original_size:,} bytes "
                                "(DLQ_ORIGINAL_MAX): replay it with fixed bytes (--value-file)")
        return [(dl.original_key, dl.original)]
    messages: list[Message] = []
    if dl.original_complete and dl.original:
        try:
            messages = _item_messages(loads_json(dl.original))
        except ValueError:
            messages = []
    if not messages and dl.app_id is not None and isinstance(dl.applicant, Mapping):
        messages = _item_messages({"id": dl.app_id, "applicant": dl.applicant, "provenance": dl.source})
    if not messages:
        what = "was cut (DLQ_ORIGINAL_MAX)" if not dl.original_complete else "is not an item with an applicant"
        raise NotReplayable(f"holds no applicant to replay: its original {what} and it kept no applicant")
    return messages


@dataclass(frozen=True)
class Planned:
    """A dead letter to replay: its messages and their headers."""

    dead_letter: DeadLetter
    messages: list[Message]
    headers: list[tuple[str, bytes]]
    attempt: int
    again: bool = False
    fixed_sha256: str | None = None


@dataclass(frozen=True)
class Skipped:
    """A chosen dead letter left out, and why (``kind``: replayed, attempts, unreplayable, superseded)."""

    dead_letter: DeadLetter
    kind: str
    why: str


@dataclass
class Plan:
    replay: list[Planned] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def plan(dls: Iterable[DeadLetter], ledger: Mapping[str, list[Replayed]], *, run: str, max_attempts: int,
         again: bool = False, fixed_value: bytes | None = None) -> Plan:
    """Which of the chosen dead letters ``dls`` to replay, with what, and which to leave out and why.

    Each dead letter once (the same coordinates twice count once); oldest
    first.  ``fixed_value`` needs exactly one dead letter.
    """
    unique: dict[str, DeadLetter] = {}
    for dl in dls:
        unique.setdefault(dl.coordinates, dl)
    chosen = sorted(unique.values(), key=lambda d: (d.time_ms if d.time_ms is not None else -1, d.partition,
                                                    d.offset))
    if fixed_value is not None and len(chosen) != 1:
        raise ValueError(f"a fixed value replaces one dead letter's original; {len(chosen)} are chosen")
    out = Plan()
    ready: list[Planned] = []
    for dl in chosen:
        done = ledger.get(dl.coordinates)
        if done and not again:
            last = done[-1]
            out.skipped.append(Skipped(dl, "replayed", f"already replayed by run {last.run} at "
                                                       f"{format_time(last.at_ms)} UTC (attempt {last.attempt}): "
                                                       "--again replays it once more"))
            continue
        attempt = dl.attempt + 1
        if attempt > max_attempts:
            out.skipped.append(Skipped(dl, "attempts", f"it failed at attempt {dl.attempt}; a replay would be "
                                                       f"attempt {attempt}, over the limit of {max_attempts} "
                                                       "(--max-attempts / DLQ_MAX_ATTEMPTS)"))
            continue
        try:
            messages = replay_messages(dl, fixed_value)
        except NotReplayable as exc:
            out.skipped.append(Skipped(dl, "unreplayable", str(exc)))
            continue
        ready.append(Planned(dl, messages, replay_headers(attempt=attempt, replayed_from=dl.coordinates, run=run),
                             attempt, again=bool(done),
                             fixed_sha256=hashlib.sha256(fixed_value).hexdigest() if fixed_value is not None
                             else None))
    # One replay per application in a run: its newest dead letter (the others would only repeat it).
    newest: dict[int, Planned] = {}
    for p in ready:
        if p.dead_letter.app_id is not None:
            newest[p.dead_letter.app_id] = p   # oldest first: the last one wins
    for p in ready:
        app_id = p.dead_letter.app_id
        if app_id is not None and newest[app_id] is not p:
            out.skipped.append(Skipped(p.dead_letter, "superseded",
                                       f"application {app_id}'s newer dead letter "
                                       f"{newest[app_id].dead_letter.position} is replayed in this run"))
        else:
            out.replay.append(p)
    return out
