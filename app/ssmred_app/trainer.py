r"""The trainer behind ``ssmred train`` / ``ssmred demo`` / ``ssmred experiment``.

The trainer follows SPEC §6: AdamW with the SSM parameters (``nu_log``, ``theta_log``, ``gamma_log``,
``B_re``, ``B_im``) in their own group at ``lr * ssm_lr_factor`` without weight decay, linear warm-up
over the first ``warmup_fraction`` of the steps and cosine decay after it. When compression is on, a
:class:`ssmred_torch.CompreSSM` controller is called after every optimizer step; the validation
accuracy is measured right before and right after every reduction attempt and logged.

Resumable states are written at the end of every epoch, every ``optim.checkpoint_every`` steps when
set, and when the run is interrupted (SIGINT or SIGTERM: the step in progress is finished and saved
first); a run started again with the same folder resumes from the newest intact one and reproduces the
uninterrupted run exactly on CPU (same losses, same weights). A non-finite loss or gradient stops the
run (:class:`~ssmred_app.errors.TrainingDiverged`) before anything non-finite is saved. One process at
a time trains into a folder (:class:`~ssmred_app.runstate.RunLock`).
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ssmred_app.config import ConfigError, RunConfig, config_to_dict, same_config
from ssmred_app.data import SequenceData, load_dataset
from ssmred_app.errors import RunError, TrainingDiverged
from ssmred_app.methods import Method, build_method
from ssmred_app.models import build_model, model_meta, param_groups, save_model_file, state_sizes
from ssmred_app.report import pct
from ssmred_app.runresult import RunResult, environment, resolve_device
from ssmred_app.runstate import RunLock, clear_run_folder, read_run_state, run_folder_has_state, save_run_state

# RunResult, environment and resolve_device live in ssmred_app.runresult and are re-exported here
__all__ = ["RunResult", "Trainer", "environment", "lr_lambda", "resolve_device", "train_run"]


# --------------------------------------------------------------------------------------------------
# the training loop
# --------------------------------------------------------------------------------------------------


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
    """Train one classifier on one data set with optional CompreSSM reduction, resumably.

    Parameters
    ----------
    cfg
        The validated run configuration.
    out
        Run folder (see :mod:`ssmred_app.runstate` for what it holds).
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
        for note in d.warnings:
            self.log(f"[{cfg.name}] warning: {note}")
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
        self.optimizer, self.scheduler = self._make_optimizer()
        self.method: Method = build_method(cfg, self.total_steps)
        self.result = RunResult(name=cfg.name, config=config_to_dict(cfg), total_steps=self.total_steps)
        self.result.device = self.device
        self.result.initial_dims = state_sizes(self.model)
        self.result.dims_trace.append([0, list(self.result.initial_dims)])
        self.epoch, self.batch, self.step = 0, 0, 0  # position: batches done in the current epoch
        self._epoch_stats = {"loss_sum": 0.0, "correct": 0, "seen": 0}
        self._stop_signal: int | None = None

    # -- pieces ------------------------------------------------------------------------------------
    def log(self, msg: str) -> None:
        """Emit one line (through tqdm when a bar is active)."""
        if self.progress:
            from tqdm import tqdm

            tqdm.write(msg, file=sys.stderr)
        else:
            self._log(msg)

    def _make_optimizer(self) -> tuple[Any, Any]:
        """AdamW with the SPEC §6 groups and its warm-up/cosine scheduler (built before any state is loaded)."""
        o = self.cfg.optim
        ssm, decay, no_decay = param_groups(self.model)
        groups = [
            {"params": ssm, "lr": o.lr * o.ssm_lr_factor, "weight_decay": 0.0, "name": "ssm"},
            {"params": decay, "lr": o.lr, "weight_decay": o.weight_decay, "name": "decay"},
            {"params": no_decay, "lr": o.lr, "weight_decay": 0.0, "name": "no_decay"},
        ]
        optimizer = self.torch.optim.AdamW([g for g in groups if g["params"]], lr=o.lr)
        scheduler = self.torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(self.total_steps, o.warmup_fraction))
        return optimizer, scheduler

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
        """The newest resumable state."""
        return self.ckpt_dir / "last.pt"

    def save_checkpoint(self) -> None:
        """Write the resumable state at the current position (see :mod:`ssmred_app.runstate`)."""
        extra = {
            "kind": "run",
            "config": self.result.config,
            "model_meta": model_meta(self.model),
            "scheduler": self.scheduler.state_dict(),
            "epoch": self.epoch,
            "batch": self.batch,
            "step": self.step,
            "epoch_stats": dict(self._epoch_stats),
            "result": json.dumps(self.result.to_dict()),
            "torch_rng": self.torch.get_rng_state(),
        }
        from ssmred_torch import CheckpointError

        try:
            save_run_state(
                self.ckpt_dir, self.model, optimizer=self.optimizer, controller=self._method_state(), extra=extra
            )
        except CheckpointError as exc:  # NaN/inf parameters or moments with a finite loss: stop, keep the last state
            raise self._diverged(f"the model or optimizer state became non-finite ({exc})") from exc

    def try_resume(self) -> bool:
        """Resume from the newest intact state in ``checkpoints/`` when there is one; return whether it did."""
        found = read_run_state(self.ckpt_dir, map_location=self.device, log=self.log)
        if found is None:
            return False
        path, payload = found
        extra = payload["extra"]
        if not same_config(extra.get("config"), self.cfg):
            raise ConfigError(
                f"{self.out}: holds a checkpoint of a different configuration; "
                "choose another --out, or start over with --no-resume --force"
            )
        from ssmred_torch import load

        sizes = [max(v) for v in payload["state_sizes"].values()]
        self.model = build_model(self.cfg.model, self.data, state_sizes=sizes).to(self.device)
        # the scheduler is built before the optimizer state is loaded: LambdaLR's constructor resets every
        # group's lr to its step-0 value, which a later optimizer.load_state_dict then overwrites correctly
        self.optimizer, self.scheduler = self._make_optimizer()
        load(payload, self.model, optimizer=self.optimizer, controller=self._method_state())
        self.scheduler.load_state_dict(extra["scheduler"])
        self.epoch, self.batch, self.step = int(extra["epoch"]), int(extra["batch"]), int(extra["step"])
        self._epoch_stats = dict(extra["epoch_stats"])
        restored = json.loads(extra["result"])
        restored.pop("mean_final_dim", None)
        self.result = RunResult(**restored)
        self.result.config = config_to_dict(self.cfg)
        self.torch.set_rng_state(extra["torch_rng"].cpu())
        self.log(
            f"[{self.cfg.name}] resumed from {path} at step {self.step} (epoch {self.epoch + 1}, "
            f"{self.batch} of {self.steps_per_epoch} steps done)"
        )
        return True

    # -- the loop ----------------------------------------------------------------------------------
    def _method_state(self) -> Any:
        """The method, when it has progress to checkpoint (its ``state_dict`` is not ``None``)."""
        return self.method if self.method.state_dict() is not None else None

    def evaluate_untimed(self, split: str) -> float:
        """:meth:`evaluate`, with its time kept out of the run's training time (for methods' checks)."""
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            return self.evaluate(split)
        finally:
            self._seg[2] += time.perf_counter() - t0
            self._seg[3] += time.process_time() - c0

    def record_reduction(self, record: dict[str, Any], *, seconds: float, acc_before: float | None) -> None:
        """Log a reduction a method made at the current step (sizes, accuracy before/after, its time).

        Parameters
        ----------
        record
            What the method did (``kind``, per-layer ``layers``, ``note``), completed here.
        seconds
            Wall time of the reduction itself (evaluations excluded); counted as training time and
            reported as ``reduction_time_s``.
        acc_before
            Validation accuracy right before the reduction (``None`` if not measured).
        """
        dims_after = state_sizes(self.model)
        dims_before = self._dims_seen
        after = self.evaluate_untimed("val") if dims_after != dims_before else acc_before
        record.update(
            {
                "step": self.step,
                "fraction": self.step / self.total_steps,
                "dims_before": dims_before,
                "dims_after": dims_after,
                "val_acc_before": acc_before,
                "val_acc_after": after,
                "time_s": seconds,
            }
        )
        self.result.reductions.append(record)
        self.result.reduction_time_s += seconds
        if dims_after != dims_before:
            self.result.dims_trace.append([self.step, list(dims_after)])
            self._dims_seen = dims_after
        self.log(
            f"[{self.cfg.name}] step {self.step} ({100 * self.step / self.total_steps:.1f} %): state sizes "
            f"{dims_before} -> {dims_after}; val acc {pct(acc_before)} -> {pct(after)}; "
            f"{1000 * seconds:.1f} ms{'; ' + record['note'] if record.get('note') else ''}"
        )

    def _diverged(self, what: str) -> TrainingDiverged:
        kept = self.checkpoint_path() if self.checkpoint_path().exists() else None
        where = f"; the last good state is kept in {kept}" if kept else "; no checkpoint was written"
        return TrainingDiverged(
            f"[{self.cfg.name}] {what} at step {self.step + 1} (epoch {self.epoch + 1}): training stopped{where}. "
            "Lower optim.lr, enable optim.grad_clip, or check the data"
        )

    def _train_step(self, xb: Any, yb: Any) -> tuple[float, int]:
        """One optimizer step; returns (loss, correct). Refuses to step on a non-finite loss or gradient."""
        torch, cfg = self.torch, self.cfg
        logits = self.model(xb)
        loss = self.method.loss(self, logits, yb, xb)
        loss_value = float(loss.detach())
        if not math.isfinite(loss_value):
            raise self._diverged(f"the loss became {loss_value}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.optim.grad_clip is not None:
            norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.optim.grad_clip))
            if not math.isfinite(norm):
                raise self._diverged(f"the gradient norm became {norm}")
        self.optimizer.step()
        self.scheduler.step()
        correct = int((logits.argmax(-1) == yb).sum())
        # drop the graph before the controller may resize parameters (see ssmred_torch.replace_parameter_)
        del logits, loss
        return loss_value, correct

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self._stop_signal is not None:  # a second signal: stop at once
            raise KeyboardInterrupt
        self._stop_signal = signum
        self.log(f"[{self.cfg.name}] {signal.Signals(signum).name}: stopping after this step and saving a checkpoint")

    def run(
        self,
        *,
        resume: bool = True,
        force: bool = False,
        on_epoch_end: Callable[[int, Trainer], None] | None = None,
        on_step_end: Callable[[int, Trainer], None] | None = None,
    ) -> RunResult:
        """Train to the end (resuming from the run folder when it holds a state) and return the result.

        Parameters
        ----------
        resume
            Continue from the newest intact checkpoint when present. ``False`` starts from an empty
            folder: a folder holding an earlier run is refused unless ``force``.
        force
            With ``resume=False``: delete what an earlier run left in the folder first.
        on_epoch_end
            Called with ``(epoch, trainer)`` after each epoch's checkpoint is written.
        on_step_end
            Called with ``(step, trainer)`` after every step (after a checkpoint due at that step).

        Returns
        -------
        RunResult
            Final accuracies, sizes, timings and logs.

        Raises
        ------
        RunFolderBusy
            When another process trains into the same folder.
        RunError
            For a folder with an earlier run and ``resume=False`` without ``force``, or when every
            checkpoint there is damaged.
        TrainingDiverged
            When the loss or the gradients become non-finite (nothing non-finite is ever saved).
        KeyboardInterrupt
            After SIGINT or SIGTERM, once the state at the current step is saved.
        """
        with RunLock(self.out):
            if not resume and run_folder_has_state(self.out):
                if not force:
                    raise RunError(
                        f"{self.out} holds an earlier run; --no-resume starts from an empty folder: add --force to "
                        "delete it, or choose another --out"
                    )
                clear_run_folder(self.out)
            if resume:
                self.try_resume()
            self.method.setup(self)
            handlers = {}
            if threading.current_thread() is threading.main_thread():
                handlers = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
            try:
                return self._run(on_epoch_end, on_step_end)
            finally:
                for s, h in handlers.items():
                    signal.signal(s, h)

    def _run(
        self,
        on_epoch_end: Callable[[int, Trainer], None] | None,
        on_step_end: Callable[[int, Trainer], None] | None,
    ) -> RunResult:
        torch, cfg, res = self.torch, self.cfg, self.result
        Xtr, ytr = self.tensors["train"]
        every = cfg.optim.checkpoint_every
        bar = None
        if self.progress:
            from tqdm import tqdm

            # disable=None: a live bar on a terminal, none when output goes to a file or a CI log
            bar = tqdm(
                total=self.total_steps, initial=self.step, desc=cfg.name, leave=False, dynamic_ncols=True, disable=None
            )
        wall0 = time.perf_counter() - res.wall_time_s
        seg = self._seg = [time.perf_counter(), time.process_time(), 0.0, 0.0]  # start (wall, CPU), eval (wall, CPU)
        self._dims_seen = state_sizes(self.model)

        def close_segment() -> None:
            res.train_time_s += time.perf_counter() - seg[0] - seg[2]
            res.train_cpu_s += time.process_time() - seg[1] - seg[3]
            seg[:] = [time.perf_counter(), time.process_time(), 0.0, 0.0]

        try:
            self.model.train()
            while self.epoch < cfg.optim.epochs:
                batches = _batches(len(ytr), cfg.optim.batch_size, cfg.seed, self.epoch)
                st = self._epoch_stats
                while self.batch < len(batches):
                    idx = torch.as_tensor(batches[self.batch], device=self.device)
                    loss_value, correct = self._train_step(Xtr[idx], ytr[idx])
                    self.step += 1
                    self.batch += 1
                    st["loss_sum"] += loss_value * len(idx)
                    st["correct"] += correct
                    st["seen"] += len(idx)
                    self.method.after_step(self)
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(loss=f"{st['loss_sum'] / st['seen']:.3f}", n=state_sizes(self.model))
                    stop = self._stop_signal is not None
                    if self.batch < len(batches) and (stop or (every and self.step % every == 0)):
                        close_segment()
                        res.wall_time_s = time.perf_counter() - wall0
                        self.save_checkpoint()
                    if on_step_end is not None:
                        on_step_end(self.step, self)
                    if stop and self.batch < len(batches):
                        raise KeyboardInterrupt
                close_segment()
                val_acc = self.evaluate("val")
                res.epochs.append(
                    {
                        "epoch": self.epoch + 1,
                        "step": self.step,
                        "train_loss": st["loss_sum"] / st["seen"],
                        "train_acc": st["correct"] / st["seen"],
                        "val_acc": val_acc,
                        "dims": state_sizes(self.model),
                        "train_time_s": res.train_time_s,
                        "train_cpu_s": res.train_cpu_s,
                    }
                )
                res.wall_time_s = time.perf_counter() - wall0
                self.log(
                    f"[{cfg.name}] epoch {self.epoch + 1}/{cfg.optim.epochs}: loss {st['loss_sum'] / st['seen']:.3f}, "
                    f"val acc {pct(val_acc)}, state sizes {state_sizes(self.model)}, "
                    f"train time {res.train_time_s:.1f} s (CPU {res.train_cpu_s:.1f} s)"
                )
                self.epoch, self.batch = self.epoch + 1, 0
                self._epoch_stats = {"loss_sum": 0.0, "correct": 0, "seen": 0}
                self.save_checkpoint()
                save_model_file(
                    self.ckpt_dir / f"epoch_{self.epoch:03d}.pt", self.model, config=res.config, epoch=self.epoch
                )
                if on_epoch_end is not None:
                    on_epoch_end(self.epoch, self)
                if self._stop_signal is not None and self.epoch < cfg.optim.epochs:
                    raise KeyboardInterrupt
                seg[:] = [time.perf_counter(), time.process_time(), 0.0, 0.0]
        except KeyboardInterrupt:
            self.log(f"[{cfg.name}] interrupted; resume from {self.checkpoint_path()} by running the same command")
            raise
        finally:
            if bar is not None:
                bar.close()
        self.method.finish(self)
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
    force: bool = False,
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
        Resume from the newest intact checkpoint in ``out`` when present.
    force
        With ``resume=False``: delete an earlier run's files in ``out`` first.
    log
        Message sink (default: stderr).

    Returns
    -------
    RunResult
        The run's measurements.
    """
    return Trainer(cfg, out, data=data, progress=progress, log=log).run(resume=resume, force=force)
