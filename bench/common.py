"""Shared benchmark helpers: repeat-and-median timing, result JSON files and the printed table.

Every bench module should end with::

    write_result("importer", figures, quick=args.quick)

where ``figures`` is a list of dicts as made by ``figure(...)``. The aggregator (`python -m bench`)
reads bench/results/<name>.json files in this shape.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path
from typing import Callable

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def repeat(fn: Callable[[], float], repeats: int) -> list[float]:
    """Call ``fn`` (which returns one measurement) ``repeats`` times; return the measurements."""
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    return [fn() for _ in range(repeats)]


def timed(fn: Callable[[], object]) -> float:
    """Seconds one call of ``fn`` takes."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def stats(values: list[float]) -> dict:
    values = sorted(values)
    median = statistics.median(values)
    return {"median": median, "min": values[0], "max": values[-1], "n": len(values),
            "spread": (values[-1] - values[0]) / median if median else None, "values": values}


def figure(name: str, values: list[float], unit: str, *, reference: str | None = None,
           reference_values: list[float] | None = None, higher_is_better: bool = True,
           target: float | None = None, target_ratio: float | None = None) -> dict:
    """One reported figure with its side-by-side reference; ratio = median / reference median.

    ``target_ratio``: the ratio the figure must reach (at least it when higher is better, at most it when not)."""
    out = {"name": name, "unit": unit, **stats(values), "higher_is_better": higher_is_better}
    if reference_values:
        ref = stats(reference_values)
        out["reference"] = {"name": reference, **ref}
        out["ratio"] = out["median"] / ref["median"] if ref["median"] else None
    if target is not None:
        out["target"] = target
        out["meets_target"] = out["median"] >= target if higher_is_better else out["median"] <= target
    if target_ratio is not None and out.get("ratio") is not None:
        out["target_ratio"] = target_ratio
        out["meets_target"] = out["ratio"] >= target_ratio if higher_is_better else out["ratio"] <= target_ratio
    return out


def machine() -> dict:
    def cmd(*args):
        try:
            return subprocess.run(args, capture_output=True, text=True, timeout=5).stdout.strip()
        except OSError:
            return None

    cpu = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "git_commit": cmd("git", "rev-parse", "--short", "HEAD")}


def write_result(name: str, figures: list[dict], *, quick: bool, extra: dict | None = None) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    payload = {"bench": name, "quick": quick, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "machine": machine(), "figures": figures, **(extra or {})}
    path.write_text(json.dumps(payload, indent=2))
    print_table(name, figures)
    return path


def print_table(name: str, figures: list[dict]) -> None:
    width = max([48, *(len(f["name"]) for f in figures)])
    print(f"\n{name}")
    print(f"  {'figure':<{width}} {'median':>14} {'unit':<14} {'reference':>14} {'ratio':>8}")
    for f in figures:
        ref = f.get("reference") or {}
        ratio = f.get("ratio")
        print(f"  {f['name']:<{width}} {f['median']:>14,.1f} {f['unit']:<14} "
              f"{ref.get('median', float('nan')):>14,.1f} {'' if ratio is None else f'{ratio:8.2f}'}")
