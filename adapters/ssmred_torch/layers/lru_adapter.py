r"""The adapter of the :class:`~ssmred_torch.LRU` family (the conventions are in :mod:`ssmred_torch.layers.lru`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, final

from ssmred._require import require

require("torch")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from ssmred.errors import DimensionError, NotStableError  # noqa: E402
from ssmred.statespace import StateSpace  # noqa: E402
from ssmred_torch._adapter import (  # noqa: E402
    AbstractAdapter,
    DiagonalSystems,
    ReducedSystems,
    ReductionRefused,
    StateMap,
    register_adapter,
)
from ssmred_torch.layers._conversion import check_conversion, diagonal_modes, is_diagonal  # noqa: E402
from ssmred_torch.layers.lru import LRU, layer_matrices, lru_parameters_from_diagonal  # noqa: E402
from ssmred_torch.optim import moment_states, project_gain_scaled_  # noqa: E402

__all__ = ["LRUAdapter"]


@final
@dataclass(frozen=True)
class LRUAdapter(AbstractAdapter[LRU]):
    r"""The protocol for :class:`LRU` layers (one MIMO system per layer, ``G = 1``, output ``Re(Cx)``).

    Parameters
    ----------
    max_condition
        Largest accepted 1-norm condition number of the eigenvector matrix when a non-diagonal state
        matrix is re-diagonalised in :meth:`from_statespace`.

    Notes
    -----
    Write-back (SPEC §4) maps re-diagonalised :math:`(\mu, B, C)` to parameters with
    :func:`lru_parameters_from_diagonal`. The moment projection (policy ``"project"``, see
    :mod:`ssmred_torch.optim`) pulls gradients back through the lifting
    :math:`B_s^{old} \approx K^+ B_s^{new}`, :math:`K^+ = \mathrm{diag}(1/\gamma_{old})M\,\mathrm{diag}(\gamma_{new})`
    (:math:`\tilde B = \mathrm{diag}(\gamma)B_s`) and :math:`C_{old} \approx C_{new}N`.

    Examples
    --------
    >>> from ssmred_torch import adapter_for
    >>> layer = LRU(4, 16, dtype=torch.float64)
    >>> adapter = adapter_for(layer)
    >>> adapter.state_sizes(layer), adapter.systems(layer).lam.shape
    ((16,), torch.Size([1, 16]))
    """

    layer_type: ClassVar[type[nn.Module]] = LRU
    state_axes: ClassVar[Mapping[str, int]] = {
        "nu_log": 0,
        "theta_log": 0,
        "gamma_log": 0,
        "B_re": 0,
        "B_im": 0,
        "C_re": 1,
        "C_im": 1,
    }
    state_size_attribute: ClassVar[str] = "d_state"
    dynamics_parameters: ClassVar[tuple[str, ...]] = ("nu_log", "theta_log", "gamma_log", "B_re", "B_im")
    supports_projection: ClassVar[bool] = True
    max_condition: float = 1e8

    def to_statespace(self, layer: LRU, *, exact: bool = False) -> StateSpace:
        r"""The complex system :math:`\Sigma` (``exact=False``) or the layer's exact map (``exact=True``).

        Parameters
        ----------
        layer
            An LRU layer (matrices copied to the host in complex128).
        exact
            See the module docstring.

        Returns
        -------
        StateSpace
            Complex, discrete-time (``dt = 1``), ``layer.d_state`` states.
        """
        with torch.no_grad():
            lam, _, B, C = layer_matrices(layer)
            D = torch.diag(layer.D.detach().to(torch.float64)).to(torch.complex128)
            if exact:
                D = D + C @ B
                B = lam[:, None] * B
        return StateSpace(np.diag(lam.cpu().numpy()), B.cpu().numpy(), C.cpu().numpy(), D.cpu().numpy(), dt=1.0)

    def from_statespace(self, sys: StateSpace, *, like: LRU) -> LRU:
        r"""A new LRU whose :math:`\Sigma` is ``sys`` (re-diagonalised when ``A`` is not diagonal).

        Parameters
        ----------
        sys
            A stable discrete-time system with ``n_inputs = n_outputs = like.d_model`` and diagonal ``D``.
        like
            Template layer (``d_model``, dtype, device, initialisation ring).

        Returns
        -------
        LRU
            The new layer.

        Raises
        ------
        TypeError, ValueError, DimensionError, NotStableError, DiagonalizationError
            See :func:`ssmred_torch.from_statespace`.
        """
        check_conversion(sys, like, LRU, discrete="an LRU layer is a discrete recurrence")
        H = like.d_model
        D_real = np.real(sys.D)
        if not is_diagonal(D_real):
            raise DimensionError("sys.D must be diagonal: an LRU layer has an elementwise feedthrough D * u")
        modes = diagonal_modes(
            np.asarray(sys.A), np.asarray(sys.B), np.asarray(sys.C), max_condition=self.max_condition
        )
        mu, Bd, Cd = (torch.from_numpy(np.ascontiguousarray(x))[None] for x in modes)
        params, unstable = lru_parameters_from_diagonal(mu, Bd, Cd, dtype=like.D.dtype)
        if bool(unstable[0]):
            raise NotStableError(
                f"sys has an eigenvalue with |mu| = {float(mu.abs().max()):.12g} > 1: an LRU layer must be stable"
            )
        layer = LRU(
            H,
            sys.n_states,
            r_min=like.r_min,
            r_max=like.r_max,
            max_phase=like.max_phase,
            dtype=like.D.dtype,
            device=like.D.device,
            generator=torch.Generator().manual_seed(0),  # values are overwritten; keep the global RNG untouched
        )
        values = {k: v[0] for k, v in params.items()}
        values["D"] = torch.as_tensor(np.diag(D_real).copy())
        layer.replace_parameters_(**values)
        return layer

    def systems(self, layer: LRU) -> DiagonalSystems:
        r"""One system :math:`(\lambda, \tilde B, C)` with its log-eigenvalues; output ``"real"``.

        Parameters
        ----------
        layer
            The layer.

        Returns
        -------
        DiagonalSystems
            ``G = 1``.
        """
        lam, log_lam, B, C = layer_matrices(layer)
        return DiagonalSystems(lam[None], B[None], C[None], log_lam[None], "real")

    def write_back_(self, layer: LRU, reduced: ReducedSystems) -> StateMap:
        r"""LRU parameters of the reduced diagonal system (:func:`lru_parameters_from_diagonal`).

        Parameters
        ----------
        layer
            The layer.
        reduced
            One reduced system.

        Returns
        -------
        StateMap
            With the old and new :math:`\gamma` in ``extra``.

        Raises
        ------
        ReductionRefused
            For non-finite parameters or a reduced eigenvalue outside the unit disc beyond round-off.
        """
        params, unstable = lru_parameters_from_diagonal(reduced.mu, reduced.B, reduced.C, dtype=layer.D.dtype)
        if not all(bool(torch.isfinite(v).all()) for v in params.values()):
            raise ReductionRefused("the reduced parameters are not finite")
        if bool(unstable[0]):
            raise ReductionRefused("the reduced system is unstable (|mu| > 1 beyond round-off)")
        n = layer.d_state
        gamma_old = torch.exp(layer.gamma_log.detach().to(torch.float64))
        layer.replace_parameters_(**{k: v[0] for k, v in params.items()})
        extra = {"gamma_old": gamma_old, "gamma_new": torch.exp(params["gamma_log"][0])}
        return StateMap(layer, n, reduced.r, reduced.N, reduced.M, extra)

    def project_moments_(self, optimizer: torch.optim.Optimizer, layer: LRU, state_map: StateMap) -> None:
        r"""Project Adam/SGD moments through the truncation (see :mod:`ssmred_torch.optim`).

        Parameters
        ----------
        optimizer
            The optimizer.
        layer
            The reduced layer.
        state_map
            Its map, with ``N``, ``M`` and the :math:`\gamma` values.

        Raises
        ------
        ValueError
            If the map has no projections.
        """
        states = moment_states(optimizer, layer, self.state_parameters(layer))
        project_gain_scaled_(
            states, state_map, per_state=("nu_log", "theta_log", "gamma_log"), gains=("gamma_old", "gamma_new")
        )


register_adapter(LRUAdapter())
