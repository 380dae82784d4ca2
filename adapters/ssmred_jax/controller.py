r"""The CompreSSM controller for functional (JAX/optax) training loops.

:meth:`CompreSSM.step` takes the model and optimizer state and returns new ones — the reduced model,
an optax state rebuilt for its shapes (:func:`ssmred_jax.rebuild_opt_state`) — and whether anything
changed. The schedule is the torch adapter's: by default 4 equally spaced attempts in the first 10 %
of training (2.5, 5, 7.5, 10 % of the steps, :math:`\lfloor f\cdot\text{total} + 1/2\rfloor`), each
served exactly at its step (a late call serves the missed attempts once). The controller keeps its
own bookkeeping (served attempts, history); model and optimizer state stay values.

A jitted train step (``eqx.filter_jit``) re-traces by itself when the model's shapes change, so after a
``changed`` step the next call of the train step compiles once for the smaller model.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from ssmred._require import require

require("jax")
require("optax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from ssmred.selection import Pragmatic, SelectionMode, check_gate, check_mode  # noqa: E402
from ssmred_jax._adapter import ssm_layers  # noqa: E402
from ssmred_jax.layers.lru import LRU  # noqa: E402, F401 (used by the doctests)
from ssmred_jax.optim import OptimizerPolicy, check_optimizer, check_policy, rebuild_opt_state  # noqa: E402
from ssmred_jax.reduce import LayerReport, apply_reduction, plan_reduction  # noqa: E402

__all__ = ["AttemptRecord", "CompreSSM", "StepOutput", "resolve_schedule"]


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 1:
        raise ValueError(f"{name} must be an int >= 1; got {value!r}")
    return int(value)


def resolve_schedule(total_steps: int, schedule: Sequence[int | float] | None = None) -> tuple[int, ...]:
    r"""The attempt steps of a schedule: ints are steps, floats fractions of ``total_steps`` (rounded half up).

    The same rule as ``ssmred_torch.CompreSSM``: default ``(0.025, 0.05, 0.075, 0.10)``, a fraction ``f``
    resolves to :math:`\lfloor f\cdot\text{total} + 1/2\rfloor`, duplicates are an error.

    Parameters
    ----------
    total_steps
        Total number of training steps.
    schedule
        Steps (ints in ``[0, total_steps]``) and/or fractions (floats in ``(0, 1]``); ``None``: default.

    Returns
    -------
    tuple of int
        The steps, ascending.

    Raises
    ------
    ValueError
        For an empty schedule, an entry out of range, a fraction that rounds to step 0, or duplicates.

    Examples
    --------
    >>> resolve_schedule(1000)
    (25, 50, 75, 100)
    >>> resolve_schedule(200, [10, 0.5])
    (10, 100)
    """
    total_steps = _positive_int("total_steps", total_steps)
    items: Sequence[int | float] = (0.025, 0.05, 0.075, 0.10) if schedule is None else schedule
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence) or len(items) == 0:
        raise ValueError(f"schedule must be a non-empty list of steps (int) or fractions (float); got {schedule!r}")
    steps = []
    for k, item in enumerate(items):
        if isinstance(item, bool) or not isinstance(item, numbers.Real):
            raise ValueError(f"schedule[{k}] must be an int step or a float fraction; got {item!r}")
        if isinstance(item, numbers.Integral):
            step = int(item)
            if not 0 <= step <= total_steps:
                raise ValueError(f"schedule[{k}] = {step} is not a step in [0, total_steps={total_steps}]")
        else:
            frac = float(item)
            if not 0.0 < frac <= 1.0:
                raise ValueError(f"schedule[{k}] = {item!r}: a fraction must be in (0, 1]")
            step = math.floor(frac * total_steps + 0.5)
            if step < 1:
                raise ValueError(
                    f"schedule[{k}] = {item!r} of total_steps={total_steps} rounds to step 0; use more steps"
                )
        steps.append(step)
    if len(set(steps)) != len(steps):
        raise ValueError(
            f"schedule resolves to duplicate steps {steps} (total_steps={total_steps}); give distinct steps"
        )
    return tuple(sorted(steps))


@dataclass(frozen=True)
class AttemptRecord:
    """One entry of :attr:`CompreSSM.history`.

    Attributes
    ----------
    kind
        ``"reduce"`` (a scheduled reduction), ``"accept"`` (pragmatic check passed) or ``"rollback"``
        (pragmatic check failed: model and optimizer state restored, reducing stopped).
    step
        The training step at which it happened.
    scheduled_step
        The scheduled step it served.
    layers
        Per-layer reports (for ``"reduce"``).
    seconds
        Wall time spent (reduction and optimizer-state rebuild, or restore).
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


