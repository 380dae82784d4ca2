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

:func:`build_method` makes the method of a configuration (``method.name``, :class:`~ssmred_app.config.MethodConfig`):

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
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from ssmred_app.config import CompressionConfig, ConfigError, RunConfig
from ssmred_app.report import pct

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
                    "kept_energy": kept_share(lr.hsv, lr.n_after),
                    "bound_rel": _bound_rel(lr.error_bound, lr.hsv),
                }
            )
    return {"kind": "+".join(kinds), "layers": layers, "note": "; ".join(notes)}


def kept_share(hsv: Any, r: int) -> float:
    r"""The share :math:`\sum_{i\le r}\sigma_i / \sum_i\sigma_i` kept by the leading ``r`` states of a layer.

    Examples
    --------
    >>> kept_share([3.0, 1.0], 1)
    0.75
    """
    h = np.atleast_2d(np.asarray(hsv, dtype=float))
    total = float(h.sum())
    return float(h[:, :r].sum() / total) if total > 0 else 1.0


def _bound_rel(bound: float, hsv: Any) -> float | None:
    h = np.atleast_2d(np.asarray(hsv, dtype=float))
    s1 = float(h[:, 0].max()) if h.size else 0.0
    return float(bound / s1) if s1 > 0 and bound is not None and math.isfinite(bound) else None


def _sizes(model: Any) -> list[int]:
    return list(model.state_sizes)


def record_outside_loop(
    trainer: Any,
    record: dict[str, Any],
    *,
    seconds: float,
    cpu_seconds: float,
    acc_before: float | None,
    dims_before: list[int],
) -> None:
    """Log a reduction made outside the training loop (at step 0 or after the last epoch).

    Like :meth:`~ssmred_app.trainer.Trainer.record_reduction` (the record is completed with the step,
    sizes and the validation accuracy before and after), and the reduction's wall and CPU time are added
    to the run's training time, which the loop does not measure there. Uses only the trainer's public
    ``model``, ``step``, ``total_steps``, ``result``, ``evaluate`` and ``log``.
    """
    dims_after = _sizes(trainer.model)
    after = trainer.evaluate("val") if dims_after != dims_before else acc_before
    record.update(
        {
            "step": trainer.step,
            "fraction": trainer.step / trainer.total_steps,
            "dims_before": list(dims_before),
            "dims_after": dims_after,
            "val_acc_before": acc_before,
            "val_acc_after": after,
            "time_s": seconds,
        }
    )
    res = trainer.result
    res.reductions.append(record)
    res.reduction_time_s += seconds
    res.train_time_s += seconds
    res.train_cpu_s += cpu_seconds
    if dims_after != dims_before:
        res.dims_trace.append([trainer.step, dims_after])
    trainer.log(
        f"[{trainer.cfg.name}] step {trainer.step} ({100 * trainer.step / trainer.total_steps:.1f} %): state sizes "
        f"{dims_before} -> {dims_after}; val acc {pct(acc_before)} -> {pct(after)}; {1000 * seconds:.1f} ms"
        f"{'; ' + record['note'] if record.get('note') else ''}"
    )


def _layer_records(report: Any, sel: Any, rule_orders: list[int], hsv_rule: str) -> list[dict[str, Any]]:
    out = []
    for i, lr in enumerate(report.layers):
        share = sel.kept_energy[i] if lr.applied else 1.0
        out.append(
            {
                "layer": i,
                "name": lr.name,
                "n": lr.n,
                "r": lr.r,
                "r_rule": rule_orders[i],
                "r_applied": lr.n_after,
                "status": lr.status,
                "bound": lr.error_bound,
                "hsv": leading_hsv(lr.hsv),
                "systems": 1 if lr.hsv.ndim == 1 else int(lr.hsv.shape[0]),
                "message": lr.message,
                "kept_energy": share,
                "bound_rel": _bound_rel(lr.error_bound, lr.hsv),
                "hsv_rule": hsv_rule,
            }
        )
    return out


