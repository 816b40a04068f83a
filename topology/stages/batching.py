"""What every stage shares: (key, value, source) messages in, internal-topic items out and back, the safety net.

A stage reads messages as ``(key, value, source)`` tuples (``message_source``
for a faust event, ``record_source`` for an aiokafka record) and returns
``(partition, key, value)`` messages to send.  Internal topics carry JSON
arrays of items (``pack`` groups them, ``collect_items`` takes them apart).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, defaultdict
from typing import Any, Awaitable, Callable, Iterable

from credit_core.jsoncodec import dumps, loads
from credit_core.messages.dead_letter import dead_letter, item_bytes
from credit_core.messages.envelope import replay_provenance
from credit_core.messages.keys import id_key

logger = logging.getLogger(__name__)

Incoming = tuple[bytes | None, bytes | None, dict[str, Any]]     # (key, value, source)
Outgoing = tuple[int, bytes | None, bytes]                        # (partition, key, value)
Tally = Counter                                                   # (outcome, reason) -> applicants

MAX_MESSAGE_BYTES = 900 << 10   # under the brokers' default message.max.bytes (1 MiB) with room for the batch

# What a stage function counts in a ``tally`` (a collections.Counter of (outcome, reason)) when it is given one:
# the outcomes of credit_stage_records_out_total. Dead letters are not counted there: the runner reads their
# reason back (they are rare).
CLEAN, DECLINED_POLICY, ELIGIBLE, APPROVED, DECLINED_MODEL, SAVED, DEAD_LETTERED = (
    "clean", "declined_policy", "eligible", "approved", "declined_model", "saved", "dead_lettered")


def message_source(event) -> Incoming:
    """(key, value, source) of a faust event; a DLQ replay's headers add its provenance to the source."""
    m = event.message
    ts = m.timestamp
    src = {"topic": m.topic, "partition": m.partition, "offset": m.offset,
           "timestamp_ms": int(ts * 1000) if ts else None}
    if m.headers:
        src.update(replay_provenance(m.headers))
    return m.key, m.value, src


def record_source(m) -> Incoming:
    """(key, value, source) of an aiokafka ConsumerRecord; of its headers only a DLQ replay's are read, into
    the source (attempt, replayed_from, replay_run: credit_core.messages.envelope.replay_provenance)."""
    src = {"topic": m.topic, "partition": m.partition, "offset": m.offset, "timestamp_ms": m.timestamp}
    if m.headers:
        src.update(replay_provenance(m.headers))
    return m.key, m.value, src


def decode_items(value: bytes | None) -> list[Any]:
    """The elements of an internal-topic message (a JSON array, or one object); ValueError when it is neither."""
    if value is None:
        raise ValueError("empty message")
    data = loads(value)
    if isinstance(data, dict):
        return [data]
    if not isinstance(data, list):
        raise ValueError(f"not a JSON array of items but a JSON {type(data).__name__}")
    return data


def collect_items(messages: Iterable[Incoming], partitions: int, max_original: int, stage: str,
                  check: Callable[[Any], str | None]) -> tuple[list[tuple[int, dict]], list[Outgoing]]:
    """(partition, item) pairs from internal-topic messages, and dlq messages for what ``check`` refuses.

    A message that is not JSON gets one dead letter; in a message that is,
    each item that breaks the topic's contract gets its own and the others
    carry on.
    """
    items: list[tuple[int, dict]] = []
    dead: list[Outgoing] = []
    for key, value, src in messages:
        partition = src["partition"] % partitions
        try:
            decoded = decode_items(value)
        except Exception as exc:
            dead.append(dead_letter(stage=stage, reason="bad internal message",
                                    errors=[{"field": "$", "reason": str(exc)}], original=value, key=key, src=src,
                                    app_id=None, partitions=partitions, max_original=max_original))
            continue
        for item in decoded:
            why = check(item)
            if why is None:
                items.append((partition, item))
            else:
                dead.append(dead_letter(stage=stage, reason="bad internal item", errors=[{"field": "$", "reason": why}],
                                        original=item_bytes(item), key=key, src=src, app_id=None,
                                        partitions=partitions, max_original=max_original))
    return items, dead


