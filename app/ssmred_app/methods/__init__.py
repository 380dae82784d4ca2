"""Training methods: what the trainer does besides plain training, as hooks (CompreSSM is one).

A :class:`Method` is called by :class:`~ssmred_app.trainer.Trainer` at fixed points:

* :meth:`Method.setup` — once the model and optimizer are final (after a resume), before training
  (a reduction at step 0 — BT at initialisation, a schedule containing step 0 — happens here),
* :meth:`Method.loss` — the training loss of a batch (default: cross-entropy; the Hankel nuclear-norm
  regulariser and knowledge distillation override it),
* :meth:`Method.after_step` — after every optimizer step (scheduled reductions),
* :meth:`Method.finish` — after the last epoch, before the final evaluation (post-training cuts, their
  fine-tuning),
* :meth:`Method.state_dict` / :meth:`Method.load_state_dict` — its progress, saved in every resumable
  checkpoint (``None``: stateless).

Methods change the model only through the trainer's model and optimizer (``trainer.model``,
``trainer.optimizer``), evaluate through :meth:`~ssmred_app.trainer.Trainer.evaluate_untimed` (kept out
of the training time) and record reductions with :meth:`~ssmred_app.trainer.Trainer.record_reduction`;
work done outside the training loop (at step 0 and after the last epoch) is timed by the method itself
and added to the run's training time (:func:`record_outside_loop`), so that every method's CPU time
counts everything it costs except evaluation.

:func:`build_method` makes the method of a configuration (``method.name``,
:class:`~ssmred_app.config_sections.MethodConfig`):

========================  =====================================================================
``full``                  :class:`Method` — plain training (also the same-size-from-scratch runs)
``compressm``             :class:`CompreSSMMethod` (the :class:`ssmred_torch.CompreSSM` controller), or
                          :class:`ScheduledSelection` when ``method.hsv = real`` or ``min_order > 1``
``bt_init``               :class:`ScheduledSelection` with every attempt at step 0
``random``, ``smallest``  :class:`ScheduledSelection` keeping random / smallest-HSV states
``post_bt``, ``last``     :class:`PostTraining` — one cut after training (+ optional fine-tune)
``hnn``                   :class:`PostTraining` with the Hankel nuclear norm in the loss
``distill``               :class:`Distillation` — (1 − α) CE + α T² KL to a teacher
========================  =====================================================================

The methods live by group, re-exported here: ``_base`` (:class:`Method`, :func:`record_outside_loop`,
the per-layer numbers of a record), ``_compressm`` (:class:`CompreSSMMethod` and its controller),
``_selection`` (:class:`ScheduledSelection` and the orders of a rule), ``_posttraining``
(:class:`PostTraining`, :func:`finetune_`) and ``_distill`` (:class:`Distillation`,
:func:`distillation_loss`); :func:`build_method` is defined here.
"""

from __future__ import annotations

from ssmred_app.config import ConfigError, RunConfig
from ssmred_app.methods._base import Method as Method
from ssmred_app.methods._base import _bound_rel as _bound_rel
from ssmred_app.methods._base import kept_share as kept_share
from ssmred_app.methods._base import leading_hsv as leading_hsv
from ssmred_app.methods._base import record_outside_loop as record_outside_loop
from ssmred_app.methods._compressm import CompreSSMMethod as CompreSSMMethod
from ssmred_app.methods._compressm import build_controller as build_controller
from ssmred_app.methods._compressm import controller_step as controller_step
from ssmred_app.methods._compressm import describe_event as describe_event
from ssmred_app.methods._compressm import is_attempt as is_attempt
from ssmred_app.methods._compressm import selection_mode as selection_mode
from ssmred_app.methods._distill import Distillation as Distillation
from ssmred_app.methods._distill import distillation_loss as distillation_loss
from ssmred_app.methods._posttraining import PostTraining as PostTraining
from ssmred_app.methods._posttraining import finetune_ as finetune_
from ssmred_app.methods._selection import ScheduledSelection as ScheduledSelection
from ssmred_app.methods._selection import _layer_records as _layer_records
from ssmred_app.methods._selection import rule_orders as rule_orders

__all__ = [
    "CompreSSMMethod",
    "Distillation",
    "Method",
    "PostTraining",
    "ScheduledSelection",
    "build_controller",
    "build_method",
    "controller_step",
    "describe_event",
    "distillation_loss",
    "finetune_",
    "is_attempt",
    "kept_share",
    "leading_hsv",
    "record_outside_loop",
    "selection_mode",
]


def build_method(cfg: RunConfig, total_steps: int) -> Method:
    """The method of a run configuration (``method.name``; ``auto``: CompreSSM when ``compression.mode`` is set).

    Parameters
    ----------
    cfg
        The validated configuration.
    total_steps
        Number of optimizer steps of the run (resolves fractional schedules).

    Returns
    -------
    Method
        A fresh method (its progress restored later from a checkpoint, if any).

    Raises
    ------
    ConfigError
        For a schedule that does not fit the run.
    """
    m, c = cfg.method, cfg.compression
    name = m.resolved(c)
    if name == "full":
        return Method()
    if name == "compressm" and m.hsv == "proxy" and m.min_order == 1:
        controller = build_controller(c, total_steps)
        return Method() if controller is None else CompreSSMMethod(controller)
    if name in ("compressm", "bt_init", "random", "smallest"):
        from ssmred.selection import Rank, resolve_schedule

        try:
            steps = list(resolve_schedule(total_steps, c.schedule))
        except ValueError as exc:
            raise ConfigError(f"compression.schedule: {exc}") from exc
        mode = selection_mode(c)
        if name == "bt_init":
            repeats = m.init_repeats or (1 if isinstance(mode, Rank) else len(steps))
            steps = [0] * (len(m.cut_orders) if m.cut_orders is not None else repeats)
        elif m.cut_orders is not None and len(m.cut_orders) != len(steps):
            raise ConfigError(
                f"method.cut_orders: {len(m.cut_orders)} cuts given for a schedule of {len(steps)} attempts {steps}"
            )
        keep = {"random": "random", "smallest": "smallest"}.get(name, "largest")
        basis = m.basis if name in ("random", "smallest") else "balanced"
        seed = cfg.seed if m.selection_seed is None else m.selection_seed
        return ScheduledSelection(
            name,
            steps,
            mode,
            keep=keep,
            basis=basis,
            hsv=m.hsv,
            min_order=m.min_order,
            gate=c.gate,
            optimizer_policy=c.optimizer_policy,
            seed=seed,
            cut_orders=m.cut_orders,
        )
    if name in ("post_bt", "hnn", "last"):
        return PostTraining(cfg)
    return Distillation(cfg)
