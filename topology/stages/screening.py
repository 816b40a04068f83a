"""Screening (the DecisionBolt): the lending policy; declines skip scoring and go to applicants.scored, the rest
to applicants.eligible."""

from __future__ import annotations

import logging
from typing import Any, Iterable, Mapping

from credit_core.clock import now_ms
from credit_core.messages.dead_letter import item_dead_letter
from credit_core.messages.decision import decision
from credit_core.messages.item import item_error
from topology.policy import Policy
from topology.stages.batching import DECLINED_POLICY, ELIGIBLE, Incoming, Outgoing, Tally, collect_items, pack

logger = logging.getLogger(__name__)

STAGE = "decision"   # the stage's name in dead letters and logs (the Storm topology's DecisionBolt)


def policy_decline(item: Mapping[str, Any], policy: Policy, decided_at: int) -> dict[str, Any] | None:
    """The policy's decline decision for an item, or None when it is eligible for scoring."""
    reasons = policy.evaluate(item["applicant"])
    if not reasons:
        return None
    return decision(item, verdict="decline", decided_by="policy", reasons=reasons,
                    policy_version=policy.version, decided_at=decided_at)


def screen_batch(messages: Iterable[Incoming], *, policy: Policy, partitions: int, max_original: int,
                 per_message: int, tally: Tally | None = None
                 ) -> tuple[list[Outgoing], list[Outgoing], list[Outgoing], int]:
    """(eligible messages, declined-decision messages for applicants.scored, dlq messages, items read) for
    internal-topic messages from applicants.clean.

    Every item ends in exactly one of the three lists of messages; a message
    that is not a JSON array of items gets one dead letter.  ``tally`` counts
    the eligible items and the declines by their first policy rule.
    """
    decided_at = now_ms()
    items, dead = collect_items(messages, partitions, max_original, STAGE, item_error)
    eligible: list[tuple[int, dict]] = []
    declined: list[tuple[int, dict]] = []
    for partition, item in items:
        try:
            dec = policy_decline(item, policy, decided_at)
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
    eligible_out, eligible_unsendable = pack(eligible, per_message)
    declined_out, declined_unsendable = pack(declined, per_message)
    for _, item, why in eligible_unsendable + declined_unsendable:
        dead.append(item_dead_letter(stage=STAGE, item=item, reason="record cannot be sent",
                                     errors=[{"field": "$", "reason": why}], partitions=partitions,
                                     max_original=max_original))
    if tally is not None:
        tally[(ELIGIBLE, "")] += len(eligible) - len(eligible_unsendable)
        for _, dec in declined:
            tally[(DECLINED_POLICY, dec["reasons"][0]["code"])] += 1
        for _, dec, _ in declined_unsendable:
            tally[(DECLINED_POLICY, dec["reasons"][0]["code"])] -= 1
    return eligible_out, declined_out, dead, len(items)
