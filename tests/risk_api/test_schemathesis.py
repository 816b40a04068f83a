"""Schemathesis over the risk API's own OpenAPI document, against the real app over HTTP: every check, the
stateful links, a fixed (deterministic) generation and a few hundred examples per operation."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = 300          # per operation; the whole run takes about 45 s on this machine


@pytest.mark.timeout(600)
def test_schemathesis_all_checks_pass(serve, model_path, tokens, tmp_path):
    logging.getLogger("werkzeug").setLevel(logging.ERROR)       # thousands of access-log lines otherwise
    api = serve(model_path)
    config = tmp_path / "schemathesis.toml"
    # One token per security scheme of the document: bearer (RISK_API_TOKEN), adminBearer (RISK_ADMIN_TOKEN).
    config.write_text(f'[auth.openapi.bearer]\nbearer = "{tokens["api"]}"\n'
                      f'[auth.openapi.adminBearer]\nbearer = "{tokens["admin"]}"\n')
    cli = Path(sys.executable).with_name("schemathesis")
    proc = subprocess.run(
        [str(cli), "--config-file", str(config), "run", api.url + "/openapi.json", "--checks", "all",
         "--phases", "examples,coverage,fuzzing,stateful", "--max-examples", str(EXAMPLES),
         "--generation-deterministic", "--workers", "1", "--no-color"],
        cwd=tmp_path, capture_output=True, text=True, timeout=540)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-8000:]
    assert "No issues found" in out, out[-8000:]
    # The stateful phase ran over the links the document declares.
    assert "API Links:    3 covered / 3 selected / 3 total" in out, out[-4000:]
