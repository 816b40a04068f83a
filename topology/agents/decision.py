"""decision: apply the lending policy; declines skip scoring and go to applicants.scored, the rest to applicants.eligible."""

from __future__ import annotations

import logging
from typing import Any, Iterable, Mapping

import time

from topology.agents.common import StageStats, batches, collect_items, handle_guarded, message_source
from topology.app import app, clean_topic, emitter, policy, settings
from topology.emit import pack
from topology.policy import Policy
from topology.records import dead_letter, decision, id_key, item_bytes, item_error, now_ms

logger = logging.getLogger(__name__)

STAGE = "decision"


def decide(item: Mapping[str, Any], policy: Policy, decided_at: int) -> dict[str, Any] | None:
    """The policy decline decision for an item, or None when it is eligible for scoring."""
    reasons = policy.evaluate(item["applicant"])
    if not reasons:
        return None
    return decision(item, decision="decline", decided_by="policy", reasons=reasons,
                    policy_version=policy.version, decided_at=decided_at)


def decision_batch(messages: Iterable[tuple[bytes | None, bytes | None, Mapping[str, Any]]], *, policy: Policy,
                   partitions: int, max_original: int, per_message: int):
    """(eligible messages, scored messages, dlq messages, items) for internal-topic messages from applicants.clean.

    Every item ends in exactly one of the three lists; a message that is not
    a JSON array of items gets one dead letter.
    """
    decided_at = now_ms()
    items, dead = collect_items(messages, partitions, max_original, STAGE, item_error)
    eligible: list[tuple[int, dict]] = []
    declined: list[tuple[int, dict]] = []
    for partition, item in items:
        try:
            dec = decide(item, policy, decided_at)
        except Exception as exc:  # a bug must not lose the record or stop the stream
            logger.exception("decision failed on %s", item.get("id"))
            dead.append(dead_letter(stage=STAGE, reason="internal error", errors=[{"field": "$", "reason": repr(exc)}],
                                    original=item_bytes(item), key=id_key(item["id"]), src=item.get("provenance"),
                                    app_id=item["id"], partitions=partitions, max_original=max_original))
            continue
        if dec is None:
            eligible.append((partition, item))
        else:
            declined.append((partition, dec))
    eligible_out, rejects = pack(eligible, per_message)
    declined_out, rejects2 = pack(declined, per_message)
    for _, item, why in rejects + rejects2:
        dead.append(dead_letter(stage=STAGE, reason="record cannot be sent", errors=[{"field": "$", "reason": why}],
                                original=item_bytes(item), key=id_key(item["id"]), src=item.get("provenance"),
                                app_id=item["id"], partitions=partitions, max_original=max_original))
    return eligible_out, declined_out, dead, len(items)


@app.agent(clean_topic, name="decision")
async def decision_agent(stream):
    stats = StageStats(STAGE)

    async def handle(msgs) -> None:
        eligible, scored, dead, n_items = decision_batch(
            msgs, policy=policy, partitions=settings.partitions, max_original=settings.dlq_original_max,
            per_message=1 if settings.literal else settings.stage_batch)
        await emitter.send_all({settings.topic_eligible: eligible, settings.topic_scored: scored,
                                settings.topic_dlq: dead})
        stats.saw(n_items)

    async def send_dead(dead) -> None:
        await emitter.send(settings.topic_dlq, dead)

    async for events in batches(stream, settings.take_max, settings.take_within, literal=settings.literal):
        started = time.monotonic()
        await handle_guarded(STAGE, handle, [message_source(e) for e in events], send_dead,
                             partitions=settings.partitions, max_original=settings.dlq_original_max)
        stats.add(len(events), 0, time.monotonic() - started)
