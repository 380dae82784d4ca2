"""What a reduction decided and did: the plan (:class:`ReductionPlan` of :class:`LayerPlan`) and the reports
(one :class:`LayerReport` per SSM layer, gathered in a :class:`ReductionReport`; both defined in the core,
``ssmred._layer_reports``, and shared with ``ssmred_jax``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ssmred._layer_reports import LayerReport, ReductionReport, Status

if TYPE_CHECKING:
    from ssmred_torch._systems import ReducedSystems

__all__ = ["LayerPlan", "LayerReport", "ReductionPlan", "ReductionReport", "Status"]


@dataclass(frozen=True)
class LayerPlan:
    """The planned reduction of one layer.

    Attributes
    ----------
    report
        The decision (``status`` ``"reduced"`` means *planned*; applying may still refuse).
    reduced
        The reduced, re-diagonalised systems (``None`` unless the layer is to be reduced).
    """

    report: LayerReport
    reduced: ReducedSystems | None = None


@dataclass(frozen=True)
class ReductionPlan:
    """What :func:`plan_reduction` decided for every SSM layer of a model (module order).

    Attributes
    ----------
    layers
        One :class:`LayerPlan` per layer.
    seconds
        Wall time of the planning.
    """

    layers: tuple[LayerPlan, ...]
    seconds: float

    @property
    def sizes_after(self) -> tuple[int, ...]:
        """Planned state sizes."""
        return tuple(p.report.n_after for p in self.layers)
