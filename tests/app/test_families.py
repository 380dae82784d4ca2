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


@pytest.mark.parametrize(("family", "gain"), [("s5", 2.0), ("s4d", 2.0), ("lru", 1.0)])
def test_analyze_bounds_are_those_of_the_layer_map(family: str, gain: float) -> None:
    """`ssmred analyze` bounds the layer's own output: 2 Re(C x) doubles the analysed system's bound,
    as the adapter's reduction report does (one computation each, compared at the same order)."""
    import copy

    import ssmred_torch as st
    import torch
    from ssmred_app.analysis import layer_analysis
    from ssmred_app.models import layer_systems

    from ssmred import hinf_norm
    from ssmred.selection import Rank

    torch.manual_seed(0)
    layer = {"s5": lambda: st.S5(3, 8), "s4d": lambda: st.S4D(2, 8), "lru": lambda: st.LRU(3, 6)}[family]()
    [(systems, found_gain)] = layer_systems(torch.nn.Sequential(layer))
    assert found_gain == gain
    parts = [layer_analysis(s, [0.1], gain=found_gain) for s in systems]
    r = 2
    reduced = copy.deepcopy(layer)
    [report] = st.reduce_layers([reduced], Rank(r), gate=1.0)
    assert report.applied
    assert max(p["bounds"][r] for p in parts) == pytest.approx(report.error_bound, rel=1e-9)
    if len(systems) == 1:  # the measured error of the layer's real map is within the analysed bound
        err = hinf_norm(st.to_statespace(layer, exact=True) - st.to_statespace(reduced, exact=True))
        assert err <= parts[0]["bounds"][r] * (1 + 1e-9)


def test_s5_clip_eigs_from_the_config_keeps_the_layer_stable() -> None:
    import torch
    from ssmred_app.config import parse_config
    from ssmred_app.families import build_classifier
    from ssmred_torch import ssm_layers

    cfg = parse_config({"model": {"layer": "s5", "d_model": 4, "d_state": 8, "n_layers": 1, "s5": {"clip_eigs": True}}})
    model = build_classifier(cfg.model, d_input=1, vocab_size=None, n_classes=3)
    [entry] = ssm_layers(model)
    assert entry.module.clip_eigs is True
    with torch.no_grad():
        entry.module.Lambda_re.fill_(0.5)  # a step that pushed every real part across the axis
        lam = entry.adapter.systems(entry.module).lam
    assert bool((lam.abs() < 1).all())
