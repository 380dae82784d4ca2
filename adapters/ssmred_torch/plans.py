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
* :func:`last_scores` / :func:`last_orders` / :func:`plan_last`: LAST (Gwak et al. 2024,
  layer-adaptive state pruning): per-state score :math:`s_i = \|c_i\|^2\|b_i\|^2/(1-|\lambda_i|)^2`,
  normalised within each layer by the scores of the states at least as important,
  :math:`\bar s_{(k)} = s_{(k)} / \sum_{j\le k} s_{(j)}` (scores sorted descending; the top state of
  every layer scores 1), one global threshold over all layers keeping ``total`` states, then modal
  truncation of every layer to its kept states.
* :func:`real_output_hsvs` / :func:`real_output_orders`: the HSVs of the *real* output map of a layer
  (:math:`y = \mathrm{Re}(Cx)`: the ``2n`` realization :math:`(\mathrm{diag}(\lambda,\bar\lambda),
  [B; \bar B], \tfrac12[C, \bar C])`, SPEC §3) instead of the complex proxy, and the orders a
  selection mode picks from them (``r = ⌈r_real / 2⌉`` complex states; the truncation stays the
  complex balanced truncation).

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

from ssmred.selection import Rank, SelectionMode, check_gate, numerical_rank, select_orders  # noqa: E402
from ssmred_torch._adapter import DiagonalSystems, ReducedSystems, SSMLayer, ssm_layers  # noqa: E402
from ssmred_torch.kernels import diagonalize, hankel_svd_diagonal, hsv_diagonal  # noqa: E402
from ssmred_torch.reduce import LayerPlan, ReductionPlan, plan_reduction  # noqa: E402
from ssmred_torch.reports import LayerReport  # noqa: E402

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


def _entries(model: nn.Module | Sequence[SSMLayer]) -> list[SSMLayer]:
    return ssm_layers(model) if isinstance(model, nn.Module) else list(model)


def _complex(s: DiagonalSystems) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    lam = s.lam.to(torch.complex128)
    log_lam = (s.log_lam if s.log_lam is not None else torch.log(s.lam)).to(torch.complex128)
    return lam, s.B.to(torch.complex128), s.C.to(torch.complex128), log_lam


def layer_hsvs(model: nn.Module | Sequence[SSMLayer]) -> list[np.ndarray]:
    """The (complex-proxy) HSVs of every SSM layer, as ``(G, n)`` float64 arrays (descending rows).

    Parameters
    ----------
    model
        A module with registered SSM layers, or their :class:`~ssmred_torch.SSMLayer` list.

    Returns
    -------
    list of numpy.ndarray
        One array per layer.

    Examples
    --------
    >>> from ssmred_torch import LRUModel
    >>> [h.shape for h in layer_hsvs(LRUModel(1, 4, 8, 2, 3, dtype=torch.float64))]
    [(1, 8), (1, 8)]
    """
    out = []
    with torch.no_grad():
        for e in _entries(model):
            lam, B, C, log_lam = _complex(e.adapter.systems(e.module))
            out.append(hsv_diagonal(lam, B, C, log_lam=log_lam).cpu().numpy())
    return out


def real_output_hsvs(model: nn.Module | Sequence[SSMLayer]) -> list[np.ndarray]:
    r"""HSVs of every layer's *real* output map, ``(G, 2n)`` arrays (``(G, n)`` for output rule ``complex``).

    The real output :math:`y = \mathrm{Re}(Cx)` of a complex diagonal system is exactly the system
    :math:`(\mathrm{diag}(\lambda, \bar\lambda), [B; \bar B], \tfrac12[C, \bar C])` of ``2n`` states
    (``[C, \bar C]`` for the output rule ``two_real``, :math:`y = 2\mathrm{Re}(Cx)`), whose HSVs are
    those of the layer's real input/output map (SPEC §3); the published method ranks by the complex
    system's HSVs instead (a proxy).

    Parameters
    ----------
    model
        A module with registered SSM layers, or their :class:`~ssmred_torch.SSMLayer` list.

    Returns
    -------
    list of numpy.ndarray
        One array per layer.

    Examples
    --------
    >>> from ssmred_torch import LRUModel
    >>> [h.shape for h in real_output_hsvs(LRUModel(1, 4, 8, 1, 3, dtype=torch.float64))]
    [(1, 16)]
    """
    out = []
    with torch.no_grad():
        for e in _entries(model):
            s = e.adapter.systems(e.module)
            lam, B, C, log_lam = _complex(s)
            if s.output == "complex":
                out.append(hsv_diagonal(lam, B, C, log_lam=log_lam).cpu().numpy())
                continue
            scale = 0.5 if s.output == "real" else 1.0
            lam2 = torch.cat([lam, lam.conj()], -1)
            log2 = torch.cat([log_lam, log_lam.conj()], -1)
            B2 = torch.cat([B, B.conj()], -2)
            C2 = scale * torch.cat([C, C.conj()], -1)
            out.append(hsv_diagonal(lam2, B2, C2, log_lam=log2).cpu().numpy())
    return out


