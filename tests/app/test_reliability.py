"""Training never loses work or reports a wrong result (issue 10): resume, corruption, locks, bad data.

Every test here failed on the trainer before the fix it names.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.torch

ROOT = Path(__file__).resolve().parents[2]

TINY = """
name: tiny
seed: 3
data: {name: digits, n_samples: 800, split_seed: 0}
model: {d_model: 6, d_state: 10, n_layers: 2, dropout: 0.1}
optim: {epochs: 3, batch_size: 32, lr: 0.01, warmup_fraction: 0.0}
compression: {mode: tolerance, tau: 0.2}
"""
PRAGMATIC = TINY.replace(
    "compression: {mode: tolerance, tau: 0.2}",
    "compression: {mode: pragmatic, fraction: 0.3, tolerance: 0.0, schedule: [4, 16]}",
)


def _cfg(text: str, **optim):
    import yaml
    from ssmred_app.config import _loader, parse_config

    raw = yaml.load(text, Loader=_loader())
    raw["optim"].update(optim)
    return parse_config(raw)


def _trainer(cfg, out, messages=None):
    from ssmred_app.trainer import Trainer

    return Trainer(cfg, out, progress=False, log=(messages.append if messages is not None else lambda s: None))


def _final_state(out: Path) -> dict:
    import torch

    return torch.load(out / "checkpoints" / "last.pt", weights_only=True)["model"]


def _assert_same_run(a, b, out_a: Path, out_b: Path) -> None:
    assert [e["train_loss"] for e in a.epochs] == [e["train_loss"] for e in b.epochs]
    assert [e["val_acc"] for e in a.epochs] == [e["val_acc"] for e in b.epochs]
    assert a.final_dims == b.final_dims
    assert a.test_acc == b.test_acc
    import torch

    sa, sb = _final_state(out_a), _final_state(out_b)
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


class _Stop(Exception):
    pass


@pytest.mark.parametrize(
    ("text", "stop_at"), [(TINY, 3), (TINY, 20), (PRAGMATIC, 9)], ids=["between-cuts", "epoch2", "pragmatic"]
)
def test_resume_mid_epoch_reproduces_the_uninterrupted_run_exactly(tmp_path, text, stop_at):
    """Item 2 (and 5): the first step after a resume ran at the wrong LR; pragmatic lost its pending check."""
    cfg = _cfg(text, checkpoint_every=1)
    straight = _trainer(cfg, tmp_path / "a").run()

    def crash(step, trainer):  # a kill -9 right after the state of `stop_at` was written
        if step == stop_at:
            raise _Stop

    with pytest.raises(_Stop):
        _trainer(cfg, tmp_path / "b").run(on_step_end=crash)
    messages: list[str] = []
    resumed = _trainer(cfg, tmp_path / "b", messages).run()
    assert any(f"at step {stop_at}" in m for m in messages), messages
    _assert_same_run(straight, resumed, tmp_path / "a", tmp_path / "b")
    if text is PRAGMATIC:
        assert [r["kind"] for r in straight.reductions] == [r["kind"] for r in resumed.reductions]
        checks = [r for r in resumed.reductions if r["step"] == 16]
        assert checks, resumed.reductions
        assert "accept" in checks[0]["kind"] or "rollback" in checks[0]["kind"]  # the pending check was served


def _train_cmd(cfg_path: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "ssmred_app",
        "train",
        "--config",
        str(cfg_path),
        "--out",
        str(out),
        "--no-progress",
        *extra,
    ]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def _wait_for_step(out: Path, step: int, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    """Wait until the run has saved a state at or beyond ``step``."""
    import torch

    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, "the run ended before it could be interrupted"
        path = out / "checkpoints" / "last.pt"
        if path.exists():
            try:
                if torch.load(path, weights_only=True)["extra"]["step"] >= step:
                    return
            except Exception:  # being replaced right now
                pass
        time.sleep(0.05)
    raise AssertionError("no checkpoint appeared in time")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_killed_process_resumes_to_the_same_weights(tmp_path, sig):
    """Items 2 and 8: kill -9 at any moment (the steps since the last state are replayed) or SIGTERM
    (the step in progress is finished and saved, exit 130)."""
    cfg_path = tmp_path / "tiny.yaml"
    cfg_path.write_text(TINY.replace("epochs: 3", "epochs: 3, checkpoint_every: 5"))
    ref = subprocess.run(_train_cmd(cfg_path, tmp_path / "ref"), env=_env(), capture_output=True, text=True, cwd=ROOT)
    assert ref.returncode == 0, ref.stderr
    proc = subprocess.Popen(
        _train_cmd(cfg_path, tmp_path / "run"), env=_env(), stderr=subprocess.PIPE, text=True, cwd=ROOT
    )
    _wait_for_step(tmp_path / "run", 10, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    if sig == signal.SIGTERM:
        assert proc.returncode == 130, err
        assert "SIGTERM: stopping after this step" in err
        assert "interrupted" in err
    else:
        assert proc.returncode == -signal.SIGKILL
    again = subprocess.run(_train_cmd(cfg_path, tmp_path / "run"), env=_env(), capture_output=True, text=True, cwd=ROOT)
    assert again.returncode == 0, again.stderr
    assert "resumed from" in again.stderr
    a = json.loads((tmp_path / "ref" / "result.json").read_text())
    b = json.loads((tmp_path / "run" / "result.json").read_text())
    assert [e["train_loss"] for e in a["epochs"]] == [e["train_loss"] for e in b["epochs"]]
    assert a["test_acc"] == b["test_acc"]
    import torch

    sa, sb = _final_state(tmp_path / "ref"), _final_state(tmp_path / "run")
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_damaged_last_checkpoint_falls_back_and_still_matches(tmp_path):
    """Item 1: 64 overwritten bytes in last.pt were trained on (NaN, exit 0)."""
    cfg = _cfg(TINY, checkpoint_every=1)
    straight = _trainer(cfg, tmp_path / "a").run()

    def crash(step, trainer):
        if step == 12:
            raise _Stop

    with pytest.raises(_Stop):
        _trainer(cfg, tmp_path / "b").run(on_step_end=crash)
    last = tmp_path / "b" / "checkpoints" / "last.pt"
    raw = bytearray(last.read_bytes())
    raw[len(raw) // 3 : len(raw) // 3 + 64] = bytes(64)
    last.write_bytes(bytes(raw))
    messages: list[str] = []
    resumed = _trainer(cfg, tmp_path / "b", messages).run()
    assert any("skipped a damaged checkpoint" in m for m in messages), messages
    assert any("previous.pt" in m and "at step 11" in m for m in messages), messages
    _assert_same_run(straight, resumed, tmp_path / "a", tmp_path / "b")


def test_no_intact_checkpoint_is_an_error_not_a_fresh_start(tmp_path, capsys):
    from ssmred_app.cli import main

    cfg_path = tmp_path / "tiny.yaml"
    cfg_path.write_text(TINY)
    ckpt = tmp_path / "run" / "checkpoints"
    ckpt.mkdir(parents=True)
    (ckpt / "last.pt").write_bytes(b"")  # empty (an interrupted copy)
    (ckpt / "previous.pt").write_text("not a checkpoint")
    assert main(["train", "--config", str(cfg_path), "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "no intact checkpoint to resume from" in err
    assert "is empty" in err
    assert "--no-resume --force" in err


def test_a_run_state_without_a_step_is_skipped_as_damaged(tmp_path):
    """An intact file (CRCs fine) that says it is a run state but carries no step: skipped with a reason,
    the older state resumed (it raised a bare KeyError)."""
    from ssmred_app.runstate import read_run_state, save_run_state
    from ssmred_torch import LRUModel

    ckpt, model = tmp_path / "checkpoints", LRUModel(1, 4, 6, 1, 3)
    save_run_state(ckpt, model, optimizer=None, controller=None, extra={"kind": "run", "step": 7})
    save_run_state(ckpt, model, optimizer=None, controller=None, extra={"kind": "run"})  # last.pt: no step
    messages: list[str] = []
    path, payload = read_run_state(ckpt, map_location="cpu", log=messages.append)
    assert path.name == "previous.pt"
    assert payload["extra"]["step"] == 7
    assert any("without a valid step (None)" in m for m in messages), messages


def test_divergence_stops_with_exit_3_and_keeps_the_last_good_state(tmp_path, capsys):
    """Item 1: optim.lr=.inf trained 45 epochs at NaN and exited 0; now .inf is refused and a NaN stops."""
    from ssmred_app.cli import main

    cfg_path = tmp_path / "tiny.yaml"
    cfg_path.write_text(TINY)
    out = tmp_path / "run"
    assert main(["train", "--config", str(cfg_path), "--out", str(out), "--no-progress", "optim.lr=.inf"]) == 2
    assert "optim.lr" in capsys.readouterr().err
    args = ["optim.lr=1e6", "optim.grad_clip=null", "optim.epochs=4", "compression.mode=none"]
    assert main(["train", "--config", str(cfg_path), "--out", str(out), "--no-progress", *args]) == 3
    err = capsys.readouterr().err
    assert "became nan" in err.lower() or "became inf" in err.lower()
    assert "training stopped" in err
    from ssmred_torch import read_checkpoint

    last = out / "checkpoints" / "last.pt"
    if last.exists():  # whatever was saved is finite and readable
        read_checkpoint(last)


def test_a_second_run_into_the_same_folder_is_refused_with_the_holders_pid(tmp_path):
    """Item 4: two runs raced on one temp file or interleaved their epoch files."""
    cfg_path = tmp_path / "tiny.yaml"
    cfg_path.write_text(TINY.replace("epochs: 3", "epochs: 50"))
    first = subprocess.Popen(
        _train_cmd(cfg_path, tmp_path / "run"), env=_env(), stderr=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        lock = tmp_path / "run" / ".ssmred.lock"
        deadline = time.time() + 60
        while not (lock.exists() and lock.read_text().strip()) and time.time() < deadline:
            time.sleep(0.05)
        second = subprocess.run(
            _train_cmd(cfg_path, tmp_path / "run"), env=_env(), capture_output=True, text=True, cwd=ROOT
        )
        assert second.returncode == 2
        assert f"in use by another ssmred process (pid {first.pid})" in second.stderr
    finally:
        first.kill()
        first.communicate()


def test_no_resume_needs_force_on_a_used_folder(tmp_path, capsys):
    from ssmred_app.cli import main

    cfg_path = tmp_path / "tiny.yaml"
    cfg_path.write_text(TINY.replace("epochs: 3", "epochs: 1").replace("mode: tolerance", "mode: none"))
    out = tmp_path / "run"
    assert main(["train", "--config", str(cfg_path), "--out", str(out), "--no-progress"]) == 0
    (out / "checkpoints" / "epoch_009.pt").write_text("left over by an older, longer run")
    assert main(["train", "--config", str(cfg_path), "--out", str(out), "--no-progress", "--no-resume"]) == 2
    assert "holds an earlier run" in capsys.readouterr().err
    assert main(["train", "--config", str(cfg_path), "--out", str(out), "--no-progress", "--no-resume", "--force"]) == 0
    assert not (out / "checkpoints" / "epoch_009.pt").exists()


def test_reduce_refuses_to_overwrite_its_input_or_a_runs_checkpoints(tmp_path, capsys):
    """Item 3: reduce X -o X destroyed the run's resumable state."""
    from ssmred_app.cli import main

    cfg_path = tmp_path / "tiny.yaml"
    cfg_path.write_text(TINY.replace("epochs: 3", "epochs: 1").replace("mode: tolerance", "mode: none"))
    out = tmp_path / "run"
    assert main(["train", "--config", str(cfg_path), "--out", str(out), "--no-progress"]) == 0
    last = out / "checkpoints" / "last.pt"
    before = last.read_bytes()
    for target, message in (
        (last, "is the input checkpoint"),
        (out / "checkpoints" / "reduced.pt", "inside the run folder's checkpoints"),
        (tmp_path, "is an existing folder"),
    ):
        assert main(["reduce", str(last), "--rank", "3", "-o", str(target)]) == 2
        assert message in capsys.readouterr().err
    assert last.read_bytes() == before
    assert not list(tmp_path.rglob("*.tmp"))
    assert main(["reduce", str(last), "--rank", "3", "-o", str(tmp_path / "small.pt")]) == 0
    assert main(["train", "--config", str(cfg_path), "--out", str(out), "--no-progress", "optim.epochs=1"]) == 0


