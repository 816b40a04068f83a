"""The worker's routes on faust's web server (FAUST_WEB_ENABLED / ``--web-port``): GET /metrics, /health, /ready.

/metrics is Prometheus' text format: the worker's and the HBase writer's
metrics, the scrape-time stage gauges and prometheus-client's process,
platform and gc collectors.  /health is 200 when every stage is running or
idle, 503 when one is stalled or crashed (JSON: ``status``, ``stages``,
``lag_available``); /ready is 200 once the worker has its partitions, else
503 with the reason.  None of them shows a setting or a secret.  Found by
faust's autodiscovery (``topology.worker.app.AGENT_MODULES``).
"""

from __future__ import annotations

import logging

from prometheus_client import REGISTRY, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from topology.worker.app import app
from topology.worker.monitor import HealthCollector

logger = logging.getLogger(__name__)

SAMPLE_SECONDS = 1.0   # how often the stages' backlogs are looked at (stall detection), besides each request
_collector: list[HealthCollector] = []


def _exposition() -> bytes:
    if not _collector:
        _collector.append(HealthCollector(app.health))
        REGISTRY.register(_collector[0])
    return generate_latest(REGISTRY)


@app.page("/metrics")
async def metrics_page(web, request):
    await app.health.snapshot()
    return web.bytes(_exposition(), headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})


@app.page("/health")
async def health_page(web, request):
    status, body = (await app.health.snapshot()).response()
    return web.json(body, status=status)


@app.page("/ready")
async def ready_page(web, request):
    ready, reason = app.health.readiness()
    return web.json({"ready": ready, "reason": reason}, status=200 if ready else 503)


@app.timer(SAMPLE_SECONDS)
async def sample_stages() -> None:
    """Look at every stage's backlog each second, so a stall is seen even when nobody asks for a while."""
    if app.conf.web_enabled:
        await app.health.snapshot()
