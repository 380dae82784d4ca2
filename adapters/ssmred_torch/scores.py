r"""What ranks the states of every SSM layer: HSVs, real-output HSVs, mode H∞ norms, LAST scores.

The selection plans of :mod:`ssmred_torch.plans` and the application's baselines rank states by these:

* :func:`layer_hsvs`: the complex-proxy HSVs of every layer, ``(G, n)`` (what
  :func:`~ssmred_torch.plan_reduction` ranks by);
* :func:`last_scores` / :func:`last_orders`: LAST (Gwak et al. 2024, layer-adaptive state
  pruning): per-state score :math:`s_i = \|c_i\|^2\|b_i\|^2/(1-|\lambda_i|)^2`,
  normalised within each layer by the scores of the states at least as important,
  :math:`\bar s_{(k)} = s_{(k)} / \sum_{j\le k} s_{(j)}` (scores sorted descending; the top state of
  every layer scores 1), one global threshold over all layers keeping ``total`` states
  (:func:`~ssmred_torch.plans.plan_last` then truncates every layer to its kept modes).
* :func:`real_output_hsvs` / :func:`real_output_orders`: the HSVs of the *real* output map of a layer
  (:math:`y = \mathrm{Re}(Cx)`: the ``2n`` realization :math:`(\mathrm{diag}(\lambda,\bar\lambda),
  [B; \bar B], \tfrac12[C, \bar C])`, SPEC §3) instead of the complex proxy, and the orders a
  selection mode picks from them (``r = ⌈r_real / 2⌉`` complex states; the truncation stays the
  complex balanced truncation).
* :func:`mode_hinf`: the H∞ norm of every diagonal mode's own subsystem,
  :math:`\|c_i\|\|b_i\|/(1-|\lambda_i|)` (modal selection and LAST).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ssmred._require import require

require("torch")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from ssmred.selection import Rank, SelectionMode, select_orders  # noqa: E402
from ssmred_torch._adapter import DiagonalSystems, SSMLayer, ssm_layers  # noqa: E402
from ssmred_torch.kernels import hsv_diagonal  # noqa: E402

__all__ = ["last_orders", "last_scores", "layer_hsvs", "mode_hinf", "real_output_hsvs", "real_output_orders"]


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