def _npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


GOOD_X = np.random.default_rng(0).normal(size=(60, 12, 2)).astype(np.float32)
GOOD_Y = np.arange(60) % 3


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"X": np.where(np.arange(60)[:, None, None] == 5, np.nan, GOOD_X), "y": GOOD_Y}, "non-finite value"),
        ({"X": GOOD_X[:, :, 0].reshape(60, 12, 1, 1), "y": GOOD_Y}, "must have shape (N, L, d)"),
        ({"X": GOOD_X}, "missing array 'y'"),
        ({"X": GOOD_X[:0], "y": GOOD_Y[:0]}, "X is empty"),
        ({"X": GOOD_X, "y": np.where(np.arange(60) == 7, 10**7, GOOD_Y)}, "sparse label set"),
        (
            {
                "X": np.arange(60 * 12).reshape(60, 12) % 7 + np.where(np.arange(60)[:, None] == 3, 10**7, 0),
                "y": GOOD_Y,
            },
            "vocabulary",
        ),
        ({"X": GOOD_X, "y": GOOD_Y.astype(float)}, "integer labels"),
        ({"X": GOOD_X, "y": GOOD_Y, "X_test": GOOD_X[:5]}, "give both X_test and y_test"),
    ],
    ids=["nan", "shape", "missing-y", "empty", "label-1e7", "token-1e7", "float-labels", "half-test"],
)
def test_bad_data_files_end_in_one_message_and_exit_2(tmp_path, capsys, arrays, message):
    """Items 6 and 7: raw tracebacks, a 10-million-class head, 9 GB of checkpoints."""
    from ssmred_app.cli import main

    data = _npz(tmp_path / "d.npz", **arrays)
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(f"data: {{name: npz, path: {data}}}\noptim: {{epochs: 1}}\nmodel: {{d_model: 4, d_state: 4}}\n")
    assert main(["train", "--config", str(cfg_path), "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_test_labels_never_seen_in_training_are_reported(tmp_path, capsys):
    from ssmred_app.cli import main

    data = _npz(tmp_path / "d.npz", X=GOOD_X, y=GOOD_Y % 2, X_test=GOOD_X[:10], y_test=np.full(10, 2))
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(f"data: {{name: npz, path: {data}}}\noptim: {{epochs: 1}}\nmodel: {{d_model: 4, d_state: 4}}\n")
    assert main(["train", "--config", str(cfg_path), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    assert "test labels [2] never occur in the training split" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("seed: -5\n", "seed: must be >= 0"),
        ("", "is empty"),
        ("optim: {lr: 1e-3, epochs: 0}\n", "optim.epochs: must be >= 1"),  # 1e-3 is a float, not a string
    ],
)
def test_config_edge_cases(tmp_path, capsys, text, message):
    from ssmred_app.cli import main

    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(text)
    assert main(["train", "--config", str(cfg_path), "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "optim.lr" not in err


def test_analyze_and_reduce_refuse_a_nan_checkpoint(tmp_path, capsys):
    import torch
    from ssmred_app.cli import main
    from ssmred_torch import LRUModel

    model = LRUModel(1, 4, 8, 1, 3)
    with torch.no_grad():
        model.blocks[0].ssm.C_re[0, 0] = float("nan")
    torch.save(model.state_dict(), tmp_path / "nan.pt")
    assert main(["analyze", str(tmp_path / "nan.pt"), "--out", str(tmp_path / "a")]) == 2
    assert "non-finite values" in capsys.readouterr().err
    assert main(["reduce", str(tmp_path / "nan.pt"), "--rank", "2", "-o", str(tmp_path / "r.pt")]) == 2
    assert "non-finite values" in capsys.readouterr().err
