"""The CompreSSM controller of a run: built from the ``compression`` section, stepped by the trainer.

The functions here are the trainer's only contact with :class:`ssmred_torch.CompreSSM`: building it,
asking whether a step is an attempt, stepping it, describing what it did (plain data for
``metrics.json``) and saving / restoring its state with a checkpoint.
"""

from __future__ import annotations

from typing import Any

from ssmred_app.config import CompressionConfig, ConfigError
from ssmred_app.report import pct

__all__ = [
    "build_controller",
    "leading_hsv",
    "controller_step",
    "describe_event",
    "is_attempt",
]


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
