"""Hot model swap under concurrent requests: file watch and admin reload, zero failed requests, no mixed models."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import requests

from risk_api import artifact as artifacts
from risk_api.scoring import Model


@pytest.fixture
def two_artifacts(trained):
    a = trained.artifact
    b = artifacts.seal({**a, "intercept": a["intercept"] + 0.5, "created_at": "2000-01-01T00:00:00Z"})
    assert a["version"] != b["version"]
    return a, b


@pytest.mark.timeout(120)
def test_hot_swap_under_load(serve, tmp_path, two_artifacts, clean_records, tokens):
    a, b = two_artifacts
    path = tmp_path / "serving.json"
    artifacts.save(a, path)
    api = serve(path, WATCH_SECONDS=0.05)
    batch = clean_records[:200]
    expected = {art["version"]: Model(art).score_records(batch) for art in (a, b)}
    # Scored one at a time (a 1-row matrix product may differ from the batch's in the last bit).
    singles = {art["version"]: [Model(art).score_records([r])[0] for r in batch] for art in (a, b)}
    stop = threading.Event()
    failures: list[str] = []
    seen: list[str] = []
    counts = {"requests": 0}
    lock = threading.Lock()

    def client(single: bool) -> None:
        session = requests.Session()
        headers = {"Authorization": f"Bearer {tokens['api']}"}
        k = 0
        while not stop.is_set():
            k += 1
            try:
                if single:
                    rec = batch[k % len(batch)]
                    resp = session.post(api.url + "/api/v1/score", json=rec, headers=headers, timeout=30)
                    body = resp.json()
                    version = body.get("model_version")
                    ok = resp.status_code == 200 and version in singles and body == singles[version][k % len(batch)]
                else:
                    resp = session.post(api.url + "/api/v1/score", json={"applicants": batch}, headers=headers,
                                        timeout=30)
                    body = resp.json()
                    version = body.get("model_version")
                    # The whole batch was scored by one model: exactly that model's results.
                    ok = resp.status_code == 200 and version in expected and body["results"] == expected[version]
            except (requests.RequestException, ValueError) as exc:
                ok, version = False, repr(exc)
            with lock:
                counts["requests"] += 1
                seen.append(version)
                if not ok:
                    failures.append(str(version))

    threads = [threading.Thread(target=client, args=(i % 2 == 0,)) for i in range(4)]
    for t in threads:
        t.start()
    try:
        swaps = []
        for i in range(8):
            time.sleep(0.25)
            new = b if i % 2 == 0 else a
            artifacts.save(new, path)
            if i % 4 == 3:                       # half the swaps by the admin endpoint, half by the file watch
                resp = api.request("POST", "/api/v1/admin/reload", token=tokens["admin"])
                assert resp.status_code == 200 and resp.json()["model_version"] == new["version"]
            swaps.append(new["version"])
        # A broken file never replaces the serving model.
        time.sleep(0.25)
        path.write_bytes(b'{"format": "broken"')
        time.sleep(0.3)
        health = api.request("GET", "/health", token=None).json()
        assert health == {"status": "degraded", "model_version": swaps[-1]}
        status = api.request("GET", "/api/v1/admin/status", token=tokens["admin"]).json()
        assert status["model_version"] == swaps[-1] and "not valid JSON" in status["last_error"]
        resp = api.request("POST", "/api/v1/admin/reload", token=tokens["admin"])
        assert resp.status_code == 422 and "still serving " + swaps[-1] in resp.json()["error"]["reason"]
        time.sleep(0.25)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert not failures, failures[:5]
    assert counts["requests"] > 50
    assert set(seen) == {a["version"], b["version"]}
    # Versions changed over time, more than once (both directions).
    changes = sum(1 for x, y in zip(seen, seen[1:]) if x != y)
    assert changes >= 2


def test_reload_endpoint_reports_change(serve, tmp_path, two_artifacts, tokens):
    a, b = two_artifacts
    path = tmp_path / "serving.json"
    artifacts.save(a, path)
    api = serve(path)                               # no file watch: only the endpoint swaps
    artifacts.save(b, path)
    time.sleep(0.1)
    assert api.request("GET", "/health", token=None).json()["model_version"] == a["version"]
    body = api.request("POST", "/api/v1/admin/reload", token=tokens["admin"]).json()
    assert body["previous_version"] == a["version"] and body["model_version"] == b["version"] and body["changed"]
    body = api.request("POST", "/api/v1/admin/reload", token=tokens["admin"]).json()
    assert body["changed"] is False
    scored = api.request("POST", "/api/v1/score", json={"applicants": [{"id": 1}]}).json()
    assert scored["model_version"] == b["version"]
    assert np.isfinite(api.request("GET", "/api/v1/model").json()["decision_threshold"])
