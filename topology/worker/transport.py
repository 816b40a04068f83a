"""The worker's faust consumer: contiguous commits (``topology.worker.commits``) and our fetch wait.

faust passes ``fetch_max_wait_ms=1500`` to aiokafka with no setting for it;
Tansu answers a fetch only when the wait expires, so ours (FETCH_MAX_WAIT_MS,
~20 ms) is set on the consumer faust creates, before its fetcher starts.
Installed through the transport (``TopologyApp._new_transport``), not by
replacing faust's method.
"""

from __future__ import annotations

from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from topology.worker.commits import ContiguousCommitConsumer


class FetchWaitConsumerThread(AIOKafkaConsumerThread):
    """faust's aiokafka consumer thread with the app's ``settings.fetch_max_wait_ms``."""

    def _create_worker_consumer(self, transport):
        consumer = super()._create_worker_consumer(transport)
        # aiokafka takes it only in its constructor, which faust calls with its own value.
        consumer._fetch_max_wait_ms = self.app.settings.fetch_max_wait_ms
        return consumer


class TopologyConsumer(ContiguousCommitConsumer):
    """The consumer of ``TopologyApp``'s transport."""

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return FetchWaitConsumerThread(self, loop=self.loop, beacon=self.beacon)