def rule_orders(model: Any, mode: Any, *, hsv: str = "proxy", min_order: int = 1) -> tuple[list[int], list[int]]:
    """The orders a selection mode picks for every SSM layer, before and after the floor ``min_order``.

    Parameters
    ----------
    model
        The model.
    mode
        A :mod:`ssmred.selection` mode.
    hsv
        ``proxy`` (the complex systems' HSVs, one order per layer = the largest over its systems) or
        ``real`` (the real-output HSVs, :func:`ssmred_torch.plans.real_output_orders`).
    min_order
        Floor of every order (capped at the layer's size).

    Returns
    -------
    tuple of list of int
        ``(orders of the rule, orders with the floor)``.
    """
    from ssmred_torch.plans import layer_hsvs, real_output_orders

    from ssmred.selection import select_orders

    sizes = _sizes(model)
    if hsv == "real":
        raw = real_output_orders(model, mode)
    else:
        hsvs = layer_hsvs(model)
        if getattr(mode, "r", None) is not None and isinstance(mode.r, tuple):
            from ssmred.selection import Rank

            mode = Rank(tuple(r for r, h in zip(mode.r, hsvs, strict=True) for _ in range(h.shape[0])))
        flat = select_orders(mode, [row for h in hsvs for row in h])
        raw, k = [], 0
        for h in hsvs:
            raw.append(max(flat[k : k + h.shape[0]]))
            k += h.shape[0]
    floored = [min(n, max(int(r), min_order)) for r, n in zip(raw, sizes, strict=True)]
    return list(raw), floored


