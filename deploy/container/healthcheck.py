#!/usr/bin/env python3
"""The image's HEALTHCHECK: asks the running role's own HTTP endpoint, on loopback inside the container.

The role is the one credit-entrypoint wrote to $CREDIT_STATE_DIR/role (a health check does not run in the main
process' environment), else $CREDIT_ROLE. Exit 0 healthy, 1 not. Roles without a server (dlq, reconcile, init,
help) are healthy while they run.
"""
from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def port_of(bind: str, default: int) -> int:
    tail = bind.rsplit(":", 1)[-1] if ":" in bind else ""
    return int(tail) if tail.isdigit() else default


# role -> (port, path): a worker's /health answers 503 when a stage is stalled or crashed.
def target(role: str, env: dict[str, str]) -> tuple[int, str] | None:
    if role == "worker":
        return int(env.get("FAUST_WEB_PORT") or 6066), "/health"
    if role == "risk-api":
        return int(env.get("RISK_API_PORT") or 5002), "/health"
    if role == "applicant-api":
        return port_of(env.get("APPLICANT_API_BIND") or "", 5001), "/health"
    if role == "dashboard":
        return int(env.get("DASHBOARD_PORT") or 5003), "/health"
    if role == "producer":
        port = int(env.get("PRODUCER_METRICS_PORT") or 9464)
        return (port, "/metrics") if port else None
    return None


def main() -> int:
    env = dict(os.environ)
    state = env.get("CREDIT_STATE_DIR") or "/var/lib/credit"
    try:
        with open(os.path.join(state, "role"), encoding="utf-8") as fh:
            role = fh.read().strip()
    except OSError:
        role = env.get("CREDIT_ROLE", "")
    where = target(role, env)
    if where is None:
        return 0
    port, path = where
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=4) as resp:
            return 0 if resp.status == 200 else 1
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"{role}: {path} on port {port}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
