r"""The adapter of the :class:`~ssmred_torch.S5` family (the conventions are in :mod:`ssmred_torch.layers.s5`)."""

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
from ssmred_torch.layers._continuous import (  # noqa: E402
    continuous_from_discrete,
    discretize_diagonal,
    half_states_from_real,
    nearest_modes,
)
from ssmred_torch.layers._conversion import check_conversion, diagonal_modes  # noqa: E402
from ssmred_torch.layers.s5 import _CLIP, S5, s5_matrices  # noqa: E402
from ssmred_torch.optim import moment_states, project_gain_scaled_  # noqa: E402

__all__ = ["S5Adapter"]


def _parameters_from_modes(
    layer: S5, mu: torch.Tensor, Bbar: torch.Tensor, C: torch.Tensor
) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """S5 state parameters for diagonal modes ``(mu (r,), Bbar (r, H), C (H, r))``; steps of the nearest old states.

    Returns the parameters (float64), the new input gains ``phi`` ``(r,)`` and the instability flag.
    """
    with torch.no_grad():
        lam_old, log_old, _, _ = s5_matrices(layer)
        step_old = torch.exp(layer.log_step.detach().to(torch.float64))
    mu = mu.to(torch.complex128).to(lam_old.device)
    idx = nearest_modes(mu, lam_old)
    step = step_old[idx]
    a, phi, unstable = continuous_from_discrete(
        mu, step, layer.discretization, ref_log=log_old[idx], dtype=layer.D.dtype
    )
    Bt = Bbar.to(torch.complex128).to(mu.device) / phi[:, None]
    C = C.to(torch.complex128).to(mu.device)
    params = {
        "Lambda_re": a.real,
        "Lambda_im": a.imag,
        "log_step": torch.log(step),
        "B_re": Bt.real,
        "B_im": Bt.imag,
        "C_re": C.real,
        "C_im": C.imag,
    }
    return params, phi, unstable.any()


