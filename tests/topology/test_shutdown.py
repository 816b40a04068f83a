"""SIGTERM at any moment of a worker's start-up and group join: it exits 0, and what it held is replayed.

Each of these once ended otherwise: a SIGSEGV in the consumer thread's uvloop loop (now asyncio's,
``topology.worker.transport``), and exit 1 from a raw batch or a topic declaration meeting the producer already
stopped (faust's NotReady, now retried: ``topology.worker.emit.RETRYABLE``)."""

import random
import signal
import time

import pytest

SIGTERMS = 10


@pytest.mark.timeout(900)
def test_workers_stopped_at_random_moments_of_their_start_exit_cleanly_and_lose_nothing(topology, workload):
    msgs, ids, dirty = workload(4000)
    topology.produce(msgs)
    topology.worker()                       # one worker stays and ends the run
    rng = random.Random(20261205)
    for _ in range(SIGTERMS):
        w = topology.worker()
        time.sleep(rng.uniform(0.5, 6.0))   # importing, starting, joining, or handling its first batches
        w.send_signal(signal.SIGTERM)
        w.stop()
        if w.exit_code() == -15 and not w.tail_log(5).strip():
            topology.workers.remove(w)      # SIGTERM before Python set its handlers: nothing had started
            continue
        assert w.exit_code() == 0, f"exit {w.exit_code()} after SIGTERM:\n{w.tail_log(120)}"
    topology.wait_accounted(ids)
    assert topology.reconcile(ids)["dlq_ids"] == dirty