def pack(items: Iterable[tuple[int, dict[str, Any]]], per_message: int, *, max_bytes: int = MAX_MESSAGE_BYTES
         ) -> tuple[list[Outgoing], list[tuple[int, dict[str, Any], str]]]:
    """(messages, rejects): (partition, item) pairs grouped into messages of at most ``per_message`` items.

    Each message is keyed by its first item's id.  A group that cannot be
    serialised or is over ``max_bytes`` is halved until the items at fault are
    alone; those come back as ``(partition, item, reason)`` rejects for the
    caller to dead-letter, so one bad item never holds up the others.
    """
    if per_message < 1:
        raise ValueError("per_message must be >= 1")
    by_partition: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for partition, item in items:
        by_partition[partition].append(item)
    out: list[Outgoing] = []
    rejects: list[tuple[int, dict[str, Any], str]] = []
    for partition, group in by_partition.items():
        for i in range(0, len(group), per_message):
            _pack_chunk(partition, group[i:i + per_message], max_bytes, out, rejects)
    return out, rejects


def _pack_chunk(partition: int, chunk: list[dict[str, Any]], max_bytes: int, out: list, rejects: list) -> None:
    try:
        value = dumps(chunk)
        reason = None if len(value) <= max_bytes else f"{len(value)} bytes is more than the limit of {max_bytes}"
    except Exception as exc:  # orjson: nesting over 254, ints over 64 bits, ...
        reason = f"cannot be serialised: {type(exc).__name__}: {exc}"
    if reason is None:
        out.append((partition, id_key(chunk[0]["id"]), value))
    elif len(chunk) == 1:
        rejects.append((partition, chunk[0], reason))
    else:
        mid = len(chunk) // 2
        _pack_chunk(partition, chunk[:mid], max_bytes, out, rejects)
        _pack_chunk(partition, chunk[mid:], max_bytes, out, rejects)


async def handle_guarded(stage: str, handle: Callable[[list], Awaitable[int]], msgs: list[Incoming],
                         send_dead: Callable[[list], Awaitable[None]], *, partitions: int, max_original: int) -> int:
    """``await handle(msgs)``; if it raises, each message alone, and a dead letter for any that still fails.

    The stages catch every failure they know of per message; this is the net
    under them, so that no input (nor a bug it triggers) can make a batch
    replay forever or hold up the messages behind it.  ``handle`` returns
    how many applicants it handled, and so does this.
    """
    try:
        return await handle(msgs)
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("%s: a batch of %d messages failed; handling them one by one", stage, len(msgs))
    handled = 0
    for msg in msgs:
        try:
            handled += await handle([msg])
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            key, value, src = msg
            logger.error("%s: message at %s failed alone (%s: %s); dead-lettered", stage, src,
                         type(exc).__name__, exc)
            await send_dead([dead_letter(stage=stage, reason="internal error",
                                         errors=[{"field": "$", "reason": f"{type(exc).__name__}: {exc}"}],
                                         original=value, key=key, src=src, app_id=None, partitions=partitions,
                                         max_original=max_original)])
    return handled


class StageStats:
    """Per-stage counters, logged every ``every`` seconds: applicants in, messages in, busy share of wall time."""

    def __init__(self, stage: str, every: float = 10.0):
        self.stage = stage
        self.every = every
        self._reset(time.monotonic())

    def _reset(self, now: float) -> None:
        self.started = now
        self.items = self.messages = self.batches = 0
        self.busy = 0.0

    def add(self, messages: int, items: int, busy: float) -> None:
        self.messages += messages
        self.items += items
        self.batches += 1
        self.busy += busy
        now = time.monotonic()
        if now - self.started >= self.every:
            wall = now - self.started
            logger.info("%s: %.0f applicants/s in %.0f messages/s, %d batches, busy %.0f%%", self.stage,
                        self.items / wall, self.messages / wall, self.batches, 100 * self.busy / wall)
            self._reset(now)
