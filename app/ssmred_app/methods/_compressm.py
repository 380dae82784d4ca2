"""CompreSSM in training: the :class:`ssmred_torch.CompreSSM` controller as a method.

Owns :class:`CompreSSMMethod`, the controller of a ``compression`` section (:func:`build_controller`,
:func:`selection_mode`), the calls into it (:func:`is_attempt`, :func:`controller_step`) and the record
of what it did (:func:`describe_event`).
"""

from __future__ import annotations

import time
from typing import Any

from ssmred_app.config import CompressionConfig, ConfigError
from ssmred_app.methods._base import Method, _bound_rel, _sizes, kept_share, leading_hsv, record_outside_loop
from ssmred_app.report import pct


class CompreSSMMethod(Method):
    """In-training reduction by a :class:`ssmred_torch.CompreSSM` controller; every attempt is recorded
    with the validation accuracy right before and right after it.
    """

    name = "compressm"

    def __init__(self, controller: Any) -> None:
        self.controller = controller

    def setup(self, trainer: Any) -> None:
        """Serve an attempt scheduled at step 0 (reduction at initialisation) before the first step."""
        if trainer.step != 0 or not is_attempt(self.controller, 0):
            return
        dims_before = _sizes(trainer.model)
        acc_before = trainer.evaluate("val")
        t0, c0 = time.perf_counter(), time.process_time()
        event = controller_step(self.controller, 0, trainer.model, trainer.optimizer, acc_before)
        record_outside_loop(
            trainer,
            describe_event(event),
            seconds=time.perf_counter() - t0,
            cpu_seconds=time.process_time() - c0,
            acc_before=acc_before,
            dims_before=dims_before,
        )

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


def selection_mode(c: CompressionConfig) -> Any:
    """The :mod:`ssmred.selection` mode of a ``compression`` section (``None`` for mode ``none``)."""
    from ssmred.selection import Fraction, Pragmatic, Rank, Tolerance

    if c.mode == "none":
        return None
    if c.mode == "tolerance":
        return Tolerance(c.tau)
    if c.mode == "fraction":
        return Fraction(c.fraction)
    if c.mode == "rank":
        return (
            Rank(total=c.rank_total)
            if c.rank_total is not None
            else Rank(c.rank if isinstance(c.rank, int) else tuple(c.rank))
        )
    return Pragmatic(c.fraction, c.tolerance)


def build_controller(c: CompressionConfig, total_steps: int) -> Any:
    """The ``CompreSSM`` controller of a configuration (``None`` for mode ``none``)."""
    if c.mode == "none":
        return None
    from ssmred_torch import CompreSSM

    mode = selection_mode(c)
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
                    "kept_energy": kept_share(lr.hsv, lr.n_after),
                    "bound_rel": _bound_rel(lr.error_bound, lr.hsv),
                }
            )
    return {"kind": "+".join(kinds), "layers": layers, "note": "; ".join(notes)}
