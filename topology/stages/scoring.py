"""Scoring (the SubmitBolt): one POST per batch of eligible applicants to the risk API; scored applicants go to
applicants.scored, refusals to the DLQ.

Retries, splitting and what each HTTP answer means: ``topology.risk_client``.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Iterable, Mapping

from credit_core.clock import now_ms
from credit_core.jsoncodec import dumps
from credit_core.messages.dead_letter import item_dead_letter
from credit_core.messages.decision import decision
from credit_core.messages.item import item_error
from topology.risk_client import RiskClient
from topology.stages.batching import APPROVED, DECLINED_MODEL, Incoming, Outgoing, Tally, collect_items, pack

logger = logging.getLogger(__name__)

STAGE = "submit"   # the stage's name in dead letters and logs (the Storm topology's SubmitBolt)


def outcome(item: Mapping[str, Any], result: Mapping[str, Any] | None, refusal: str | None, *,
            policy_version: str, decided_at: int) -> tuple[dict | None, tuple[str, list] | None]:
    """(decision, None) for a usable score; (None, (reason, errors)) for anything to dead-letter."""
    if refusal is not None:
        return None, ("risk API rejected the request", [{"field": "$", "reason": refusal}])
    err = result.get("error")
    if err is not None:
        if isinstance(err, Mapping):
            errors = [{"field": str(err.get("field", "$")), "reason": str(err.get("reason", err))}]
        else:
            errors = [{"field": "$", "reason": str(err)}]
        return None, ("risk API rejected the applicant", errors)
    if result.get("id") is not None and result.get("id") != item["id"]:
        return None, ("risk API result does not match the applicant",
                      [{"field": "id", "reason": f"asked {item['id']}, answered {result.get('id')!r}"}])
    probability, verdict = result.get("probability_of_default"), result.get("decision")
    if (verdict not in ("approve", "decline") or isinstance(probability, bool)
            or not isinstance(probability, (int, float)) or not (0.0 <= probability <= 1.0) or math.isnan(probability)):
        return None, ("bad risk API result",
                      [{"field": "$", "reason": f"decision {verdict!r}, probability_of_default {probability!r}"}])
    reasons = result.get("reasons") if isinstance(result.get("reasons"), list) else []
    return decision(item, verdict=verdict, decided_by="model", reasons=reasons, policy_version=policy_version,
                    probability_of_default=float(probability), risk_band=result.get("risk_band"),
                    model_version=result.get("model_version"), threshold=result.get("threshold"),
                    decided_at=decided_at), None


async def score_items(client: RiskClient, items: list[tuple[int, dict]], *, batch_size: int, policy_version: str,
                      partitions: int, max_original: int) -> tuple[list[tuple[int, dict]], list[Outgoing]]:
    """(scored (partition, decision) pairs, dlq messages) for eligible items, in POSTs of up to batch_size."""
    scored: list[tuple[int, dict]] = []
    dead: list[Outgoing] = []

    def reject(item: dict, reason: str, errors: list, applicant: Any = None) -> None:
        dead.append(item_dead_letter(stage=STAGE, item=item, reason=reason, errors=errors, partitions=partitions,
                                     max_original=max_original, applicant=applicant))

    for start in range(0, len(items), batch_size):
        chunk = items[start:start + batch_size]
        try:
            answers = await client.score_split([item["applicant"] for _, item in chunk])
        except TypeError:
            # The request body could not be serialised (orjson: nesting, numbers): find the applicants at fault.
            sendable = []
            for partition, item in chunk:
                try:
                    dumps(item["applicant"])
                    sendable.append((partition, item))
                except TypeError as exc:
                    reject(item, "applicant cannot be sent to the risk API",
                           [{"field": "applicant", "reason": str(exc)}])
            chunk = sendable
            answers = await client.score_split([item["applicant"] for _, item in chunk]) if chunk else []
        decided_at = now_ms()
        for (partition, item), (result, refusal) in zip(chunk, answers):
            try:
                dec, failure = outcome(item, result, refusal, policy_version=policy_version, decided_at=decided_at)
            except Exception as exc:  # a bug must not lose the record or stop the stream
                logger.exception("submit failed on %s", item.get("id"))
                dec, failure = None, ("internal error", [{"field": "$", "reason": repr(exc)}])
            if dec is not None:
                scored.append((partition, dec))
            else:
                reason, errors = failure
                reject(item, reason, errors, applicant=item["applicant"])
    return scored, dead


async def score_batch(client: RiskClient, msgs: Iterable[Incoming], *, batch_size: int, per_message: int,
                      policy_version: str, partitions: int, max_original: int, tally: Tally | None = None
                      ) -> tuple[list[Outgoing], list[Outgoing], int]:
    """(messages for applicants.scored, dlq messages, items read) for (key, value, source) messages of .eligible;
    ``tally`` counts the model's approvals and declines."""
    items, unreadable = collect_items(msgs, partitions, max_original, STAGE, item_error)
    scored, refused = await score_items(client, items, batch_size=batch_size, policy_version=policy_version,
                                        partitions=partitions, max_original=max_original)
    out, unsendable = pack(scored, per_message)
    unsent = [item_dead_letter(stage=STAGE, item=dec, reason="decision cannot be sent",
                               errors=[{"field": "$", "reason": why}], partitions=partitions,
                               max_original=max_original)
              for _, dec, why in unsendable]
    if tally is not None:
        approved = sum(1 for _, dec in scored if dec["decision"] == "approve")
        approved -= sum(1 for _, dec, _ in unsendable if dec["decision"] == "approve")
        tally[(APPROVED, "")] += approved
        tally[(DECLINED_MODEL, "")] += len(scored) - len(unsendable) - approved
    return out, unreadable + refused + unsent, len(items)
