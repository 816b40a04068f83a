"""Command line: `python -m risk_api train --data FILE [--out DIR]`, `serve`, `build-default`."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path

import click
import orjson

from risk_api import settings

logger = logging.getLogger(__name__)

DEFAULT_OUT_DIR = "models"                     # --out
DEFAULT_BUILD_ROWS = 60_000                    # build-default --rows
DEFAULT_BUILD_SEED = 20_240_601                # build-default --seed
DEFAULT_BUILD_EPOCH = 1_735_689_600            # 2025-01-01T00:00:00Z, pins created_at (and so the version)


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG level.")
def cli(verbose: bool) -> None:
    """Train the risk model and serve the risk API."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def _train_and_write(data: Path, out_dir: Path, install: Path | None, c: float, seed: int,
                     progress: bool) -> dict:
    from risk_api import artifact as artifacts
    from risk_api import training
    try:
        result = training.train(data, c=c, seed=seed, progress=progress)
    except (ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    art = result.artifact
    path = artifacts.save(art, out_dir / f"model-{art['version']}.json")
    (out_dir / f"model-{art['version']}.report.json").write_bytes(
        orjson.dumps({"model_version": art["version"], **art["report"]}, option=orjson.OPT_INDENT_2) + b"\n")
    click.echo(training.format_report(art), err=True)
    if install is not None:
        artifacts.save(art, install)
        click.echo(f"installed as {install}", err=True)
    return training.headline(art, str(path))


@cli.command("train")
@click.option("--data", "data", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="LoanStats file (.csv, .csv.gz or .zip), real or synthetic.")
@click.option("--out", "out_dir", default=DEFAULT_OUT_DIR, show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Folder for the artifact and its report.")
@click.option("--install", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the artifact here atomically (e.g. RISK_MODEL_PATH: running APIs take it up).")
@click.option("--c", "c", default=1.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="Inverse L2 regularisation strength.")
@click.option("--seed", default=42, show_default=True, type=int, help="Seed of the random holdout split.")
def train_cmd(data: Path, out_dir: Path, install: Path | None, c: float, seed: int) -> None:
    """Train on a LoanStats file; print the report and, last, its headline as one JSON line."""
    head = _train_and_write(data, out_dir, install, c, seed, progress=sys.stderr.isatty())
    click.echo(orjson.dumps(head).decode())


@cli.command("build-default")
@click.option("--rows", default=DEFAULT_BUILD_ROWS, show_default=True, type=click.IntRange(min=1000))
@click.option("--seed", default=DEFAULT_BUILD_SEED, show_default=True, type=int)
@click.option("--out", "out_path", default=str(settings.DEFAULT_MODEL_PATH), show_default=True,
              type=click.Path(dir_okay=False, path_type=Path))
def build_default(rows: int, seed: int, out_path: Path) -> None:
    """Regenerate the packaged default artifact from seeded synthetic data (same bytes for the same inputs)."""
    from credit_core import synthetic
    os.environ.setdefault("SOURCE_DATE_EPOCH", str(DEFAULT_BUILD_EPOCH))
    with tempfile.TemporaryDirectory(prefix="risk-default-") as tmp:
        data = Path(tmp) / "synthetic.csv"
        synthetic.generate(data, rows, seed)
        head = _train_and_write(data, Path(tmp) / "out", out_path, 1.0, 42, progress=False)
    head["artifact"] = str(out_path)
    click.echo(orjson.dumps(head).decode())


@cli.command("serve")
@click.option("--host", default=lambda: os.environ.get("RISK_API_HOST", settings.DEFAULT_HOST), show_default=True)
@click.option("--port", default=lambda: int(os.environ.get("RISK_API_PORT", settings.DEFAULT_PORT)),
              show_default=True, type=int)
@click.option("--workers", default=lambda: int(os.environ.get("RISK_API_WORKERS", settings.DEFAULT_WORKERS)),
              show_default=True, type=click.IntRange(min=1))
@click.option("--threads", default=lambda: int(os.environ.get("RISK_API_THREADS", settings.DEFAULT_THREADS)),
              show_default=True, type=click.IntRange(min=1),
              help="Threads per worker (>1 uses gunicorn's gthread worker, which keeps connections alive).")
def serve(host: str, port: int, workers: int, threads: int) -> None:
    """Serve the API with gunicorn (settings from RISK_* environment variables)."""
    from gunicorn.app.base import BaseApplication

    from risk_api import gunicorn_conf, server
    from risk_api.app import create_app
    try:
        app = create_app()
    except (ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None

    class _Server(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("threads", threads)
            self.cfg.set("worker_class", server.THREAD_WORKER if threads > 1 else server.SYNC_WORKER)
            self.cfg.set("accesslog", None)
            for hook, function in gunicorn_conf.HOOKS.items():    # metrics in multiprocess mode
                self.cfg.set(hook, function)

        def load(self):
            return app

    _Server().run()


if __name__ == "__main__":
    cli()
