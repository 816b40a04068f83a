"""The stages' effective sizes, derived once from the topology's Settings (the literal mode's choices live here)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class StageConfig:
    """What the stages and their runners need, with TOPOLOGY_MODE=literal already applied."""

    partitions: int
    max_raw_bytes: int          # a raw message over this is dead-lettered
    max_original: int           # original bytes kept in a dead letter
    per_message: int            # applicants per internal-topic message
    one_by_one: bool            # the literal port: one event at a time, as the Storm bolts did
    raw_reader: bool            # applicants.raw read by aiokafka's consumer group (RawReader), not a faust agent
    take: int                   # messages per batch of the filter and decision stages
    take_within: float
    submit_batch_size: int      # applicants per risk API request
    submit_take: int
    submit_within: float
    submit_concurrency: int
    save_chunk: int             # decisions per HBase write
    save_take: int
    save_within: float
    save_concurrency: int
    retry_base: float
    retry_cap: float


def stage_config(settings: Any) -> StageConfig:
    """The StageConfig of ``topology.settings.Settings`` (the one place that reads ``settings.literal``)."""
    literal = settings.literal
    return StageConfig(
        partitions=settings.partitions,
        max_raw_bytes=settings.max_raw_bytes,
        max_original=settings.dlq_original_max,
        per_message=1 if literal else settings.stage_batch,
        one_by_one=literal,
        raw_reader=settings.raw_consumer != "faust" and not literal,
        take=settings.take_max,
        take_within=settings.take_within,
        submit_batch_size=1 if literal else settings.submit_batch_size,
        # take() counts messages; each carries up to STAGE_BATCH applicants.
        submit_take=max(1, math.ceil(settings.submit_batch_size / settings.stage_batch)),
        submit_within=settings.submit_batch_within,
        submit_concurrency=1 if literal else settings.submit_concurrency,
        save_chunk=1 if literal else settings.save_batch_size,
        save_take=max(1, settings.save_batch_size // max(1, settings.stage_batch // 2)),
        save_within=settings.save_batch_within,
        save_concurrency=1 if literal else settings.save_concurrency,
        retry_base=settings.retry_base,
        retry_cap=settings.retry_cap,
    )