class StepOutput(NamedTuple):
    """What :meth:`CompreSSM.step` returns; unpacks as ``model, opt_state, changed = ctl.step(...)``.

    Attributes
    ----------
    model
        The (possibly new) model.
    opt_state
        The (possibly rebuilt) optimizer state (``None`` if none was passed).
    changed
        Whether the model's parameters changed (a layer was reduced, or a pragmatic rollback).
    """

    model: Any
    opt_state: Any
    changed: bool


@dataclass(frozen=True)
class _Snapshot:
    step: int
    scheduled_step: int
    metric: float
    model: Any
    opt_state: Any


def _copy_arrays(tree: Any) -> Any:
    # copies, so that a train step that donates its input buffers cannot invalidate the checkpoint
    return jax.tree_util.tree_map(lambda x: jnp.array(x, copy=True) if isinstance(x, jax.Array) else x, tree)


def _sizes(model: Any) -> tuple[int, ...]:
    return tuple(s.adapter.state_size(s.layer) for s in ssm_layers(model))


class CompreSSM:
    r"""In-training reduction controller for functional JAX training loops (equinox + optax).

    Call :meth:`step` once per optimizer step with the number of completed steps::

        model, opt_state, changed = ctl.step(step, model, opt_state, optimizer)

    Parameters
    ----------
    total_steps
        Total number of training steps (resolves fractional schedules).
    mode
        A selection mode of :mod:`ssmred.selection`: ``tolerance(tau)``, ``fraction(f)``, ``rank(r)`` or
        ``pragmatic(f, tolerance)``.
    schedule
        Attempt steps (ints) or fractions of ``total_steps`` (floats in ``(0, 1]``); default: 2.5, 5,
        7.5 and 10 % (:func:`resolve_schedule`, identical to ``ssmred_torch.CompreSSM``).
    gate
        Reduce a layer only if :math:`r < \text{gate}\cdot n`.
    optimizer_policy
        ``"project"``, ``"slice"`` or ``"reset"`` (see :mod:`ssmred_jax.optim`).
    max_condition
        Largest accepted eigenvector condition number at re-diagonalisation.

    Raises
    ------
    ValueError
        For a non-positive ``total_steps``, an invalid schedule, gate or policy.
    TypeError
        For an invalid mode.

    Notes
    -----
    Pragmatic mode: at each attempt the controller keeps (copies of) the model and optimizer state,
    then reduces. At the next attempt step — and after the last attempt at :attr:`check_steps`\ ``[-1]``,
    one schedule interval later — the validation metric passed to :meth:`step` is compared with the
    one passed at the reduction; if it fell by more than ``tolerance`` the kept model and state are
    returned and reducing stops.

    Examples
    --------
    >>> from ssmred.selection import tolerance
    >>> CompreSSM(1000, mode=tolerance(0.05)).attempt_steps
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
        self.optimizer_policy: OptimizerPolicy = check_policy(optimizer_policy)  # type: ignore[assignment]
        self.max_condition = float(max_condition)
        self._attempts = resolve_schedule(self.total_steps, schedule)
        if isinstance(self.mode, Pragmatic):
            gaps = np.diff(self._attempts)
            gap = int(gaps[-1]) if gaps.size else max(1, math.floor(0.025 * self.total_steps + 0.5))
            self._checks: tuple[int, ...] = (*self._attempts[1:], self._attempts[-1] + gap)
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
        model: Any,
        opt_state: Any = None,
        optimizer: Any = None,
        val_metric: float | None = None,
    ) -> StepOutput:
        """Serve the scheduled attempts (and pragmatic checks) due at ``step``.

        Parameters
        ----------
        step
            Number of completed training steps.
        model
            The model (any pytree with SSM layers).
        opt_state
            Its optax state (optional; rebuilt for the new shapes with the controller's policy).
        optimizer
            The optax optimizer of ``opt_state`` (required with ``opt_state``).
        val_metric
            Validation metric of the current model; required at pragmatic attempt and check steps.

        Returns
        -------
        StepOutput
            ``(model, opt_state, changed)``.

        Raises
        ------
        ValueError
            If ``step`` is negative, or ``val_metric`` is missing where pragmatic mode needs it.
        TypeError
            If ``opt_state`` is given without an optax optimizer.
        """
        if isinstance(step, bool) or not isinstance(step, numbers.Integral) or int(step) < 0:
            raise ValueError(f"step must be an int >= 0; got {step!r}")
        step = int(step)
        if opt_state is not None:
            check_optimizer(optimizer)
        due_attempts = [s for s in self._attempts if s <= step and s not in self._done]
        due_checks = [s for s in self._checks if s <= step and s not in self._checks_done]
        if (due_attempts or due_checks) and isinstance(self.mode, Pragmatic) and not self._stopped:
            if val_metric is None or not math.isfinite(float(val_metric)):
                raise ValueError(
                    f"val_metric (a finite float) is required at step {step}: pragmatic mode validates "
                    "before every reduction and after it"
                )
        records: list[AttemptRecord] = []
        changed = False
        if due_checks:
            self._checks_done.update(due_checks)
            if self._snapshot is not None and not self._stopped:
                rec, model, opt_state = self._check(step, due_checks[0], model, opt_state, float(val_metric))  # type: ignore[arg-type]
                records.append(rec)
                changed |= rec.kind == "rollback"
        if due_attempts:
            self._done.update(due_attempts)
            if not self._stopped:
                rec, model, opt_state = self._attempt(step, due_attempts, model, opt_state, optimizer, val_metric)
                records.append(rec)
                changed |= any(lr.applied for lr in rec.layers)
        self._history.extend(records)
        return StepOutput(model, opt_state, changed)

    def _attempt(
        self,
        step: int,
        due: list[int],
        model: Any,
        opt_state: Any,
        optimizer: Any,
        val_metric: float | None,
    ) -> tuple[AttemptRecord, Any, Any]:
        notes = []
        if len(due) > 1:
            notes.append(f"scheduled steps {due} were all due at step {step}: one attempt served them")
        if due[0] != step:
            notes.append(f"scheduled step {due[0]} served late, at step {step}")
        t0 = time.perf_counter()
        plan = plan_reduction(model, self.mode, gate=self.gate, max_condition=self.max_condition)
        new_model = apply_reduction(model, plan)
        new_state = opt_state
        if opt_state is not None and plan.maps:
            new_state = rebuild_opt_state(optimizer, opt_state, new_model, plan, policy=self.optimizer_policy)
        report = plan.report
        if isinstance(self.mode, Pragmatic):
            self._snapshot = (
                _Snapshot(step, due[0], float(val_metric), _copy_arrays(model), _copy_arrays(opt_state))  # type: ignore[arg-type]
                if report.changed
                else None
            )
        jax.block_until_ready((new_model, new_state))
        record = AttemptRecord(
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
        return record, new_model, new_state

    def _check(
        self, step: int, scheduled: int, model: Any, opt_state: Any, metric: float
    ) -> tuple[AttemptRecord, Any, Any]:
        assert isinstance(self.mode, Pragmatic)
        assert self._snapshot is not None
        snap = self._snapshot
        self._snapshot = None
        drop = (snap.metric - metric) if self.mode.higher_is_better else (metric - snap.metric)
        sizes = _sizes(model)
        if drop <= self.mode.tolerance:
            return (
                AttemptRecord("accept", step, scheduled, (), 0.0, sizes, sizes, metric, snap.metric),
                model,
                opt_state,
            )
        self._stopped = True
        note = (
            f"validation metric moved from {snap.metric:.6g} to {metric:.6g} (drop {drop:.6g} > tolerance "
            f"{self.mode.tolerance:.6g}): restored the checkpoint of step {snap.step}, reducing stopped"
        )
        restored_state = snap.opt_state if opt_state is not None else None
        record = AttemptRecord(
            "rollback", step, scheduled, (), 0.0, sizes, _sizes(snap.model), metric, snap.metric, (note,)
        )
        return record, snap.model, restored_state

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        """Controller progress (served attempts and checks, stop flag) for resuming a run.

        A pending pragmatic checkpoint is not included: a run resumed between a reduction and its
        check keeps the reduction.

        Returns
        -------
        dict
            Plain Python values.
        """
        return {
            "attempt_steps": list(self._attempts),
            "done": sorted(self._done),
            "checks_done": sorted(self._checks_done),
            "stopped": self._stopped,
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
        self._snapshot = None
