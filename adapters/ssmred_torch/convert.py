r"""Conversion between SSM layers of any registered family and :class:`ssmred.StateSpace`.

Both functions dispatch to the layer's adapter (:func:`~ssmred_torch.adapter_for`); each family
documents its own convention (e.g. :mod:`ssmred_torch.layers.lru` for the one-step advance of the
LRU). ``to_statespace(layer, exact=True)`` always has the layer's own transfer function, so its
impulse response equals the layer's forward pass (checked for every family by the conformance suite).
"""

from __future__ import annotations

from typing import Any

from ssmred._require import require

require("torch")

from torch import nn  # noqa: E402

from ssmred.statespace import StateSpace  # noqa: E402
from ssmred_torch._adapter import AbstractAdapter, adapter_for  # noqa: E402

__all__ = ["from_statespace", "to_statespace"]


def _adapter(layer: object, argument: str) -> AbstractAdapter[Any]:
    adapter = adapter_for(layer) if isinstance(layer, nn.Module) else None
    if adapter is None:
        raise TypeError(f"{argument} must be a registered SSM layer (e.g. an LRU); got {type(layer).__name__}")
    return adapter


def to_statespace(layer: nn.Module, *, exact: bool = False) -> StateSpace:
    r"""The :class:`ssmred.StateSpace` of an SSM layer (matrices copied to the host in float64/complex128).

    Parameters
    ----------
    layer
        A registered SSM layer (any dtype/device).
    exact
        ``False`` (default): the system CompreSSM analyses and truncates (which
        :func:`from_statespace` inverts); ``True``: a realization whose transfer function equals the
        layer's; its ``.to_real()`` is the layer's exact real input/output system.

    Returns
    -------
    StateSpace
        The system.

    Raises
    ------
    TypeError
        If ``layer`` is not a registered SSM layer.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from ssmred_torch import LRU
    >>> layer = LRU(4, 8, dtype=torch.float64)
    >>> sys = to_statespace(layer)
    >>> sys.n_states, sys.n_inputs, sys.dt, sys.is_stable()
    (8, 4, 1.0, True)
    >>> u = torch.zeros(1, 3, 4, dtype=torch.float64); u[0, 0, 1] = 1.0   # impulse on channel 1
    >>> h = to_statespace(layer, exact=True).to_real()
    >>> markov = [h.D[:, 1], (h.C @ h.B)[:, 1], (h.C @ h.A @ h.B)[:, 1]]
    >>> bool(np.allclose(layer(u)[0].detach().numpy(), np.stack(markov), rtol=1e-10, atol=1e-12))
    True
    """
    return _adapter(layer, "layer").to_statespace(layer, exact=exact)


def from_statespace(sys: StateSpace, *, like: nn.Module) -> nn.Module:
    """A new layer of ``like``'s family whose analysed system (``to_statespace(..., exact=False)``) is ``sys``.

    Parameters
    ----------
    sys
        The system (the family's adapter documents what it accepts; the LRU needs a stable
        discrete-time system with ``n_inputs = n_outputs = d_model`` and diagonal ``D``, and
        re-diagonalises a non-diagonal ``A``).
    like
        Template layer: the new layer takes its hyper-parameters, dtype and device; ``like`` is not
        modified.

    Returns
    -------
    nn.Module
        The new layer.

    Raises
    ------
    TypeError
        If ``sys`` is not a StateSpace or ``like`` not a registered SSM layer.
    ValueError
        For a system the family cannot represent (e.g. continuous time for the LRU).
    DimensionError
        If the sizes do not match ``like``.
    NotStableError
        If an eigenvalue lies outside the unit disc beyond round-off.
    DiagonalizationError
        If ``A`` is defective or its eigenvectors too ill-conditioned.

    Examples
    --------
    >>> import torch
    >>> from ssmred_torch import LRU
    >>> layer = LRU(4, 8, dtype=torch.float64)
    >>> back = from_statespace(to_statespace(layer), like=layer)
    >>> u = torch.randn(1, 16, 4, dtype=torch.float64)
    >>> torch.allclose(back(u), layer(u), rtol=1e-10, atol=1e-10)
    True
    """
    return _adapter(like, "like").from_statespace(sys, like=like)
