"""The packages' import boundaries, read from the source with ``ast`` (nothing is imported).

- services (applicant_api, risk_api, producer, topology, dashboard) import no other service: what they share lives in
  the libraries credit_core and hbase_helper;
- a library imports no service, and credit_core no other project package;
- no service or library imports the tools (deploy, bench, hbase_emulator) or tests; the tools may import
  anything.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVICES = frozenset({"applicant_api", "risk_api", "producer", "topology", "dashboard"})
LIBRARIES = frozenset({"credit_core", "hbase_helper"})
TOOLS = frozenset({"hbase_emulator", "deploy", "bench"})
PROJECT = SERVICES | LIBRARIES | TOOLS | {"tests"}
ALLOWED: dict[str, frozenset[str]] = {
    **{service: LIBRARIES | {service} for service in SERVICES},
    "hbase_helper": LIBRARIES,
    "credit_core": frozenset({"credit_core"}),
}

# Violations known when this test was written, for the lead to remove (each entry must still occur: the
# list only shrinks). (importing file, imported module).
KNOWN: frozenset[tuple[str, str]] = frozenset()


def _module_of(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports (relative imports resolved), at any depth of the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _module_of(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            out.add(name)
            out.update(f"{name}.{alias.name}" for alias in node.names if alias.name != "*"
                       and not node.module)  # `from . import x`: x may be a module
    return out


def violations() -> set[tuple[str, str]]:
    found = set()
    for package, allowed in ALLOWED.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            for module in imported_modules(path):
                top = module.split(".")[0]
                if top in PROJECT and top not in allowed:
                    found.add((str(path.relative_to(ROOT)), module))
    return found


def test_every_production_package_is_checked():
    assert set(ALLOWED) == SERVICES | LIBRARIES
    for package in PROJECT - {"tests"}:
        assert (ROOT / package / "__init__.py").is_file(), package


def test_no_package_imports_across_its_boundary():
    found = violations()
    new = sorted(found - KNOWN)
    assert not new, "imports across the package boundaries:\n" + "\n".join(f"  {f}: {m}" for f, m in new)


def test_known_violations_are_still_there():
    gone = sorted(KNOWN - violations())
    assert not gone, f"fixed: remove them from KNOWN: {gone}"
