"""Saving (the SaveBolt): write each decision to HBase (hbase_helper, batched, in a thread), then make its event
for the decisions topic.

HBase down or slow: the write is retried with backoff forever and the stream
waits. A decision that breaks the writer's contract (DecisionError, nothing
written) cannot be fixed by a retry: it is dead-lettered (stage "save") and
the rest of its batch is written. A raw record without a usable timestamp
(Kafka's -1, negative, missing) is not such a breach: it is saved at its
ingest time. Every decision is added to its application's history in HBase;
the current one is the latest raw record (hbase_helper.layout), whatever
order the save actors write in.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Executor
from typing import Callable, Iterable

from credit_core.clock import now_ms
from credit_core.jsoncodec import dumps
from credit_core.messages.dead_letter import item_dead_letter
from credit_core.messages.decision import DecisionError, decision_event, decision_item_error, validate_decision
from credit_core.messages.keys import id_key
from credit_core.retry import retry_forever
from hbase_helper.writer import DecisionWriter
from topology.stages.batching import SAVED, Incoming, Outgoing, Tally, collect_items

logger = logging.getLogger(__name__)

STAGE = "save"   # the stage's name in dead letters and logs (the Storm topology's SaveBolt)

Placed = tuple[int, dict]   # (partition, decision)
OnRetry = Callable[[BaseException], None]
OnSaved = Callable[[int, list[dict]], None]   # (saved_at, the decisions written at that time)


def split_valid(decisions: list[Placed]) -> tuple[list[Placed], list[tuple[Placed, str]]]:
    """(decisions the writer accepts, [(decision, reason)] that break its contract)."""
    good, bad = [], []
    for placed in decisions:
        try:
            validate_decision(placed[1])
            good.append(placed)
        except DecisionError as exc:
            bad.append((placed, str(exc)))
    return good, bad


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


async def write_with_retry(writer: DecisionWriter, executor: Executor, rows: list[dict], *,
                           base: float, cap: float, on_retry: OnRetry | None = None) -> int:
    """Write until HBase accepts (DecisionError propagates); returns the saved_at time used for the events.

    Each failed write that is retried is counted by the writer (credit_hbase_write_retries_total) and passed to
    ``on_retry``.
    """
    loop = asyncio.get_running_loop()

    async def write() -> int:
        await loop.run_in_executor(executor, writer.write, rows)
        return now_ms()

    def retried(exc: BaseException) -> None:
        writer.count_retry()
        if on_retry is not None:
            on_retry(exc)

    return await retry_forever(write, what=f"HBase write of {len(rows)} rows", give_up=(DecisionError,),
                               base=base, cap=cap, log=logger, describe=_describe, on_retry=retried)


async def save_decisions(writer: DecisionWriter, executor: Executor, decisions: list[Placed], *, chunk: int,
                         partitions: int, max_original: int, base: float, cap: float,
                         on_retry: OnRetry | None = None, on_saved: OnSaved | None = None
                         ) -> tuple[list[Outgoing], list[Outgoing]]:
    """(decision events for the decisions topic, dlq messages), after every good decision is in HBase;
    ``on_saved(saved_at, decisions)`` after each write (the end-to-end latency)."""
    events: list[Outgoing] = []
    dead: list[Outgoing] = []
    for start in range(0, len(decisions), chunk):
        part = decisions[start:start + chunk]
        try:
            saved_at = await write_with_retry(writer, executor, [d for _, d in part], base=base, cap=cap,
                                              on_retry=on_retry)
        except DecisionError:
            part, bad = split_valid(part)
            for (partition, dec), reason in bad:
                dead.append(item_dead_letter(stage=STAGE, item=dec,
                                             reason="decision breaks the HBase writer's contract",
                                             errors=[{"field": "$", "reason": reason}], partitions=partitions,
                                             max_original=max_original))
            if not part:
                continue
            saved_at = await write_with_retry(writer, executor, [d for _, d in part], base=base, cap=cap,
                                              on_retry=on_retry)
        if on_saved is not None:
            on_saved(saved_at, [d for _, d in part])
        for partition, dec in part:
            events.append((partition, id_key(dec["id"]), dumps(decision_event(dec, saved_at))))
    return events, dead


async def save_batch(writer: DecisionWriter, executor: Executor, msgs: Iterable[Incoming], *, chunk: int,
                     partitions: int, max_original: int, base: float, cap: float, tally: Tally | None = None,
                     on_retry: OnRetry | None = None, on_saved: OnSaved | None = None
                     ) -> tuple[list[Outgoing], list[Outgoing], int]:
    """(messages for decisions, dlq messages, items read) for (key, value, source) messages of applicants.scored;
    ``tally`` counts the decisions saved."""
    decisions, unreadable = collect_items(msgs, partitions, max_original, STAGE, decision_item_error)
    events, refused = await save_decisions(writer, executor, decisions, chunk=chunk, partitions=partitions,
                                           max_original=max_original, base=base, cap=cap, on_retry=on_retry,
                                           on_saved=on_saved)
    if tally is not None:
        tally[(SAVED, "")] += len(events)
    return events, unreadable + refused, len(decisions)
