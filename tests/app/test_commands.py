"""End-to-end tests of the ``ssmred`` command (CPU, tiny sizes)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.torch

TINY = """
name: tiny
seed: 1
data: {name: digits, n_samples: 300, split_seed: 0}
model: {d_model: 8, d_state: 12, n_layers: 2}
optim: {epochs: 3, batch_size: 16, lr: 0.01}
compression: {mode: tolerance, tau: 0.2}
"""


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("cfg") / "tiny.yaml"
    p.write_text(TINY)
    return p


@pytest.fixture(scope="module")
def trained(tiny_config: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ssmred_app.cli import main

    out = tmp_path_factory.mktemp("train") / "run"
    assert main(["train", "--config", str(tiny_config), "--out", str(out), "--no-progress"]) == 0
    return out


def test_train_writes_outputs_and_shrinks(trained: Path) -> None:
    metrics = json.loads((trained / "metrics.json").read_text())
    run = metrics["run"]
    assert len(run["epochs"]) == 3
    assert sum(run["final_dims"]) < sum(run["initial_dims"])
    assert 0.0 <= run["test_acc"] <= 1.0
    assert len(run["reductions"]) == 4  # 2.5, 5, 7.5 and 10 % of training
    for rec in run["reductions"]:
        assert rec["val_acc_before"] is not None
        assert rec["val_acc_after"] is not None
    for name in ("report.md", "report.html", "checkpoints/last.pt", "checkpoints/epoch_003.pt"):
        assert (trained / name).is_file(), name


def test_interrupted_run_resumes_from_last_checkpoint(tiny_config: Path, tmp_path: Path) -> None:
    from ssmred_app.config import load_config
    from ssmred_app.trainer import Trainer

    cfg = load_config(tiny_config)

    def stop_after_first(epoch: int, trainer: Trainer) -> None:
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Trainer(cfg, tmp_path / "a", progress=False, log=lambda s: None).run(on_epoch_end=stop_after_first)
    assert (tmp_path / "a" / "checkpoints" / "last.pt").is_file()
    messages: list[str] = []
    resumed = Trainer(cfg, tmp_path / "a", progress=False, log=messages.append)
    res = resumed.run()
    assert any("resumed" in m and "(epoch 2, 0 of" in m for m in messages)
    assert [e["epoch"] for e in res.epochs] == [1, 2, 3]
    straight = Trainer(cfg, tmp_path / "b", progress=False, log=lambda s: None).run()
    assert res.final_dims == straight.final_dims
    assert res.test_acc == pytest.approx(straight.test_acc, abs=1e-12)
    assert len(res.reductions) == len(straight.reductions) == 4


def test_analyze_ssmred_checkpoint_and_plain_state_dict(trained: Path, tmp_path: Path) -> None:
    import torch
    from ssmred_app.cli import main
    from ssmred_app.models import load_model_file

    out = tmp_path / "an"
    assert main(["analyze", str(trained / "checkpoints" / "last.pt"), "--out", str(out)]) == 0
    info = json.loads((out / "analysis.json").read_text())
    model, _ = load_model_file(trained / "checkpoints" / "last.pt")
    assert [lay["n"] for lay in info["layers"]] == model.state_sizes
    for lay in info["layers"]:
        hsv = np.asarray(lay["hsv"])
        assert np.all(np.diff(hsv) <= 1e-12)
        np.testing.assert_allclose(lay["bounds"][0], 2 * hsv.sum(), rtol=1e-12, atol=0)
        assert lay["bounds"][-1] == 0.0
    assert (out / "analysis.md").is_file()
    assert (out / "plots" / "analysis.png").stat().st_size > 1000
    plain = tmp_path / "plain.pt"
    torch.save(model.state_dict(), plain)
    assert main(["analyze", str(plain), "--out", str(tmp_path / "an2")]) == 0
    info2 = json.loads((tmp_path / "an2" / "analysis.json").read_text())
    np.testing.assert_allclose(info2["layers"][0]["hsv"], info["layers"][0]["hsv"], rtol=1e-12, atol=0)
    # and a checkpoint written by the adapter's own ssmred_torch.save
    import ssmred_torch

    adapter_ckpt = tmp_path / "adapter.pt"
    ssmred_torch.save(adapter_ckpt, model)
    assert main(["analyze", str(adapter_ckpt), "--out", str(tmp_path / "an3")]) == 0
    info3 = json.loads((tmp_path / "an3" / "analysis.json").read_text())
    np.testing.assert_allclose(info3["layers"][1]["hsv"], info["layers"][1]["hsv"], rtol=1e-12, atol=0)


def test_reduce_rank_and_tau(trained: Path, tmp_path: Path, tiny_config: Path) -> None:
    import torch
    from ssmred_app.cli import main
    from ssmred_app.models import load_model_file

    ckpt = trained / "checkpoints" / "last.pt"
    out = tmp_path / "r2.pt"
    assert main(["reduce", str(ckpt), "--rank", "2", "-o", str(out)]) == 0
    model, _ = load_model_file(out)
    assert model.state_sizes == [2, 2]
    summary = json.loads(out.with_suffix(".json").read_text())
    assert summary["val_acc_before"] is not None
    assert summary["val_acc_after"] is not None
    for lay in summary["layers"]:
        hsv = np.asarray(lay["hsv"])
        np.testing.assert_allclose(lay["bound"], 2 * hsv[2:].sum(), rtol=1e-10, atol=0)
    # a plain state dict needs --config for the accuracy; --tau picks per-layer orders
    full, _ = load_model_file(ckpt)
    plain = tmp_path / "plain.pt"
    torch.save(full.state_dict(), plain)
    out2 = tmp_path / "rt.pt"
    assert main(["reduce", str(plain), "--tau", "0.3", "-o", str(out2), "--config", str(tiny_config)]) == 0
    s2 = json.loads(out2.with_suffix(".json").read_text())
    assert all(lay["r"] <= lay["n"] for lay in s2["layers"])
    assert s2["val_acc_after"] is not None


BAD = [
    ("model: {d_sate: 8}\n", "model.d_sate: unknown key"),
    ("model: {d_state: 0}\n", "model.d_state: state sizes must be >= 1"),
    ("model: {n_layers: 2, d_state: [8, 8, 8]}\n", "3 sizes given for 2 layers"),
    ("compression: {mode: tolerance, tau: 1.5}\n", "compression.tau: tau must be in [0, 1)"),
    ("compression: {mode: tolerance, tau: -0.1}\n", "compression.tau: tau must be in [0, 1)"),
    ("optim: {lr: .inf}\n", "optim.lr: "),
    ("optim: {weight_decay: .inf}\n", "optim.weight_decay: "),
    ("compression: {mode: pragmatic, tolerance: .nan}\n", "compression.tolerance: "),
    ("data: {name: npz, path: /nonexistent/file.npz}\n", "does not exist"),
    ("data: {name: imagenet}\n", "data.name"),
    ("optim: {epochs: many}\n", "optim.epochs: expected int"),
    ("bogus: 1\n", "bogus: unknown key"),
    ("model: [1, 2\n", "not valid YAML"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_wrong_configs_fail_before_training(
    text: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ssmred_app.cli import main

    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    out = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("invalid configuration") == 1
    assert not out.exists()


def test_missing_config_file_and_bad_override(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ssmred_app.cli import main

    assert main(["train", "--config", str(tmp_path / "nope.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    cfg = tmp_path / "ok.yaml"
    cfg.write_text("name: x\n")
    assert main(["train", "--config", str(cfg), "optim.epochs"]) == 2
    assert "expected key=value" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["demo", "train", "experiment", "analyze", "reduce"])
def test_help_of_every_subcommand(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    from ssmred_app.cli import main

    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert "usage: ssmred " + command in capsys.readouterr().out


@pytest.mark.parametrize("name", ["digits", "mnist1d", "listops"])
def test_example_configs_are_valid(name: str) -> None:
    from ssmred_app.config import load_config
    from ssmred_app.experiment import load_experiment

    root = Path(__file__).resolve().parents[2] / "configs"
    cfg = load_config(root / f"{name}.yaml")
    assert cfg.data.name == name
    spec = load_experiment(root / f"{name}.yaml")
    assert spec.base == cfg


def test_demo_rejects_tau_before_creating_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ssmred_app.cli import main

    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--tau", "1.5", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--tau: tau must be in [0, 1); got 1.5" in err
    assert "ssmred demo ->" not in err
    assert not out.exists()


def test_cuda_devices_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """``device``: CUDA must be there, and ``cuda:N`` must name one of its devices (a typed message, not a
    torch error deep inside the first tensor transfer)."""
    torch = pytest.importorskip("torch")
    from ssmred_app.config import ConfigError
    from ssmred_app.runresult import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="CUDA is not available"):
        resolve_device("cuda")
    assert resolve_device("auto") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == "cuda:1"
    with pytest.raises(ConfigError, match=r"'cuda:2' requested but there are 2 CUDA device\(s\) \(cuda:0 to cuda:1\)"):
        resolve_device("cuda:2")


def test_reduce_checkpoint_needs_exactly_one_of_tau_and_rank(tmp_path: Path) -> None:
    """Called directly (the CLI's argument group already insists): a typed error before any file is read
    (it raised a bare ValueError after loading the model, or let ``rank`` win silently)."""
    from ssmred_app.analysis import reduce_checkpoint
    from ssmred_app.config import ConfigError

    for kw in ({}, {"tau": 0.1, "rank": 2}):
        with pytest.raises(ConfigError, match="exactly one of --tau and --rank"):
            reduce_checkpoint(tmp_path / "missing.pt", tmp_path / "out.pt", **kw)
