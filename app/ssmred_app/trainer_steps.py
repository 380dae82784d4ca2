r"""One training step of a :class:`~ssmred_app.trainer.Trainer` and what happens around it.

Each epoch's batches come from a permutation seeded by ``(seed, epoch)`` (under DDP sharded like
``DistributedSampler``). A step refuses a non-finite loss or gradient
(:class:`~ssmred_app.errors.TrainingDiverged`, before anything non-finite is saved); under DDP one
all-reduce gives the global metrics and the agreement on divergence and on stopping. SIGINT/SIGTERM
ask the run to stop after the step in progress. A finished epoch is recorded and logged here. Method
hooks run with rank 0 deciding every reduction (and rollback), followed by a new DDP wrapper when the
parameters changed shape; evaluation under DDP gives each rank a block of the split and all-reduces the
correct counts.
"""

from __future__ import annotations

import math
import signal
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ssmred_app.errors import TrainingDiverged
from ssmred_app.models import state_sizes
from ssmred_app.report import pct

if TYPE_CHECKING:
    from ssmred_app.trainer import Trainer

__all__ = ["StepMixin", "count_correct", "split_tensors"]


def split_tensors(data: Any, device: Any) -> dict[str, tuple[Any, Any]]:
    """The ``train``/``val``/``test`` arrays of a data set as tensors on ``device``.

    Parameters
    ----------
    data
        A :class:`~ssmred_app.data.SequenceData` (``X_train``, ``y_train``, ``X_val``, ...).
    device
        Where the tensors go (a torch device or its name).

    Returns
    -------
    dict
        ``split -> (X, y)`` for the three splits.
    """
    import torch

    return {
        split: (
            torch.as_tensor(getattr(data, f"X_{split}")).to(device),
            torch.as_tensor(getattr(data, f"y_{split}")).to(device),
        )
        for split in ("train", "val", "test")
    }


def count_correct(model: Any, X: Any, y: Any, batch_size: int, lo: int = 0, hi: int | None = None) -> int:
    """Correctly classified samples among ``X[lo:hi]``, in batches (eval mode, no gradients; the mode restored).

    The one evaluation loop of the trainer (one process, and each rank's block under DDP) and of the
    post-hoc context of :mod:`ssmred_app.baselines`.

    Parameters
    ----------
    model
        The classifier (``torch.nn.Module``); its train/eval mode is restored afterwards.
    X, y
        Inputs and integer labels of the split.
    batch_size
        Samples per forward pass.
    lo, hi
        The block ``[lo, hi)`` to evaluate (default: all of ``y``).

    Returns
    -------
    int
        The number of samples whose arg-max prediction equals the label.
    """
    import torch

    hi = len(y) if hi is None else hi
    was_training = model.training
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(lo, hi, batch_size):
            j = min(i + batch_size, hi)
            correct += int((model(X[i:j]).argmax(-1) == y[i:j]).sum())
    model.train(was_training)
    return correct


def _rng_seed(*parts: int) -> int:
    return int(np.random.SeedSequence(list(parts)).generate_state(1)[0])


