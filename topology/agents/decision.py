"""decision: apply the lending policy; declines skip scoring and go to applicants.scored, the rest to applicants.eligible."""

from __future__ import annotations

import logging
from typing import Any, Iterable, Mapping

import time

from topology.agents.common import StageStats, batches, decode_items, message_source
from topology.app import app, clean_topic, emitter, policy, settings
from topology.codec import dumps
from topology.emit import pack
from topology.policy import Policy
from topology.records import decision, dlq_record, id_key, now_ms, partition_for

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
    """(eligible messages, scored messages, dlq messages) for internal-topic messages from applicants.clean."""
    decided_at = now_ms()
    eligible: list[tuple[int, dict]] = []
    declined: list[tuple[int, dict]] = []
    dead: list[tuple[int, bytes | None, bytes]] = []
    for key, value, src in messages:
        partition = src["partition"] % partitions
        try:
            items = decode_items(value)
        except Exception as exc:
            rec = dlq_record(stage=STAGE, reason="bad internal message", errors=[{"field": "$", "reason": str(exc)}],
                             original=value, key=key, src=src, app_id=None, max_original=max_original)
            dead.append((partition, key, dumps(rec)))
            continue
        for item in items:
            try:
                dec = decide(item, policy, decided_at)
            except Exception as exc:  # a bug must not lose the record or stop the stream
                logger.exception("decision failed on %s", item.get("id"))
                raw = dumps(item)
                rec = dlq_record(stage=STAGE, reason="internal error", errors=[{"field": "$", "reason": repr(exc)}],
                                 original=raw, key=key, src=src, app_id=item.get("id"), max_original=max_original)
                dead.append((partition_for(id_key(item["id"]), partitions), id_key(item["id"]), dumps(rec)))
                continue
            if dec is None:
                eligible.append((partition, item))
            else:
                declined.append((partition, dec))
    return pack(eligible, per_message), pack(declined, per_message), dead, len(eligible) + len(declined)


@app.agent(clean_topic, name="decision")
async def decision_agent(stream):
    per_message = 1 if settings.literal else settings.stage_batch
    stats = StageStats(STAGE)
    async for events in batches(stream, settings.take_max, settings.take_within, literal=settings.literal):
        started = time.monotonic()
        eligible, scored, dead, n_items = decision_batch((message_source(e) for e in events), policy=policy,
                                                partitions=settings.partitions,
                                                max_original=settings.dlq_original_max, per_message=per_message)
        await emitter.send_all({settings.topic_eligible: eligible, settings.topic_scored: scored,
                                settings.topic_dlq: dead})
        stats.add(len(events), n_items, time.monotonic() - started)
