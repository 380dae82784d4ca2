r"""The CompreSSM controller: scheduled reduction attempts inside a plain PyTorch training loop.

:class:`CompreSSM` serves a schedule of reduction attempts (default: 2.5, 5, 7.5 and 10 % of the
training steps, SPEC §6), each a :func:`~ssmred_torch.reduce_model` pass over every SSM layer, and in
pragmatic mode snapshots model *and* optimizer before each reduction and rolls both back (bit for bit)
when the validation metric drops by more than the tolerance.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ssmred._require import require

require("torch")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from ssmred.selection import Pragmatic, SelectionMode, check_gate, check_mode, resolve_schedule  # noqa: E402
from ssmred_torch._adapter import replace_parameter_, ssm_layers  # noqa: E402
from ssmred_torch.optim import OptimizerPolicy, check_optimizer  # noqa: E402
from ssmred_torch.reduce import decide, reduce_model  # noqa: E402
from ssmred_torch.reports import LayerReport  # noqa: E402

__all__ = ["AttemptRecord", "CompreSSM", "StepResult"]


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 1:
        raise ValueError(f"{name} must be an int >= 1; got {value!r}")
    return int(value)


def _sizes(model: nn.Module) -> tuple[int, ...]:
    return tuple(max(e.adapter.state_sizes(e.module)) for e in ssm_layers(model))


@dataclass(frozen=True)
class AttemptRecord:
    """One entry of :attr:`CompreSSM.history`.

    Attributes
    ----------
    kind
        ``"reduce"`` (a scheduled reduction), ``"accept"`` (pragmatic check passed) or ``"rollback"``
        (pragmatic check failed: model and optimizer restored, reducing stopped).
    step
        The training step at which it happened.
    scheduled_step
        The scheduled step it served.
    layers
        Per-layer reports (for ``"reduce"``).
    seconds
        Wall time spent (reduction or restore).
    sizes_before, sizes_after
        State sizes of the SSM layers.
    val_metric
        The validation metric passed at this step.
    reference_metric
        For checks: the metric before the reduction being checked.
    warnings
        Refused layers and other notes.
    """

    kind: Literal["reduce", "accept", "rollback"]
    step: int
    scheduled_step: int
    layers: tuple[LayerReport, ...] = ()
    seconds: float = 0.0
    sizes_before: tuple[int, ...] = ()
    sizes_after: tuple[int, ...] = ()
    val_metric: float | None = None
    reference_metric: float | None = None
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict.

        Returns
        -------
        dict
            The fields, layers as dicts.
        """
        return {
            "kind": self.kind,
            "step": self.step,
            "scheduled_step": self.scheduled_step,
            "layers": [lr.to_dict() for lr in self.layers],
            "seconds": self.seconds,
            "sizes_before": list(self.sizes_before),
            "sizes_after": list(self.sizes_after),
            "val_metric": self.val_metric,
            "reference_metric": self.reference_metric,
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class StepResult:
    """What :meth:`CompreSSM.step` did (falsy when nothing changed).

    Attributes
    ----------
    records
        The history entries added by this call (possibly empty).
    changed
        Whether parameters were changed (a layer reduced or a rollback).
    """

    records: tuple[AttemptRecord, ...] = ()
    changed: bool = False

    def __bool__(self) -> bool:
        return self.changed


@dataclass
class _Snapshot:
    step: int
    scheduled_step: int
    metric: float
    model: dict[str, torch.Tensor] = field(default_factory=dict)
    optimizer: dict[int, dict[str, Any]] = field(default_factory=dict)


def _optimizer_params(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [p for group in optimizer.param_groups for p in group["params"]]


def _snapshot_optimizer(optimizer: torch.optim.Optimizer | None) -> dict[int, dict[str, Any]]:
    """Per-parameter optimizer state keyed by the parameter's position in ``param_groups`` (portable)."""
    if optimizer is None:
        return {}
    out: dict[int, dict[str, Any]] = {}
    for i, p in enumerate(_optimizer_params(optimizer)):
        st = optimizer.state.get(p)
        if st is not None:
            out[i] = {k: (v.detach().clone() if isinstance(v, torch.Tensor) else v) for k, v in st.items()}
    return out


class CompreSSM:
    r"""In-training reduction controller for plain PyTorch (or Lightning-style) training loops.

    Call :meth:`step` once per optimizer step with the number of completed steps; the scheduled
    attempts are performed exactly at their steps (a loop that skips a scheduled step triggers it at
    the next call, recorded with both steps). Each attempt runs :func:`reduce_model` with this
    controller's mode, gate and optimizer policy.

    Parameters
    ----------
    total_steps
        Total number of training steps (used to resolve fractional schedules).
    mode
        :func:`~ssmred_torch.tolerance`, :func:`~ssmred_torch.fraction`, :func:`~ssmred_torch.rank` or
        :func:`~ssmred_torch.pragmatic`.
    schedule
        Attempt steps (ints) or fractions of ``total_steps`` (floats in ``(0, 1]``), in any mix.
        Default: 4 equally spaced attempts in the first 10 %: 2.5, 5, 7.5 and 10 % of ``total_steps``
        (:math:`\lfloor f\cdot\text{total} + 1/2\rfloor`).
    gate
        Reduce a layer only if :math:`r < \text{gate}\cdot n`.
    optimizer_policy
        ``"project"``, ``"slice"`` or ``"reset"`` (see :mod:`ssmred_torch.optim`).
    max_condition
        Largest accepted eigenvector condition number at re-diagonalisation.

    Raises
    ------
    ValueError
        For a non-positive ``total_steps``, an invalid schedule (out of range, duplicate steps), gate
        or policy.
    TypeError
        For an invalid mode.

    Notes
    -----
    Pragmatic mode: at each attempt the model parameters and buffers and the optimizer's
    per-parameter state are copied, then the model is reduced. At the next attempt step — and, after
    the last attempt, at :attr:`check_steps`\ ``[-1]`` (one schedule interval later) — the
    validation metric is compared with the one passed at the reduction; if it fell by more than
    ``tolerance`` everything is restored bit for bit and reducing stops. Param-group hyper-parameters
    (the learning rate) are not restored: LR schedulers keep running.

    Several processes (DDP): call :meth:`step` on every rank with the unwrapped module, inside
    :func:`ssmred_torch.reduce.shared_decisions` with a hook that decides on rank 0 and broadcasts;
    the plans and the pragmatic verdicts are then rank 0's on every rank (snapshots stay local: every
    rank holds the same one). Re-wrap the module in a new DDP afterwards when shapes changed.

    In a Lightning-style callback::

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.compressm.step(trainer.global_step, pl_module, trainer.optimizers[0], val_metric=...)

    Examples
    --------
    >>> from ssmred_torch import tolerance
    >>> ctl = CompreSSM(1000, mode=tolerance(0.05))
    >>> ctl.attempt_steps
    (25, 50, 75, 100)
    """

    def __init__(
        self,
        total_steps: int,
        *,
        mode: SelectionMode,
        schedule: Sequence[int | float] | None = None,
        gate: float = 0.95,
        optimizer_policy: OptimizerPolicy = "project",
        max_condition: float = 1e8,
    ) -> None:
        self.total_steps = _positive_int("total_steps", total_steps)
        self.mode = check_mode(mode)
        self.gate = check_gate(gate)
        check_optimizer(None, optimizer_policy)
        self.optimizer_policy: OptimizerPolicy = optimizer_policy
        self.max_condition = float(max_condition)
        self._attempts = resolve_schedule(self.total_steps, schedule)
        if isinstance(self.mode, Pragmatic):
            gaps = np.diff(self._attempts)
            gap = int(gaps[-1]) if gaps.size else max(1, math.floor(0.025 * self.total_steps + 0.5))
            self._checks = (*self._attempts[1:], self._attempts[-1] + gap)
        else:
            self._checks = ()
        self._done: set[int] = set()
        self._checks_done: set[int] = set()
        self._stopped = False
        self._snapshot: _Snapshot | None = None
        self._history: list[AttemptRecord] = []

    # ------------------------------------------------------------------ inspection
    @property
    def attempt_steps(self) -> tuple[int, ...]:
        """The scheduled reduction steps, ascending."""
        return self._attempts

    @property
    def check_steps(self) -> tuple[int, ...]:
        """Pragmatic mode: steps at which the previous reduction is validated (empty otherwise)."""
        return self._checks

    @property
    def history(self) -> tuple[AttemptRecord, ...]:
        """All records so far, in order."""
        return tuple(self._history)

    @property
    def stopped(self) -> bool:
        """Whether reducing has stopped (pragmatic rollback)."""
        return self._stopped

    @property
    def finished(self) -> bool:
        """Whether every scheduled attempt (and check) has been served."""
        return self._stopped or (
            self._done >= set(self._attempts) and self._snapshot is None and self._checks_done >= set(self._checks)
        )

    # ------------------------------------------------------------------ the hook
    def step(
        self,
        step: int,
        model: nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
        val_metric: float | None = None,
    ) -> StepResult:
        """Serve the scheduled attempts (and pragmatic checks) due at ``step``.

        Parameters
        ----------
        step
            Number of completed training steps (e.g. Lightning's ``trainer.global_step``).
        model
            The model containing the SSM layers.
        optimizer
            Its optimizer (updated with the controller's policy; needed for pragmatic rollback).
        val_metric
            Validation metric of the current model; required at pragmatic attempt and check steps.

        Returns
        -------
        StepResult
            The records added; truthy when parameters changed.

        Raises
        ------
        ValueError
            If ``step`` is negative, or ``val_metric`` is missing where pragmatic mode needs it.
        TypeError
            For an invalid optimizer.
        """
        if isinstance(step, bool) or not isinstance(step, numbers.Integral) or int(step) < 0:
            raise ValueError(f"step must be an int >= 0; got {step!r}")
        step = int(step)
        check_optimizer(optimizer, self.optimizer_policy)
        records: list[AttemptRecord] = []
        changed = False
        due_attempts = [s for s in self._attempts if s <= step and s not in self._done]
        due_checks = [s for s in self._checks if s <= step and s not in self._checks_done]
        if (due_attempts or due_checks) and isinstance(self.mode, Pragmatic) and not self._stopped:
            if val_metric is None or not math.isfinite(float(val_metric)):
                raise ValueError(
                    f"val_metric (a finite float) is required at step {step}: pragmatic mode validates "
                    "before every reduction and after it"
                )
        # 1) pragmatic check of the previous reduction
        if due_checks:
            self._checks_done.update(due_checks)
            if self._snapshot is not None and not self._stopped:
                rec = self._check(step, due_checks[0], model, optimizer, float(val_metric))  # type: ignore[arg-type]
                records.append(rec)
                changed |= rec.kind == "rollback"
        # 2) scheduled reduction
        if due_attempts:
            self._done.update(due_attempts)
            if not self._stopped:
                rec = self._attempt(step, due_attempts, model, optimizer, val_metric)
                records.append(rec)
                changed |= any(lr.applied for lr in rec.layers)
        self._history.extend(records)
        return StepResult(tuple(records), changed)

    def _attempt(
        self,
        step: int,
        due: list[int],
        model: nn.Module,
        optimizer: torch.optim.Optimizer | None,
        val_metric: float | None,
    ) -> AttemptRecord:
        notes = []
        if len(due) > 1:
            notes.append(f"scheduled steps {due} were all due at step {step}: one attempt served them")
        if due[0] != step:
            notes.append(f"scheduled step {due[0]} served late, at step {step}")
        t0 = time.perf_counter()
        if isinstance(self.mode, Pragmatic):
            snapshot = _Snapshot(
                step,
                due[0],
                float(val_metric),  # type: ignore[arg-type]
                {k: v.detach().clone() for k, v in _model_tensors(model).items()},
                _snapshot_optimizer(optimizer),
            )
        report = reduce_model(
            model,
            self.mode,
            optimizer=optimizer,
            optimizer_policy=self.optimizer_policy,
            gate=self.gate,
            max_condition=self.max_condition,
        )
        if isinstance(self.mode, Pragmatic):
            self._snapshot = snapshot if report.changed else None
        return AttemptRecord(
            "reduce",
            step,
            due[0],
            report.layers,
            time.perf_counter() - t0,
            report.sizes_before,
            report.sizes_after,
            None if val_metric is None else float(val_metric),
            None,
            tuple(notes) + report.warnings,
        )

    def _check(
        self, step: int, scheduled: int, model: nn.Module, optimizer: torch.optim.Optimizer | None, metric: float
    ) -> AttemptRecord:
        assert isinstance(self.mode, Pragmatic)
        assert self._snapshot is not None
        snap = self._snapshot
        self._snapshot = None
        drop = (snap.metric - metric) if self.mode.higher_is_better else (metric - snap.metric)
        sizes = _sizes(model)
        tolerance = self.mode.tolerance
        if decide(lambda: drop <= tolerance):  # under DDP: rank 0's verdict (ssmred_torch.reduce.shared_decisions)
            return AttemptRecord("accept", step, scheduled, (), 0.0, sizes, sizes, metric, snap.metric)
        t0 = time.perf_counter()
        _restore(model, optimizer, snap)
        self._stopped = True
        after = _sizes(model)
        note = (
            f"validation metric moved from {snap.metric:.6g} to {metric:.6g} (drop {drop:.6g} > tolerance "
            f"{self.mode.tolerance:.6g}): restored the checkpoint of step {snap.step}, reducing stopped"
        )
        return AttemptRecord(
            "rollback", step, scheduled, (), time.perf_counter() - t0, sizes, after, metric, snap.metric, (note,)
        )

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        """Controller progress for resuming a run: served attempts and checks, stop flag, and a pending
        pragmatic snapshot (model tensors and per-parameter optimizer state, by parameter position),
        so a run resumed between a reduction and its check still checks and can still roll back.

        Returns
        -------
        dict
            Plain Python values and tensors (safe for ``torch.load(weights_only=True)``).
        """
        snap = self._snapshot
        return {
            "attempt_steps": list(self._attempts),
            "done": sorted(self._done),
            "checks_done": sorted(self._checks_done),
            "stopped": self._stopped,
            "snapshot": None
            if snap is None
            else {
                "step": snap.step,
                "scheduled_step": snap.scheduled_step,
                "metric": snap.metric,
                "model": dict(snap.model),
                "optimizer": {int(k): dict(v) for k, v in snap.optimizer.items()},
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore progress saved by :meth:`state_dict`.

        Parameters
        ----------
        state
            The saved dict.

        Raises
        ------
        ValueError
            If the saved schedule differs from this controller's.
        """
        if list(state["attempt_steps"]) != list(self._attempts):
            raise ValueError(
                f"saved schedule {list(state['attempt_steps'])} differs from this controller's {list(self._attempts)}"
            )
        self._done = {int(s) for s in state["done"]}
        self._checks_done = {int(s) for s in state["checks_done"]}
        self._stopped = bool(state["stopped"])
        snap = state.get("snapshot")
        self._snapshot = (
            None
            if snap is None
            else _Snapshot(
                int(snap["step"]),
                int(snap["scheduled_step"]),
                float(snap["metric"]),
                {k: v.clone() for k, v in snap["model"].items()},
                {int(k): dict(v) for k, v in snap["optimizer"].items()},
            )
        )


def _model_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    tensors = dict(model.named_parameters())
    tensors.update(dict(model.named_buffers()))
    return tensors


@torch.no_grad()
def _restore(model: nn.Module, optimizer: torch.optim.Optimizer | None, snap: _Snapshot) -> None:
    tensors = _model_tensors(model)
    if set(tensors) != set(snap.model):
        raise RuntimeError("the model's parameters changed names since the checkpoint; cannot roll back")
    for name, t in tensors.items():
        if isinstance(t, nn.Parameter):
            replace_parameter_(t, snap.model[name])  # shapes may change back: safe under a live graph
        else:
            t.data = snap.model[name].clone()
    if optimizer is not None:
        for i, p in enumerate(_optimizer_params(optimizer)):
            saved = snap.optimizer.get(i)
            if saved is None:
                optimizer.state.pop(p, None)
            else:
                optimizer.state[p] = {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in saved.items()}
