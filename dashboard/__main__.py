"""`python -m dashboard`: the dashboard under gunicorn (1 worker, threads) on DASHBOARD_HOST:DASHBOARD_PORT."""

from __future__ import annotations

import logging
import os
import sys

logger = logging.getLogger(__name__)

THREADS = 8


def main() -> None:
    from credit_core.config import ConfigError
    from dashboard.settings import load_settings

    try:
        settings = load_settings()
        settings.chartjs_path()
    except ConfigError as exc:
        sys.exit(f"dashboard: {exc}")
    # One worker: the collectors (scraper, DLQ tail) keep their history in that process' memory.
    os.execv(sys.executable, [sys.executable, "-m", "gunicorn", "--bind", f"{settings.host}:{settings.port}",
                              "--workers", "1", "--threads", str(THREADS), "--access-logfile", "-",
                              "--log-level", "warning", "dashboard.app:create_app()"])


if __name__ == "__main__":
    main()
