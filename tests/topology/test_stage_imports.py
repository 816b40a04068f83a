"""The topology's stages are plain code: importing any module of topology.stages does not import faust."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STAGES = ROOT / "topology" / "stages"


def stage_modules() -> list[str]:
    """Every module under topology/stages/ (found on disk: nothing is imported here)."""
    if not (STAGES / "__init__.py").is_file():
        return []
    return ["topology.stages"] + [f"topology.stages.{m.name}"
                                  for m in pkgutil.walk_packages([str(STAGES)], prefix="") if m.name]


def test_there_are_stage_modules():
    assert len(stage_modules()) > 1, "topology/stages/ holds no modules"


@pytest.mark.parametrize("module", stage_modules())
def test_importing_a_stage_does_not_import_faust(module):
    code = f"import {module}; import sys; assert 'faust' not in sys.modules, sorted(m for m in sys.modules if m.startswith('faust'))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
