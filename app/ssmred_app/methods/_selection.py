"""Scheduled cuts by a selection rule and a plan: BT at initialisation, random / keep-smallest, real-HSV CompreSSM.

Owns :class:`ScheduledSelection`, the orders a rule picks per layer (:func:`rule_orders`) and the
per-layer records of a planned cut (also used by the post-training cuts).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ssmred_app.methods._base import Method, layer_record, record_outside_loop
from ssmred_app.models import state_sizes


def _layer_records(report: Any, sel: Any, rule_orders: list[int], hsv_rule: str) -> list[dict[str, Any]]:
    return [
        layer_record(
            i,
            lr,
            kept_energy=sel.kept_energy[i] if lr.applied else 1.0,
            r_rule=rule_orders[i],
            hsv_rule=hsv_rule,
        )
        for i, lr in enumerate(report.layers)
    ]


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

    sizes = state_sizes(model)
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
                orders = [min(n, max(r, self.min_order)) for r, n in zip(raw, state_sizes(model), strict=True)]
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
        """Serve the attempts scheduled at step 0 (BT at initialisation).

        Only on a fresh run (``trainer.step == 0``); each cut is timed into the run's training time
        (:func:`~ssmred_app.methods.record_outside_loop`).

        Parameters
        ----------
        trainer
            The calling trainer.
        """
        while self.served < len(self.steps) and self.steps[self.served] <= trainer.step == 0:
            dims_before = state_sizes(trainer.model)
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
        """Serve the attempts due at ``trainer.step`` (one call serves every attempt due).

        Each cut is recorded with :meth:`~ssmred_app.trainer.Trainer.record_reduction`, the validation
        accuracy before it measured untimed.

        Parameters
        ----------
        trainer
            The calling trainer.
        """
        while self.served < len(self.steps) and self.steps[self.served] <= trainer.step:
            acc_before = trainer.evaluate_untimed("val")
            t0 = time.perf_counter()
            record, _ = self._cut(trainer, self.served, acc_before)
            self.served += 1
            trainer.record_reduction(record, seconds=time.perf_counter() - t0, acc_before=acc_before)

    def state_dict(self) -> dict[str, Any] | None:
        """How many attempts were served, and the schedule (checked on resume).

        Returns
        -------
        dict
            ``{"served": int, "steps": list of int}``.
        """
        return {"served": self.served, "steps": list(self.steps)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`.

        Parameters
        ----------
        state
            What :meth:`state_dict` returned.

        Raises
        ------
        ValueError
            When the saved schedule differs from this method's.
        """
        if list(state["steps"]) != self.steps:
            raise ValueError(f"saved schedule {list(state['steps'])} differs from this method's {self.steps}")
        self.served = int(state["served"])
