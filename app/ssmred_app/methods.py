"""Training methods: what the trainer does besides plain training, as hooks (CompreSSM is one).

A :class:`Method` is called by :class:`~ssmred_app.trainer.Trainer` at fixed points:

* :meth:`Method.setup` — once the model and optimizer are final (after a resume), before training,
* :meth:`Method.loss` — the training loss of a batch (default: cross-entropy; a regulariser or a
  distillation loss overrides it),
* :meth:`Method.after_step` — after every optimizer step (CompreSSM's scheduled reductions),
* :meth:`Method.finish` — after the last epoch, before the final evaluation (post-training methods),
* :meth:`Method.state_dict` / :meth:`Method.load_state_dict` — its progress, saved in every resumable
  checkpoint (``None``: stateless).

Methods change the model only through the trainer's model and optimizer (``trainer.model``,
``trainer.optimizer``), evaluate through :meth:`~ssmred_app.trainer.Trainer.evaluate_untimed` (kept out
of the training time) and record reductions with :meth:`~ssmred_app.trainer.Trainer.record_reduction`.
:func:`build_method` makes the method of a configuration; :class:`CompreSSMMethod` wraps
:class:`ssmred_torch.CompreSSM` (the ``compression`` section).
"""

from __future__ import annotations

import time
from typing import Any

from ssmred_app.config import CompressionConfig, ConfigError, RunConfig
from ssmred_app.report import pct

__all__ = [
    "CompreSSMMethod",
    "Method",
    "build_controller",
    "build_method",
    "controller_step",
    "describe_event",
    "is_attempt",
    "leading_hsv",
]


class Method:
    """Plain training (the ``full`` and from-scratch runs); subclasses override the hooks they need."""

    name = "full"

    def setup(self, trainer: Any) -> None:
        """Called once the trainer's model and optimizer are final (after a resume), before training."""

    def loss(self, trainer: Any, logits: Any, targets: Any, inputs: Any) -> Any:
        """The training loss of one batch (cross-entropy)."""
        import torch

        return torch.nn.functional.cross_entropy(logits, targets)

    def after_step(self, trainer: Any) -> None:
        """Called after every optimizer step (``trainer.step`` steps are done)."""

    def finish(self, trainer: Any) -> None:
        """Called after the last epoch, before the final evaluation."""

    def state_dict(self) -> dict[str, Any] | None:
        """Progress to save in a resumable checkpoint (``None``: nothing)."""
        return None

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""


class CompreSSMMethod(Method):
    """In-training reduction by a :class:`ssmred_torch.CompreSSM` controller; every attempt is recorded
    with the validation accuracy right before and right after it.
    """

    name = "compressm"

    def __init__(self, controller: Any) -> None:
        self.controller = controller

    def after_step(self, trainer: Any) -> None:
        """Serve the controller's attempts and checks due at ``trainer.step``."""
        step = trainer.step
        attempt = is_attempt(self.controller, step)
        acc_before = trainer.evaluate_untimed("val") if attempt else None
        t0 = time.perf_counter()
        event = controller_step(self.controller, step, trainer.model, trainer.optimizer, acc_before)
        if event is None and not attempt:
            return
        record = describe_event(event)
        trainer.record_reduction(record, seconds=time.perf_counter() - t0, acc_before=acc_before)

    def state_dict(self) -> dict[str, Any] | None:
        """The controller's progress (attempts served, a pending pragmatic snapshot)."""
        return self.controller.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the controller's progress."""
        self.controller.load_state_dict(state)


def build_method(cfg: RunConfig, total_steps: int) -> Method:
    """The method of a run configuration: CompreSSM when ``compression.mode`` is set, plain training otherwise."""
    controller = build_controller(cfg.compression, total_steps)
    return Method() if controller is None else CompreSSMMethod(controller)


def build_controller(c: CompressionConfig, total_steps: int) -> Any:
    """The ``CompreSSM`` controller of a configuration (``None`` for mode ``none``)."""
    if c.mode == "none":
        return None
    from ssmred_torch import CompreSSM, fraction, pragmatic, rank, tolerance

    if c.mode == "tolerance":
        mode = tolerance(c.tau)
    elif c.mode == "fraction":
        mode = fraction(c.fraction)
    elif c.mode == "rank":
        mode = rank(total=c.rank_total) if c.rank_total is not None else rank(c.rank)
    else:
        mode = pragmatic(c.fraction, c.tolerance)
    try:
        return CompreSSM(total_steps, mode=mode, schedule=c.schedule, gate=c.gate, optimizer_policy=c.optimizer_policy)
    except ValueError as exc:
        raise ConfigError(f"compression.schedule: {exc}") from exc


def is_attempt(controller: Any, step: int) -> bool:
    """Whether the controller acts at ``step`` (a scheduled attempt or a pragmatic check)."""
    if controller is None or controller.finished:
        return False
    return step in controller.attempt_steps or step in controller.check_steps


def controller_step(controller: Any, step: int, model: Any, optimizer: Any, val_metric: float | None) -> Any:
    """Call the controller after an optimizer step; ``None`` when nothing was due."""
    result = controller.step(step, model, optimizer, val_metric=val_metric)
    return result if result.records else None


def leading_hsv(hsv: Any) -> list[float]:
    """The HSVs reported for a layer: its own, or for a layer of several systems (per-channel families)
    those of the system with the largest σ₁.
    """
    import numpy as np

    h = np.asarray(hsv, dtype=float)
    return (h if h.ndim == 1 else h[int(np.argmax(h[:, 0]))]).tolist()


def describe_event(event: Any) -> dict[str, Any]:
    """A JSON-able record of what the controller did at one step (HSVs, chosen r, bounds per layer)."""
    if event is None:
        return {"kind": "none", "layers": [], "note": ""}
    layers: list[dict[str, Any]] = []
    notes: list[str] = []
    kinds = []
    for rec in event.records:
        kinds.append(rec.kind)
        notes += list(rec.warnings)
        if rec.kind == "accept":
            notes.append(f"pragmatic check passed ({pct(rec.reference_metric)} -> {pct(rec.val_metric)})")
        for i, lr in enumerate(rec.layers):
            layers.append(
                {
                    "layer": i,
                    "name": lr.name,
                    "n": lr.n,
                    "r": lr.r,
                    "r_applied": lr.n_after,
                    "status": lr.status,
                    "bound": lr.error_bound,
                    "hsv": leading_hsv(lr.hsv),
                    "systems": 1 if lr.hsv.ndim == 1 else int(lr.hsv.shape[0]),
                    "message": lr.message,
                }
            )
    return {"kind": "+".join(kinds), "layers": layers, "note": "; ".join(notes)}
