"""passthrough (bench reference, TOPOLOGY_MODE=passthrough): consume applicants.raw and produce the same records, no work."""

from __future__ import annotations

import logging
import time

from topology.agents.common import RawReader, StageStats, batches
from topology.app import app, emitter, raw_topic, settings

logger = logging.getLogger(__name__)


async def run_passthrough_agent(stream):
    stats = StageStats("passthrough")
    async for events in batches(stream, settings.take_max, settings.take_within):
        started = time.monotonic()
        await emitter.send(settings.topic_passthrough,
                           [(e.message.partition % settings.partitions, e.message.key, e.message.value)
                            for e in events])
        stats.add(len(events), len(events), time.monotonic() - started)


class RawPassthrough(RawReader):
    stage = "passthrough"
    settings = settings
    emitter = emitter

    async def handle(self, msgs) -> int:
        await emitter.send(settings.topic_passthrough,
                           [(src["partition"] % settings.partitions, key, value) for key, value, src in msgs])
        return len(msgs)


if settings.raw_consumer == "faust":
    app.agent(raw_topic, name="passthrough")(run_passthrough_agent)
else:
    app.service(RawPassthrough)
