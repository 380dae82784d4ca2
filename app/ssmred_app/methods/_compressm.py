"""CompreSSM in training: the :class:`ssmred_torch.CompreSSM` controller as a method.

Owns :class:`CompreSSMMethod`, the controller of a ``compression`` section (:func:`build_controller`,
:func:`selection_mode`), the calls into it (:func:`is_attempt`, :func:`controller_step`) and the record
of what it did (:func:`describe_event`).
"""

from __future__ import annotations

import time
from typing import Any

from ssmred_app.config import CompressionConfig, ConfigError
from ssmred_app.methods._base import Method, kept_share, layer_record, record_outside_loop
from ssmred_app.models import state_sizes
from ssmred_app.report import pct


class CompreSSMMethod(Method):
    """In-training reduction by a :class:`ssmred_torch.CompreSSM` controller; every attempt is recorded
    with the validation accuracy right before and right after it.

    Parameters
    ----------
    controller
        The controller (:func:`build_controller`), built for the run's total number of steps; its
        progress is saved and restored with every resumable checkpoint.
    """

    name = "compressm"

    def __init__(self, controller: Any) -> None:
        self.controller = controller

    def setup(self, trainer: Any) -> None:
        """Serve an attempt scheduled at step 0 (reduction at initialisation) before the first step.

        Does nothing on a resumed run (``trainer.step > 0``) or when step 0 is not in the schedule. The
        reduction is timed into the run's training time (:func:`record_outside_loop`).

        Parameters
        ----------
        trainer
            The calling trainer.
        """
        if trainer.step != 0 or not is_attempt(self.controller, 0):
            return
        dims_before = state_sizes(trainer.model)
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
        """Serve the controller's attempts and checks due at ``trainer.step``.

        The controller is called at every step; a step is recorded
        (:meth:`~ssmred_app.trainer.Trainer.record_reduction`) when it is a scheduled attempt or check,
        or when the controller reported anything. The validation accuracy before is measured (untimed)
        only at those steps.

        Parameters
        ----------
        trainer
            The calling trainer.
        """
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
        """The controller's progress (attempts served, a pending pragmatic snapshot).

        Returns
        -------
        dict
            :meth:`ssmred_torch.CompreSSM.state_dict`.
        """
        return self.controller.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the controller's progress.

        Parameters
        ----------
        state
            What :meth:`state_dict` returned (:meth:`ssmred_torch.CompreSSM.load_state_dict`, which
            raises :class:`ValueError` when the saved schedule differs from the controller's).
        """
        self.controller.load_state_dict(state)


def selection_mode(c: CompressionConfig) -> Any:
    """The :mod:`ssmred.selection` mode of a ``compression`` section (``None`` for mode ``none``).

    Parameters
    ----------
    c
        The validated ``compression`` section.

    Returns
    -------
    Tolerance, Fraction, Rank, Pragmatic or None
        ``tolerance``: ``Tolerance(tau)``; ``fraction``: ``Fraction(fraction)``; ``rank``:
        ``Rank(total=rank_total)`` when ``rank_total`` is set, else ``Rank(rank)`` (an int, or one order
        per layer as a tuple); ``pragmatic``: ``Pragmatic(fraction, tolerance)``; ``none``: ``None``.
    """
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
    """The ``CompreSSM`` controller of a configuration (``None`` for mode ``none``).

    Parameters
    ----------
    c
        The validated ``compression`` section (mode, schedule, gate, optimizer policy).
    total_steps
        Number of optimizer steps of the whole run (resolves a schedule given as fractions).

    Returns
    -------
    ssmred_torch.CompreSSM or None
        The controller with the mode of :func:`selection_mode`; ``None`` for mode ``none``.

    Raises
    ------
    ConfigError
        When the controller refuses the schedule for this run (reported as ``compression.schedule``).
    """
    if c.mode == "none":
        return None
    from ssmred_torch import CompreSSM

    mode = selection_mode(c)
    try:
        return CompreSSM(total_steps, mode=mode, schedule=c.schedule, gate=c.gate, optimizer_policy=c.optimizer_policy)
    except ValueError as exc:
        raise ConfigError(f"compression.schedule: {exc}") from exc


def is_attempt(controller: Any, step: int) -> bool:
    """Whether the controller acts at ``step`` (a scheduled attempt or a pragmatic check).

    Parameters
    ----------
    controller
        The controller, or ``None`` (no compression).
    step
        Number of completed optimizer steps.

    Returns
    -------
    bool
        ``True`` when ``step`` is one of the controller's attempt or check steps and it has not finished
        (every attempt served, or stopped by a pragmatic rollback); ``False`` for ``controller=None``.
    """
    if controller is None or controller.finished:
        return False
    return step in controller.attempt_steps or step in controller.check_steps


def controller_step(controller: Any, step: int, model: Any, optimizer: Any, val_metric: float | None) -> Any:
    """Call the controller after an optimizer step; ``None`` when nothing was due.

    Parameters
    ----------
    controller
        The controller (not ``None``).
    step
        Number of completed optimizer steps.
    model
        The model holding the SSM layers (reduced in place).
    optimizer
        Its optimizer (its moments are updated by the controller's policy), or ``None``.
    val_metric
        Validation accuracy of the current model; required at the attempt and check steps of
        ``pragmatic`` mode, else ``None`` is fine.

    Returns
    -------
    ssmred_torch.StepResult or None
        What the controller did, or ``None`` when it added no record.
    """
    result = controller.step(step, model, optimizer, val_metric=val_metric)
    return result if result.records else None


def describe_event(event: Any) -> dict[str, Any]:
    """A JSON-able record of what the controller did at one step (HSVs, chosen r, bounds per layer).

    Parameters
    ----------
    event
        What :func:`controller_step` returned (``None``: nothing happened).

    Returns
    -------
    dict
        ``kind`` (the records' kinds joined by ``+``, e.g. ``reduce`` or ``accept``; ``none`` for
        ``event=None``), ``layers`` (one dict per layer and record: ``layer``, ``name``, ``n``, ``r``,
        ``r_applied``, ``status``, ``bound``, ``hsv`` (:func:`leading_hsv`), ``systems``, ``message``,
        ``kept_energy`` (:func:`kept_share` at ``r_applied``) and ``bound_rel`` (bound / σ₁, ``None``
        when undefined)) and ``note`` (warnings and pragmatic-check outcomes, ``"; "``-joined).
    """
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
        layers += [layer_record(i, lr, kept_energy=kept_share(lr.hsv, lr.n_after)) for i, lr in enumerate(rec.layers)]
    return {"kind": "+".join(kinds), "layers": layers, "note": "; ".join(notes)}
