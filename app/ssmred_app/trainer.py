r"""The trainer behind ``ssmred train`` / ``ssmred demo`` / ``ssmred experiment``.

The trainer follows SPEC §6: AdamW with the SSM parameters (``nu_log``, ``theta_log``, ``gamma_log``,
``B_re``, ``B_im``) in their own group at ``lr * ssm_lr_factor`` without weight decay, linear warm-up
over the first ``warmup_fraction`` of the steps and cosine decay after it. When compression is on, a
:class:`ssmred_torch.CompreSSM` controller is called after every optimizer step; the validation
accuracy is measured right before and right after every reduction attempt and logged.

Checkpoints are written atomically at the end of every epoch (``checkpoints/last.pt``); a run started
again with the same output folder resumes from it. An interrupt (Ctrl-C) stops at the current step,
keeps the last completed epoch's checkpoint and re-raises.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ssmred_app.compression import (
    build_controller,
    controller_state,
    controller_step,
    describe_event,
    is_attempt,
    load_controller_state,
)
from ssmred_app.config import ConfigError, RunConfig, config_to_dict, same_config
from ssmred_app.data import SequenceData, load_dataset
from ssmred_app.models import atomic_save, build_model, model_meta, param_groups, save_model_file, state_sizes
from ssmred_app.report import pct

__all__ = ["RunResult", "Trainer", "environment", "lr_lambda", "resolve_device", "train_run"]


# --------------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------------


@dataclass
class RunResult:
    """Everything a run measured (plain data; written to ``metrics.json``).

    Attributes
    ----------
    name
        Run name.
    config
        The configuration as a mapping.
    test_acc, val_acc
        Final test / validation accuracy.
    initial_dims, final_dims
        Per-layer state sizes at the start and the end.
    train_time_s
        Wall-clock seconds spent in optimizer steps and reductions (evaluation excluded).
    train_cpu_s
        CPU seconds of the same (robust to other processes on a shared machine when torch runs one
        thread; speedups are computed from it).
    wall_time_s
        Total seconds including evaluation.
    reduction_time_s
        Seconds spent inside the CompreSSM controller.
    epochs
        Per-epoch log: loss, accuracy, dims, cumulative train time.
    reductions
        Per reduction attempt: step, accuracy before/after, per-layer HSVs, r, bound.
    dims_trace
        ``[step, dims]`` pairs whenever the sizes changed (plus start and end).
    """

    name: str
    config: dict[str, Any]
    test_acc: float = float("nan")
    val_acc: float = float("nan")
    initial_dims: list[int] = field(default_factory=list)
    final_dims: list[int] = field(default_factory=list)
    train_time_s: float = 0.0
    train_cpu_s: float = 0.0
    wall_time_s: float = 0.0
    reduction_time_s: float = 0.0
    epochs: list[dict[str, Any]] = field(default_factory=list)
    reductions: list[dict[str, Any]] = field(default_factory=list)
    dims_trace: list[list[Any]] = field(default_factory=list)
    total_steps: int = 0
    device: str = "cpu"

    @property
    def mean_final_dim(self) -> float:
        """Mean final state size over layers."""
        return float(np.mean(self.final_dims)) if self.final_dims else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping, with ``mean_final_dim`` added."""
        d = asdict(self)
        d["mean_final_dim"] = self.mean_final_dim
        return d


# --------------------------------------------------------------------------------------------------
# the training loop
# --------------------------------------------------------------------------------------------------


