r"""Batched in-training reduction of every SSM layer of a model: plan, then apply (CompreSSM, SPEC §6).

For every SSM layer independently: its diagonal systems (:meth:`~ssmred_torch.AbstractAdapter.systems`),
closed-form Gramians, Hankel singular values :math:`\sigma_1 \ge \dots \ge \sigma_n` (square-root
method), an order ``r`` from the selection mode (:mod:`ssmred.selection`, on the host), the gate
(reduce only if :math:`r < \text{gate}\cdot n`), balanced truncation to ``r`` and re-diagonalisation —
all layers with the same shapes in one batched pass on their device (:mod:`ssmred_torch.kernels`).
That is :func:`plan_reduction`; :func:`apply_reduction_` writes the plan into the layers through their
adapters and updates the optimizer; :func:`reduce_model` does both. Planning and applying are separate
so that other plans (random selection, ablations, post-training BT) reuse the same apply step, and so
that under DDP one rank plans and every rank applies the same plan.

A layer with ``G > 1`` systems (per-channel SISO families) gets one order: the largest of its systems'
orders, capped at the smallest numerical rank among them (the cost of such a layer falls only with its
largest channel order). Its bound is the largest of its systems' bounds (the layer's map is block
diagonal over the systems).

Error bound: each reduced system satisfies :math:`\|G - G_r\|_\infty \le 2\sum_{i>r}\sigma_i`, and so does
the real output map of the layer for the output rules ``"complex"`` and ``"real"``
(:math:`|\mathrm{Re}\,v| \le |v|`); for ``"two_real"`` (conjugate half-states, :math:`y = 2\,\mathrm{Re}(Cx)`:
S4D, S5) the reported bound is twice that, :math:`4\sum_{i>r}\sigma_i`, which is what holds for the
real output.

Several processes (DDP): the decisions (the plan of :func:`reduce_model`, a pragmatic check's verdict)
go through :func:`~ssmred_torch.decisions.decide`, so that under
:func:`~ssmred_torch.decisions.shared_decisions` one process makes them for all (both re-exported here).
The plan types :class:`LayerPlan` and :class:`ReductionPlan` live in :mod:`ssmred_torch.reports`.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ssmred._require import require

require("torch")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from ssmred.bounds import bt_error_bounds  # noqa: E402
from ssmred.selection import Rank, SelectionMode, check_gate, check_mode, numerical_rank, select_orders  # noqa: E402
from ssmred_torch._adapter import (  # noqa: E402
    OUTPUT_GAIN,
    DiagonalSystems,
    ReducedSystems,
    ReductionRefused,
    SSMLayer,
    StateMap,
    adapter_for,
    ssm_layers,
)
from ssmred_torch.decisions import decide, shared_decisions  # noqa: E402
from ssmred_torch.errors import ReductionWarning  # noqa: E402
from ssmred_torch.kernels import diagonalize, hankel_svd_diagonal, truncate_diagonal  # noqa: E402
from ssmred_torch.optim import OptimizerPolicy, check_optimizer, update_optimizer_state  # noqa: E402
from ssmred_torch.reports import LayerPlan, LayerReport, ReductionPlan, ReductionReport  # noqa: E402

__all__ = [
    "LayerPlan",
    "LayerReport",
    "ReductionPlan",
    "ReductionReport",
    "apply_reduction_",
    "decide",
    "plan_reduction",
    "reduce_layers",
    "reduce_model",
    "shared_decisions",
]

#: real-output factor of the error bound: |Re v| <= |v|, |2 Re v| <= 2 |v| (DiagonalSystems.output)


def _layer_bound(hsv: np.ndarray, r: int, output: str) -> float:
    r"""The layer's bound at order ``r``: the largest of its systems' ``bt_error_bounds(row)[r]``, real-output factor.

    One vectorised pass over the ``(G, n)`` HSVs (a per-row ``bt_error_bounds`` call costs ~1 s of
    Python for the 1536 channels of a 6-layer S4D); the same sums, :math:`2\sum_{i>r}\sigma_i`.
    """
    if hsv.shape[0] == 1:
        return OUTPUT_GAIN[output] * float(bt_error_bounds(hsv[0])[r])
    return OUTPUT_GAIN[output] * float(2.0 * hsv[:, r:].sum(-1).max()) if r < hsv.shape[1] else 0.0


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64, copy=True)
    a.setflags(write=False)
    return a


# ---------------------------------------------------------------------------------------------- plans
def _layer_orders(mode: SelectionMode, hsvs: list[np.ndarray]) -> list[int]:
    """One order per layer from the ``(G, n)`` HSV arrays of every layer (see the module docstring)."""
    counts = [h.shape[0] for h in hsvs]
    if isinstance(mode, Rank) and isinstance(mode.r, tuple):
        if len(mode.r) != len(hsvs):
            raise ValueError(f"rank(r) has {len(mode.r)} entries but the model has {len(hsvs)} SSM layers")
        mode = Rank(tuple(r for r, g in zip(mode.r, counts, strict=True) for _ in range(g)))
    if isinstance(mode, Rank) and mode.total is not None and mode.total < len(hsvs):
        raise ValueError(
            f"rank(total={mode.total}) is smaller than the number of SSM layers ({len(hsvs)}): one state each"
        )
    flat = select_orders(mode, [row for h in hsvs for row in h]) if hsvs else ()
    out, k = [], 0
    for h, g in zip(hsvs, counts, strict=True):
        cap = min(max(1, numerical_rank(row)) for row in h)
        out.append(min(max(flat[k : k + g]), cap))
        k += g
    return out


def _finite(x: torch.Tensor) -> torch.Tensor:
    v = torch.view_as_real(x) if x.is_complex() else x
    return torch.isfinite(v).flatten(1).all(-1)


def _refused(name: str, n: int, r: int, hsv: np.ndarray, message: str, bound: float = math.nan, cond: float = math.nan):
    return LayerReport(name, n, r, n, "refused", hsv, bound, message, cond)


def _squeeze(hsv: np.ndarray) -> np.ndarray:
    return _frozen(hsv[0] if hsv.shape[0] == 1 else hsv)


def plan_reduction(
    model: nn.Module | Sequence[SSMLayer],
    mode: SelectionMode,
    *,
    gate: float = 0.95,
    max_condition: float = 1e8,
    projections: bool = True,
) -> ReductionPlan:
    r"""Decide and compute the reduction of every SSM layer, without changing the model.

    Parameters
    ----------
    model
        Any module containing registered SSM layers (or an SSM layer), or a list of
        :class:`~ssmred_torch.SSMLayer` entries.
    mode
        A selection mode (:func:`~ssmred_torch.tolerance`, :func:`~ssmred_torch.fraction`,
        :func:`~ssmred_torch.rank`, :func:`~ssmred_torch.pragmatic` — which acts as a fraction here).
    gate
        Reduce a layer only if :math:`r < \text{gate}\cdot n`.
    max_condition
        Largest accepted condition number of the eigenvector matrix of a reduced state matrix.
    projections
        Compute the restriction/lifting maps ``N``, ``M`` (needed by the "project" optimizer policy).

    Returns
    -------
    ReductionPlan
        Per layer: the decision and, for layers to reduce, the reduced diagonal systems.

    Raises
    ------
    TypeError
        For an invalid mode.
    ValueError
        For an invalid gate, or a ``rank`` mode that does not fit the model.

    Examples
    --------
    >>> from ssmred_torch import LRUModel, rank
    >>> model = LRUModel(1, 4, 16, 2, 3, dtype=torch.float64)
    >>> plan = plan_reduction(model, rank(6))
    >>> plan.sizes_after, model.state_sizes                # nothing changed yet
    ((6, 6), [16, 16])
    """
    t0 = time.perf_counter()
    check_mode(mode)
    gate = check_gate(gate)
    entries = ssm_layers(model) if isinstance(model, nn.Module) else list(model)
    with torch.no_grad():
        systems: list[DiagonalSystems] = [e.adapter.systems(e.module) for e in entries]
        # ---- group layers by shapes and device: one stacked problem per group
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i, s in enumerate(systems):
            key = (s.n_states, s.B.shape[-1], s.C.shape[1], s.lam.device)
            groups.setdefault(key, []).append(i)
        analysed: dict[int, tuple[np.ndarray, bool]] = {}
        stacks: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        for key, idx in groups.items():
            n = key[0]
            lam = torch.cat([systems[i].lam for i in idx]).to(torch.complex128)
            B = torch.cat([systems[i].B for i in idx]).to(torch.complex128)
            C = torch.cat([systems[i].C for i in idx]).to(torch.complex128)
            logs = [systems[i].log_lam if systems[i].log_lam is not None else torch.log(systems[i].lam) for i in idx]
            log_lam = torch.cat(logs).to(torch.complex128)
            ok = _finite(lam) & _finite(B) & _finite(C) & _finite(log_lam) & (lam.abs() < 1).all(-1)
            # keep bad members out of the factorisations (they are refused below): a harmless stable system
            log_lam = torch.where(ok[:, None], log_lam, torch.full_like(log_lam, -1.0))
            lam = torch.where(ok[:, None], lam, torch.exp(log_lam))
            B = torch.where(ok[:, None, None], B, torch.eye(n, B.shape[-1], dtype=B.dtype, device=B.device))
            C = torch.where(ok[:, None, None], C, torch.eye(C.shape[1], n, dtype=C.dtype, device=C.device))
            svd = hankel_svd_diagonal(lam, B, C, log_lam=log_lam)
            ok &= _finite(svd.hsv)
            hsv_host, ok_host = svd.hsv.cpu().numpy(), ok.tolist()
            offsets, k = [], 0
            for i in idx:
                g = systems[i].n_systems
                analysed[i] = (hsv_host[k : k + g], all(ok_host[k : k + g]))
                offsets.append((i, k, g))
                k += g
            stacks[key] = (lam, B, C, svd, offsets)
        # ---- orders (host, shared rules); refused layers get a placeholder so budgets stay well defined
        hsvs = [analysed[i][0] if analysed[i][1] else np.ones_like(analysed[i][0]) for i in range(len(entries))]
        orders = _layer_orders(mode, hsvs)
        plans: list[LayerPlan | None] = [None] * len(entries)
        todo: dict[tuple[Any, ...], dict[int, list[tuple[int, int, int]]]] = {}
        for key, (_, _, _, _, offsets) in stacks.items():
            n = key[0]
            for i, k, g in offsets:
                hsv, ok = analysed[i]
                name, r = entries[i].name, orders[i]
                hsv_r = _squeeze(hsv)
                if not ok:
                    msg = "non-finite or unstable layer parameters / Gramians"
                    plans[i] = LayerPlan(_refused(name, n, r, hsv_r, msg))
                    continue
                bound = _layer_bound(hsv, r, systems[i].output)
                if hsv[:, 0].min() == 0.0:
                    msg = "the Hankel operator is zero (B = 0 or C = 0)"
                    plans[i] = LayerPlan(_refused(name, n, r, hsv_r, msg, bound))
                elif r >= gate * n:
                    plans[i] = LayerPlan(LayerReport(name, n, r, n, "gated", hsv_r, bound))
                else:
                    todo.setdefault(key, {}).setdefault(r, []).append((i, k, g))
        # ---- balanced truncation and re-diagonalisation, batched per (group, order)
        for key, by_order in todo.items():
            n = key[0]
            lam, B, C, svd, _ = stacks[key]
            for r, members in by_order.items():
                rows = torch.tensor([k + j for _, k, g in members for j in range(g)], device=lam.device)
                sub = type(svd)(*(t.index_select(0, rows) for t in svd))
                A_r, B_r, C_r, T, Ti = truncate_diagonal(lam.index_select(0, rows), B[rows], C[rows], sub, r)
                form = diagonalize(A_r, B_r, C_r)
                cond_host = form.cond.tolist()
                pos = 0
                for i, _, g in members:
                    name = entries[i].name
                    hsv = analysed[i][0]
                    bound = _layer_bound(hsv, r, systems[i].output)
                    cond = max(float(c) for c in cond_host[pos : pos + g])
                    part = slice(pos, pos + g)
                    pos += g
                    if not math.isfinite(cond) or cond > max_condition:
                        msg = (
                            f"the reduced state matrix is (nearly) defective: cond(V) = {cond:.3g} > "
                            f"{max_condition:.3g}"
                        )
                        plans[i] = LayerPlan(_refused(name, n, r, _squeeze(hsv), msg, bound, cond))
                        continue
                    reduced = ReducedSystems(
                        form.mu[part],
                        form.B[part],
                        form.C[part],
                        N=form.W[part] @ Ti[part] if projections else None,
                        M=T[part] @ form.V[part] if projections else None,
                    )
                    report = LayerReport(name, n, r, r, "reduced", _squeeze(hsv), bound, None, cond)
                    plans[i] = LayerPlan(report, reduced)
    out = tuple(p for p in plans if p is not None)
    assert len(out) == len(entries)
    return ReductionPlan(out, time.perf_counter() - t0)


def apply_reduction_(
    model: nn.Module | Sequence[SSMLayer],
    plan: ReductionPlan,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    optimizer_policy: OptimizerPolicy = "project",
) -> ReductionReport:
    """Write a plan into the model's layers (through their adapters) and update the optimizer state.

    A layer whose adapter refuses the reduced system is left untouched, reported with
    ``status="refused"``, and a :class:`~ssmred_torch.ReductionWarning` is issued.

    Parameters
    ----------
    model
        The model the plan was made for (or its :class:`~ssmred_torch.SSMLayer` list).
    plan
        From :func:`plan_reduction` (the layers must still have the planned-for sizes).
    optimizer
        Optimizer to update (optional).
    optimizer_policy
        ``"project"`` (default), ``"slice"`` or ``"reset"`` (see :mod:`ssmred_torch.optim`).

    Returns
    -------
    ReductionReport
        Per-layer outcome.

    Raises
    ------
    ValueError
        If the plan does not match the model's layers (names or sizes), or the policy is unknown.
    TypeError
        For an invalid optimizer.

    Warns
    -----
    ReductionWarning
        For every refused layer.

    Examples
    --------
    >>> from ssmred_torch import LRUModel, rank
    >>> model = LRUModel(1, 4, 16, 2, 3, dtype=torch.float64)
    >>> apply_reduction_(model, plan_reduction(model, rank(6))).sizes_after, model.state_sizes
    ((6, 6), [6, 6])
    """
    t0 = time.perf_counter()
    check_optimizer(optimizer, optimizer_policy)
    entries = ssm_layers(model) if isinstance(model, nn.Module) else list(model)
    names = [e.name for e in entries]
    planned = [p.report.name for p in plan.layers]
    if names != planned:
        raise ValueError(f"the plan was made for layers {planned}, the model has {names}")
    for e, p in zip(entries, plan.layers, strict=True):
        sizes = e.adapter.state_sizes(e.module)
        if max(sizes) != p.report.n:
            raise ValueError(
                f"layer {e.name or '<layer>'} has state sizes {sizes}; the plan was made for n = {p.report.n}"
            )
    if optimizer is not None and optimizer_policy == "project":
        missing = [p.report.name for p in plan.layers if p.reduced is not None and p.reduced.N is None]
        if missing:
            raise ValueError(f"the 'project' policy needs a plan made with projections=True (layers {missing})")
    reports: list[LayerReport] = []
    maps: list[StateMap] = []
    for e, p in zip(entries, plan.layers, strict=True):
        rep = p.report
        if p.reduced is not None:
            try:
                smap = e.adapter.write_back_(e.module, p.reduced)
                maps.append(smap)
                if smap.error_bound is not None:  # the adapter wrote something else than the BT (e.g. modal)
                    rep = replace(rep, error_bound=float(smap.error_bound))
            except ReductionRefused as exc:
                rep = _refused(rep.name, rep.n, rep.r, rep.hsv, exc.reason, rep.error_bound, rep.condition)
        reports.append(rep)
    for rep in reports:
        if rep.status == "refused":
            warnings.warn(
                f"reduction of SSM layer {rep.name or '<layer>'} refused, layer left untouched: {rep.message}",
                ReductionWarning,
                stacklevel=3,
            )
    if optimizer is not None and maps:
        update_optimizer_state(optimizer, maps, optimizer_policy)
    return ReductionReport(tuple(reports), plan.seconds + time.perf_counter() - t0)


def reduce_model(
    model: nn.Module,
    mode: SelectionMode,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    optimizer_policy: OptimizerPolicy = "project",
    gate: float = 0.95,
    max_condition: float = 1e8,
) -> ReductionReport:
    r"""Reduce every SSM layer of ``model`` in one batched pass, in place (plan + apply).

    The :class:`torch.nn.Parameter` objects are kept (their data change shape), so ``optimizer`` and LR
    schedulers stay valid; its state is updated with ``optimizer_policy``.

    Parameters
    ----------
    model
        Any module containing registered SSM layers (or such a layer itself).
    mode
        :func:`~ssmred_torch.tolerance`, :func:`~ssmred_torch.fraction`, :func:`~ssmred_torch.rank` or
        :func:`~ssmred_torch.pragmatic` (a fraction here).
    optimizer
        Optimizer to update (optional).
    optimizer_policy
        ``"project"`` (default), ``"slice"`` or ``"reset"``.
    gate
        Reduce a layer only if :math:`r < \text{gate}\cdot n` (published: 0.95).
    max_condition
        Largest accepted condition number of the eigenvector matrix of a reduced state matrix.

    Returns
    -------
    ReductionReport
        Per-layer HSVs, orders, bounds and status, and the wall time.

    Raises
    ------
    TypeError
        For an invalid mode or optimizer.
    ValueError
        For an invalid gate / policy, or a ``rank`` mode that does not fit the model.

    Warns
    -----
    ReductionWarning
        For every refused layer.

    Examples
    --------
    >>> from ssmred_torch import LRUModel, rank
    >>> model = LRUModel(1, 4, 16, 2, 3, dtype=torch.float64)
    >>> report = reduce_model(model, rank(6))
    >>> report.sizes_before, report.sizes_after, model.state_sizes
    ((16, 16), (6, 6), [6, 6])
    """
    check_optimizer(optimizer, optimizer_policy)
    entries = ssm_layers(model)
    plan = decide(
        lambda: plan_reduction(
            entries,
            mode,
            gate=gate,
            max_condition=max_condition,
            projections=optimizer is not None and optimizer_policy == "project",
        )
    )
    return apply_reduction_(entries, plan, optimizer=optimizer, optimizer_policy=optimizer_policy)


def reduce_layers(
    layers: Sequence[nn.Module],
    mode: SelectionMode,
    *,
    gate: float = 0.95,
    max_condition: float = 1e8,
    names: Sequence[str] | None = None,
) -> list[LayerReport]:
    """Batched reduction of a list of SSM layers in place (see :func:`reduce_model`).

    Parameters
    ----------
    layers
        Registered SSM layers.
    mode
        A selection mode.
    gate
        Reduce a layer only if ``r < gate * n``.
    max_condition
        Largest accepted eigenvector condition number at re-diagonalisation.
    names
        Names for the reports.

    Returns
    -------
    list of LayerReport
        One per layer.

    Raises
    ------
    TypeError
        For a layer of no registered family or an invalid mode.
    ValueError
        For an invalid gate.

    Examples
    --------
    >>> from ssmred_torch import LRU, rank
    >>> reduce_layers([LRU(2, 8, dtype=torch.float64)], rank(4))[0].n_after
    4
    """
    layers = list(layers)
    names = [""] * len(layers) if names is None else list(names)
    entries = []
    for name, layer in zip(names, layers, strict=True):
        adapter = adapter_for(layer)
        if adapter is None:
            raise TypeError(f"layers must be registered SSM layers; got {type(layer).__name__}")
        entries.append(SSMLayer(name, layer, adapter))
    plan = decide(lambda: plan_reduction(entries, mode, gate=gate, max_condition=max_condition, projections=False))
    return list(apply_reduction_(entries, plan).layers)
