"""submit: one POST per batch of eligible applicants to the risk API; scored go to applicants.scored, refusals to the DLQ.

Retries, splitting and what each HTTP answer means: ``topology.risk_client``.
"""

from __future__ import annotations

import logging
import math
from functools import partial
from typing import Any, Mapping

from topology.agents.common import collect_items, run_stage
from topology.app import app, eligible_topic, emitter, policy, settings
from topology.codec import dumps
from topology.emit import pack
from topology.records import decision, item_dead_letter, item_error, now_ms
from topology.risk_client import RiskClient

logger = logging.getLogger(__name__)

STAGE = "submit"


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
    pd, verdict = result.get("probability_of_default"), result.get("decision")
    if (verdict not in ("approve", "decline") or isinstance(pd, bool) or not isinstance(pd, (int, float))
            or not (0.0 <= pd <= 1.0) or math.isnan(pd)):
        return None, ("bad risk API result",
                      [{"field": "$", "reason": f"decision {verdict!r}, probability_of_default {pd!r}"}])
    reasons = result.get("reasons") if isinstance(result.get("reasons"), list) else []
    return decision(item, decision=verdict, decided_by="model", reasons=reasons, policy_version=policy_version,
                    probability_of_default=float(pd), risk_band=result.get("risk_band"),
                    model_version=result.get("model_version"), threshold=result.get("threshold"),
                    decided_at=decided_at), None


async def submit_items(client: RiskClient, items: list[tuple[int, dict]], *, batch_size: int, policy_version: str,
                       partitions: int, max_original: int):
    """(scored (partition, decision) pairs, dlq messages) for eligible items, in POSTs of up to batch_size."""
    scored: list[tuple[int, dict]] = []
    dead: list[tuple[int, bytes | None, bytes]] = []

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


async def submit_batch(client: RiskClient, msgs, *, batch_size: int, per_message: int, policy_version: str,
                       partitions: int, max_original: int):
    """(messages for applicants.scored, dlq messages, items) for (key, value, source) messages of .eligible."""
    items, dead = collect_items(msgs, partitions, max_original, STAGE, item_error)
    scored, dead2 = await submit_items(client, items, batch_size=batch_size, policy_version=policy_version,
                                       partitions=partitions, max_original=max_original)
    out, rejects = pack(scored, per_message)
    dead3 = [item_dead_letter(stage=STAGE, item=dec, reason="decision cannot be sent",
                              errors=[{"field": "$", "reason": why}], partitions=partitions, max_original=max_original)
             for _, dec, why in rejects]
    return out, dead + dead2 + dead3, len(items)


@app.agent(eligible_topic, name="submit", concurrency=1 if settings.literal else settings.submit_concurrency)
async def submit_agent(stream):
    client = RiskClient(settings.risk_api_url, settings.risk_api_token, timeout=settings.risk_api_timeout,
                        retry_base=settings.retry_base, retry_cap=settings.retry_cap)
    batch_size = 1 if settings.literal else settings.submit_batch_size
    per_message = 1 if settings.literal else settings.stage_batch
    # take() counts messages; each carries up to STAGE_BATCH applicants.
    take = max(1, math.ceil(settings.submit_batch_size / settings.stage_batch))

    async def handle(msgs) -> int:
        scored, dead, n_items = await submit_batch(client, msgs, batch_size=batch_size, per_message=per_message,
                                                   policy_version=policy.version, partitions=settings.partitions,
                                                   max_original=settings.dlq_original_max)
        await emitter.send_all({settings.topic_scored: scored, settings.topic_dlq: dead})
        return n_items

    try:
        await run_stage(stream, STAGE, handle, partial(emitter.send, settings.topic_dlq), take=take,
                        within=settings.submit_batch_within, literal=settings.literal, partitions=settings.partitions,
                        max_original=settings.dlq_original_max)
    finally:
        await client.close()
