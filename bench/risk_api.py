"""Risk model speed: numpy scoring in process, the batch endpoint and single requests under gunicorn, each side by
side with scikit-learn's own predict_proba in the same run.

`python -m bench.risk_api [--quick]`. The sklearn reference uses the very same app, parser, validation, reason
codes and JSON; only the probability comes from ``pipeline.predict_proba`` instead of the numpy scorer.
"""

from __future__ import annotations

import argparse
import http.client
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import orjson

from bench.common import figure, write_result

logger = logging.getLogger(__name__)

DEFAULT_ROWS = 100_000             # BENCH_RISK_ROWS: synthetic rows trained on
DEFAULT_QUICK_ROWS = 30_000
IN_PROCESS_ROWS = 1_000_000        # applicants scored per in-process measurement
QUICK_IN_PROCESS_ROWS = 200_000
DICT_ROWS = 200_000                # applicants converted from dicts per measurement
QUICK_DICT_ROWS = 50_000
BATCH = 1_000                      # applicants per request in the batch-endpoint figure
BATCH_SECONDS, QUICK_BATCH_SECONDS = 6.0, 3.0
SINGLE_RATE = 200                  # requests/s of the single-applicant figure
SINGLE_SECONDS, QUICK_SINGLE_SECONDS = 10.0, 4.0
REPEATS, QUICK_REPEATS = 3, 2
TOKEN = "bench-token"
ENV_DATA = "BENCH_RISK_DATA"       # set for the reference worker: the file to train the sklearn pipeline on
# gunicorn worker type (BENCH_RISK_WORKER): sync (one thread, no keep-alive) or gthread (2 threads, keep-alive).
WORKER = os.environ.get("BENCH_RISK_WORKER", "gthread")
WORKER_ARGS = {"sync": ["--worker-class", "sync"], "gthread": ["--worker-class", "gthread", "--threads", "2"]}
TARGET_IN_PROCESS = 1_000_000      # applicants/s (issue 4)
TARGET_BATCH = 100_000             # applicants/s
TARGET_P99_MS = 5.0


# -- the scikit-learn reference ------------------------------------------------------------------------------------
def sklearn_model_factory(pipeline):
    from risk_api.scoring import Model

    class SklearnModel(Model):
        """Everything as Model, except the probability: scikit-learn's predict_proba."""

        def probabilities(self, matrix):
            return pipeline.predict_proba(matrix)[:, 1]

    return SklearnModel


def sklearn_app():
    """gunicorn factory of the reference server: retrains the (deterministic) pipeline on BENCH_RISK_DATA."""
    from risk_api import training
    from risk_api.app import create_app
    from risk_api.store import ModelStore
    result = training.train(os.environ[ENV_DATA])
    if result.artifact["feature_spec_version"] is None:   # pragma: no cover
        raise RuntimeError("bad artifact")
    store = ModelStore(os.environ["RISK_MODEL_PATH"], 0.0, sklearn_model_factory(result.pipeline))
    return create_app({"MODEL_STORE": store})


# -- HTTP plumbing -------------------------------------------------------------------------------------------------
def free_port() -> int:
    from deploy.services import free_port as _free
    return _free()


class Server:
    """gunicorn with one worker, on a free port, started and stopped by the bench."""

    def __init__(self, app_spec: str, model_path: Path, log: Path, extra_env: dict[str, str] | None = None):
        self.port = free_port()
        env = dict(os.environ, RISK_MODEL_PATH=str(model_path), RISK_API_TOKEN=TOKEN,
                   RISK_MODEL_WATCH_SECONDS="0", **(extra_env or {}))
        env.pop("RISK_API_AUTH", None)
        self.log = open(log, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--workers", "1", *WORKER_ARGS[WORKER],
             "--bind", f"127.0.0.1:{self.port}", "--timeout", "120", "--log-level", "warning", app_spec],
            env=env, stdout=self.log, stderr=self.log, cwd=Path(__file__).resolve().parent.parent)
        deadline = time.monotonic() + 120
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    conn.close()
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{app_spec} did not start; see {log}")
            time.sleep(0.2)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


