"""The typed results of a JAX reduction: per-layer and whole-model reports, truncation maps, the plan.

:func:`ssmred_jax.plan_reduction` returns a :class:`ReductionPlan` (its :class:`ReductionReport` of
one :class:`LayerReport` per SSM layer, the new layers and one :class:`TruncationMap` per reduced
layer, which :func:`ssmred_jax.rebuild_opt_state` maps the optimizer state with);
:func:`ssmred_jax.apply_reduction` applies it. The two reports are the core's
(``ssmred._layer_reports``), the same types ``ssmred_torch`` returns; the map and the plan are JAX's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ssmred._require import require

require("jax")

import jax  # noqa: E402

from ssmred._layer_reports import LayerReport, ReductionReport  # noqa: E402

__all__ = ["LayerReport", "ReductionPlan", "ReductionReport", "TruncationMap"]


@dataclass(frozen=True)
class TruncationMap:
    r"""How one layer's state was reduced: :math:`x_{new} = N x_{old}`, :math:`x_{old} \approx M x_{new}`.

    Attributes
    ----------
    index
        The layer's leaf index (:attr:`ssmred_jax.SSMLayer.index`).
    path
        The layer's key path in the model.
    n
        State size before.
    r
        State size after.
    N
        complex128 ``(r, n)``: :math:`N = WT_i` (re-diagonalisation after the SR restriction).
    M
        complex128 ``(n, r)``: :math:`M = TV_s`, with :math:`NM = I_r`.
    gamma_old
        The input gains before (``adapter.input_gain``): the LRU's :math:`\gamma` ``(n,)`` float64, an S5
        layer's :math:`\varphi` (complex128).
    gamma_new
        The input gains after, ``(r,)``.
    """

    index: int
    path: tuple[Any, ...]
    n: int
    r: int
    N: jax.Array
    M: jax.Array
    gamma_old: jax.Array
    gamma_new: jax.Array


@dataclass(frozen=True)
class ReductionPlan:
    """A computed reduction, not yet applied: the report, the new layers and the truncation maps.

    Apply it with :func:`apply_reduction` (a new model) and, for an optimizer state, with
    :func:`ssmred_jax.rebuild_opt_state`.

    Attributes
    ----------
    report
        The :class:`ReductionReport`.
    layers
        Leaf index -> new layer, for the layers whose status is ``"reduced"``.
    maps
        One :class:`TruncationMap` per reduced layer.
    """

    report: ReductionReport
    layers: Mapping[int, Any] = field(default_factory=dict)
    maps: tuple[TruncationMap, ...] = ()
