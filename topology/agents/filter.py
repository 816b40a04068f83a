"""filter: parse, clean and validate each raw applicant (as the FilterBolt did); the rest goes to the DLQ with the reason.

The cleaning and validation rules are ``credit_core.fields.clean_record``
(strip ``%`` and `` months``, empty bc_open_to_buy / bc_util /
total_il_high_credit_limit -> 0, ids, numbers and ranges, term, grade,
funded_amnt <= loan_amnt).  Nothing is raised out of the agent: any failure,
even an unexpected one, becomes a dead letter.

Two runners share ``filter_batch`` (RAW_CONSUMER):

- ``aiokafka`` (default): applicants.raw carries one message per applicant,
  and faust's per-message consumer path (events, queues, sensors, acks) costs
  ~90 us of CPU per message here, against ~5 us for aiokafka's own
  ``getmany``; so the worker reads applicants.raw with a plain aiokafka
  consumer group (``<app id>-raw``) inside the faust worker, and commits a
  batch's offsets only after its messages are delivered downstream;
- ``faust``: the same work as a faust agent (``filter_agent``), for faust's
  test contexts and as the reference.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any, Iterable, Mapping

import orjson

from credit_core.fields import RecordError, clean_record
from topology.app import app, emitter, raw_topic, settings
from topology.agents.common import RawReader, run_stage
from topology.emit import pack
from topology.records import best_effort_id, dead_letter, id_key, now_ms, partition_for, provenance

logger = logging.getLogger(__name__)

STAGE = "filter"


class Rejected(Exception):
    def __init__(self, reason: str, errors: list[dict[str, str]] | None = None, app_id: int | None = None,
                 applicant: Any = None):
        super().__init__(reason)
        self.reason = reason
        self.errors = errors or []
        self.app_id = app_id
        self.applicant = applicant


def parse(value: bytes | None, max_bytes: int) -> tuple[Mapping[str, Any], Any]:
    """(applicant, producer provenance) from a raw message value; Rejected with the reason otherwise."""
    if value is None or len(value) == 0:
        raise Rejected("empty message", [{"field": "$", "reason": "message has no value"}])
    if len(value) > max_bytes:
        raise Rejected("payload too large",
                       [{"field": "$", "reason": f"{len(value)} bytes is more than the limit of {max_bytes}"}])
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        try:
            value.decode("utf-8")
        except UnicodeDecodeError as uexc:
            raise Rejected("not UTF-8", [{"field": "$", "reason": f"invalid UTF-8 at byte {uexc.start}"}]) from None
        raise Rejected("not JSON", [{"field": "$", "reason": str(exc)}]) from None
    if not isinstance(data, dict):
        raise Rejected("not a JSON object", [{"field": "$", "reason": f"got a JSON {type(data).__name__}"}])
    applicant = data.get("applicant")
    if isinstance(applicant, dict):
        return applicant, data.get("provenance")
    if "applicant" in data:
        raise Rejected("bad envelope", [{"field": "applicant", "reason": "must be an object"}])
    return data, None  # a bare applicant object


def filter_one(key: bytes | None, value: bytes | None, src: Mapping[str, Any], *, max_bytes: int,
               ingested_at: int) -> dict[str, Any]:
    """The clean item for one raw message; raises Rejected."""
    applicant, prov = parse(value, max_bytes)
    try:
        rec = clean_record(applicant)
    except RecordError as exc:
        raise Rejected("invalid applicant", exc.as_list(), best_effort_id(applicant, key), applicant) from None
    return {"id": rec["id"], "applicant": rec, "provenance": provenance(prov, src, ingested_at),
            "ingested_at": ingested_at}


def filter_batch(messages: Iterable[tuple[bytes | None, bytes | None, Mapping[str, Any]]], *, partitions: int,
                 max_bytes: int, max_original: int, per_message: int
                 ) -> tuple[list[tuple[int, bytes, bytes]], list[tuple[int, bytes | None, bytes]], int]:
    """(messages for applicants.clean, messages for the DLQ, applicants kept) for (key, value, source) tuples.

    Every message ends in exactly one of the two lists, whatever its bytes.
    """
    ingested_at = now_ms()
    clean: list[tuple[int, dict[str, Any]]] = []
    origins: dict[int, tuple[bytes | None, bytes | None, Mapping[str, Any]]] = {}
    dead: list[tuple[int, bytes | None, bytes]] = []
    for key, value, src in messages:
        try:
            item = filter_one(key, value, src, max_bytes=max_bytes, ingested_at=ingested_at)
            ikey = id_key(item["id"])
            # Keyed by its id, the raw record already sits on murmur2(id)'s partition (the producer's
            # partitioner); hashing again in Python cost ~2% of the worker.
            clean.append((src["partition"] % partitions if key == ikey else partition_for(ikey, partitions), item))
            origins[id(item)] = (key, value, src)
            continue
        except Rejected as exc:
            reason, errors, app_id, applicant = exc.reason, exc.errors, exc.app_id, exc.applicant
        except Exception as exc:  # a bug must not lose the record or stop the stream
            logger.exception("filter failed on %s", src)
            reason, errors, app_id, applicant = "internal error", [{"field": "$", "reason": repr(exc)}], None, None
        if app_id is None:
            app_id = best_effort_id(None, key)
        dead.append(dead_letter(stage=STAGE, reason=reason, errors=errors, original=value, key=key, src=src,
                                app_id=app_id, partitions=partitions, max_original=max_original,
                                applicant=applicant if len(value or b"") <= max_original else None))
    out, rejects = pack(clean, per_message)
    for _, item, why in rejects:
        key, value, src = origins[id(item)]
        dead.append(dead_letter(stage=STAGE, reason="clean record cannot be sent",
                                errors=[{"field": "$", "reason": why}], original=value, key=key, src=src,
                                app_id=item["id"], partitions=partitions, max_original=max_original))
    return out, dead, len(clean) - len(rejects)


async def handle_raw(msgs) -> int:
    """Filter (key, value, source) messages of applicants.raw and deliver the results; returns how many."""
    clean, dead, kept = filter_batch(msgs, partitions=settings.partitions, max_bytes=settings.max_raw_bytes,
                                     max_original=settings.dlq_original_max,
                                     per_message=1 if settings.literal else settings.stage_batch)
    await emitter.send_all({settings.topic_clean: clean, settings.topic_dlq: dead})
    if dead:
        logger.info("filter: %d of %d dead-lettered", len(dead), len(msgs))
    return len(msgs)


async def run_filter_agent(stream):
    """The filter as a faust agent body (RAW_CONSUMER=faust, the literal mode, and faust test contexts)."""
    await run_stage(stream, STAGE, handle_raw, partial(emitter.send, settings.topic_dlq), take=settings.take_max,
                    within=settings.take_within, literal=settings.literal, partitions=settings.partitions,
                    max_original=settings.dlq_original_max)


class RawFilter(RawReader):
    """The filter over applicants.raw with aiokafka's consumer group: getmany -> filter -> send -> commit."""

    stage = STAGE
    settings = settings
    emitter = emitter

    async def handle(self, msgs) -> int:
        return await handle_raw(msgs)


# Built but only registered (subscribed) when it is the raw consumer; test contexts clone it either way.
filter_agent = app.conf.Agent(run_filter_agent, name="filter", app=app, channel=raw_topic, on_error=app._on_agent_error)
if settings.raw_consumer == "faust" or settings.literal:
    app.agents[filter_agent.name] = filter_agent
else:
    app.service(RawFilter)
