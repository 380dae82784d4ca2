r"""Other reduction plans for :func:`~ssmred_torch.apply_reduction_`: the baselines CompreSSM is compared with.

:func:`~ssmred_torch.plan_reduction` keeps the ``r`` *leading* balanced states of every layer. The plans
here keep other state sets, with the same :class:`~ssmred_torch.reduce.ReductionPlan` type, so that the
same apply step (write-back through the adapter, optimizer surgery, checkpoints) serves all of them:

* :func:`plan_selection` with ``basis="balanced"`` keeps a set :math:`S` of ``r`` states of the
  balanced realization (square-root method: :math:`L_o^H L_c = U\Sigma V^H`),

  .. math::

      T_S = L_c V_S \Sigma_S^{-1/2},\qquad T_{i,S} = \Sigma_S^{-1/2} U_S^H L_o^H,\qquad T_{i,S} T_S = I_r,

  with ``keep="largest"`` (:math:`S = \{1..r\}`: balanced truncation, identical to
  :func:`~ssmred_torch.plan_reduction`), ``"smallest"`` (the ``r`` smallest HSVs above the numerical
  rank: the published "keep-smallest" ablation) or ``"random"`` (``r`` states drawn uniformly without
  replacement from the numerically non-zero ones, by a :class:`numpy.random.Generator`: reproducible by
  seed). Every principal subsystem of a balanced discrete-time realization is stable
  (:math:`A_{SS}\Sigma_S A_{SS}^H - \Sigma_S = -B_S B_S^H - A_{S\bar S}\Sigma_{\bar S}A_{S\bar S}^H \preceq 0`),
  and the reported bound is :math:`2\sum_{i\notin S}\sigma_i` (Glover's bound for a partition whose
  blocks share no HSV; the report says so when they do not — for distinct HSVs it always holds).
* :func:`plan_selection` with ``basis="modal"`` keeps ``r`` of the layer's own diagonal modes
  (no balancing): :math:`(\lambda_S, B_S, C_{:,S})`, ranked by the mode's H∞ norm
  :math:`\|c_i\|\|b_i\|/(1-|\lambda_i|)`; bound :math:`\sum_{i\notin S}\|c_i\|\|b_i\|/(1-|\lambda_i|)`
  (triangle inequality).
* :func:`plan_last`: LAST (Gwak et al. 2024, layer-adaptive state pruning): the orders of
  :func:`~ssmred_torch.scores.last_orders` (one global threshold on the normalised LAST scores), then
  modal truncation of every layer to its top modes.

The quantities that rank states — the layers' HSVs, the real-output HSVs and the orders they give,
the modes' H∞ norms, the LAST scores — are in :mod:`ssmred_torch.scores` (re-exported here).

A layer of ``G > 1`` systems (per-channel families) keeps the same number of states in each of its
systems; each system chooses its own set.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ssmred._require import require

require("torch")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from ssmred.selection import Rank, check_gate, numerical_rank  # noqa: E402
from ssmred_torch._adapter import ReducedSystems, SSMLayer  # noqa: E402
from ssmred_torch.kernels import diagonalize, hankel_svd_diagonal  # noqa: E402
from ssmred_torch.reduce import LayerPlan, ReductionPlan, plan_reduction  # noqa: E402
from ssmred_torch.reports import LayerReport  # noqa: E402
from ssmred_torch.scores import (  # noqa: E402
    _complex,
    _entries,
    last_orders,
    last_scores,
    layer_hsvs,
    mode_hinf,
    real_output_hsvs,
    real_output_orders,
)

__all__ = [
    "Basis",
    "Keep",
    "SelectionPlan",
    "last_orders",
    "last_scores",
    "layer_hsvs",
    "mode_hinf",
    "plan_last",
    "plan_selection",
    "real_output_hsvs",
    "real_output_orders",
]

Keep = Literal["largest", "smallest", "random"]
Basis = Literal["balanced", "modal"]


@dataclass(frozen=True)
class SelectionPlan:
    r"""A :class:`~ssmred_torch.reduce.ReductionPlan` plus which states each layer keeps.

    Attributes
    ----------
    plan
        For :func:`~ssmred_torch.apply_reduction_`.
    kept
        Per layer: the kept state indices, shape ``(G, r)`` (balanced: positions in the HSV order;
        modal: the layer's own mode indices), or ``None`` for a layer that is not reduced.
    kept_energy
        Per layer: the kept share of the ranking quantity's sum (balanced: :math:`\sum_{i\in S}\sigma_i /
        \sum_i\sigma_i`; modal: of the modes' H∞ norms), 1.0 for a layer that is not reduced (summed
        over the systems of a ``G > 1`` layer).
    """

    plan: ReductionPlan
    kept: tuple[np.ndarray | None, ...]
    kept_energy: tuple[float, ...]


def _distinct_note(hsv_row: np.ndarray, kept: np.ndarray) -> str | None:
    """A note when a kept and a dropped HSV coincide (Glover's bound needs disjoint value sets)."""
    mask = np.zeros(hsv_row.size, dtype=bool)
    mask[kept] = True
    a, b = hsv_row[mask], hsv_row[~mask & (hsv_row > 0)]
    if a.size == 0 or b.size == 0:
        return None
    tol = 1e-12 * float(hsv_row[0])
    close = np.abs(a[:, None] - b[None, :]) <= tol
    return "a kept and a dropped HSV coincide: the 2Σ bound assumes distinct values" if close.any() else None


def _pick(
    n_valid: int, r: int, keep: Keep, rng: np.random.Generator | None, order: np.ndarray | None = None
) -> np.ndarray:
    """``r`` indices among the first ``n_valid`` positions of ``order`` (identity when ``None``)."""
    positions = np.arange(n_valid) if order is None else np.asarray(order[:n_valid])
    if keep == "largest":
        chosen = positions[:r]
    elif keep == "smallest":
        chosen = positions[n_valid - r : n_valid]
    else:
        if rng is None:
            raise ValueError("keep='random' needs a numpy Generator (rng=np.random.default_rng(seed))")
        chosen = positions[np.sort(rng.choice(n_valid, size=r, replace=False))]
    return np.sort(chosen) if order is None else chosen


def plan_selection(
    model: nn.Module | Sequence[SSMLayer],
    orders: Sequence[int],
    *,
    keep: Keep = "largest",
    basis: Basis = "balanced",
    rng: np.random.Generator | None = None,
    gate: float = 1.0,
    max_condition: float = 1e8,
    projections: bool = True,
) -> SelectionPlan:
    r"""Plan keeping ``orders[i]`` states of layer ``i``, chosen by ``keep`` in the ``basis`` (module docstring).

    Parameters
    ----------
    model
        A module with registered SSM layers, or their :class:`~ssmred_torch.SSMLayer` list.
    orders
        One order per layer (capped at the numerical rank for the balanced basis).
    keep
        ``"largest"``, ``"smallest"`` or ``"random"``.
    basis
        ``"balanced"`` (subsets of the balanced states) or ``"modal"`` (subsets of the layer's modes).
    rng
        Generator of the random choice (``keep="random"``).
    gate
        Leave a layer untouched when :math:`r \ge \text{gate}\cdot n` (reported ``"gated"``).
    max_condition
        Largest accepted eigenvector condition number at re-diagonalisation (balanced basis).
    projections
        Compute the maps ``N``, ``M`` (needed by the "project" optimizer policy).

    Returns
    -------
    SelectionPlan
        The plan, the kept indices and the kept energy per layer.

    Raises
    ------
    ValueError
        For a wrong number of orders, an order < 1, an invalid gate, or ``keep="random"`` without ``rng``.

    Examples
    --------
    >>> from ssmred_torch import LRUModel, apply_reduction_
    >>> model = LRUModel(1, 4, 16, 1, 3, dtype=torch.float64)
    >>> sel = plan_selection(model, [5], keep="random", rng=np.random.default_rng(0))
    >>> apply_reduction_(model, sel.plan).sizes_after, sel.kept[0].shape
    ((5,), (1, 5))
    """
    t0 = time.perf_counter()
    gate = check_gate(gate)
    entries = _entries(model)
    if len(orders) != len(entries):
        raise ValueError(f"{len(orders)} orders given for {len(entries)} SSM layers")
    if any(int(r) < 1 for r in orders):
        raise ValueError(f"orders must be >= 1; got {list(orders)}")
    if keep == "random" and rng is None:
        raise ValueError("keep='random' needs a numpy Generator (rng=np.random.default_rng(seed))")
    if keep == "largest" and basis == "balanced":
        plan = plan_reduction(
            entries,
            Rank(tuple(int(r) for r in orders)),
            gate=gate,
            max_condition=max_condition,
            projections=projections,
        )
        kept: list[np.ndarray | None] = []
        energy: list[float] = []
        for p in plan.layers:
            h = np.atleast_2d(p.report.hsv)
            if p.report.applied:
                kept.append(np.tile(np.arange(p.report.r), (h.shape[0], 1)))
                energy.append(float(h[:, : p.report.r].sum() / h.sum()))
            else:
                kept.append(None)
                energy.append(1.0)
        return SelectionPlan(plan, tuple(kept), tuple(energy))
    layers: list[LayerPlan] = []
    kept, energy = [], []
    with torch.no_grad():
        for e, r_req in zip(entries, orders, strict=True):
            s = e.adapter.systems(e.module)
            lam, B, C, log_lam = _complex(s)
            G, n = s.n_systems, s.n_states
            factor = s.output_gain
            svd = hankel_svd_diagonal(lam, B, C, log_lam=log_lam)
            hsv = svd.hsv.cpu().numpy()
            hsv_r = hsv[0] if G == 1 else hsv
            if basis == "balanced":
                valid = [max(1, numerical_rank(row)) for row in hsv]
                r = min(int(r_req), n, *valid)
            else:
                r = min(int(r_req), n)
            if r >= gate * n:
                layers.append(LayerPlan(LayerReport(e.name, n, r, n, "gated", hsv_r, math.nan)))
                kept.append(None)
                energy.append(1.0)
                continue
            if basis == "balanced":
                idx = np.stack([_pick(valid[g], r, keep, rng) for g in range(G)])
                sel = torch.as_tensor(idx, device=lam.device)
                sig = svd.hsv.gather(-1, sel)
                scale = torch.rsqrt(sig).to(torch.complex128)
                V = svd.Vh.mH.gather(-1, sel[:, None, :].expand(G, n, r))
                U = svd.U.gather(-1, sel[:, None, :].expand(G, n, r))
                T = (svd.Lc @ V) * scale[:, None, :]
                Ti = scale[:, :, None] * (U.mH @ svd.Lo.mH)
                A_r = (Ti * lam[:, None, :]) @ T
                form = diagonalize(A_r, Ti @ B, C @ T)
                cond = float(form.cond.max())
                dropped = hsv.sum(-1) - np.take_along_axis(hsv, idx, -1).sum(-1)
                bound = factor * float(2.0 * dropped.max())
                share = float(np.take_along_axis(hsv, idx, -1).sum() / hsv.sum())
                notes = {_distinct_note(hsv[g], idx[g]) for g in range(G)} - {None}
                if not math.isfinite(cond) or cond > max_condition:
                    msg = f"the reduced state matrix is (nearly) defective: cond(V) = {cond:.3g} > {max_condition:.3g}"
                    layers.append(LayerPlan(LayerReport(e.name, n, r, n, "refused", hsv_r, bound, msg, cond)))
                    kept.append(None)
                    energy.append(1.0)
                    continue
                reduced = ReducedSystems(
                    form.mu,
                    form.B,
                    form.C,
                    N=form.W @ Ti if projections else None,
                    M=T @ form.V if projections else None,
                )
                msg = "; ".join(sorted(notes)) or None
                layers.append(LayerPlan(LayerReport(e.name, n, r, r, "reduced", hsv_r, bound, msg, cond), reduced))
            else:
                score = mode_hinf(s).cpu().numpy()
                order = np.argsort(-score, axis=-1, kind="stable")
                idx = np.stack([np.sort(_pick(n, r, keep, rng, order[g])) for g in range(G)])
                sel = torch.as_tensor(idx, device=lam.device)
                mu = lam.gather(-1, sel)
                Br = B.gather(-2, sel[:, :, None].expand(G, r, B.shape[-1]))
                Cr = C.gather(-1, sel[:, None, :].expand(G, C.shape[1], r))
                eye = torch.eye(n, dtype=torch.complex128, device=lam.device)
                Nmap = eye[sel] if projections else None  # (G, r, n): x_new = x_old[S]
                dropped = score.sum(-1) - np.take_along_axis(score, idx, -1).sum(-1)
                bound = factor * float(dropped.max())
                share = float(np.take_along_axis(score, idx, -1).sum() / score.sum())
                reduced = ReducedSystems(mu, Br, Cr, N=Nmap, M=None if Nmap is None else Nmap.mT.contiguous())
                layers.append(LayerPlan(LayerReport(e.name, n, r, r, "reduced", hsv_r, bound, None, 1.0), reduced))
            kept.append(idx)
            energy.append(share)
    return SelectionPlan(ReductionPlan(tuple(layers), time.perf_counter() - t0), tuple(kept), tuple(energy))


def plan_last(
    model: nn.Module | Sequence[SSMLayer], total: int, *, gate: float = 1.0, projections: bool = True
) -> SelectionPlan:
    r"""LAST pruning as a plan: :func:`last_orders` and modal truncation of every layer to its top modes.

    Parameters
    ----------
    model
        A module with registered SSM layers, or their :class:`~ssmred_torch.SSMLayer` list.
    total
        States to keep over all layers.
    gate
        Leave a layer untouched when its order is :math:`\ge` gate·n.
    projections
        Compute the maps for the "project" optimizer policy.

    Returns
    -------
    SelectionPlan
        The modal plan (states ranked by their H∞ norm, the order of the LAST score within a layer).

    Examples
    --------
    >>> from ssmred_torch import LRUModel, apply_reduction_
    >>> model = LRUModel(1, 4, 8, 2, 3, dtype=torch.float64)
    >>> sum(apply_reduction_(model, plan_last(model, 6).plan).sizes_after)
    6
    """
    entries = _entries(model)
    orders = last_orders(entries, total)
    return plan_selection(entries, orders, keep="largest", basis="modal", gate=gate, projections=projections)