class Client:
    """A keep-alive HTTP/1.1 client (http.client: far less client-side CPU than requests on a shared box)."""

    def __init__(self, port: int):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}

    def post(self, path: str, body: bytes) -> bytes:
        for attempt in (0, 1):
            try:
                self.conn.request("POST", path, body=body, headers=self.headers)
                resp = self.conn.getresponse()
                data = resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"HTTP {resp.status}: {data[:200]!r}")
                return data
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                if attempt:
                    raise
        raise AssertionError("unreachable")


def batch_throughput(port: int, body: bytes, n: int, seconds: float, clients: int = 2) -> float:
    """Applicants/s through the batch endpoint, ``clients`` connections posting back to back."""
    done = [0] * clients
    stop = time.monotonic() + seconds
    errors: list[BaseException] = []

    def run(k: int) -> None:
        client = Client(port)
        try:
            while time.monotonic() < stop:
                client.post("/api/v1/score", body)
                done[k] += 1
        except BaseException as exc:             # reported below; a failed bench must not look fast
            errors.append(exc)

    started = time.monotonic()
    threads = [threading.Thread(target=run, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return sum(done) * n / (time.monotonic() - started)


def single_latencies(port: int, bodies: list[bytes], rate: float, seconds: float) -> np.ndarray:
    """Latency (ms) of single-applicant requests sent at ``rate``/s, measured from the scheduled send time
    (so a slow response delays the next one without hiding it: no coordinated omission)."""
    client = Client(port)
    interval = 1.0 / rate
    count = int(seconds * rate)
    lat = np.empty(count)
    start = time.perf_counter() + 0.05
    for i in range(count):
        due = start + i * interval
        now = time.perf_counter()
        if due > now:
            time.sleep(due - now)
        client.post("/api/v1/score", bodies[i % len(bodies)])
        lat[i] = (time.perf_counter() - due) * 1e3
    return lat


# -- the run -------------------------------------------------------------------------------------------------------
def best_rate(fn, n: int) -> float:
    start = time.perf_counter()
    fn()
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    quick = args.quick
    rows = int(os.environ.get("BENCH_RISK_ROWS", DEFAULT_QUICK_ROWS if quick else DEFAULT_ROWS))
    repeats = QUICK_REPEATS if quick else REPEATS
    n_matrix = QUICK_IN_PROCESS_ROWS if quick else IN_PROCESS_ROWS
    n_dicts = QUICK_DICT_ROWS if quick else DICT_ROWS

    from credit_core import synthetic
    from credit_core.lendingclub import iter_records
    from risk_api import artifact as artifacts
    from risk_api import features, training
    from risk_api.scoring import Model

    figures = []
    with tempfile.TemporaryDirectory(prefix="bench-risk-") as tmp:
        tmp = Path(tmp)
        data = tmp / "synthetic.csv"
        print(f"generating {rows} synthetic rows and training ...", file=sys.stderr)
        synthetic.generate(data, rows, seed=99)
        result = training.train(data)
        model_path = artifacts.save(result.artifact, tmp / "model.json")
        model = Model(artifacts.load(model_path))
        pipe = result.pipeline
        records = [rec for _, rec, _ in iter_records(data) if rec is not None]
        base = features.extract(records).matrix
        matrix = base[np.arange(n_matrix) % len(base)]
        dicts = [records[i % len(records)] for i in range(n_dicts)]
        np.testing.assert_allclose(model.probabilities(base[:5000]), pipe.predict_proba(base[:5000])[:, 1],
                                   atol=1e-9)

        # 1. In process, from a ready float matrix.
        ours = [best_rate(lambda: model.probabilities(matrix), n_matrix) for _ in range(repeats)]
        ref = [best_rate(lambda: pipe.predict_proba(matrix), n_matrix) for _ in range(repeats)]
        figures.append(figure("in-process: probability from matrix", ours, "applicants/s",
                              reference="sklearn predict_proba", reference_values=ref, target=TARGET_IN_PROCESS))
        # 2. In process, from a list of dicts (validation + conversion included: the real cost).
        ours = [best_rate(lambda: model.probabilities(features.extract(dicts).matrix), n_dicts)
                for _ in range(repeats)]
        ref = [best_rate(lambda: pipe.predict_proba(features.extract(dicts).matrix), n_dicts)
               for _ in range(repeats)]
        figures.append(figure("in-process: probability from dicts", ours, "applicants/s",
                              reference="same, sklearn predict_proba", reference_values=ref))
        # 3. In process, full results (band, decision, reason codes) from dicts, in batches as the endpoint does.
        sk_model = sklearn_model_factory(pipe)(result.artifact)

        def in_batches(m):
            for start in range(0, n_dicts, BATCH):
                m.score_records(dicts[start:start + BATCH])

        ours = [best_rate(lambda: in_batches(model), n_dicts) for _ in range(repeats)]
        ref = [best_rate(lambda: in_batches(sk_model), n_dicts) for _ in range(repeats)]
        figures.append(figure(f"in-process: full results + reasons, batches of {BATCH}", ours, "applicants/s",
                              reference="same, sklearn predict_proba", reference_values=ref))

        # 4 and 5. Under gunicorn, one worker each: ours and the sklearn reference.
        print("starting gunicorn (ours and the sklearn reference) ...", file=sys.stderr)
        servers = {}
        try:
            servers["ours"] = Server("risk_api.app:create_app()", model_path, tmp / "ours.log")
            servers["sklearn"] = Server("bench.risk_api:sklearn_app()", model_path, tmp / "ref.log",
                                        {ENV_DATA: str(data)})
            batch_body = orjson.dumps({"applicants": records[:BATCH]})
            single_bodies = [orjson.dumps(r) for r in records[:2000]]
            for srv in servers.values():            # warm up
                Client(srv.port).post("/api/v1/score", batch_body)
            secs = QUICK_BATCH_SECONDS if quick else BATCH_SECONDS
            runs: dict[str, list[float]] = {"ours": [], "sklearn": []}
            for _ in range(repeats):
                for name, srv in servers.items():
                    runs[name].append(batch_throughput(srv.port, batch_body, BATCH, secs))
            figures.append(figure(f"gunicorn 1 worker: batches of {BATCH}", runs["ours"], "applicants/s",
                                  reference="same, sklearn predict_proba", reference_values=runs["sklearn"],
                                  target=TARGET_BATCH))
            secs = QUICK_SINGLE_SECONDS if quick else SINGLE_SECONDS
            p99: dict[str, list[float]] = {"ours": [], "sklearn": []}
            p50: dict[str, list[float]] = {"ours": [], "sklearn": []}
            for _ in range(repeats):
                for name, srv in servers.items():
                    lat = single_latencies(srv.port, single_bodies, SINGLE_RATE, secs)
                    p99[name].append(float(np.percentile(lat, 99)))
                    p50[name].append(float(np.percentile(lat, 50)))
            figures.append(figure(f"single applicant at {SINGLE_RATE}/s: p99", p99["ours"], "ms",
                                  reference="same, sklearn predict_proba", reference_values=p99["sklearn"],
                                  higher_is_better=False, target=TARGET_P99_MS))
            figures.append(figure(f"single applicant at {SINGLE_RATE}/s: p50", p50["ours"], "ms",
                                  reference="same, sklearn predict_proba", reference_values=p50["sklearn"],
                                  higher_is_better=False))
        finally:
            for srv in servers.values():
                srv.stop()
    write_result("risk_api", figures, quick=quick,
                 extra={"model": training.headline(result.artifact), "rows_trained_on": rows,
                        "in_process_rows": n_matrix, "dict_rows": n_dicts, "batch": BATCH,
                        "server": f"gunicorn, 1 worker, {' '.join(WORKER_ARGS[WORKER])}; client: http.client"})


if __name__ == "__main__":
    main()
