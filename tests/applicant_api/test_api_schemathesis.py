"""Schemathesis against the applicant API over real HTTP: every check, every phase, stateful links, fixed seed.

The OpenAPI document is the contract a generated client relies on; this run
holds the server to it both ways (schema-valid requests accepted, invalid ones
refused with 4xx, every response as documented). Deterministic: derandomized
generation with a fixed seed, so a failure reproduces.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from applicant_api.app import create_app
from applicant_api.devserver import ServerThread

REPO = Path(__file__).resolve().parents[2]
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
TOKEN = "schemathesis-run-token"
SEED = 20261128
MAX_EXAMPLES = int(os.environ.get("APPLICANT_SCHEMATHESIS_EXAMPLES", "250"))


@pytest.fixture
def server(mariadb, db_url):
    app = create_app({"MYSQL_URL": mariadb.url, "APPLICANT_API_TOKEN": TOKEN})
    with ServerThread(app) as srv:
        yield srv
    app.extensions["applicant_api"].pool.close()


def test_schemathesis_finds_nothing(server, tmp_path):
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.applicant_api.schemathesis_hooks",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    argv = [str(SCHEMATHESIS), "run", f"{server.url}/openapi.json", "--checks", "all",
            "--phases", "examples,coverage,fuzzing,stateful", "--max-examples", str(MAX_EXAMPLES),
            "--seed", str(SEED), "--generation-deterministic", "--workers", "1",
            "--header", f"Authorization: Bearer {TOKEN}", "--request-timeout", "30",
            "--no-color", "--report", "junit", "--report-dir", str(tmp_path)]
    run = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    print(run.stdout[run.stdout.find("SUMMARY"):])     # shown with -s or -rP: phases, counts, time
    assert run.returncode == 0, failures(run.stdout) + run.stderr[-3000:]


def failures(output: str) -> str:
    """The failure section of schemathesis' output, long lines (request bodies) cut short."""
    start = output.find("FAILURES")
    lines = output[start if start >= 0 else 0:].splitlines()
    return "\n".join(line if len(line) < 400 else line[:400] + " ..." for line in lines)[:15000]
