"""The example script examples/jax_lru_digits.py: trains, shrinks at the scheduled steps, trains on."""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import pytest

jax = pytest.importorskip("jax")
pytest.importorskip("sklearn")

pytestmark = pytest.mark.jax
STRICT_PROMOTION = False  # optax

_SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "examples" / "jax_lru_digits.py"


def _example(monkeypatch):
    spec = importlib.util.spec_from_file_location("jax_lru_digits_example", _SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # equinox modules are dataclasses: their module must be known
    spec.loader.exec_module(module)
    return module


def test_example_reduction_history(capsys, monkeypatch):
    # a small configuration with two attempts (each new model shape costs a compilation of the train
    # step and of the reduction programs); the full default run is quoted in docs/jax.md
    argv = ["--steps", "40", "--d-model", "8", "--d-state", "16", "--blocks", "1", "--batch", "16"]
    out = _example(monkeypatch).main([*argv, "--schedule", "0.1", "0.2", "--tau", "0.2"])
    events = out["events"]
    assert [e["step"] for e in events] == [4, 8]
    sizes = [16] + [e["sizes"][0] for e in events]
    assert sizes[2] < sizes[1] < sizes[0]  # tau = 0.2 discards a fifth of the HSV sum each time
    assert out["sizes"] == list(events[-1]["sizes"])
    assert all(0.0 <= e["acc_before"] <= 1.0 and 0.0 <= e["acc_after"] <= 1.0 for e in events)
    assert 0.0 <= out["accuracy"] <= 1.0
    assert out["loss"] == out["loss"]  # finite: training went on with the reduced model and rebuilt state
    printed = capsys.readouterr().out
    assert "reduced [16] ->" in printed
    assert "final state sizes" in printed
