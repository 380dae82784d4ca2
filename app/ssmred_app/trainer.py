r"""The trainer behind ``ssmred train`` / ``ssmred demo`` / ``ssmred experiment``.

SPEC §6: AdamW with every SSM layer's ``dynamics_parameters`` (its adapter names them) in their own
group at ``lr * ssm_lr_factor`` without weight decay, linear warm-up over ``warmup_fraction`` of the
steps, then cosine decay. The run's method (:mod:`ssmred_app.methods`; CompreSSM: a
:class:`ssmred_torch.CompreSSM` controller after every optimizer step) reduces the model through hooks;
the validation accuracy right before and after every reduction is logged.

Resumable states are written at the end of every epoch, every ``optim.checkpoint_every`` steps when set,
and on SIGINT/SIGTERM (the step in progress is finished first); a run started again in the same folder
resumes from the newest intact one and reproduces the uninterrupted run exactly on CPU. A non-finite
loss or gradient stops the run (:class:`~ssmred_app.errors.TrainingDiverged`) before anything
non-finite is saved; one process at a time trains into a folder (:class:`~ssmred_app.runstate.RunLock`).
Under torchrun the same trainer runs in every process (:mod:`ssmred_app.distributed`).

This module holds :class:`Trainer`'s public interface, the epoch loop and every write to the run folder;
the rest is in :mod:`ssmred_app.trainer_optim`, :mod:`ssmred_app.trainer_steps` (one step, batches,
signals, method hooks, the DDP wrapper, evaluation) and :mod:`ssmred_app.trainer_resume`.
"""

from __future__ import annotations

import contextlib
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

from ssmred_app.config import ConfigError, RunConfig, config_to_dict
from ssmred_app.data import SequenceData, load_dataset
from ssmred_app.methods import Method, build_method
from ssmred_app.methods._base import log_reduction
from ssmred_app.models import build_model, model_meta, save_model_file, state_sizes
from ssmred_app.runresult import RunResult, environment, resolve_device
from ssmred_app.runstate import RunLock, save_run_state
from ssmred_app.trainer_optim import build_optimizer, lr_lambda
from ssmred_app.trainer_resume import ResumeMixin
from ssmred_app.trainer_steps import StepMixin, _rng_seed, count_correct, split_tensors

# RunResult, environment and resolve_device live in ssmred_app.runresult, lr_lambda in ssmred_app.trainer_optim;
# they are re-exported here
__all__ = ["RunResult", "Trainer", "environment", "lr_lambda", "resolve_device", "train_run"]


