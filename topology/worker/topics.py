"""The topology's faust topics (raw bytes in and out: the stages do their own JSON)."""

from __future__ import annotations

from dataclasses import dataclass

import faust


@dataclass(frozen=True)
class PipelineTopics:
    raw: faust.TopicT
    clean: faust.TopicT
    eligible: faust.TopicT
    scored: faust.TopicT
    decisions: faust.TopicT
    dlq: faust.TopicT
    passthrough: faust.TopicT


def pipeline_topics(app: faust.App, settings) -> PipelineTopics:
    """The topics named by ``settings`` (topology.settings.Settings), TOPIC_PARTITIONS partitions each."""
    def topic(name: str) -> faust.TopicT:
        return app.topic(name, partitions=settings.partitions, key_serializer="raw", value_serializer="raw")

    return PipelineTopics(raw=topic(settings.topic_raw), clean=topic(settings.topic_clean),
                          eligible=topic(settings.topic_eligible), scored=topic(settings.topic_scored),
                          decisions=topic(settings.topic_decisions), dlq=topic(settings.topic_dlq),
                          passthrough=topic(settings.topic_passthrough))
