r"""The values exchanged between the layer-family protocol and the batched kernels.

:class:`DiagonalSystems` is what an adapter's ``systems()`` hands to the reduction (the ``G`` diagonal
discrete-time systems of one layer and how the layer reads their state); :class:`ReducedSystems` is what
the reduction hands back to ``write_back_``; :class:`StateMap` is what ``write_back_`` reports (the
restriction and lifting maps the optimizer surgery needs); :class:`ReductionRefused` is how an adapter
declines. ``OUTPUT_GAIN`` is the one table of the output rules' gains on the error bound.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from ssmred._require import require

require("torch")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from ssmred.errors import DimensionError  # noqa: E402

__all__ = ["OUTPUT_GAIN", "DiagonalSystems", "OutputRule", "ReducedSystems", "ReductionRefused", "StateMap"]

OutputRule = Literal["complex", "real", "two_real"]
#: gain of each output rule on the analysed systems' output: :math:`y = 2\,\mathrm{Re}(Cx)` doubles
#: every error bound (and every real-output HSV) of the systems
OUTPUT_GAIN: dict[str, float] = {"complex": 1.0, "real": 1.0, "two_real": 2.0}


class ReductionRefused(ValueError):
    """An adapter cannot write a reduced system back into its layer (the layer is left untouched).

    Parameters
    ----------
    reason
        Why, in words (recorded in the reduction report).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class DiagonalSystems:
    r"""The ``G`` diagonal discrete-time systems of one layer, as complex128 tensors on its device.

    Attributes
    ----------
    lam
        Eigenvalues, shape ``(G, n)``, :math:`|\lambda| < 1`.
    B
        Input matrices, shape ``(G, n, m)``.
    C
        Output matrices, shape ``(G, p, n)``.
    log_lam
        :math:`\log\lambda` when the layer parameterises it (cancellation-free Gramians), else ``None``.
    output
        How the layer reads the state: ``"complex"`` :math:`y = Cx`, ``"real"``
        :math:`y = \mathrm{Re}(Cx)` (LRU), ``"two_real"`` :math:`y = 2\,\mathrm{Re}(Cx)` (conjugate
        half-state: S4D, S5 with ``conj_sym``). The reduction truncates the complex systems; the real
        output's error is bounded by theirs since :math:`|\mathrm{Re}\,v| \le |v|` — twice theirs for
        ``"two_real"`` (the reduction reports that doubled bound).
    """

    lam: torch.Tensor
    B: torch.Tensor
    C: torch.Tensor
    log_lam: torch.Tensor | None = None
    output: OutputRule = "real"

    def __post_init__(self) -> None:
        lam, B, C = self.lam, self.B, self.C
        if lam.ndim != 2:
            raise DimensionError(f"lam must have shape (G, n); got {tuple(lam.shape)}")
        G, n = lam.shape
        if B.ndim != 3 or tuple(B.shape[:2]) != (G, n):
            raise DimensionError(f"B must have shape (G={G}, n={n}, m); got {tuple(B.shape)}")
        if C.ndim != 3 or C.shape[0] != G or C.shape[2] != n:
            raise DimensionError(f"C must have shape (G={G}, p, n={n}); got {tuple(C.shape)}")
        if self.log_lam is not None and tuple(self.log_lam.shape) != (G, n):
            raise DimensionError(f"log_lam must have shape (G={G}, n={n}); got {tuple(self.log_lam.shape)}")

    @property
    def n_systems(self) -> int:
        """``G``."""
        return int(self.lam.shape[0])

    @property
    def n_states(self) -> int:
        """``n``."""
        return int(self.lam.shape[1])

    @property
    def output_gain(self) -> float:
        """Gain of the output rule on the systems' output (2 for ``"two_real"``, else 1)."""
        return OUTPUT_GAIN[self.output]


@dataclass(frozen=True)
class ReducedSystems:
    r"""Balanced-truncated, re-diagonalised systems of one layer: :math:`(\mathrm{diag}\mu_g, B_g, C_g)`.

    Attributes
    ----------
    mu
        Eigenvalues, ``(G, r)``.
    B
        ``(G, r, m)``.
    C
        ``(G, p, r)``.
    N
        Restriction :math:`x_{new} = N x_{old}`, ``(G, r, n)`` (``None`` unless requested).
    M
        Lifting :math:`x_{old} \approx M x_{new}`, ``(G, n, r)``, with :math:`NM = I_r` (or ``None``).
    """

    mu: torch.Tensor
    B: torch.Tensor
    C: torch.Tensor
    N: torch.Tensor | None = None
    M: torch.Tensor | None = None

    @property
    def r(self) -> int:
        """Reduced order."""
        return int(self.mu.shape[-1])


@dataclass(frozen=True)
class StateMap:
    r"""How one layer's state was reduced in place: :math:`x_{new} = N x_{old}`, :math:`x_{old} \approx M x_{new}`.

    Attributes
    ----------
    layer
        The (already reduced) layer.
    n
        State size before.
    r
        State size after.
    N
        complex128 ``(G, r, n)`` (``None`` when not computed: only the "project" optimizer policy needs it).
    M
        complex128 ``(G, n, r)``, with ``N @ M = I_r`` (or ``None``).
    extra
        Family-specific data for the moment projection (e.g. the LRU's old and new :math:`\gamma`).
    error_bound
        The bound on the analysed systems' error that holds for what the adapter actually wrote, when
        it did not write the balanced truncation (e.g. a modal selection); ``None``: the plan's
        :math:`2\sum_{i>r}\sigma_i` applies. The reduction report takes it.
    """

    layer: nn.Module
    n: int
    r: int
    N: torch.Tensor | None = None
    M: torch.Tensor | None = None
    extra: Mapping[str, torch.Tensor] = field(default_factory=dict)
    error_bound: float | None = None