def _layer_orders(mode: SelectionMode, hsvs: Sequence[np.ndarray]) -> list[int]:
    """One order per layer: the largest over its systems (as :func:`~ssmred_torch.plan_reduction`)."""
    rows = [row for h in hsvs for row in h]
    if isinstance(mode, Rank) and isinstance(mode.r, tuple):
        mode = Rank(tuple(r for r, h in zip(mode.r, hsvs, strict=True) for _ in range(h.shape[0])))
    flat = select_orders(mode, rows) if rows else ()
    out, k = [], 0
    for h in hsvs:
        out.append(max(flat[k : k + h.shape[0]]))
        k += h.shape[0]
    return out


def real_output_orders(model: nn.Module | Sequence[SSMLayer], mode: SelectionMode) -> list[int]:
    r"""The orders (complex states per layer) that ``mode`` picks from the real-output HSVs.

    ``mode`` chooses ``r_real`` of the ``2n`` real-output HSVs; a complex state carries two real ones,
    so the layer keeps :math:`\lceil r_{real}/2\rceil` complex states (at most ``n``).

    Parameters
    ----------
    model
        A module with registered SSM layers, or their :class:`~ssmred_torch.SSMLayer` list.
    mode
        Tolerance or fraction (applied to the ``2n`` real HSVs); an explicit rank is returned as it is (in
        complex states), a ``Rank(total=R)`` budget of complex states shares ``2R`` real ones.

    Returns
    -------
    list of int
        One order per layer.

    Examples
    --------
    >>> from ssmred_torch import LRUModel, rank
    >>> from ssmred_torch import fraction
    >>> real_output_orders(LRUModel(1, 4, 8, 1, 3, dtype=torch.float64), fraction(0.5))
    [4]
    """
    entries = _entries(model)
    sizes = [max(e.adapter.state_sizes(e.module)) for e in entries]
    if isinstance(mode, Rank) and mode.r is not None:  # explicit orders: the HSVs do not choose them
        rs = mode.r if isinstance(mode.r, tuple) else (mode.r,) * len(entries)
        return [min(n, int(r)) for r, n in zip(rs, sizes, strict=True)]
    hsvs = real_output_hsvs(entries)
    if isinstance(mode, Rank):  # a total budget of complex states = twice as many real ones
        mode = Rank(total=2 * int(mode.total))  # type: ignore[arg-type]
    orders = _layer_orders(mode, hsvs)
    out = []
    for r, h, n in zip(orders, hsvs, sizes, strict=True):
        out.append(min(n, math.ceil(r / 2)) if h.shape[1] == 2 * n else min(n, r))
    return out