class ScheduledSelection(Method):
    """Scheduled cuts whose orders come from a selection rule and whose kept states come from a plan.

    Serves CompreSSM with the real-output HSV rule or an order floor, BT at initialisation (every
    attempt at step 0) and the random / keep-smallest ablations on CompreSSM's schedule.

    Parameters
    ----------
    name
        ``compressm``, ``bt_init``, ``random`` or ``smallest`` (for the records).
    steps
        Attempt steps (ascending; repeats allowed: ``[0, 0, 0, 0]`` applies the rule four times at
        initialisation).
    mode
        The :mod:`ssmred.selection` mode choosing every layer's order at each attempt.
    keep, basis
        Which states the plan keeps (:func:`ssmred_torch.plans.plan_selection`).
    hsv
        ``proxy`` or ``real`` (:func:`rule_orders`).
    min_order
        Floor of every order.
    gate
        Reduce a layer only when its order is below ``gate * n``.
    optimizer_policy
        Adam-moment surgery after a cut.
    seed
        Seed of the random choice: cut ``k`` at step ``s`` draws from ``SeedSequence([seed, s, k])``.
    cut_orders
        Orders of every cut (one per-layer list per attempt) replacing the rule's (matched controls).
    """

    def __init__(
        self,
        name: str,
        steps: list[int],
        mode: Any,
        *,
        keep: str = "largest",
        basis: str = "balanced",
        hsv: str = "proxy",
        min_order: int = 1,
        gate: float = 0.95,
        optimizer_policy: str = "project",
        seed: int = 0,
        cut_orders: list[list[int]] | None = None,
    ) -> None:
        self.name = name
        self.cut_orders = None if cut_orders is None else [list(map(int, o)) for o in cut_orders]
        self.steps = sorted(int(s) for s in steps)
        self.mode = mode
        self.keep, self.basis, self.hsv = keep, basis, hsv
        self.min_order, self.gate, self.policy, self.seed = int(min_order), float(gate), optimizer_policy, int(seed)
        self.served = 0

    def _cut(self, trainer: Any, k: int, acc_before: float | None) -> tuple[dict[str, Any], Any]:
        from ssmred_torch import apply_reduction_, decide
        from ssmred_torch.plans import plan_selection

        model = trainer.model

        def plan() -> tuple[list[int], Any]:  # under DDP: rank 0 plans, every rank applies (decide)
            if self.cut_orders is not None:
                raw = list(self.cut_orders[k])
                orders = [min(n, max(r, self.min_order)) for r, n in zip(raw, _sizes(model), strict=True)]
            else:
                raw, orders = rule_orders(model, self.mode, hsv=self.hsv, min_order=self.min_order)
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, self.steps[k], k]))
            return raw, plan_selection(
                model,
                orders,
                keep=self.keep,  # type: ignore[arg-type]
                basis=self.basis,  # type: ignore[arg-type]
                rng=rng,
                gate=self.gate,
                projections=trainer.optimizer is not None and self.policy == "project",
            )

        raw, sel = decide(plan)
        report = apply_reduction_(model, sel.plan, optimizer=trainer.optimizer, optimizer_policy=self.policy)  # type: ignore[arg-type]
        note = (
            [] if self.steps[k] == trainer.step else [f"scheduled step {self.steps[k]} served at step {trainer.step}"]
        )
        note += list(report.warnings)
        return {
            "kind": f"reduce ({self.keep}, {self.basis})" if self.keep != "largest" else "reduce",
            "layers": _layer_records(report, sel, raw, self.hsv),
            "note": "; ".join(note),
            "attempt": k,
        }, report

    def setup(self, trainer: Any) -> None:
        """Serve the attempts scheduled at step 0 (BT at initialisation)."""
        while self.served < len(self.steps) and self.steps[self.served] <= trainer.step == 0:
            dims_before = _sizes(trainer.model)
            acc_before = trainer.evaluate("val")
            t0, c0 = time.perf_counter(), time.process_time()
            record, _ = self._cut(trainer, self.served, acc_before)
            self.served += 1
            record_outside_loop(
                trainer,
                record,
                seconds=time.perf_counter() - t0,
                cpu_seconds=time.process_time() - c0,
                acc_before=acc_before,
                dims_before=dims_before,
            )

    def after_step(self, trainer: Any) -> None:
        """Serve the attempts due at ``trainer.step`` (one call serves every attempt due)."""
        while self.served < len(self.steps) and self.steps[self.served] <= trainer.step:
            acc_before = trainer.evaluate_untimed("val")
            t0 = time.perf_counter()
            record, _ = self._cut(trainer, self.served, acc_before)
            self.served += 1
            trainer.record_reduction(record, seconds=time.perf_counter() - t0, acc_before=acc_before)

    def state_dict(self) -> dict[str, Any] | None:
        """How many attempts were served, and the schedule (checked on resume)."""
        return {"served": self.served, "steps": list(self.steps)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        if list(state["steps"]) != self.steps:
            raise ValueError(f"saved schedule {list(state['steps'])} differs from this method's {self.steps}")
        self.served = int(state["served"])


def finetune_(trainer: Any, epochs: int, lr: float) -> list[float]:
    """Fine-tune ``trainer.model`` for ``epochs`` epochs at a constant learning rate (AdamW, SPEC §6 groups).

    Batches are drawn from ``SeedSequence([seed, 10_000 + epoch])``: reproducible and different from the
    training epochs. Returns the validation accuracy after each epoch.
    """
    import torch

    from ssmred_app.models import param_groups

    cfg = trainer.cfg
    o = cfg.optim
    ssm, decay, no_decay = param_groups(trainer.model)
    groups = [
        {"params": ssm, "lr": lr * o.ssm_lr_factor, "weight_decay": 0.0},
        {"params": decay, "lr": lr, "weight_decay": o.weight_decay},
        {"params": no_decay, "lr": lr, "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW([g for g in groups if g["params"]], lr=lr)
    X, y = trainer.tensors["train"]
    accs = []
    for ep in range(epochs):
        trainer.model.train()
        perm = np.random.default_rng(np.random.SeedSequence([cfg.seed, 10_000 + ep])).permutation(len(y))
        for i in range(0, len(y), o.batch_size):
            idx = torch.as_tensor(perm[i : i + o.batch_size], device=y.device)
            loss = torch.nn.functional.cross_entropy(trainer.model(X[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if o.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(trainer.model.parameters(), o.grad_clip)
            opt.step()
        trainer.model.eval()
        accs.append(trainer.evaluate("val"))
    return accs


class PostTraining(Method):
    r"""Train at full size, cut once after the last epoch, optionally fine-tune (``post_bt``, ``hnn``, ``last``).

    ``hnn`` adds :math:`\lambda\sum\sigma` (:func:`ssmred_torch.hankel_nuclear_norm`, all layers) to
    every training loss. The cut: ``last`` — :func:`ssmred_torch.plans.plan_last` to
    ``method.target_total`` states; ``post_bt``/``hnn`` — balanced truncation to ``target_total``
    states shared by one global threshold on the normalised HSVs (``Rank(total=...)``), or, without a
    target, the ``compression`` rule applied once (``hnn`` without either keeps the full size).
    ``min_order`` floors every layer's order. The cut and the fine-tuning are timed and added to the
    run's training time.

    Parameters
    ----------
    cfg
        The run configuration.
    """

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg
        self.name = cfg.method.resolved(cfg.compression)

    def loss(self, trainer: Any, logits: Any, targets: Any, inputs: Any) -> Any:
        r"""Cross-entropy, plus :math:`\lambda\sum\sigma` for ``hnn``."""
        ce = super().loss(trainer, logits, targets, inputs)
        if self.name != "hnn" or self.cfg.method.hnn_lambda == 0:
            return ce
        from ssmred_torch import hankel_nuclear_norm

        return ce + self.cfg.method.hnn_lambda * hankel_nuclear_norm(trainer.model).to(ce.dtype)

    def _plan(self, model: Any) -> tuple[Any, list[int]] | None:
        from ssmred_torch.plans import last_orders, plan_selection

        from ssmred.selection import Rank

        m = self.cfg.method
        if self.name == "last":
            raw = last_orders(model, int(m.target_total))  # type: ignore[arg-type]
            orders = [min(n, max(r, m.min_order)) for r, n in zip(raw, _sizes(model), strict=True)]
            return plan_selection(model, orders, keep="largest", basis="modal", projections=False), raw
        if m.target_total is not None:
            raw, orders = rule_orders(model, Rank(total=int(m.target_total)), min_order=m.min_order)
        else:
            mode = selection_mode(self.cfg.compression)
            if mode is None:
                return None
            raw, orders = rule_orders(model, mode, hsv=m.hsv, min_order=m.min_order)
        return plan_selection(model, orders, keep="largest", basis="balanced", projections=False), raw

    def finish(self, trainer: Any) -> None:
        """The post-training cut (and fine-tuning), timed into the run's training time."""
        from ssmred_torch import apply_reduction_, decide

        dims_before = _sizes(trainer.model)
        acc_before = trainer.evaluate("val")
        t0, c0 = time.perf_counter(), time.process_time()
        planned = decide(lambda: self._plan(trainer.model))  # under DDP: rank 0's plan on every rank
        if planned is None:
            return
        sel, raw = planned
        report = apply_reduction_(trainer.model, sel.plan)
        record = {
            "kind": f"post-training {self.name}",
            "layers": _layer_records(report, sel, raw, self.cfg.method.hsv if self.name != "last" else "last"),
            "note": "; ".join(report.warnings),
        }
        cut_s, cut_c = time.perf_counter() - t0, time.process_time() - c0
        epochs = self.cfg.method.finetune_epochs
        if epochs:
            acc_cut = trainer.evaluate("val")
            t1, c1 = time.perf_counter(), time.process_time()
            accs = finetune_(trainer, epochs, self.cfg.method.finetune_lr)
            ft_s, ft_c = time.perf_counter() - t1, time.process_time() - c1
            record["finetune"] = {"epochs": epochs, "val_acc_after_cut": acc_cut, "val_acc": accs, "time_s": ft_s}
            record["note"] = "; ".join(
                [
                    x
                    for x in (record["note"], f"fine-tuned {epochs} epoch(s) at lr {self.cfg.method.finetune_lr:g}")
                    if x
                ]
            )
            trainer.result.train_time_s += ft_s
            trainer.result.train_cpu_s += ft_c
        record_outside_loop(
            trainer, record, seconds=cut_s, cpu_seconds=cut_c, acc_before=acc_before, dims_before=dims_before
        )


def distillation_loss(student: Any, teacher: Any, targets: Any, *, alpha: float = 0.5, temperature: float = 2.0) -> Any:
    r"""Knowledge-distillation loss :math:`(1-\alpha)\,\mathrm{CE}(s, y) + \alpha T^2\,\mathrm{KL}(p_t^T \| p_s^T)`.

    :math:`p^T = \mathrm{softmax}(z/T)`; the KL divergence is averaged over the batch
    (``reduction="batchmean"``), the teacher's logits carry no gradient.

    Parameters
    ----------
    student, teacher
        Logits, shape ``(batch, classes)``.
    targets
        Class labels.
    alpha
        Weight of the distillation term.
    temperature
        Softmax temperature T.

    Returns
    -------
    torch.Tensor
        The scalar loss.

    Examples
    --------
    >>> import torch
    >>> z = torch.zeros(2, 3)
    >>> float(distillation_loss(z, z, torch.tensor([0, 1]), alpha=1.0))
    0.0
    """
    import torch.nn.functional as F

    ce = F.cross_entropy(student, targets)
    T = float(temperature)
    kl = F.kl_div(
        F.log_softmax(student / T, dim=-1),
        F.log_softmax(teacher.detach() / T, dim=-1),
        log_target=True,
        reduction="batchmean",
    )
    return (1.0 - alpha) * ce + alpha * T * T * kl


class Distillation(Method):
    """Knowledge distillation from a trained teacher (``method.teacher``, in eval mode, no gradients).

    The teacher's forward pass runs on every training batch and is part of the run's training time.

    Parameters
    ----------
    cfg
        The run configuration.
    """

    name = "distill"

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg
        self.teacher: Any = None

    def setup(self, trainer: Any) -> None:
        """Load the teacher onto the trainer's device."""
        from pathlib import Path

        from ssmred_app.models import load_model_file

        path = Path(str(self.cfg.method.teacher))
        if not path.is_file():
            raise ConfigError(f"method.teacher: file {str(path)!r} does not exist")
        self.teacher, _ = load_model_file(path, device=trainer.device)
        self.teacher.eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)

    def loss(self, trainer: Any, logits: Any, targets: Any, inputs: Any) -> Any:
        """:func:`distillation_loss` against the teacher's logits on the same batch."""
        import torch

        with torch.no_grad():
            t = self.teacher(inputs)
        m = self.cfg.method
        return distillation_loss(logits, t, targets, alpha=m.alpha, temperature=m.temperature)
