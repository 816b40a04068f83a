"""The risk API's /metrics: scores' probability histogram and decisions equal the scored batches, the model's
training score reference follows the serving model, and the counts are exact under gunicorn with several workers
(deploy.services.risk_api, and `python -m risk_api serve` without PROMETHEUS_MULTIPROC_DIR)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import requests

from deploy.services import free_port, risk_api, wait_for
from risk_api import artifact as artifacts
from risk_api import settings
from risk_api.scoring import SCORE_BIN_EDGES, Model
from tests.credit_core.prometheus_testlib import (children, concurrently, kill_9, matching, per_process_counts,
                                                  scrape, value)

PROBABILITY = "credit_risk_score_probability"
DECISIONS = "credit_risk_decisions_total"
REFERENCE = "credit_risk_model_reference_share"
REQUESTS = "credit_http_requests_total"
SCORE = {"service": "risk_api", "route": "/api/v1/score", "method": "POST", "status": "200"}
LE = [f"{edge:.1f}" for edge in SCORE_BIN_EDGES]
ROOT = Path(__file__).resolve().parents[2]


def expected_counts(bodies: list[dict]) -> dict:
    """What the metrics must say of these score responses: cumulative bucket counts by le, decisions, the sum."""
    p = [r["probability_of_default"] for body in bodies for r in body.get("results", [body]) if "decision" in r]
    decisions = [r["decision"] for body in bodies for r in body.get("results", [body]) if "decision" in r]
    return {"buckets": {le: sum(x <= edge for x in p) for le, edge in zip(LE, SCORE_BIN_EDGES)},
            "count": len(p), "sum": sum(p),
            "approved": decisions.count("approve"), "declined": decisions.count("decline")}


def observed(samples, version: str) -> dict:
    return {"buckets": {le: value(samples, PROBABILITY + "_bucket", le=le, model_version=version) for le in LE},
            "count": value(samples, PROBABILITY + "_count", model_version=version),
            "sum": value(samples, PROBABILITY + "_sum", model_version=version),
            "approved": value(samples, DECISIONS, outcome="approved", model_version=version),
            "declined": value(samples, DECISIONS, outcome="declined", model_version=version)}


def minus(after: dict, before: dict) -> dict:
    return {"buckets": {le: after["buckets"][le] - before["buckets"][le] for le in LE},
            **{k: after[k] - before[k] for k in ("count", "sum", "approved", "declined")}}


def same(got: dict, want: dict) -> bool:
    return (got["buckets"] == want["buckets"] and got["count"] == want["count"] == got["buckets"]["1.0"]
            and (got["approved"], got["declined"]) == (want["approved"], want["declined"])
            and abs(got["sum"] - want["sum"]) < 1e-6 * max(1, want["count"]))


def reference_of(samples) -> dict[str, dict[str, float]]:
    """model_version -> bin -> share, as scraped."""
    out: dict[str, dict[str, float]] = {}
    for labels, share in matching(samples, REFERENCE).items():
        lab = dict(labels)
        out.setdefault(lab["model_version"], {})[lab["bin"]] = share
    return out


def test_scores_and_decisions_match_the_scored_batches(serve, model_path, trained, clean_records, tokens):
    api = serve(model_path)
    version = trained.artifact["version"]
    before, _ = scrape(api.url + "/metrics")                    # no token: open
    batch = clean_records[:400] + [{"id": 1}, {"id": "x"}]      # two applicants with errors: neither scored
    bodies = [api.request("POST", "/api/v1/score", json={"applicants": batch}).json()]
    bodies += [api.request("POST", "/api/v1/score", json=rec).json() for rec in clean_records[400:420]]
    assert api.request("POST", "/api/v1/score", json={"id": 5}).status_code == 400
    assert api.request("POST", "/api/v1/score", json=clean_records[0], token=None).status_code == 401
    after, text = scrape(api.url + "/metrics")
    want = expected_counts(bodies)
    assert want["count"] == 420 and want["approved"] and want["declined"]
    assert same(minus(observed(after, version), observed(before, version)), want)
    for status, n in (("200", 21), ("400", 1), ("401", 1)):
        labels = {**SCORE, "status": status}
        assert value(after, REQUESTS, **labels) - value(before, REQUESTS, **labels) == n, status
    # The reference: the artifact's training score distribution, for the serving version only.
    share = trained.artifact["score_reference"]["share"]
    assert reference_of(after) == {version: dict(zip(LE, share))}
    assert tokens["api"] not in text and tokens["admin"] not in text and str(model_path) not in text


def test_reference_and_version_labels_follow_a_hot_swap(serve, tmp_path, trained, clean_records, tokens):
    a = trained.artifact
    moved = [round(s, 6) for s in a["score_reference"]["share"][1:] + a["score_reference"]["share"][:1]]
    moved[0] += 1.0 - sum(moved)
    b = artifacts.seal({**a, "intercept": a["intercept"] + 0.5, "created_at": "2000-01-01T00:00:00Z",
                        "score_reference": {**a["score_reference"], "share": moved}})
    path = tmp_path / "serving.json"
    artifacts.save(a, path)
    api = serve(path, WATCH_SECONDS=0.05)
    batch = {"applicants": clean_records[:50]}
    first = api.request("POST", "/api/v1/score", json=batch).json()
    samples, _ = scrape(api.url + "/metrics")
    assert set(reference_of(samples)) == {a["version"]}
    before_b = observed(samples, b["version"])

    artifacts.save(b, path)                                      # the file watch takes it up
    wait_for(lambda: api.request("GET", "/health", token=None).json()["model_version"] == b["version"], 30)
    second = api.request("POST", "/api/v1/score", json=batch).json()
    assert first["model_version"] == a["version"] and second["model_version"] == b["version"]
    samples, _ = scrape(api.url + "/metrics")
    assert reference_of(samples) == {b["version"]: dict(zip(LE, moved))}
    assert same(minus(observed(samples, b["version"]), before_b), expected_counts([second]))
    assert observed(samples, a["version"])["count"] >= 50          # a's counts stay: they happened

    old = artifacts.seal({k: v for k, v in a.items() if k != "score_reference"})   # trained before the reference
    artifacts.save(old, path)
    resp = api.request("POST", "/api/v1/admin/reload", token=tokens["admin"])
    assert resp.status_code == 200 and resp.json()["model_version"] == old["version"]
    assert api.request("POST", "/api/v1/score", json=batch).status_code == 200
    samples, _ = scrape(api.url + "/metrics")
    assert reference_of(samples) == {}                           # nothing to compare with: no series at all


def test_a_malformed_score_reference_is_refused(trained):
    a = trained.artifact
    for bad in ({"bins": [0.5, 1.0], "share": [0.5, 0.5]},
                {**a["score_reference"], "share": [0.2] * 10},
                {**a["score_reference"], "share": [1.5, -0.5] + [0.0] * 8},
                {**a["score_reference"], "share": None}):
        with pytest.raises(artifacts.ArtifactError, match="score_reference"):
            Model(artifacts.seal({**a, "score_reference": bad}))


def _score_until_both_workers_counted(url: str, token: str, batch: list[dict], route_labels: dict,
                                      per_worker) -> list[dict]:
    """Score ``batch`` concurrently, 24 requests at a time, until two workers have answered some; every body."""
    bodies: list[dict] = []

    def send(i: int) -> int:
        resp = requests.post(url + "/api/v1/score", data=orjson.dumps({"applicants": batch[i % 7::7]}),
                             headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                             timeout=60)
        bodies.append(resp.json())
        return resp.status_code

    while True:
        assert concurrently(send, 24) == [200] * 24
        counted = per_worker()
        if len(counted) >= 2:
            return bodies
        assert len(bodies) < 2400, f"every request went to one worker: {counted}"


@pytest.mark.timeout(240)
def test_gunicorn_workers_are_summed_and_a_killed_worker_keeps_its_counts(tmp_path, clean_records):
    token = "scoring-token-" + "m" * 12
    svc = risk_api(run_dir=tmp_path, port=free_port(), token=token, workers=2)
    version = artifacts.load(settings.DEFAULT_MODEL_PATH)["version"]
    svc.start()
    try:
        wait_for(lambda: len(children(svc.pid())) == 2, 60, what="2 gunicorn workers")
        per_worker = lambda: per_process_counts(svc.metrics_dir, REQUESTS, **SCORE)   # noqa: E731
        bodies = _score_until_both_workers_counted(svc.url, token, clean_records[:140], SCORE, per_worker)
        want = expected_counts(bodies)
        samples, _ = scrape(svc.url + "/metrics")
        assert same(observed(samples, version), want)
        assert value(samples, REQUESTS, **SCORE) == len(bodies) == sum(per_worker().values())
        default = artifacts.load(settings.DEFAULT_MODEL_PATH)["score_reference"]["share"]
        assert reference_of(samples) == {version: dict(zip(LE, default))}

        victim = max(per_worker(), key=per_worker().get)
        master = svc.pid()
        kill_9(victim)
        wait_for(lambda: len(children(master)) == 2 and victim not in children(master), 60,
                 what="gunicorn replaced the killed worker")
        samples, _ = scrape(svc.url + "/metrics")
        assert same(observed(samples, version), want)             # the dead worker's scores still count
        assert value(samples, REQUESTS, **SCORE) == len(bodies)
    finally:
        svc.stop()


@pytest.mark.timeout(180)
def test_serve_cli_counts_every_worker_without_a_metrics_folder(model_path, clean_records, tokens, tmp_path):
    """`python -m risk_api serve` with no PROMETHEUS_MULTIPROC_DIR: its gunicorn hooks make a private folder (the
    workers' counts are summed), and remove it when gunicorn exits."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("PROMETHEUS_MULTIPROC_DIR", "RISK_API_AUTH")}
    env.update(RISK_MODEL_PATH=str(model_path), RISK_API_TOKEN=tokens["api"], PYTHONPATH=str(ROOT))
    log = tmp_path / "serve.log"
    proc = subprocess.Popen([sys.executable, "-m", "risk_api", "serve", "--port", str(port), "--workers", "2"],
                            env=env, stdout=subprocess.DEVNULL, stderr=open(log, "wb"))
    url = f"http://127.0.0.1:{port}"
    try:
        def up() -> bool:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                samples, _ = scrape(url + "/metrics")
            except requests.ConnectionError:
                return False
            return value(samples, "credit_http_workers", service="risk_api") == 2

        wait_for(up, 60, what="2 workers serving")
        folder = Path(re.search(r"metrics live in (\S+)", log.read_text()).group(1))
        per_worker = lambda: per_process_counts(folder, REQUESTS, **SCORE)   # noqa: E731
        bodies = _score_until_both_workers_counted(url, tokens["api"], clean_records[:140], SCORE, per_worker)
        samples, _ = scrape(url + "/metrics")
        assert same(observed(samples, Model(artifacts.load(model_path)).version), expected_counts(bodies))
        assert value(samples, REQUESTS, **SCORE) == len(bodies)
        assert value(samples, "process_start_time_seconds") > 0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert not folder.exists()


def test_the_gunicorn_hooks_label_the_service_as_the_app_does():
    from risk_api import app, gunicorn_conf

    assert gunicorn_conf.SERVICE == app.SERVICE
