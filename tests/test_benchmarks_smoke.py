"""Smoke test: ``benchmarks/core.py --quick`` runs, agrees with slycot and prints its tables."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slycot
def test_core_benchmark_quick() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "core.py"), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert out.startswith("ssmred core benchmark (issue 2)")
    assert "ours scipy med (min)" in out
    assert "ab09ad med (min)" in out
    assert "1. Dense random real systems" in out
    assert "2. LRU layers" in out
    assert "accuracy: all checks within spec" in out
    assert "WRONG" not in out
