"""Adapters between framework layers and :class:`ssmred.StateSpace` (abstract/final pattern, STYLE §9).

:class:`AbstractAdapter` declares the three operations every SSM-layer adapter provides; concrete
adapters are final and hold all their fields. Layers are matched by exact type through
:func:`adapter_for` (no duck typing).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, final

from ssmred._require import require

require("torch")

from torch import nn  # noqa: E402

from ssmred.statespace import StateSpace  # noqa: E402
from ssmred_torch.lru import LRU  # noqa: E402

if TYPE_CHECKING:
    from ssmred_torch.compress import LayerReport

__all__ = ["AbstractAdapter", "LRUAdapter", "adapter_for"]

LayerT = TypeVar("LayerT", bound=nn.Module)


class AbstractAdapter(abc.ABC, Generic[LayerT]):
    """Converts one kind of SSM layer to and from :class:`ssmred.StateSpace` and truncates it in place."""

    layer_type: ClassVar[type[nn.Module]]

    @abc.abstractmethod
    def to_statespace(self, layer: LayerT) -> StateSpace:
        """The layer's linear time-invariant system.

        Parameters
        ----------
        layer
            The layer.

        Returns
        -------
        StateSpace
            Its system, with the output convention documented by the adapter.
        """

    @abc.abstractmethod
    def from_statespace(self, sys: StateSpace, *, like: LayerT) -> LayerT:
        """A new layer realising ``sys``.

        Parameters
        ----------
        sys
            The system.
        like
            Template layer (hyper-parameters, dtype, device).

        Returns
        -------
        nn.Module
            The new layer.
        """

    @abc.abstractmethod
    def truncate_(self, layer: LayerT, r: int) -> LayerReport:
        """Balanced truncation of ``layer`` to ``r`` states, in place.

        Parameters
        ----------
        layer
            The layer.
        r
            Target order.

        Returns
        -------
        LayerReport
            HSVs, order, bound and status.
        """


@final
@dataclass(frozen=True)
class LRUAdapter(AbstractAdapter[LRU]):
    r"""Adapter for :class:`~ssmred_torch.LRU` layers.

    Parameters
    ----------
    max_condition
        Largest accepted condition number of the eigenvector matrix when a reduced state matrix is
        re-diagonalised.

    Examples
    --------
    >>> import torch
    >>> adapter = LRUAdapter()
    >>> layer = LRU(4, 16, dtype=torch.float64)
    >>> report = adapter.truncate_(layer, 6)
    >>> layer.d_state, report.applied
    (6, True)
    """

    layer_type: ClassVar[type[nn.Module]] = LRU
    max_condition: float = 1e8

    def to_statespace(self, layer: LRU) -> StateSpace:
        """See :func:`ssmred_torch.to_statespace`.

        Parameters
        ----------
        layer
            The layer.

        Returns
        -------
        StateSpace
            Its complex system (``dt = 1``).
        """
        from ssmred_torch.convert import to_statespace

        return to_statespace(layer)

    def from_statespace(self, sys: StateSpace, *, like: LRU) -> LRU:
        """See :func:`ssmred_torch.from_statespace`.

        Parameters
        ----------
        sys
            A stable discrete-time system.
        like
            Template layer.

        Returns
        -------
        LRU
            The new layer.
        """
        from ssmred_torch.convert import from_statespace

        return from_statespace(sys, like=like, max_condition=self.max_condition)

    def truncate_(self, layer: LRU, r: int) -> LayerReport:
        """Balanced truncation of one layer to ``r`` states, in place (the batched path with one member).

        Parameters
        ----------
        layer
            The layer (modified in place unless the reduction is refused).
        r
            Target order, ``1 <= r <= layer.d_state``.

        Returns
        -------
        LayerReport
            HSVs, chosen order, error bound and whether the layer was changed.
        """
        from ssmred_torch.compress import rank, reduce_layers

        return reduce_layers([layer], rank(r), gate=1.0, max_condition=self.max_condition)[0]


_ADAPTERS: dict[type[nn.Module], AbstractAdapter[Any]] = {LRU: LRUAdapter()}


def adapter_for(module: nn.Module) -> AbstractAdapter[Any] | None:
    """The adapter registered for the exact type of ``module`` (``None`` if it is not an SSM layer).

    Parameters
    ----------
    module
        Any module.

    Returns
    -------
    AbstractAdapter or None
        The adapter.

    Examples
    --------
    >>> adapter_for(LRU(2, 2)), adapter_for(nn.Linear(2, 2))
    (LRUAdapter(max_condition=100000000.0), None)
    """
    return _ADAPTERS.get(type(module))
