"""Watch consumer groups (who owns which partition, committed and end offsets) to time recovery after a host fails."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Mapping, Sequence

logger = logging.getLogger(__name__)

DEFAULT_POLL_EVERY = 0.5     # seconds between two samples of every watched group
STABLE = "Stable"            # the group state in which every member has its assignment

Partition = tuple[str, int]  # (topic, partition)


@dataclass(frozen=True)
class GroupSample:
    """One look at a consumer group: when (monotonic seconds), its state, the client host of each assigned
    partition's owner ('10.231.7.5'), and the committed and end offset of each partition of its topics."""

    at: float
    state: str
    owners: Mapping[Partition, str]
    committed: Mapping[Partition, int]
    ends: Mapping[Partition, int]


@dataclass(frozen=True)
class Recovery:
    """How one group came through an event on one host: the partitions that host owned when it happened, how long
    until the group was stable again with each of them owned elsewhere (``reassigned_after``), and how long until
    each had been consumed past its offset at the event, or had nothing left to consume (``served_after``); None
    when that never happened while watched."""

    group: str
    host: str
    affected: tuple[Partition, ...]
    reassigned_after: float | None
    served_after: float | None

    def to_dict(self) -> dict:
        return {"group": self.group, "host": self.host,
                "affected": [f"{topic}/{partition}" for topic, partition in self.affected],
                "reassigned_after_s": _round(self.reassigned_after), "served_after_s": _round(self.served_after)}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def client_host(raw: str) -> str:
    """A member's client host as the broker reports it ('/10.231.7.5') without the slash."""
    return raw.lstrip("/")


def recovery(group: str, samples: Sequence[GroupSample], *, event_at: float, host: str) -> Recovery:
    """When ``group`` recovered from losing ``host`` at ``event_at`` (pure: from ``samples``, in time order).

    A partition is served again once a member on another host owns it in a stable group and its committed offset
    has moved past the one at the event, or caught up with the partition's end (nothing was left to consume)."""
    if not isinstance(host, str) or not host:
        raise ValueError(f"host must be an address, got {host!r}")
    before = [s for s in samples if s.at <= event_at]
    if not before:
        raise ValueError(f"{group}: no sample at or before the event: the watch started too late")
    at_event = before[-1]
    affected = tuple(sorted(p for p, owner in at_event.owners.items() if owner == host))
    reassigned = served = None
    for sample in (s for s in samples if s.at > event_at):
        moved = sample.state == STABLE and all(sample.owners.get(p) not in (None, host) for p in affected)
        if not moved:
            continue
        if reassigned is None:
            reassigned = sample.at - event_at
        if all(_progressed(sample, at_event, p) for p in affected):
            served = sample.at - event_at
            break
    return Recovery(group=group, host=host, affected=affected, reassigned_after=reassigned, served_after=served)


def owner_again_after(samples: Sequence[GroupSample], *, since: float, host: str) -> float | None:
    """Seconds from ``since`` until ``host`` owned a partition again in a stable group (a host back on the network
    rejoined); None when it never did while watched."""
    for sample in samples:
        if sample.at > since and sample.state == STABLE and host in sample.owners.values():
            return sample.at - since
    return None


def _progressed(sample: GroupSample, at_event: GroupSample, partition: Partition) -> bool:
    now = sample.committed.get(partition, -1)
    return now > at_event.committed.get(partition, -1) or now >= sample.ends.get(partition, 0)


@dataclass
class GroupWatch:
    """A background thread sampling ``groups`` every ``every`` seconds through ``bootstrap`` (Kafka's admin API)
    until stopped; ``samples`` keeps every sample by group, ``errors`` counts failed rounds."""

    bootstrap: str
    groups: Sequence[str]
    every: float = DEFAULT_POLL_EVERY
    samples: dict[str, list[GroupSample]] = field(default_factory=dict)
    errors: int = 0

    def __post_init__(self) -> None:
        if not self.groups:
            raise ValueError("name at least one consumer group to watch")
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), name="group-watch", daemon=True)

    def __enter__(self) -> GroupWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def history(self, group: str) -> list[GroupSample]:
        with self._lock:
            return list(self.samples.get(group, ()))

    async def _run(self) -> None:
        from aiokafka import AIOKafkaConsumer
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=5000)
        ends = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                request_timeout_ms=5000)
        await admin.start()
        await ends.start()
        try:
            while not self._stop.is_set():
                started = time.monotonic()
                for group in self.groups:
                    try:
                        sample = await self._sample(admin, ends, group)
                    except Exception as exc:   # a slow round is retried at the next tick, and counted
                        self.errors += 1
                        logger.debug("group %s: no sample (%s: %s)", group, type(exc).__name__, exc)
                        continue
                    with self._lock:
                        self.samples.setdefault(group, []).append(sample)
                await asyncio.sleep(max(0.0, self.every - (time.monotonic() - started)))
        finally:
            await ends.stop()
            await admin.close()

    @staticmethod
    async def _sample(admin, ends, group: str) -> GroupSample:
        from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment
        from aiokafka.structs import TopicPartition

        at = time.monotonic()
        (response,) = await admin.describe_consumer_groups([group])
        (described,) = response.groups
        state, members = described[2], described[5]
        owners: dict[Partition, str] = {}
        for member in members:
            assignment = member[4]
            if not assignment:
                continue
            for topic, partitions in ConsumerProtocolMemberAssignment.decode(assignment).assignment:
                for partition in partitions:
                    owners[(topic, partition)] = client_host(member[2])
        offsets = await admin.list_consumer_group_offsets(group)
        committed = {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items()}
        partitions = [TopicPartition(t, p) for t, p in set(committed) | set(owners)]
        end_offsets = await ends.end_offsets(partitions) if partitions else {}
        return GroupSample(at=at, state=state, owners=owners, committed=committed,
                           ends={(tp.topic, tp.partition): end for tp, end in end_offsets.items()})
