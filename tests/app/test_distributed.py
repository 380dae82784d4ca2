"""Multi-process training with torch DDP (issue 15): the same reductions on every rank.

Real processes on loopback (gloo, CPU, torchrun's launcher): two ranks train a tiny LRU classifier for 39
steps with two pragmatic reductions (the first accepted, the second rolled back); after every reduction
and rollback and at the end both ranks hold identical parameters and optimizer state, and the run
equals a single-process run of the same global batch. Resuming after a SIGTERM on one rank, between a
reduction and its check, reproduces the uninterrupted run, and the run lock holds under DDP. The
decision plumbing (rank 0 plans and judges, the others follow) and the DistributedSampler-equivalent
sharding are checked in-process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.torch

# 416 training samples = 13 global batches of 2 x 16: every DDP step sees exactly a single-process batch of 32
CONFIG = """
name: ddp
seed: 3
threads: 1
data: {name: digits, n_samples: 640, split_seed: 0}
model: {d_model: 6, d_state: 10, n_layers: 2, dropout: 0.0}
optim: {epochs: 3, batch_size: 16, lr: 0.02, warmup_fraction: 0.0}
compression: {mode: pragmatic, fraction: 0.3, tolerance: 0.0, schedule: [4, 12]}
"""
# reductions at 4 and 12 (checked at 12: accepted), the check at 20 rolls the second one back
KINDS = ["reduce", "accept+reduce", "rollback"]

# one rank of a torchrun job: the application's trainer plus checks that need every rank's state
WORKER = textwrap.dedent(
    r"""
    import json, os, signal, sys
    from pathlib import Path

    import torch

    import ssmred_app.trainer as T
    from ssmred_app.config import load_config, with_sections
    from ssmred_app.distributed import Distributed
    from ssmred_app.errors import RunFolderBusy
    from ssmred_app.runstate import RunLock

    cfg_path, out, report, stop_at = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    ctx = Distributed.from_env()
    writes = []
    if ctx.rank != 0:  # other ranks must never write: record any attempt
        def spy(name):
            def f(*a, **k):
                writes.append(name)
            return f
        T.save_run_state, T.save_model_file = spy("save_run_state"), spy("save_model_file")
        T.RunLock = lambda *a, **k: writes.append("RunLock")
        _write_text = Path.write_text
        Path.write_text = lambda self, *a, **k: writes.append(f"write_text {self}") or _write_text(self, *a, **k)
    cfg = with_sections(load_config(cfg_path), out=None)
    checks, lock_probe = [], []

    def snapshot(tr):
        opt = tr.optimizer.state_dict()
        return {
            "model": {k: v.detach().cpu().clone() for k, v in tr.model.state_dict().items()},
            "opt": {
                i: {k: (v.cpu() if torch.is_tensor(v) else v) for k, v in s.items()} for i, s in opt["state"].items()
            },
            "lr": [g["lr"] for g in opt["param_groups"]],
            "sizes": tr.result.dims_trace[-1][1],
            "wrapped": tr._ddp is not None and tr._ddp.module is tr.model,
            "ddp_shapes": [tuple(p.shape) for p in tr._ddp.module.parameters()] if tr._ddp is not None else None,
            "ok_params": all(p.is_contiguous() and not p.is_complex() for p in tr.model.parameters()),
        }

    def compare(step, tr):
        states = ctx.gather(snapshot(tr))
        if ctx.rank != 0:
            return
        a, b = states
        same_model = a["model"].keys() == b["model"].keys() and all(
            torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
        same_opt = a["opt"].keys() == b["opt"].keys() and all(
            a["opt"][i].keys() == b["opt"][i].keys()
            and all(torch.equal(x, y) if torch.is_tensor(x) else x == y
                    for x, y in zip(a["opt"][i].values(), b["opt"][i].values()))
            for i in a["opt"])
        checks.append({"step": step, "model": same_model, "opt": same_opt, "lr": a["lr"] == b["lr"],
                       "sizes": [a["sizes"], b["sizes"]], "wrapped": [a["wrapped"], b["wrapped"]],
                       "ddp_matches": a["ddp_shapes"] == [tuple(p.shape) for p in tr.model.parameters()],
                       "ok_params": [a["ok_params"], b["ok_params"]]})

    def on_step(step, tr):
        if any(r["step"] == step for r in tr.result.reductions):
            compare(step, tr)
        if step == 3 and ctx.rank == 1:  # rank 0 holds the folder's lock: nobody else gets it
            try:
                with RunLock(tr.out):
                    lock_probe.append("acquired")
            except RunFolderBusy as exc:
                lock_probe.append(str(exc))
        if step == stop_at and ctx.rank == 0:
            os.kill(os.getpid(), signal.SIGTERM)  # a signal reaching one rank only

    trainer = T.Trainer(cfg, out, progress=False, log=print)
    code = 0
    try:
        res = trainer.run(on_step_end=on_step)
        compare("end", trainer)
    except KeyboardInterrupt:
        code = 130
    all_writes = ctx.gather(writes)
    probes = ctx.gather(lock_probe)
    if ctx.rank == 0:
        Path(report).write_text(json.dumps({
            "checks": checks, "writes": all_writes, "lock_probe": probes, "step": trainer.step,
            "world_size": trainer.world_size, "steps_per_epoch": trainer.steps_per_epoch,
            "pid": os.getpid(),
        }))
    ctx.close()
    sys.exit(code)
    """
)


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _torchrun(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env(), check=False)


def _ssmred(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "ssmred_app", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env(), check=False)


def _state(out: Path) -> dict:
    import torch

    return torch.load(out / "checkpoints" / "last.pt", weights_only=True)


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    """One uninterrupted 2-rank run (worker checks after every reduction) and its single-process twin."""
    base = tmp_path_factory.mktemp("ddp")
    (base / "cfg.yaml").write_text(CONFIG)
    (base / "worker.py").write_text(WORKER)
    proc = _torchrun(
        str(base / "worker.py"), str(base / "cfg.yaml"), str(base / "ddp"), str(base / "report.json"), "-1"
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return base, json.loads((base / "report.json").read_text()), proc


def test_ranks_agree_after_every_reduction_and_at_the_end(ddp_run):
    base, report, proc = ddp_run
    checks = report["checks"]
    assert [c["step"] for c in checks] == [4, 12, 20, "end"], checks
    for c in checks:
        assert (c["model"], c["opt"], c["lr"]) == (True, True, True), c  # bit-identical weights, moments, LRs
        assert c["sizes"][0] == c["sizes"][1]
        assert c["wrapped"] == [True, True], c  # a DDP wrapper of the reduced module ...
        assert c["ddp_matches"], c  # ... built after the reduction (its parameters have the new shapes)
        assert c["ok_params"] == [True, True]  # real, contiguous parameters
    assert checks[0]["sizes"][0] != [10, 10]  # two real cuts ...
    assert checks[1]["sizes"][0] != checks[0]["sizes"][0]
    assert checks[2]["sizes"][0] == checks[0]["sizes"][0]  # ... and a rollback to the first
    assert report["world_size"] == 2
    assert report["steps_per_epoch"] == 13
    assert json.loads((base / "ddp" / "result.json").read_text())["world_size"] == 2
    # rank 1 never wrote, never locked; while the run went, the lock named rank 0's pid
    assert report["writes"][1] == []
    assert report["lock_probe"][0] == []
    assert "in use by another ssmred process" in report["lock_probe"][1][0]
    assert f"pid {report['pid']}" in report["lock_probe"][1][0]
    # rank 0 logged once: one line per reduction and epoch
    assert proc.stdout.count("epoch 3/3") == 1, proc.stdout


def test_ddp_equals_single_process_with_the_same_global_batch(ddp_run):
    import torch
    import yaml
    from ssmred_app.config import _loader, parse_config
    from ssmred_app.trainer import Trainer

    base, _, _ = ddp_run
    raw = yaml.load(CONFIG, Loader=_loader())
    raw["optim"]["batch_size"] = 32  # 2 ranks x 16
    single = Trainer(parse_config(raw), base / "single", progress=False, log=lambda s: None).run()
    ddp = json.loads((base / "ddp" / "result.json").read_text())
    assert ddp["total_steps"] == single.total_steps == 39
    assert [r["kind"] for r in ddp["reductions"]] == [r["kind"] for r in single.reductions] == KINDS
    assert ddp["final_dims"] == single.final_dims
    assert [r["dims_after"] for r in ddp["reductions"]] == [r["dims_after"] for r in single.reductions]
    assert [r["r"] for x in ddp["reductions"] for r in x["layers"]] == [
        r["r"] for x in single.reductions for r in x["layers"]
    ]
    np.testing.assert_allclose(
        [e["train_loss"] for e in ddp["epochs"]], [e["train_loss"] for e in single.epochs], rtol=1e-5
    )
    # accuracies: the same to one sample (the weights differ by float rounding only)
    val_ddp, val_single = [e["val_acc"] for e in ddp["epochs"]], [e["val_acc"] for e in single.epochs]
    assert np.abs(np.subtract(val_ddp, val_single)).max() <= 1.01 / 96  # 96 validation samples
    assert abs(ddp["test_acc"] - single.test_acc) <= 1.01 / 128  # 128 test samples
    a, b = _state(base / "ddp")["model"], _state(base / "single")["model"]
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-4, msg=k)


# a post-training cut and one epoch of fine-tuning; dropout gives every rank its own random stream
POST_BT_CONFIG = """
name: ddp-post-bt
seed: 3
threads: 1
data: {name: digits, n_samples: 640, split_seed: 0}
model: {d_model: 6, d_state: 10, n_layers: 2, dropout: 0.1}
optim: {epochs: 1, batch_size: 16, lr: 0.02, warmup_fraction: 0.0}
method: {name: post_bt, target_total: 12, finetune_epochs: 1}
"""


def test_post_training_finetune_keeps_the_ranks_identical(ddp_run):
    """``post_bt`` under DDP: rank 0 plans the cut, every rank applies it, and the fine-tuning runs each
    rank's share through the rebuilt DDP wrapper, so the ranks end bit-identical. (A fine-tune of the bare
    module, as before, let the ranks drift apart: their dropout streams differ.)"""
    base, _, _ = ddp_run
    (base / "post_bt.yaml").write_text(POST_BT_CONFIG)
    proc = _torchrun(
        str(base / "worker.py"), str(base / "post_bt.yaml"), str(base / "post_bt"), str(base / "post_bt.json"), "-1"
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    end = json.loads((base / "post_bt.json").read_text())["checks"][-1]
    assert end["step"] == "end"
    assert sum(end["sizes"][0]) == 12  # the cut happened ...
    assert end["sizes"][0] == end["sizes"][1]  # ... on both ranks
    assert (end["model"], end["wrapped"], end["ddp_matches"]) == (True, [True, True], True), end


def test_resume_under_ddp_reproduces_the_uninterrupted_run(ddp_run):
    """SIGTERM reaches rank 0 only: both ranks stop at the same step, rank 0 saves, exit 130; plain
    ``torchrun -m ssmred_app train`` resumes mid-epoch with the pending pragmatic snapshot of step 4, and
    ends with the uninterrupted run's reductions, rollback and weights."""
    import torch

    base, _, _ = ddp_run
    out = base / "resumed"
    proc = _torchrun(str(base / "worker.py"), str(base / "cfg.yaml"), str(out), str(base / "stopped.json"), "9")
    assert proc.returncode != 0
    stopped = json.loads((base / "stopped.json").read_text())
    assert stopped["step"] == 10  # the signal at step 9 is agreed on in step 10's all-reduce
    assert _state(out)["extra"]["step"] == 10
    assert _state(out)["extra"]["world_size"] == 2
    assert len(_state(out)["extra"]["torch_rng_ranks"]) == 2
    assert _state(out)["controller"]["snapshot"]["step"] == 4  # the reduction of step 4 awaits its check
    proc = _torchrun(
        "-m", "ssmred_app", "train", "--config", str(base / "cfg.yaml"), "--out", str(out), "--no-progress"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count("resumed from") == 1
    assert "at step 10" in proc.stderr
    straight, resumed = (
        json.loads((base / "ddp" / "result.json").read_text()),
        json.loads((out / "result.json").read_text()),
    )
    assert [e["train_loss"] for e in straight["epochs"]] == [e["train_loss"] for e in resumed["epochs"]]
    assert [r["kind"] for r in resumed["reductions"]] == KINDS
    assert straight["final_dims"] == resumed["final_dims"]
    assert straight["test_acc"] == resumed["test_acc"]
    a, b = _state(base / "ddp")["model"], _state(out)["model"]
    for k in a:
        assert torch.equal(a[k], b[k]), k
    for name in ("metrics.json", "report.md"):
        assert (out / name).exists()  # rank 0 ran the whole command


def test_run_lock_and_world_size_under_ddp(ddp_run):
    """A folder in use refuses the whole job at once (exit 2, one message); resuming with another number
    of processes is refused (the schedule in steps depends on it)."""
    from ssmred_app.runstate import RunLock

    base, _, _ = ddp_run
    with RunLock(base / "busy"):
        proc = _ssmred("train", "--config", str(base / "cfg.yaml"), "--out", str(base / "busy"), "--nproc", "2")
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert proc.stderr.count("in use by another ssmred process") == 1, proc.stderr
    assert not (base / "busy" / "checkpoints").exists()

    from ssmred_app.config import ConfigError, load_config, with_sections
    from ssmred_app.trainer import Trainer

    cfg = with_sections(load_config(base / "cfg.yaml"), out=None)
    with pytest.raises(
        ConfigError, match=r"trained by 2 process\(es\), now there are 1; resume it with 2 \(ssmred train --nproc 2"
    ):
        Trainer(cfg, base / "ddp", progress=False, log=lambda s: None).run()


# ---------------------------------------------------------------------------------------------- in-process
def test_sharding_is_distributed_samplers():
    import torch
    from ssmred_app.distributed import shard_indices
    from torch.utils.data import DistributedSampler

    for n, world in [(10, 2), (11, 2), (7, 3), (2, 4)]:
        perm = np.random.default_rng(n).permutation(n)
        for rank in range(world):
            sampler = DistributedSampler(torch.arange(n), num_replicas=world, rank=rank, shuffle=False)
            assert shard_indices(perm, rank, world).tolist() == [int(perm[i]) for i in sampler]
    # the k-th per-rank batches of b together are the k-th global batch of b * world
    perm = np.random.default_rng(0).permutation(64)
    shards = [shard_indices(perm, r, 2) for r in range(2)]
    for k in range(4):
        together = np.concatenate([s[8 * k : 8 * k + 8] for s in shards])
        assert sorted(together.tolist()) == sorted(perm[16 * k : 16 * k + 16].tolist())


def test_every_rank_applies_the_plan_rank_0_made():
    """Under shared_decisions the plan comes from the hook (rank 0's), not from the local model."""
    import torch
    from ssmred_torch import LRUModel, rank, reduce_model, ssm_layers
    from ssmred_torch.reduce import plan_reduction, shared_decisions

    torch.manual_seed(0)
    rank0 = LRUModel(1, 4, 12, 2, 3, dtype=torch.float64)
    local = LRUModel(1, 4, 12, 2, 3, dtype=torch.float64)
    local.load_state_dict(rank0.state_dict())
    with torch.no_grad():  # this rank's copy drifted: its own plan would differ
        for p in local.parameters():
            p.add_(0.3 * torch.randn_like(p))
    sent = plan_reduction(rank0, rank(5))
    own = plan_reduction(local, rank(5))
    assert not torch.allclose(own.layers[0].reduced.mu, sent.layers[0].reduced.mu)
    with shared_decisions(lambda thunk: sent):
        reduce_model(local, rank(5), optimizer=None)
    reduce_model(rank0, rank(5))
    for e0, e1 in zip(ssm_layers(rank0), ssm_layers(local), strict=True):  # the eigenvalues rank 0 chose
        torch.testing.assert_close(e1.adapter.systems(e1.module).lam, e0.adapter.systems(e0.module).lam)


def test_the_rollback_verdict_is_rank_0s():
    """A pragmatic check follows the broadcast verdict even when the local metric says otherwise."""
    import torch
    from ssmred_torch import CompreSSM, LRUModel, pragmatic
    from ssmred_torch.reduce import shared_decisions

    torch.manual_seed(0)
    for verdict, kind in [(False, "rollback"), (True, "accept")]:
        model = LRUModel(1, 4, 12, 2, 3, dtype=torch.float64)
        ctl = CompreSSM(100, mode=pragmatic(0.5, 0.1), schedule=[10])  # checked at step 13
        seen = []

        def hook(thunk, verdict=verdict, seen=seen):
            value = thunk()
            seen.append(value)
            return verdict if isinstance(value, bool) else value

        with shared_decisions(hook):
            ctl.step(10, model, val_metric=0.9)
            result = ctl.step(13, model, val_metric=0.9)  # no drop: locally an accept
        assert seen[1] is True
        assert result.records[0].kind == kind
        assert model.state_sizes == ([12, 12] if kind == "rollback" else [6, 6])