def _batches(n: int, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    perm = np.random.default_rng(_rng_seed(seed, epoch)).permutation(n)
    return [perm[i : i + batch_size] for i in range(0, n, batch_size)]


class StepMixin:
    """The step half of :class:`~ssmred_app.trainer.Trainer` (a base class; uses the trainer's attributes).

    Its methods are private: the training loop, :meth:`~ssmred_app.trainer.Trainer.evaluate` and
    :meth:`~ssmred_app.trainer.Trainer.run` call them.
    """

    def _evaluate_shard(self, X: Any, y: Any, bs: int) -> float:
        """Accuracy under DDP: this rank's contiguous block, the correct counts all-reduced."""
        rank, ws = self.dist.rank, self.world_size
        lo, hi = len(y) * rank // ws, len(y) * (rank + 1) // ws
        return int(self.dist.all_sum([count_correct(self.model, X, y, bs, lo, hi)])[0]) / max(1, len(y))

    def _record_epoch(self, val_acc: float) -> None:
        """Append the epoch just finished to the result and log it (global numbers under DDP)."""
        res, st, cfg = self.result, self._epoch_stats, self.cfg
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
        self.log(
            f"[{cfg.name}] epoch {self.epoch + 1}/{cfg.optim.epochs}: loss {st['loss_sum'] / st['seen']:.3f}, "
            f"val acc {pct(val_acc)}, state sizes {state_sizes(self.model)}, "
            f"train time {res.train_time_s:.1f} s (CPU {res.train_cpu_s:.1f} s)"
        )

    def _diverged(self, what: str) -> TrainingDiverged:
        kept = self.checkpoint_path() if self.checkpoint_path().exists() else None
        where = f"; the last good state is kept in {kept}" if kept else "; no checkpoint was written"
        return TrainingDiverged(
            f"[{self.cfg.name}] {what} at step {self.step + 1} (epoch {self.epoch + 1}): training stopped{where}. "
            "Lower optim.lr, enable optim.grad_clip, or check the data"
        )

    def _train_step(self, xb: Any, yb: Any) -> tuple[float, int, int]:
        """One optimizer step; returns (loss × samples, correct, samples), summed over the ranks under DDP.
        Refuses to step on a non-finite loss or gradient.
        """
        torch, cfg = self.torch, self.cfg
        logits = (self.model if self._ddp is None else self._ddp)(xb)
        loss = self.method.loss(self, logits, yb, xb)
        loss_value = float(loss.detach())
        if self.dist is None:
            if not math.isfinite(loss_value):
                raise self._diverged(f"the loss became {loss_value}")
        else:  # one all-reduce: global metrics, and agreement on divergence and on stopping
            finite = math.isfinite(loss_value)
            mine = [loss_value * len(yb) if finite else 0.0, int((logits.argmax(-1) == yb).sum()), len(yb)]
            sums = self.dist.all_sum([*mine, 0.0 if finite else 1.0, float(self._stop_signal is not None)])
            self._stop_agreed = sums[4] > 0
            if sums[3] > 0:
                raise self._diverged(
                    f"the loss became {loss_value}" if not finite else "the loss became non-finite in another process"
                )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.optim.grad_clip is not None:
            norm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.optim.grad_clip))
            if not math.isfinite(norm):
                raise self._diverged(f"the gradient norm became {norm}")
        self.optimizer.step()
        self.scheduler.step()
        if self.dist is None:
            correct = int((logits.argmax(-1) == yb).sum())
            done = (loss_value * len(yb), correct, len(yb))
        else:
            done = (sums[0], int(sums[1]), int(sums[2]))
        # drop the graph before the controller may resize parameters (see ssmred_torch.replace_parameter_)
        del logits, loss
        return done

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self._stop_signal is not None:  # a second signal: stop at once
            raise KeyboardInterrupt
        self._stop_signal = signum
        self.log(f"[{self.cfg.name}] {signal.Signals(signum).name}: stopping after this step and saving a checkpoint")

    def _hook(self, fn: Callable[[Trainer], None], *, rewrap: bool = True) -> None:
        """Call a method hook; under DDP with rank 0 deciding every reduction (and rollback), then a new
        DDP wrapper when the parameters changed shape.
        """
        if self.dist is None:
            fn(self)
            return
        from ssmred_torch.reduce import shared_decisions

        with shared_decisions(self.dist.broadcast):
            fn(self)
        if rewrap:
            self._sync_ddp()

    def _sync_ddp(self) -> None:
        """(Re)build the DDP wrapper when the model or its parameter shapes changed since it was built."""
        shapes = [tuple(p.shape) for p in self.model.parameters()]
        if self._ddp is not None and self._ddp.module is self.model and shapes == self._ddp_shapes:
            return
        if self._ddp is None:
            self._ddp = self.dist.wrap(self.model)
        else:
            t0 = time.perf_counter()
            self._ddp = self.dist.rewrap(self._ddp, self.model)
            seconds = time.perf_counter() - t0
            self.result.reduction_time_s += seconds
            if self.result.reductions and self.result.reductions[-1].get("step") == self.step:
                self.result.reductions[-1]["ddp_rewrap_s"] = seconds
        self._ddp_shapes = shapes

    def _stop_requested(self) -> bool:
        """Whether a signal asked to stop (under DDP: on any rank; a collective)."""
        mine = self._stop_signal is not None
        return mine if self.dist is None else self.dist.any(mine)

    def _epoch_batches(self, n: int) -> list[Any]:
        """The batches of the current epoch (under DDP: the share of this rank, DistributedSampler-like)."""
        if self.dist is None:
            return _batches(n, self.cfg.optim.batch_size, self.cfg.seed, self.epoch)
        from ssmred_app.distributed import shard_indices

        perm = np.random.default_rng(_rng_seed(self.cfg.seed, self.epoch)).permutation(n)
        mine = shard_indices(perm, self.dist.rank, self.world_size)
        bs = self.cfg.optim.batch_size
        return [mine[i : i + bs] for i in range(0, len(mine), bs)]
