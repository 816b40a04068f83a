"""decision: apply the lending policy; declines skip scoring and go to applicants.scored, the rest to applicants.eligible."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any, Iterable, Mapping

from topology.agents.common import collect_items, run_stage
from topology.app import app, clean_topic, emitter, policy, settings
from topology.emit import pack
from topology.policy import Policy
from topology.records import decision, item_dead_letter, item_error, now_ms

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
            dead.append(item_dead_letter(stage=STAGE, item=item, reason="internal error",
                                         errors=[{"field": "$", "reason": repr(exc)}], partitions=partitions,
                                         max_original=max_original))
            continue
        if dec is None:
            eligible.append((partition, item))
        else:
            declined.append((partition, dec))
    eligible_out, rejects = pack(eligible, per_message)
    declined_out, rejects2 = pack(declined, per_message)
    for _, item, why in rejects + rejects2:
        dead.append(item_dead_letter(stage=STAGE, item=item, reason="record cannot be sent",
                                     errors=[{"field": "$", "reason": why}], partitions=partitions,
                                     max_original=max_original))
    return eligible_out, declined_out, dead, len(items)


async def handle_clean(msgs) -> int:
    """Decide (key, value, source) messages of applicants.clean and deliver the results; returns the applicants."""
    eligible, scored, dead, n_items = decision_batch(
        msgs, policy=policy, partitions=settings.partitions, max_original=settings.dlq_original_max,
        per_message=1 if settings.literal else settings.stage_batch)
    await emitter.send_all({settings.topic_eligible: eligible, settings.topic_scored: scored,
                            settings.topic_dlq: dead})
    return n_items


@app.agent(clean_topic, name="decision")
async def decision_agent(stream):
    await run_stage(stream, STAGE, handle_clean, partial(emitter.send, settings.topic_dlq), take=settings.take_max,
                    within=settings.take_within, literal=settings.literal, partitions=settings.partitions,
                    max_original=settings.dlq_original_max)