def resolve_device(name: str) -> str:
    """``auto`` -> ``cuda`` when available else ``cpu``; otherwise check the device exists."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device: {name!r} requested but CUDA is not available")
    return name


def _rng_seed(*parts: int) -> int:
    return int(np.random.SeedSequence(list(parts)).generate_state(1)[0])


def _batches(n: int, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    perm = np.random.default_rng(_rng_seed(seed, epoch)).permutation(n)
    return [perm[i : i + batch_size] for i in range(0, n, batch_size)]


def lr_lambda(total_steps: int, warmup_fraction: float) -> Callable[[int], float]:
    """Linear warm-up over ``warmup_fraction`` of the steps, then cosine decay to 0.

    Examples
    --------
    >>> f = lr_lambda(100, 0.1)
    >>> round(f(0), 3), round(f(9), 3), round(f(10), 3), round(f(100), 3)
    (0.1, 1.0, 1.0, 0.0)
    """
    warm = max(1, round(warmup_fraction * total_steps))

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        t = min(1.0, (step - warm) / max(1, total_steps - warm))
        return 0.5 * (1.0 + math.cos(math.pi * t))

    return f


class Trainer:
    """Train one LRU classifier on one data set with optional CompreSSM reduction.

    Parameters
    ----------
    cfg
        The validated run configuration.
    out
        Run folder (checkpoints under ``out/checkpoints``).
    data
        Pre-loaded data (default: loaded from ``cfg.data``).
    progress
        Show a tqdm progress bar.
    log
        Where one-line messages go (default: stderr).
    """

    def __init__(
        self,
        cfg: RunConfig,
        out: str | os.PathLike[str],
        *,
        data: SequenceData | None = None,
        progress: bool = True,
        log: Callable[[str], None] | None = None,
    ) -> None:
        import torch

        self.torch = torch
        self.cfg = cfg
        self.out = Path(out)
        self.ckpt_dir = self.out / "checkpoints"
        self.progress = progress
        self._log = log or (lambda s: print(s, file=sys.stderr, flush=True))
        if cfg.threads is not None:
            torch.set_num_threads(cfg.threads)
        self.device = resolve_device(cfg.device)
        self.data = data if data is not None else load_dataset(cfg.data)
        d = self.data
        self.tensors = {
            split: (
                torch.as_tensor(getattr(d, f"X_{split}")).to(self.device),
                torch.as_tensor(getattr(d, f"y_{split}")).to(self.device),
            )
            for split in ("train", "val", "test")
        }
        self.steps_per_epoch = math.ceil(len(d.y_train) / cfg.optim.batch_size)
        self.total_steps = self.steps_per_epoch * cfg.optim.epochs
        torch.manual_seed(cfg.seed)
        self.model = build_model(cfg.model, d).to(self.device)
        self.optimizer = self._make_optimizer()
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(self.total_steps, cfg.optim.warmup_fraction)
        )
        self.controller = build_controller(cfg.compression, cfg.model, self.total_steps)
        self.result = RunResult(name=cfg.name, config=config_to_dict(cfg), total_steps=self.total_steps)
        self.result.device = self.device
        self.result.initial_dims = state_sizes(self.model)
        self.result.dims_trace.append([0, list(self.result.initial_dims)])
        self.start_epoch = 0
        self.step = 0

    # -- pieces ------------------------------------------------------------------------------------
    def log(self, msg: str) -> None:
        """Emit one line (through tqdm when a bar is active)."""
        if self.progress:
            from tqdm import tqdm

            tqdm.write(msg, file=sys.stderr)
        else:
            self._log(msg)

    def _make_optimizer(self) -> Any:
        o = self.cfg.optim
        ssm, decay, no_decay = param_groups(self.model)
        groups = [
            {"params": ssm, "lr": o.lr * o.ssm_lr_factor, "weight_decay": 0.0, "name": "ssm"},
            {"params": decay, "lr": o.lr, "weight_decay": o.weight_decay, "name": "decay"},
            {"params": no_decay, "lr": o.lr, "weight_decay": 0.0, "name": "no_decay"},
        ]
        return self.torch.optim.AdamW([g for g in groups if g["params"]], lr=o.lr)

    def evaluate(self, split: str) -> float:
        """Accuracy on ``split`` (``train``, ``val`` or ``test``)."""
        torch = self.torch
        X, y = self.tensors[split]
        bs = self.cfg.optim.eval_batch_size
        was_training = self.model.training
        self.model.eval()
        correct = 0
        with torch.no_grad():
            for i in range(0, len(y), bs):
                correct += int((self.model(X[i : i + bs]).argmax(-1) == y[i : i + bs]).sum())
        self.model.train(was_training)
        return correct / max(1, len(y))

    # -- checkpoints -------------------------------------------------------------------------------
    def checkpoint_path(self) -> Path:
        """The resumable checkpoint of the last completed epoch."""
        return self.ckpt_dir / "last.pt"

    def save_checkpoint(self, epoch: int) -> None:
        """Write ``checkpoints/last.pt`` (and ``epoch_NNN.pt`` model weights) atomically."""
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        state = {
            "format": "ssmred-run",
            "version": 1,
            "config": self.result.config,
            "state_sizes": state_sizes(self.model),
            "model": self.model.state_dict(),
            "model_meta": model_meta(self.model),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "controller": controller_state(self.controller),
            "epoch": epoch,
            "step": self.step,
            "result": json.dumps(self.result.to_dict()),
            "torch_rng": self.torch.get_rng_state(),
        }
        atomic_save(state, self.checkpoint_path())
        save_model_file(self.ckpt_dir / f"epoch_{epoch:03d}.pt", self.model, config=self.result.config, epoch=epoch)

    def try_resume(self) -> bool:
        """Resume from ``checkpoints/last.pt`` when it exists; return whether it did."""
        path = self.checkpoint_path()
        if not path.is_file():
            return False
        torch = self.torch
        state = torch.load(path, map_location=self.device, weights_only=True)
        if not same_config(state.get("config"), self.cfg):
            raise ConfigError(
                f"{self.out}: holds a checkpoint of a different configuration; "
                "choose another --out or delete the folder"
            )
        self.model = build_model(self.cfg.model, self.data, state_sizes=state["state_sizes"]).to(self.device)
        self.model.load_state_dict(state["model"])
        self.optimizer = self._make_optimizer()
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(self.total_steps, self.cfg.optim.warmup_fraction)
        )
        self.scheduler.load_state_dict(state["scheduler"])
        load_controller_state(self.controller, state["controller"])
        self.start_epoch = int(state["epoch"])
        self.step = int(state["step"])
        restored = json.loads(state["result"])
        restored.pop("mean_final_dim", None)
        self.result = RunResult(**restored)
        self.result.config = config_to_dict(self.cfg)
        torch.set_rng_state(state["torch_rng"].cpu())
        self.log(f"[{self.cfg.name}] resumed from {path} (epoch {self.start_epoch}, step {self.step})")
        return True

    # -- the loop ----------------------------------------------------------------------------------
    def _reduce(self, step: int) -> tuple[float, float]:
        """Run the controller at ``step``; log a reduction attempt; return (wall, CPU) seconds spent."""
        attempt = self.controller is not None and is_attempt(self.controller, step)
        acc_before = self.evaluate("val") if attempt else None
        t0, c0 = time.perf_counter(), time.process_time()
        dims_before = state_sizes(self.model)
        event = controller_step(
            self.controller, step, self.model, self.optimizer, acc_before if acc_before is not None else None
        )
        spent, spent_cpu = time.perf_counter() - t0, time.process_time() - c0
        if event is None and not attempt:
            return spent, spent_cpu
        dims_after = state_sizes(self.model)
        record = describe_event(event)
        record.update(
            {
                "step": step,
                "fraction": step / self.total_steps,
                "dims_before": dims_before,
                "dims_after": dims_after,
                "val_acc_before": acc_before,
                "val_acc_after": self.evaluate("val") if dims_after != dims_before else acc_before,
                "time_s": spent,
            }
        )
        self.result.reductions.append(record)
        if dims_after != dims_before:
            self.result.dims_trace.append([step, list(dims_after)])
        after = record["val_acc_after"]
        self.log(
            f"[{self.cfg.name}] step {step} ({100 * step / self.total_steps:.1f} %): state sizes "
            f"{dims_before} -> {dims_after}; val acc {pct(acc_before)} -> {pct(after)}; "
            f"{1000 * spent:.1f} ms{'; ' + record['note'] if record.get('note') else ''}"
        )
        return spent, spent_cpu

    def run(
        self,
        *,
        resume: bool = True,
        on_epoch_end: Callable[[int, Trainer], None] | None = None,
    ) -> RunResult:
        """Train to the end (resuming when a checkpoint exists) and return the result.

        Parameters
        ----------
        resume
            Continue from ``checkpoints/last.pt`` when present.
        on_epoch_end
            Called with ``(epoch, trainer)`` after each epoch's checkpoint is written (tests use it to
            simulate an interruption).

        Returns
        -------
        RunResult
            Final accuracies, sizes, timings and logs.
        """
        torch = self.torch
        cfg = self.cfg
        if resume:
            self.try_resume()
        self.out.mkdir(parents=True, exist_ok=True)
        res = self.result
        Xtr, ytr = self.tensors["train"]
        bar = None
        if self.progress:
            from tqdm import tqdm

            # disable=None: a live bar on a terminal, none when output goes to a file or a CI log
            bar = tqdm(
                total=self.total_steps,
                initial=self.step,
                desc=cfg.name,
                leave=False,
                dynamic_ncols=True,
                disable=None,
            )
        wall0 = time.perf_counter() - res.wall_time_s
        try:
            self.model.train()
            for epoch in range(self.start_epoch, cfg.optim.epochs):
                t_epoch, c_epoch = time.perf_counter(), time.process_time()
                eval_time = eval_cpu = 0.0
                loss_sum, correct, seen = 0.0, 0, 0
                for idx_np in _batches(len(ytr), cfg.optim.batch_size, cfg.seed, epoch):
                    idx = torch.as_tensor(idx_np, device=self.device)
                    xb, yb = Xtr[idx], ytr[idx]
                    logits = self.model(xb)
                    loss = torch.nn.functional.cross_entropy(logits, yb)
                    self.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    if cfg.optim.grad_clip is not None:
                        torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.optim.grad_clip)
                    self.optimizer.step()
                    self.scheduler.step()
                    self.step += 1
                    loss_sum += float(loss.detach()) * len(yb)
                    correct += int((logits.argmax(-1) == yb).sum())
                    seen += len(yb)
                    # drop the graph before the controller may resize parameters: a live graph keeps the
                    # parameters' gradient accumulators (with their old shapes) alive into the next step
                    del logits, loss
                    if self.controller is not None:
                        t_eval0, c_eval0 = time.perf_counter(), time.process_time()
                        spent, spent_cpu = self._reduce(self.step)
                        res.reduction_time_s += spent
                        eval_time += time.perf_counter() - t_eval0 - spent
                        eval_cpu += time.process_time() - c_eval0 - spent_cpu
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(loss=f"{loss_sum / seen:.3f}", n=state_sizes(self.model))
                res.train_time_s += time.perf_counter() - t_epoch - eval_time
                res.train_cpu_s += time.process_time() - c_epoch - eval_cpu
                val_acc = self.evaluate("val")
                res.epochs.append(
                    {
                        "epoch": epoch + 1,
                        "step": self.step,
                        "train_loss": loss_sum / seen,
                        "train_acc": correct / seen,
                        "val_acc": val_acc,
                        "dims": state_sizes(self.model),
                        "train_time_s": res.train_time_s,
                        "train_cpu_s": res.train_cpu_s,
                    }
                )
                res.wall_time_s = time.perf_counter() - wall0
                self.log(
                    f"[{cfg.name}] epoch {epoch + 1}/{cfg.optim.epochs}: loss {loss_sum / seen:.3f}, "
                    f"val acc {pct(val_acc)}, state sizes {state_sizes(self.model)}, "
                    f"train time {res.train_time_s:.1f} s (CPU {res.train_cpu_s:.1f} s)"
                )
                self.save_checkpoint(epoch + 1)
                if on_epoch_end is not None:
                    on_epoch_end(epoch + 1, self)
        except KeyboardInterrupt:
            self.log(f"[{cfg.name}] interrupted; resume from {self.checkpoint_path()} by running the same command")
            raise
        finally:
            if bar is not None:
                bar.close()
        res.final_dims = state_sizes(self.model)
        if res.dims_trace[-1][0] != self.step:
            res.dims_trace.append([self.step, list(res.final_dims)])
        res.val_acc = self.evaluate("val")
        res.test_acc = self.evaluate("test")
        res.wall_time_s = time.perf_counter() - wall0
        (self.out / "result.json").write_text(json.dumps(res.to_dict(), indent=1))
        return res


def train_run(
    cfg: RunConfig,
    out: str | os.PathLike[str],
    *,
    data: SequenceData | None = None,
    progress: bool = True,
    resume: bool = True,
    log: Callable[[str], None] | None = None,
) -> RunResult:
    """Train one configuration into ``out`` (resuming from its last checkpoint when present).

    Parameters
    ----------
    cfg
        The validated configuration.
    out
        Run folder.
    data
        Pre-loaded data set (default: load ``cfg.data``).
    progress
        Show a progress bar.
    resume
        Resume from ``out/checkpoints/last.pt`` when present.
    log
        Message sink (default: stderr).

    Returns
    -------
    RunResult
        The run's measurements.
    """
    return Trainer(cfg, out, data=data, progress=progress, log=log).run(resume=resume)


def environment() -> dict[str, Any]:
    """Versions and machine facts recorded in ``metrics.json``."""
    import torch

    import ssmred

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "ssmred": ssmred.__version__,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
    }
