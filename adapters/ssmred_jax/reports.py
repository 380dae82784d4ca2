"""The typed results of a JAX reduction: per-layer and whole-model reports, truncation maps, the plan.

:func:`ssmred_jax.plan_reduction` returns a :class:`ReductionPlan` (its :class:`ReductionReport` of
one :class:`LayerReport` per SSM layer, the new layers and one :class:`TruncationMap` per reduced
layer, which :func:`ssmred_jax.rebuild_opt_state` maps the optimizer state with);
:func:`ssmred_jax.apply_reduction` applies it. Frozen value objects with the fields of
``ssmred_torch``'s report (the counterpart of ``ssmred_torch.reports``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ssmred._require import require

require("jax")

import jax  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["LayerReport", "ReductionPlan", "ReductionReport", "TruncationMap"]


@dataclass(frozen=True)
class LayerReport:
    r"""What happened to one layer in one reduction (the fields of ``ssmred_torch``'s report).

    Attributes
    ----------
    name
        Key path of the layer in the model (``jax.tree_util.keystr``; ``""`` for a bare layer).
    n
        State size before.
    r
        Order chosen by the selection mode (after the numerical-rank cap).
    n_after
        State size after (``r`` when applied, ``n`` otherwise).
    status
        ``"reduced"``, ``"gated"`` (``r >= gate * n``) or ``"refused"`` (see ``message``).
    hsv
        Hankel singular values before the reduction, descending (read-only float64 array).
    error_bound
        :math:`2\kappa\sum_{i>r}\sigma_i`, bound on the H-infinity error of the chosen truncation
        (:math:`\kappa = 2` for ``conj_sym`` S5 layers, else 1).
    message
        Reason for a refusal (``None`` otherwise).
    condition
        Condition number of the eigenvector matrix at re-diagonalisation (``nan`` if not reached).
    """

    name: str
    n: int
    r: int
    n_after: int
    status: Literal["reduced", "gated", "refused"]
    hsv: np.ndarray
    error_bound: float
    message: str | None = None
    condition: float = float("nan")

    @property
    def applied(self) -> bool:
        """Whether the layer was changed."""
        return self.status == "reduced"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (HSVs as a list).

        Returns
        -------
        dict
            The fields.
        """
        return {
            "name": self.name,
            "n": self.n,
            "r": self.r,
            "n_after": self.n_after,
            "status": self.status,
            "hsv": [float(x) for x in self.hsv],
            "error_bound": self.error_bound,
            "message": self.message,
            "condition": self.condition,
        }


@dataclass(frozen=True)
class ReductionReport:
    """Result of one reduction pass over a model.

    Attributes
    ----------
    layers
        One :class:`LayerReport` per SSM layer, in leaf order.
    seconds
        Wall time of the pass (including any compilation of the two jitted calls).
    """

    layers: tuple[LayerReport, ...]
    seconds: float

    @property
    def changed(self) -> bool:
        """Whether any layer was reduced."""
        return any(layer.applied for layer in self.layers)

    @property
    def sizes_before(self) -> tuple[int, ...]:
        """State sizes before."""
        return tuple(layer.n for layer in self.layers)

    @property
    def sizes_after(self) -> tuple[int, ...]:
        """State sizes after."""
        return tuple(layer.n_after for layer in self.layers)

    @property
    def mean_size_after(self) -> float:
        """Mean state size over the layers after the pass (the published "final dim")."""
        return float(np.mean(self.sizes_after)) if self.layers else float("nan")

    @property
    def warnings(self) -> tuple[str, ...]:
        """Messages of the refused layers."""
        return tuple(f"{lr.name or '<layer>'}: {lr.message}" for lr in self.layers if lr.status == "refused")


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
