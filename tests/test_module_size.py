"""The adapters and the application stay made of small modules (issue 9: no module over ~500 lines).

A module that outgrows the limit is a sign that it owns two concepts; split it along the seam (as
``layers/mamba.py`` → the layer, its scan and its calibration) instead of raising the limit. Counted
in physical lines, docstrings included. The core (``ssmred/``) is not held to it: its largest modules
are one concept each (the ``StateSpace`` class, the SciPy backend's solvers).
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 500
PACKAGES = ("adapters/ssmred_torch", "adapters/ssmred_jax", "app/ssmred_app")


def _modules() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def test_the_packages_are_found():
    assert len(_modules()) > 30


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_module_is_small(path: Path):
    n = len(path.read_text(encoding="utf-8").splitlines())
    assert n <= MAX_LINES, f"{path.relative_to(ROOT)} has {n} lines (limit {MAX_LINES}): split it"
