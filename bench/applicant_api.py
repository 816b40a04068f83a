"""Applicant API: applicants/s served through paged GETs (limit 1,000) under gunicorn, next to raw SQL page reads.

`python -m bench.applicant_api [--quick]` starts its own MariaDB (free port, temporary folder), loads
synthetic LendingClub rows through the real importer, starts gunicorn with the app factory, then
measures, as medians over repeats:

- reference: the same pages read with plain SQL and pymysql, no HTTP (SELECT of the columns, fetchall);
- the API's own page query (rows serialised to JSON by MariaDB), no HTTP;
- paged GETs over HTTP by one client, and by two clients on disjoint halves (each parses every page).
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson
import requests

from applicant_api import db, repository, schema
from applicant_api.serve import gunicorn_argv
from bench.common import figure, repeat, write_result
from deploy.services import MariaDB, free_port

logger = logging.getLogger(__name__)

TARGET = 50_000          # applicants/s through paged GETs
PAGE_LIMIT = 1_000
TOKEN = "bench-" + os.urandom(12).hex()


def load_rows(url: str, rows: int, folder: Path) -> int:
    from applicant_api import importer
    from credit_core import synthetic

    csv = folder / "applicants.csv"
    synthetic.generate(csv, rows=rows, seed=7)
    return importer.import_file(csv, url).imported


def sql_pages(url: str, sql: str) -> int:
    conn = db.connect(url, autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION time_zone = '+00:00'")
            n, after = 0, 0
            while True:
                cur.execute(sql, (after, PAGE_LIMIT))
                rows = cur.fetchall()
                if not rows:
                    return n
                n += len(rows)
                after = rows[-1][0]
    finally:
        conn.close()


def http_pages(base: str, lo: int, hi: int | None) -> int:
    """GET pages after=lo until seq hi (or the end), parsing each; return applicants received."""
    with requests.Session() as s:
        s.headers["Authorization"] = f"Bearer {TOKEN}"
        n, after = 0, lo
        while hi is None or after < hi:
            resp = s.get(base + "/api/v1/applicants", params={"after": after, "limit": PAGE_LIMIT}, timeout=60)
            resp.raise_for_status()
            body = orjson.loads(resp.content)
            if not body["count"]:
                break
            n += sum(1 for a in body["applicants"] if hi is None or a["seq"] <= hi)
            after = body["next_after"]
        return n


def rate(fn, expected: int):
    def once() -> float:
        start = time.perf_counter()
        got = fn()
        seconds = time.perf_counter() - start
        if got != expected:
            raise RuntimeError(f"read {got} applicants, expected {expected}")
        return got / seconds
    return once


def parallel(base: str, clients: int, max_seq: int):
    def run() -> int:
        counts = [0] * clients
        bounds = [max_seq * k // clients for k in range(clients + 1)]

        def work(k: int) -> None:
            counts[k] = http_pages(base, bounds[k], bounds[k + 1])
        threads = [threading.Thread(target=work, args=(k,)) for k in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return sum(counts)
    return run


def start_gunicorn(url: str, workers: int, threads: int, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "MYSQL_URL": url, "APPLICANT_API_TOKEN": TOKEN}
    argv = gunicorn_argv(f"127.0.0.1:{port}", workers, threads, access_log=False)
    proc = subprocess.Popen(argv, env=env, stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited: {log.read_text()[-2000:]}")
        try:
            if requests.get(base + "/health", timeout=1).status_code == 200:
                return proc, base
        except requests.RequestException:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("gunicorn did not answer /health within 30s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 rows, 3 repeats")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args(argv)
    rows = args.rows or (20_000 if args.quick else 100_000)
    repeats = args.repeats or (3 if args.quick else 5)
    logging.basicConfig(level=logging.WARNING)

    with tempfile.TemporaryDirectory(prefix="bench-applicant-api-") as tmp:
        folder = Path(tmp)
        mariadb = MariaDB(run_dir=folder, port=free_port())
        mariadb.start()
        proc = None
        try:
            url = mariadb.url
            conn = db.connect(url)
            schema.init_db(conn)
            conn.close()
            print(f"loading {rows:,} synthetic applicants ...", file=sys.stderr)
            load_rows(url, rows, folder)
            conn = db.connect(url, autocommit=True)
            with conn.cursor() as cur:
                cur.execute("SELECT COUNT(*), MAX(seq) FROM applications")
                count, max_seq = cur.fetchone()
            conn.close()
            proc, base = start_gunicorn(url, args.workers, args.threads, folder / "gunicorn.log")
            http_pages(base, 0, None)      # warm up: connections, caches, buffer pool
            sql_pages(url, repository.PAGE_TUPLES_SQL)

            reference = repeat(rate(lambda: sql_pages(url, repository.PAGE_TUPLES_SQL), count), repeats)
            api_sql = repeat(rate(lambda: sql_pages(url, repository.PAGE_SQL), count), repeats)
            one_client = repeat(rate(lambda: http_pages(base, 0, None), count), repeats)
            two_clients = repeat(rate(parallel(base, 2, max_seq), count), repeats)
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(15)
            mariadb.stop()

    ref_name = "raw SQL pages, pymysql tuples, no HTTP"
    figures = [
        figure("API page SQL (JSON rows from MariaDB), no HTTP", api_sql, "applicants/s",
               reference=ref_name, reference_values=reference),
        figure(f"paged GET limit 1000, 1 client, gunicorn {args.workers}w", one_client, "applicants/s",
               reference=ref_name, reference_values=reference, target=TARGET),
        figure(f"paged GET limit 1000, 2 clients, gunicorn {args.workers}w", two_clients, "applicants/s",
               reference=ref_name, reference_values=reference, target=TARGET),
    ]
    write_result("applicant_api", figures, quick=args.quick,
                 extra={"rows": count, "page_limit": PAGE_LIMIT, "repeats": repeats,
                        "gunicorn": {"workers": args.workers, "threads": args.threads, "worker_class": "gthread"}})


if __name__ == "__main__":
    main()