@final
@dataclass(frozen=True)
class S5Adapter(AbstractAdapter[S5]):
    r"""The protocol for :class:`S5` layers: one MIMO system per layer (``G = 1``), output ``2·Re`` or ``Re``.

    Parameters
    ----------
    max_condition
        Largest accepted 1-norm condition number of the eigenvector matrix when
        :meth:`from_statespace` re-diagonalises a non-diagonal state matrix.

    Notes
    -----
    Write-back keeps one step per state (the step of the old state nearest to each new eigenvalue) and
    the ZOH aliasing guard (:mod:`ssmred_torch.layers.s5`). The moment projection (policy
    ``"project"``) is the LRU's with the input gains :math:`\varphi` in place of :math:`\gamma`:
    :math:`\tilde B_{old} \approx K^+\tilde B_{new}`,
    :math:`K^+ = \mathrm{diag}(1/\varphi_{old})M\,\mathrm{diag}(\varphi_{new})`,
    :math:`\tilde C_{old} \approx \tilde C_{new}N`;
    ``Lambda_re``, ``Lambda_im``, ``log_step`` get the convex combinations of
    :func:`ssmred_torch.optim.project_per_state_`.

    Examples
    --------
    >>> from ssmred_torch import adapter_for
    >>> layer = S5(4, 16, dtype=torch.float64)
    >>> adapter = adapter_for(layer)
    >>> adapter.state_sizes(layer), adapter.systems(layer).lam.shape, adapter.systems(layer).output
    ((8,), torch.Size([1, 8]), 'two_real')
    """

    layer_type: ClassVar[type[nn.Module]] = S5
    state_axes: ClassVar[Mapping[str, int]] = {
        "Lambda_re": 0,
        "Lambda_im": 0,
        "log_step": 0,
        "B_re": 0,
        "B_im": 0,
        "C_re": 1,
        "C_im": 1,
    }
    state_size_attribute: ClassVar[str] = "n_states"
    dynamics_parameters: ClassVar[tuple[str, ...]] = ("Lambda_re", "Lambda_im", "log_step", "B_re", "B_im")
    supports_projection: ClassVar[bool] = True
    max_condition: float = 1e8

    def to_statespace(self, layer: S5, *, exact: bool = False) -> StateSpace:
        r"""The analysed complex system (``exact=False``) or the layer's real input/output map (``exact=True``).

        Parameters
        ----------
        layer
            An S5 layer (matrices copied to the host).
        exact
            ``False``: :math:`(\bar\Lambda, \bar B, \tilde C, \mathrm{diag}D)`, ``n_states`` complex states;
            ``True``: the real ``2 n_states``-state system whose impulse response is the forward pass (see
            :mod:`ssmred_torch.layers.s5`).

        Returns
        -------
        StateSpace
            Discrete-time (``dt = 1``).
        """
        with torch.no_grad():
            lam, _, Bbar, C = (t.cpu().numpy() for t in s5_matrices(layer))
            D = np.diag(layer.D.detach().to(torch.float64).cpu().numpy()).astype(np.complex128)
        if not exact:
            return StateSpace(np.diag(lam), Bbar, C, D, dt=1.0)
        kappa = 2.0 if layer.conj_sym else 1.0
        return StateSpace(np.diag(lam), lam[:, None] * Bbar, kappa * C, D + kappa * C @ Bbar, dt=1.0).to_real()

    def from_statespace(self, sys: StateSpace, *, like: S5, exact: bool = False) -> S5:
        r"""A new S5 layer realising ``sys`` (the inverse of :meth:`to_statespace`).

        ``exact=False``: ``sys`` is an analysed system :math:`\Sigma` (re-diagonalised when ``A`` is not
        diagonal). ``exact=True`` (``conj_sym`` layers): ``sys`` is the real input/output map; its
        one-step advance is undone and it is turned into half-states, one member per conjugate pair and
        real poles with half their residue. Steps come from ``like``'s nearest states, the other settings
        from ``like``.

        Parameters
        ----------
        sys
            A stable discrete-time system with ``n_inputs = n_outputs = like.d_model`` and diagonal ``D``.
        like
            Template layer.
        exact
            See above.

        Returns
        -------
        S5
            The new layer.

        Raises
        ------
        TypeError
            For wrong argument types.
        ValueError
            For a continuous-time system, or ``exact=True`` without ``conj_sym``.
        DimensionError
            If the sizes do not match ``like`` or ``D`` is not diagonal.
        NotStableError
            If an eigenvalue lies outside the unit disc beyond round-off.
        DiagonalizationError
            If ``A`` is defective or too ill-conditioned.
        """
        check_conversion(sys, like, S5, discrete="the layer is analysed after discretisation")
        H = like.d_model
        Dm = np.asarray(sys.D)
        A, Bs, Cs = np.asarray(sys.A), np.asarray(sys.B), np.asarray(sys.C)
        if exact:
            if not like.conj_sym:
                raise ValueError("exact=True builds conjugate half-states: it needs a conj_sym layer")
            if sys.is_complex:
                raise TypeError("exact=True needs the real input/output system (a real StateSpace)")
            mu, Bd, Cd = half_states_from_real(A, Bs, Cs, max_condition=self.max_condition)
            if np.any(mu == 0):
                raise ValueError("exact=True needs an invertible state matrix (the one-step advance is undone)")
            Bd = Bd / mu[:, None]  # undo the advance: (mu, mu B, C, D + 2 Re CB) -> (mu, B, C, D)
            Dm = Dm - 2.0 * np.real(Cd @ Bd)
        else:
            mu, Bd, Cd = diagonal_modes(A, Bs, Cs, max_condition=self.max_condition)
        # the layer's feedthrough is elementwise (for exact=True: once the advance is undone, up to round-off)
        scale = max(1.0, float(np.abs(Dm).max())) if Dm.size else 1.0
        if np.abs(Dm - np.diag(np.diag(Dm))).max(initial=0.0) > (1e-10 * scale if exact else 0.0):
            raise DimensionError("sys.D must be diagonal: an S5 layer has an elementwise feedthrough D * u")
        D = np.real(np.diag(Dm)).astype(np.float64).copy()
        modes = (torch.from_numpy(np.ascontiguousarray(x)) for x in (mu, Bd, Cd))
        params, _, unstable = _parameters_from_modes(like, *modes)
        if bool(unstable):
            raise NotStableError(f"sys has an eigenvalue with |mu| = {float(np.abs(mu).max()):.12g} > 1")
        layer = S5(
            H,
            (2 if like.conj_sym else 1) * mu.size,
            discretization=like.discretization,
            conj_sym=like.conj_sym,
            clip_eigs=like.clip_eigs,
            dt_min=like.dt_min,
            dt_max=like.dt_max,
            dtype=like.D.dtype,
            device=like.D.device,
            generator=torch.Generator().manual_seed(0),
        )
        layer.replace_parameters_(D=torch.from_numpy(D), **params)
        return layer

    def systems(self, layer: S5) -> DiagonalSystems:
        r"""One system :math:`(\bar\Lambda, \bar B, \tilde C)` with log-eigenvalues, output ``"two_real"``/``"real"``.

        Parameters
        ----------
        layer
            The layer.

        Returns
        -------
        DiagonalSystems
            ``G = 1``.
        """
        lam, log_lam, Bbar, C = s5_matrices(layer)
        return DiagonalSystems(lam[None], Bbar[None], C[None], log_lam[None], "two_real" if layer.conj_sym else "real")

    def write_back_(self, layer: S5, reduced: ReducedSystems) -> StateMap:
        r"""Each reduced mode becomes one stored state (step of the nearest old state, ZOH aliasing guard).

        Parameters
        ----------
        layer
            The layer.
        reduced
            One reduced system.

        Returns
        -------
        StateMap
            With the old and new input gains :math:`\varphi` in ``extra``.

        Raises
        ------
        ReductionRefused
            For non-finite parameters, a reduced eigenvalue outside the unit disc beyond round-off, or
            (``clip_eigs``) one with a real part the clipping would change.
        """
        params, phi_new, unstable = _parameters_from_modes(layer, reduced.mu[0], reduced.B[0], reduced.C[0])
        if not all(bool(torch.isfinite(v).all()) for v in params.values()):
            raise ReductionRefused("the reduced parameters are not finite")
        if bool(unstable):
            raise ReductionRefused("the reduced system is unstable (|mu| > 1 beyond round-off)")
        if layer.clip_eigs:
            # a mode kept at the clipping bound comes back with round-off around it: store the bound
            if bool((params["Lambda_re"] > _CLIP * (1.0 - 1e-8)).any()):
                raise ReductionRefused(
                    f"a reduced eigenvalue has Re(Lambda) = {float(params['Lambda_re'].max()):.6g} > {_CLIP:g}, "
                    "which the layer's clip_eigs would change"
                )
            params["Lambda_re"] = params["Lambda_re"].clamp(max=_CLIP)
        with torch.no_grad():
            f64 = torch.float64
            a_old = layer.continuous_eigenvalues().detach().to(torch.complex128)
            phi_old = discretize_diagonal(a_old, torch.exp(layer.log_step.detach().to(f64)), layer.discretization)[2]
        n = layer.n_states
        layer.replace_parameters_(**params)
        return StateMap(layer, n, reduced.r, reduced.N, reduced.M, {"phi_old": phi_old, "phi_new": phi_new})

    def project_moments_(self, optimizer: torch.optim.Optimizer, layer: S5, state_map: StateMap) -> None:
        r"""Project Adam/SGD moments through the truncation (see the class notes).

        Parameters
        ----------
        optimizer
            The optimizer.
        layer
            The reduced layer.
        state_map
            Its map, with ``N``, ``M`` and the input gains.

        Raises
        ------
        ValueError
            If the map has no projections.
        """
        states = moment_states(optimizer, layer, self.state_parameters(layer))
        project_gain_scaled_(
            states, state_map, per_state=("Lambda_re", "Lambda_im", "log_step"), gains=("phi_old", "phi_new")
        )


register_adapter(S5Adapter())
