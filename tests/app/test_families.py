"""Every layer family through the application: train with CompreSSM, reload, analyze, reduce (CPU, tiny)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.torch

CONFIG = """
name: fam
seed: 0
data: {{name: digits, n_samples: 500, split_seed: 0}}
model: {{layer: {layer}, d_model: 6, d_state: 12, n_layers: 2}}
optim: {{epochs: 2, batch_size: 16}}
compression: {{mode: fraction, fraction: 0.3}}
"""


@pytest.mark.parametrize("layer", ["s4d", "s5", "mamba"])
def test_family_trains_shrinks_analyzes_and_reduces(tmp_path: Path, layer: str, capsys) -> None:
    from ssmred_app.cli import main
    from ssmred_app.models import load_model_file

    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG.format(layer=layer))
    out = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--out", str(out), "--no-progress"]) == 0
    run = json.loads((out / "metrics.json").read_text())["run"]
    assert sum(run["final_dims"]) < sum(run["initial_dims"])
    model, config = load_model_file(out / "checkpoints" / "last.pt")
    assert config["model"]["layer"] == layer
    assert model.state_sizes == run["final_dims"]
    assert main(["analyze", str(out / "checkpoints" / "last.pt"), "--out", str(tmp_path / "an")]) == 0
    assert main(["reduce", str(out / "checkpoints" / "last.pt"), "--rank", "2", "-o", str(tmp_path / "r.pt")]) == 0
    reduced, _ = load_model_file(tmp_path / "r.pt")
    assert max(reduced.state_sizes) <= max(2, min(run["final_dims"]))
    capsys.readouterr()


def test_half_state_families_need_even_sizes() -> None:
    from ssmred_app.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match="sizes must be even"):
        parse_config({"model": {"layer": "s5", "d_state": 9}})
    assert parse_config({"model": {"layer": "s5", "d_state": 9, "s5": {"conj_sym": False}}}).model.d_state == 9
