"""The worker's view of its stages: each stage's instruments, the health snapshot, readiness, scrape-time gauges.

``WorkerHealth`` (``TopologyApp.health``) keeps a ``StageWatch`` per stage
and, on each /health, /metrics or 1 s tick, reads the consumers' positions
(``topology.worker.lag``) into a ``Snapshot``: per stage its state, lag,
seconds since its last record and error.  ``HealthCollector`` exports the
last snapshot as credit_consumer_lag_records, credit_consumer_lag_available,
credit_stage_seconds_since_last_record and credit_stage_state.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Sequence

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from topology.worker.health import STATES, StageReport, StageWatch, health_response, total
from topology.worker.lag import Positions, aiokafka_positions, faust_positions
from topology.worker.metrics import BROKER, NullStageMeter, StageMeter, stage_meter

logger = logging.getLogger(__name__)

LAG_UNRELIABLE = ("KAFKA_END_OFFSETS_RELIABLE is false: this broker's end offsets are wrong (Tansu), so no lag "
                  "is reported; a stall is judged from what each stage read and has not processed")


class Instruments:
    """What a stage's runner records: delivered batches (metrics + last record time), durations, retries."""

    def __init__(self, watch: StageWatch, meter: StageMeter | NullStageMeter):
        self.watch = watch
        self.meter = meter
        self.stage = watch.stage
        self.broker_retry = meter.retry_hook(BROKER)

    def tally(self):
        return self.meter.tally()

    def delivered(self, tally, dead: Sequence = ()) -> None:
        """A batch's outputs were delivered: count them, and note that the stage processed records."""
        self.watch.processed()
        self.meter.delivered(tally, dead)

    def batch(self, seconds: float) -> None:
        self.meter.batch(seconds)

    def dead_sender(self, send: Callable[[list], Awaitable[None]]) -> Callable[[list], Awaitable[None]]:
        """``send`` of dead letters (the runner's safety net), counting them once delivered."""
        async def send_dead(dead: list) -> None:
            await send(dead)
            self.delivered(None, dead)
        return send_dead


@dataclass
class Snapshot:
    """The health of every stage at one moment, and the lag per partition behind it."""

    stages: dict[str, StageReport] = field(default_factory=dict)
    lag: dict[tuple[str, int], int | None] = field(default_factory=dict)
    lag_available: bool = False
    lag_unavailable_reason: str | None = None

    def response(self) -> tuple[int, dict[str, Any]]:
        return health_response(self.stages, lag_available=self.lag_available,
                               lag_unavailable_reason=self.lag_unavailable_reason)


class WorkerHealth:
    """The stages of one worker, and what its health and readiness endpoints answer."""

    def __init__(self, app):
        self.app = app
        self.watches: dict[str, StageWatch] = {}
        self.raw_reader = None          # the RawReader service, once started (it sets itself)
        self.raw_stage: str | None = None
        self.faust_assigned = False
        self.last = Snapshot()

    def stage(self, stage: str, *, topic: str, tasks: int = 1, raw_reader: bool = False) -> Instruments:
        """Register ``stage`` (reading ``topic`` with ``tasks`` tasks) and return its instruments."""
        watch = self.watches[stage] = StageWatch(stage, topic=topic, tasks_expected=tasks)
        if raw_reader:
            self.raw_stage = stage
        return Instruments(watch, stage_meter(stage, self.app.settings.metrics_enabled))

    def on_partitions_assigned(self, *args, **kwargs) -> None:
        self.faust_assigned = True

    async def positions(self, reliable: bool) -> tuple[Positions, Positions | None]:
        faust = await faust_positions(self.app.consumer, reliable=reliable) if self.faust_assigned else Positions(
            error="no partitions assigned yet")
        raw = None
        if self.raw_stage is not None:
            reader = self.raw_reader
            raw = (await aiokafka_positions(reader.consumer, reader.committed, reliable=reliable)
                   if reader is not None else Positions(error="the raw reader has not started"))
            raw.pending = {self.watches[self.raw_stage].topic: reader.in_flight if reader is not None else 0}
        return faust, raw

    async def snapshot(self) -> Snapshot:
        """Read the consumers' positions and judge every stage now."""
        settings = self.app.settings
        reliable = settings.end_offsets_reliable
        faust, raw = await self.positions(reliable)
        now = time.monotonic()
        snap = Snapshot(lag_available=reliable, lag_unavailable_reason=None if reliable else LAG_UNRELIABLE)
        for name, watch in self.watches.items():
            pos = raw if (name == self.raw_stage and raw is not None) else faust
            lags = [v for (topic, _), v in pos.lag.items() if topic == watch.topic]
            lag = total(lags) if reliable and not (pos.error and not lags) else None
            if reliable and lag is None and pos.error:
                logger.debug("%s: lag unknown (%s)", name, pos.error)
            backlog = lag if reliable else pos.pending.get(watch.topic, 0)
            snap.stages[name] = watch.report(backlog=backlog, lag=lag, stall_seconds=settings.stall_seconds, now=now)
            if reliable:
                for (topic, partition), value in pos.lag.items():
                    if topic == watch.topic:
                        snap.lag[(topic, partition)] = value
        self.last = snap
        return snap

    def readiness(self) -> tuple[bool, str]:
        """(ready, why): ready once the faust consumer group and the raw reader have their partitions."""
        app = self.app
        if not self.faust_assigned:
            return False, "waiting for the consumer group to assign this worker's partitions"
        if getattr(app, "rebalancing", False):
            return False, "the consumer group is rebalancing"
        if self.raw_stage is not None:
            reader = self.raw_reader
            if reader is None or not reader.assigned:
                return False, f"{self.raw_stage}: waiting for the raw reader's consumer group to assign partitions"
        waiting = [name for name, w in self.watches.items() if not w.started]
        if waiting:
            return False, f"stage(s) not started yet: {', '.join(waiting)}"
        return True, "partitions assigned, every stage started"


class HealthCollector(Collector):
    """Scrape-time gauges from ``WorkerHealth.last`` (the /metrics page refreshes it first)."""

    def __init__(self, health: WorkerHealth):
        self.health = health

    def collect(self):
        snap = self.health.last
        available = GaugeMetricFamily("credit_consumer_lag_available", "1 when the broker's end offsets are "
                                      "reliable and lag is reported, 0 when they are not (Tansu)")
        available.add_metric([], 1.0 if snap.lag_available else 0.0)
        yield available
        lag = GaugeMetricFamily("credit_consumer_lag_records", "High watermark minus committed offset, per "
                                "partition this worker reads", labels=["topic", "partition"])
        for (topic, partition), value in sorted(snap.lag.items()):
            if value is not None:
                lag.add_metric([topic, str(partition)], float(value))
        yield lag
        since = GaugeMetricFamily("credit_stage_seconds_since_last_record", "Seconds since the stage last "
                                  "processed a record (absent: never)", labels=["stage"])
        state = GaugeMetricFamily("credit_stage_state", "1 for the stage's current state", labels=["stage", "state"])
        for name, report in snap.stages.items():
            if report.seconds_since_last_record is not None:
                since.add_metric([name], report.seconds_since_last_record)
            for s in STATES:
                state.add_metric([name, s], 1.0 if report.state == s else 0.0)
        yield since
        yield state
