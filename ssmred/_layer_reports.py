r"""The reports of one reduction pass over the SSM layers of a model, shared by the framework adapters.

:class:`LayerReport` says what happened to one layer (its order, status, HSVs and error bound);
:class:`ReductionReport` gathers them for a model. Plain numpy value objects: ``ssmred_torch`` and
``ssmred_jax`` both return them (re-exported there), so a report reads the same whichever framework
trained the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

__all__ = ["LayerReport", "ReductionReport", "Status"]

Status = Literal["reduced", "gated", "refused"]


@dataclass(frozen=True)
class LayerReport:
    r"""What happened to one layer in one reduction.

    Attributes
    ----------
    name
        Path of the layer in the model (a torch module path, a JAX key path; ``""`` for a bare layer).
    n
        State size before.
    r
        Order chosen by the selection mode (after the numerical-rank cap).
    n_after
        State size after (``r`` when applied, ``n`` otherwise).
    status
        ``"reduced"``, ``"gated"`` (``r >= gate * n``) or ``"refused"`` (see ``message``).
    hsv
        Hankel singular values before the reduction, descending (read-only float64): shape ``(n,)``
        for a one-system layer, ``(G, n)`` for a layer of ``G`` systems.
    error_bound
        :math:`2\kappa\sum_{i>r}\sigma_i`, bound on the H-infinity error of the layer's real output map
        (the largest over its systems; :math:`\kappa` = 2 for the output rule ``y = 2 Re(Cx)`` of
        conjugate half-states, S4D and S5, else 1).
    message
        Reason for a refusal (``None`` otherwise).
    condition
        Largest condition number of the eigenvector matrices used for re-diagonalisation (``nan`` if
        not reached).
    """

    name: str
    n: int
    r: int
    n_after: int
    status: Status
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
            "hsv": self.hsv.tolist(),
            "error_bound": self.error_bound,
            "message": self.message,
            "condition": self.condition,
        }


@dataclass(frozen=True)
class ReductionReport:
    """Result of one :func:`reduce_model` / :func:`apply_reduction_` pass.

    Attributes
    ----------
    layers
        One :class:`LayerReport` per SSM layer, in module order.
    seconds
        Wall time of the pass (analysis, truncation, write-back and optimizer surgery).
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