class Trainer(StepMixin, ResumeMixin):
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
    distributed
        The torch.distributed job (a :class:`ssmred_app.distributed.Distributed`), ``None`` for one
        process, or ``"auto"`` (default): the job of an initialised process group when there is one
        (:func:`ssmred_app.distributed.active`), else ``None``.

    Raises
    ------
    ConfigError
        Under DDP, when this rank's configuration differs from rank 0's.
    """

    def __init__(
        self,
        cfg: RunConfig,
        out: str | os.PathLike[str],
        *,
        data: SequenceData | None = None,
        progress: bool = True,
        log: Callable[[str], None] | None = None,
        distributed: Any = "auto",
    ) -> None:
        import torch

        from ssmred_app.distributed import active

        self.torch = torch
        #: the torch.distributed job (``None``: one process); "auto" finds an initialised process group
        self.dist = active() if distributed == "auto" else distributed
        self.world_size = 1 if self.dist is None else self.dist.world_size
        self.cfg = cfg
        self.out = Path(out)
        if self.dist is not None:  # every rank trains rank 0's configuration into rank 0's folder
            ref_cfg, ref_out = self.dist.broadcast(lambda: (config_to_dict(cfg), str(out)))
            if ref_cfg != config_to_dict(cfg):
                raise ConfigError(f"rank {self.dist.rank}: the configuration differs from rank 0's")
            self.out = Path(ref_out)
            progress = progress and self.dist.is_main
        self.ckpt_dir = self.out / "checkpoints"
        self.progress = progress
        self._log = log or (lambda s: print(s, file=sys.stderr, flush=True))
        if cfg.threads is not None:
            torch.set_num_threads(cfg.threads)
        self.device = resolve_device(cfg.device)
        if self.dist is not None:
            self.device = self.dist.device_for(self.device)
        self.data = data if data is not None else load_dataset(cfg.data)
        d = self.data
        for note in d.warnings:
            self.log(f"[{cfg.name}] warning: {note}")
        self.tensors = split_tensors(d, self.device)
        if self.dist is None:
            self.steps_per_epoch = math.ceil(len(d.y_train) / cfg.optim.batch_size)
        else:  # each rank's share, ceil(n / N), in batches of optim.batch_size (= ceil(n / (N * batch)))
            self.steps_per_epoch = math.ceil(math.ceil(len(d.y_train) / self.world_size) / cfg.optim.batch_size)
        self.total_steps = self.steps_per_epoch * cfg.optim.epochs
        torch.manual_seed(cfg.seed)
        self.model = build_model(cfg.model, d).to(self.device)
        if self.dist is not None and self.dist.rank > 0:  # same initial weights, own dropout stream
            torch.manual_seed(_rng_seed(cfg.seed, self.dist.rank))
        self._ddp: Any = None  # the DistributedDataParallel wrapper of self.model (rebuilt when shapes change)
        self._ddp_shapes: list[tuple[int, ...]] = []
        self._stop_agreed = False
        self.optimizer, self.scheduler = self._make_optimizer()
        self.method: Method = build_method(cfg, self.total_steps)
        self.result = RunResult(
            name=cfg.name, config=config_to_dict(cfg), total_steps=self.total_steps, world_size=self.world_size
        )
        self.result.device = self.device
        self.result.initial_dims = state_sizes(self.model)
        self.result.dims_trace.append([0, list(self.result.initial_dims)])
        self.epoch, self.batch, self.step = 0, 0, 0  # position: batches done in the current epoch
        self._epoch_stats = {"loss_sum": 0.0, "correct": 0, "seen": 0}
        self._stop_signal: int | None = None

    # -- pieces ------------------------------------------------------------------------------------
    def log(self, msg: str) -> None:
        """Emit one line (through tqdm when a bar is active); under DDP only rank 0 speaks.

        Parameters
        ----------
        msg
            The message: written with :func:`tqdm.tqdm.write` to stderr when ``progress`` is on, else
            passed to the ``log`` sink.
        """
        if self.dist is not None and not self.dist.is_main:
            return
        if self.progress:
            from tqdm import tqdm

            tqdm.write(msg, file=sys.stderr)
        else:
            self._log(msg)

    def _make_optimizer(self) -> tuple[Any, Any]:
        """AdamW with the SPEC §6 groups and its warm-up/cosine scheduler (built before any state is loaded)."""
        return build_optimizer(self.model, self.cfg.optim, self.total_steps)

    def evaluate(self, split: str) -> float:
        """Accuracy on ``split`` (``train``, ``val`` or ``test``); under DDP every rank evaluates a block
        and the correct counts are all-reduced (every rank returns the same number).

        Eval mode, no gradients, batches of ``optim.eval_batch_size``; the model's train/eval mode is
        restored afterwards. Called from a method hook during training, its time counts as training
        time (hooks use :meth:`evaluate_untimed`).

        Parameters
        ----------
        split
            ``train``, ``val`` or ``test``.

        Returns
        -------
        float
            The share of correctly classified samples, in :math:`[0, 1]` (``0.0`` for an empty split).
        """
        X, y = self.tensors[split]
        bs = self.cfg.optim.eval_batch_size
        if self.dist is not None:
            return self._evaluate_shard(X, y, bs)
        return count_correct(self.model, X, y, bs) / max(1, len(y))

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
        if self.dist is not None:  # collectives: every rank's RNG (its dropout stream) into rank 0's file
            rngs = self.dist.gather(self.torch.get_rng_state())
            extra.update(world_size=self.world_size, torch_rng_ranks=rngs)
            self.dist.broadcast(lambda: self._write_state(extra))  # a refusal on rank 0 stops every rank
            return
        self._write_state(extra)

    def _write_state(self, extra: dict[str, Any]) -> None:
        from ssmred_torch import CheckpointError

        try:
            save_run_state(
                self.ckpt_dir, self.model, optimizer=self.optimizer, controller=self._method_state(), extra=extra
            )
        except CheckpointError as exc:  # NaN/inf parameters or moments with a finite loss: stop, keep the last state
            raise self._diverged(f"the model or optimizer state became non-finite ({exc})") from exc

    def try_resume(self) -> bool:
        """Resume from the newest intact state in ``checkpoints/`` when there is one; return whether it did."""
        found = self._read_state()
        if found is None:
            return False
        self._load_state(*found)
        return True

    # -- the loop ----------------------------------------------------------------------------------
    @property
    def train_module(self) -> Any:
        """The module to run training forward passes through: ``model``, or under DDP its wrapper
        (rebuilt first when the parameters changed shape, e.g. by a method's reduction).
        """
        if self.dist is None:
            return self.model
        self._sync_ddp()
        return self._ddp

    def evaluate_untimed(self, split: str) -> float:
        """:meth:`evaluate`, with its time kept out of the run's training time (for methods' checks).

        For method hooks during :meth:`run`: its time is subtracted from the current timing segment,
        which exists only once the training loop has started.

        Parameters
        ----------
        split
            ``train``, ``val`` or ``test``.

        Returns
        -------
        float
            The accuracy, in :math:`[0, 1]`.
        """
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
        log_reduction(
            self,
            record,
            dims_before=dims_before,
            dims_after=dims_after,
            acc_before=acc_before,
            acc_after=after,
            seconds=seconds,
        )
        self._dims_seen = dims_after

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
        with contextlib.ExitStack() as stack:
            if self.dist is None:
                stack.enter_context(RunLock(self.out))
                self._prepare_folder(resume, force)
                if resume:
                    self.try_resume()
            else:  # rank 0 locks, checks and reads; every rank gets its verdict (or its error) and the state
                found = self.dist.broadcast(lambda: self._prepare_main(stack, resume, force))
                if found is not None:
                    self._load_state(*found)
            self._hook(self.method.setup)
            handlers = {}
            if threading.current_thread() is threading.main_thread():
                handlers = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
            try:
                return self._run(on_epoch_end, on_step_end)
            finally:
                for s, h in handlers.items():
                    signal.signal(s, h)

    def _prepare_main(
        self, stack: contextlib.ExitStack[Any], resume: bool, force: bool
    ) -> tuple[Path, dict[str, Any]] | None:
        """Rank 0 under DDP: take the lock (held until the run ends), check the folder, read the state."""
        stack.enter_context(RunLock(self.out))
        self._prepare_folder(resume, force)
        return self._read_state() if resume else None

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
                batches = self._epoch_batches(len(ytr))
                st = self._epoch_stats
                while self.batch < len(batches):
                    idx = torch.as_tensor(batches[self.batch], device=self.device)
                    loss_sum, correct, seen = self._train_step(Xtr[idx], ytr[idx])
                    self.step += 1
                    self.batch += 1
                    st["loss_sum"] += loss_sum
                    st["correct"] += correct
                    st["seen"] += seen
                    self._hook(self.method.after_step)
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(loss=f"{st['loss_sum'] / st['seen']:.3f}", n=state_sizes(self.model))
                    stop = self._stop_signal is not None if self.dist is None else self._stop_agreed
                    if self.batch < len(batches) and (stop or (every and self.step % every == 0)):
                        close_segment()
                        res.wall_time_s = time.perf_counter() - wall0
                        self.save_checkpoint()
                    if on_step_end is not None:
                        on_step_end(self.step, self)
                    if stop and self.batch < len(batches):
                        raise KeyboardInterrupt
                close_segment()
                self._record_epoch(self.evaluate("val"))
                res.wall_time_s = time.perf_counter() - wall0
                self.epoch, self.batch = self.epoch + 1, 0
                self._epoch_stats = {"loss_sum": 0.0, "correct": 0, "seen": 0}
                self.save_checkpoint()
                if self.dist is None or self.dist.is_main:
                    save_model_file(
                        self.ckpt_dir / f"epoch_{self.epoch:03d}.pt", self.model, config=res.config, epoch=self.epoch
                    )
                if on_epoch_end is not None:
                    on_epoch_end(self.epoch, self)
                if self._stop_requested() and self.epoch < cfg.optim.epochs:
                    raise KeyboardInterrupt
                seg[:] = [time.perf_counter(), time.process_time(), 0.0, 0.0]
        except KeyboardInterrupt:
            self.log(f"[{cfg.name}] interrupted; resume from {self.checkpoint_path()} by running the same command")
            raise
        finally:
            if bar is not None:
                bar.close()
        self._hook(self.method.finish, rewrap=False)
        res.final_dims = state_sizes(self.model)
        if res.dims_trace[-1][0] != self.step:
            res.dims_trace.append([self.step, list(res.final_dims)])
        res.val_acc = self.evaluate("val")
        res.test_acc = self.evaluate("test")
        res.wall_time_s = time.perf_counter() - wall0
        if self.dist is None or self.dist.is_main:
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
