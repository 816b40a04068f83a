"""The dashboard in a real browser: Debian's Chromium driven by Playwright over a small pipeline run.

The run has dirty input (rows the import refuses, records that end in the DLQ). The page's counters must come
to equal the run's reconciled summary; an approved, a declined and a dead-lettered application are looked up;
any console error, failed request or request elsewhere fails the test. Screenshots are saved as test artifacts
under ``test-artifacts/dashboard/<stack>/`` (``TEST_ARTIFACTS`` moves them; the path is printed)."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from credit_core.clock import MAX_TIME_MS
from credit_core.synthetic import applicants
from deploy.job import run_job
from deploy.local import build_stack, down
from deploy.services import free_port, wait_for

CHROMIUM = "/usr/bin/chromium"
PORTS = ("BROKER_PORT", "MYSQL_PORT", "HBASE_PORT", "APPLICANT_API_PORT", "RISK_API_PORT", "WORKER_1_WEB_PORT",
         "ZOOKEEPER_PORT", "PRODUCER_METRICS_PORT", "PROMETHEUS_PORT", "DASHBOARD_PORT")
DIRTY_FIRST_ID = 990_000_001
DIRTY = {"dti": "12.x5", "annual_inc": "sixty thousand", "grade": "Z"}    # one defect each
APPLICANTS = 1500
COUNTERS_TIMEOUT_MS = 90_000


async def _publish_dirty(bootstrap: str, topic: str) -> list[int]:
    """Applicants with one defect each, straight onto applicants.raw (as the producer would publish them)."""
    import orjson
    from aiokafka import AIOKafkaProducer

    ids = []
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for rec, (field, bad) in zip(applicants(len(DIRTY), seed=99, first_id=DIRTY_FIRST_ID), DIRTY.items()):
            rec[field] = bad
            app_id = int(rec["id"])
            value = orjson.dumps({"applicant": rec, "provenance": {"source": "dashboard-test", "seq": app_id}})
            await producer.send_and_wait(topic, value, key=str(app_id).encode())
            ids.append(app_id)
    finally:
        await producer.stop()
    return ids


def _dead_letters(bootstrap: str, topic: str, reliable: bool) -> dict[int, object]:
    """The DLQ's dead letters by application id (read from the topic's beginning)."""
    from credit_core.dlq.reader import read_topics
    from credit_core.dlq.records import from_record

    read = asyncio.run(read_topics(bootstrap, [topic], end_offsets_reliable=reliable))
    return {dl.app_id: dl for dl in map(from_record, read.records.get(topic, [])) if dl.app_id is not None}


def _stored(host: str, port: int) -> dict[str, dict]:
    """An approved and a model-declined application from HBase (the audit reader's own scan)."""
    from hbase_helper.audit import get_decision, scan_decisions
    from hbase_helper.pool import connect
    from hbase_helper.settings import HBaseSettings

    found: dict[str, dict] = {}
    with connect(HBaseSettings(host=host, port=port)) as conn:
        for row in scan_decisions(conn, 0, MAX_TIME_MS, limit=500):
            kind = "approved" if row["decision"] == "approve" else f"declined_{row['decided_by']}"
            found.setdefault(kind, row)
        return {kind: get_decision(conn, row["id"]) for kind, row in found.items()}


ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS") or Path(__file__).resolve().parents[2] / "test-artifacts")


@pytest.fixture
def artifacts(stack):
    """test-artifacts/dashboard/<stack>/ (TEST_ARTIFACTS moves it), emptied first: it outlives the test run."""
    path = ARTIFACTS / "dashboard" / stack
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    print(f"\ndashboard screenshots: {path}")
    return path


def test_the_dashboard_in_chromium_shows_the_reconciled_run(stack, tmp_path, artifacts, record_property):
    from playwright.sync_api import sync_playwright

    assert os.access(CHROMIUM, os.X_OK), "Debian's chromium package is missing (the bootstrap installs it)"
    st = build_stack(run_dir=tmp_path / "run", workers=1, ports={name: free_port() for name in PORTS}, stack=stack)
    try:
        summary = run_job(st, applicants=APPLICANTS, dirty=0.05, seed=21, keep_running=True, stall_timeout=180)
        assert summary["reconciled"] is True, summary
        assert summary["invalid"] > 0 and summary["approved"] > 0 and summary["declined_model"] > 0

        # dirty records that pass the import (they never went through it) and must end in the DLQ
        dirty_ids = asyncio.run(_publish_dirty(st.broker.bootstrap, "applicants.raw"))
        letters: dict[int, object] = {}

        def dead_lettered() -> bool:
            letters.update(_dead_letters(st.broker.bootstrap, "applicants.dlq", reliable=stack == "apache"))
            return set(dirty_ids) <= set(letters)

        wait_for(dead_lettered, 120, interval=1, what="the dirty records in the DLQ")
        dlq_total = summary["dlq"] + len(dirty_ids)
        expected = {"count-published": summary["applicants"] - summary["invalid"],
                    "count-approved": summary["approved"], "count-declined-model": summary["declined_model"],
                    "count-declined-policy": summary["declined_policy"], "count-saved": summary["hbase_rows"],
                    "count-dead-lettered": dlq_total, "count-dlq-topic": dlq_total}
        stored = _stored(st.hbase.host, st.hbase.port)
        assert {"approved", "declined_model"} <= set(stored)
        dead = letters[dirty_ids[0]]

        dashboard = st.dashboard
        token = dashboard.extra_env["DASHBOARD_TOKEN"]
        problems: list[str] = []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
                        if m.type == "error" else None)
                page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
                page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} {r.failure}"))
                page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
                page.on("request", lambda r: problems.append(f"request elsewhere: {r.url}")
                        if not r.url.startswith((dashboard.url + "/", "data:")) else None)

                page.goto(dashboard.url + "/")
                assert page.url == dashboard.url + "/login"
                page.fill("#token", token)
                page.click("#login-submit")
                page.wait_for_url(dashboard.url + "/")
                assert token not in page.url

                try:
                    page.wait_for_function(
                        "exp => Object.entries(exp).every(([id, v]) => "
                        "document.getElementById(id).dataset.value === String(v))",
                        arg=expected, timeout=COUNTERS_TIMEOUT_MS)
                except Exception:
                    shown = page.evaluate("ids => Object.fromEntries(ids.map(id => "
                                          "[id, document.getElementById(id).dataset.value]))", list(expected))
                    page.screenshot(path=str(artifacts / "counters-timeout.png"), full_page=True)
                    pytest.fail(f"the page's counters {shown} never equalled the reconciled run {expected}")
                assert page.locator("#service-worker-1").get_attribute("data-up") == "true"
                assert page.locator("#service-hbase").get_attribute("data-up") == "true"
                assert page.locator("#service-kafka").get_attribute("data-up") == "true"
                assert dead.reason in page.inner_text("#dlq-groups")
                latest = page.inner_text("#dlq-latest")
                assert all(str(app_id) in latest for app_id in dirty_ids)
                # the dirty records went through filter after the dashboard started: the chart saw them
                seen = page.evaluate("() => Chart.getChart('chart-throughput').data.datasets"
                                     ".find(d => d.label === 'filter').data.reduce((a, b) => a + b, 0)")
                assert seen * 5 >= len(dirty_ids) - 0.01
                page.screenshot(path=str(artifacts / "pipeline.png"), full_page=True)

                page.click("#tab-business")
                page.wait_for_function("() => document.getElementById('psi-value').textContent !== '–'"
                                       " && document.querySelectorAll('#decision-totals tbody tr').length > 0")
                assert page.inner_text("#psi-band") in ("stable", "watch", "shift")
                assert f"{summary['approved']:,}" in page.inner_text("#decision-totals")
                grades = page.locator("#approval-by-grade tbody tr").all_inner_texts()
                assert grades and all(row.split()[0] in "ABCDEFG" for row in grades), grades
                page.screenshot(path=str(artifacts / "business.png"), full_page=True)

                page.click("#tab-lookup")
                for kind in ("approved", "declined_model"):
                    row = stored[kind]
                    _look_up(page, row["id"], kind)
                    assert page.inner_text("#lookup-probability") == f"{row['probability_of_default']:.4f}"
                    assert page.inner_text("#lookup-model") == row["model_version"]
                    assert page.inner_text("#lookup-policy") == row["policy_version"]
                    reasons = page.inner_text("#lookup-reasons")
                    for reason in row["reasons"]:
                        assert reason["code"] in reasons and reason["text"] in reasons
                    assert f"{row['applicant']['grade']}" in page.inner_text("#lookup-applicant")
                    page.screenshot(path=str(artifacts / f"lookup-{kind}.png"), full_page=True)
                _look_up(page, dead.app_id, "dead_lettered")
                assert page.inner_text("#lookup-dlq-stage") == dead.stage
                assert page.inner_text("#lookup-dlq-reason") == dead.reason
                assert "12.x5" in page.inner_text("#lookup-result")
                page.screenshot(path=str(artifacts / "lookup-dead-lettered.png"), full_page=True)
                _look_up(page, 987_654_321, "not_seen")
                page.wait_for_timeout(500)
            finally:
                events = list(problems)
                browser.close()
        assert not events, "\n".join(events)
        shots = sorted(p.name for p in artifacts.iterdir())
        record_property("screenshots", str(artifacts))
        print(f"dashboard screenshots: {artifacts}: {', '.join(shots)}")
        assert {"pipeline.png", "business.png", "lookup-approved.png", "lookup-dead-lettered.png"} <= set(shots)
    finally:
        down(st)


def _look_up(page, app_id: int, status: str) -> None:
    page.fill("#lookup-id", str(app_id))
    page.click("#lookup-submit")
    page.wait_for_selector(f"#lookup-status[data-status='{status}']")
    assert page.inner_text("#lookup-result").startswith(f"Application {app_id}")
