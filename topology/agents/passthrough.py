"""passthrough (bench reference, TOPOLOGY_MODE=passthrough): consume applicants.raw and produce the same records, no work."""

from __future__ import annotations

import logging

from topology.agents.common import batches
from topology.app import app, emitter, raw_topic, settings

logger = logging.getLogger(__name__)


@app.agent(raw_topic, name="passthrough")
async def passthrough_agent(stream):
    async for events in batches(stream, settings.take_max, settings.take_within):
        await emitter.send(settings.topic_passthrough,
                           [(e.message.partition % settings.partitions, e.message.key, e.message.value)
                            for e in events])