def mode_hinf(s: DiagonalSystems) -> torch.Tensor:
    r"""H∞ norm of every mode's own subsystem, :math:`\|c_i\|\|b_i\|/(1-|\lambda_i|)`, shape ``(G, n)``.

    The mode's transfer function :math:`c_i b_i^T/(z-\lambda_i)` is rank one with peak gain
    :math:`\|c_i\|\|b_i\|/\min_\omega|e^{i\omega}-\lambda_i| = \|c_i\|\|b_i\|/(1-|\lambda_i|)`.

    Parameters
    ----------
    s
        A layer's systems.

    Returns
    -------
    torch.Tensor
        float64.

    Examples
    --------
    >>> s = DiagonalSystems(torch.tensor([[0.5 + 0j]]), 2 * torch.ones(1, 1, 1), 3 * torch.ones(1, 1, 1))
    >>> float(mode_hinf(s)[0, 0])
    12.0
    """
    lam, B, C, log_lam = _complex(s)
    nb = torch.linalg.vector_norm(B, dim=-1)
    nc = torch.linalg.vector_norm(C, dim=-2)
    gap = -torch.expm1(log_lam.real)  # 1 - |lambda|, without cancellation near the unit circle
    return (nb * nc / gap).to(torch.float64)


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


def last_scores(model: nn.Module | Sequence[SSMLayer]) -> list[tuple[np.ndarray, np.ndarray]]:
    r"""LAST scores of every layer: the raw :math:`s_i = \|c_i\|^2\|b_i\|^2/(1-|\lambda_i|)^2` and the normalised ones.

    Within a layer (per system) the scores sorted descending are normalised by the sum of the scores at
    least as large, :math:`\bar s_{(k)} = s_{(k)}/\sum_{j\le k}s_{(j)}` (so the top state scores 1 and
    :math:`\bar s` decreases along the sorted order).

    Parameters
    ----------
    model
        A module with registered SSM layers, or their :class:`~ssmred_torch.SSMLayer` list.

    Returns
    -------
    list of (numpy.ndarray, numpy.ndarray)
        Per layer ``(raw, normalised)``, each ``(G, n)`` in the layer's mode order.

    Examples
    --------
    >>> from ssmred_torch import LRUModel
    >>> raw, norm = last_scores(LRUModel(1, 4, 8, 1, 3, dtype=torch.float64))[0]
    >>> float(norm.max())
    1.0
    """
    out = []
    with torch.no_grad():
        for e in _entries(model):
            raw = mode_hinf(e.adapter.systems(e.module)).cpu().numpy() ** 2
            order = np.argsort(-raw, axis=-1, kind="stable")
            sorted_raw = np.take_along_axis(raw, order, -1)
            cum = np.cumsum(sorted_raw, -1)
            norm_sorted = np.divide(sorted_raw, cum, out=np.zeros_like(sorted_raw), where=cum > 0)
            norm = np.empty_like(raw)
            np.put_along_axis(norm, order, norm_sorted, -1)
            out.append((raw, norm))
    return out


def last_orders(model: nn.Module | Sequence[SSMLayer], total: int) -> list[int]:
    """Orders per layer from one global threshold on the normalised LAST scores, keeping ``total`` states.

    For a layer of ``G > 1`` systems the k-th state's score is the largest k-th normalised score over its
    systems (each system keeps its own top-k modes).

    Parameters
    ----------
    model
        A module with registered SSM layers, or their :class:`~ssmred_torch.SSMLayer` list.
    total
        States to keep over all layers (at least one per layer).

    Returns
    -------
    list of int
        One order per layer.

    Raises
    ------
    ValueError
        If ``total`` is smaller than the number of layers or larger than the number of states.

    Examples
    --------
    >>> from ssmred_torch import LRUModel
    >>> sum(last_orders(LRUModel(1, 4, 8, 2, 3, dtype=torch.float64), 6))
    6
    """
    scores = last_scores(model)
    per_layer = [np.sort(norm, -1)[:, ::-1].max(0) for _, norm in scores]  # k-th best per layer
    sizes = [p.size for p in per_layer]
    if not len(per_layer) <= total <= sum(sizes):
        raise ValueError(
            f"total must lie in [{len(per_layer)}, {sum(sizes)}] (one state per layer at least); got {total}"
        )
    counts = np.ones(len(per_layer), dtype=np.int64)
    values = np.concatenate([p[1:] for p in per_layer])
    owner = np.concatenate([np.full(p.size - 1, i) for i, p in enumerate(per_layer)])
    top = np.argsort(-values, kind="stable")[: total - len(per_layer)]
    np.add.at(counts, owner[top], 1)
    return [int(c) for c in counts]


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
