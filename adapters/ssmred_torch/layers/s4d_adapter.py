r"""The adapter of the :class:`~ssmred_torch.S4D` family (the conventions are in :mod:`ssmred_torch.layers.s4d`)."""

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
from ssmred_torch.layers._conversion import check_conversion, diagonal_modes, is_diagonal  # noqa: E402
from ssmred_torch.layers.s4d import S4D, s4d_matrices  # noqa: E402
from ssmred_torch.optim import moment_states, project_pair_, projections  # noqa: E402

__all__ = ["S4DAdapter"]

_MOMENTS = ("exp_avg", "momentum_buffer", "exp_avg_sq", "max_exp_avg_sq")


def _parameters_from_modes(
    layer: S4D, mu: torch.Tensor, Bbar: torch.Tensor, C: torch.Tensor, ref_log: torch.Tensor | None
) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor, torch.Tensor]:
    """S4D state parameters for per-channel half-state modes ``(mu, Bbar, C)`` of shape ``(H, r)``, step kept.

    Returns the parameters (float64), the new input gains ``phi`` ``(H, r)``, the per-mode rescaling of
    the stored state (``learn_B=False``: ``Bbar / phi``; else ones) and the per-channel instability flag.
    """
    step = torch.exp(layer.log_dt.detach().to(torch.float64)).to(mu.device)[:, None]
    a, phi, unstable = continuous_from_discrete(
        mu, step, layer.discretization, ref_log=ref_log, dtype=layer.log_dt.dtype
    )
    Bt = Bbar.to(torch.complex128) / phi
    C = C.to(torch.complex128)
    if layer.learn_B:
        scale = torch.ones_like(Bt)
    else:  # b~ fixed at 1: x_stored = x / (Bbar / phi), the residue moves into c
        scale = Bt
        C = C * Bt
        Bt = torch.ones_like(Bt)
    params = {
        "log_A_real": torch.log(-a.real),
        "A_imag": a.imag,
        "B_re": Bt.real,
        "B_im": Bt.imag,
        "C_re": C.real,
        "C_im": C.imag,
    }
    return params, phi, scale, unstable.any(-1)


def _split_channels(sys: StateSpace, H: int) -> list[np.ndarray]:
    """State indices of every channel of a system that decouples into ``H`` SISO channels."""
    B, C, A = np.asarray(sys.B), np.asarray(sys.C), np.asarray(sys.A)
    owner = np.full(sys.n_states, -1)
    for i in range(sys.n_states):
        cols = np.flatnonzero(B[i]) if B.size else np.array([], dtype=int)
        rows = np.flatnonzero(C[:, i]) if C.size else np.array([], dtype=int)
        touched = set(cols.tolist()) | set(rows.tolist())
        if len(touched) > 1:
            raise DimensionError(
                "an S4D layer is SISO per channel: every state may couple to one input/output channel only"
            )
        if touched:
            owner[i] = touched.pop()
    # states touching no channel follow the states they are coupled to in A
    for _ in range(sys.n_states):
        free = np.flatnonzero(owner < 0)
        if free.size == 0:
            break
        progressed = False
        for i in free:
            linked = np.flatnonzero((A[i] != 0) | (A[:, i] != 0))
            owners = {int(owner[j]) for j in linked if owner[j] >= 0}
            if len(owners) == 1:
                owner[i] = owners.pop()
                progressed = True
        if not progressed:
            owner[owner < 0] = 0  # isolated states (no input, no output): harmless, give them to channel 0
    groups = [np.flatnonzero(owner == h) for h in range(H)]
    for h, g in enumerate(groups):
        others = np.setdiff1d(np.arange(sys.n_states), g)
        if g.size and others.size and (np.any(A[np.ix_(g, others)] != 0) or np.any(A[np.ix_(others, g)] != 0)):
            raise DimensionError(f"the state matrix couples channel {h} to others: not an S4D (per-channel) system")
    return groups


def _pad(modes: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stack per-channel half-state modes, padding shorter channels with zero-residue modes (mu = 0.5)."""
    r = max(1, max(m[0].size for m in modes))
    H = len(modes)
    mu = np.full((H, r), 0.5, dtype=np.complex128)
    Bd = np.zeros((H, r), dtype=np.complex128)
    Cd = np.zeros((H, r), dtype=np.complex128)
    for h, (m, b, c) in enumerate(modes):
        mu[h, : m.size], Bd[h, : m.size], Cd[h, : m.size] = m, b, c
    return mu, Bd, Cd


@final
@dataclass(frozen=True)
class S4DAdapter(AbstractAdapter[S4D]):
    r"""The protocol for :class:`S4D` layers: ``G = H`` SISO systems per layer, output ``2·Re(c x)``.

    Parameters
    ----------
    max_condition
        Largest accepted 1-norm condition number of an eigenvector matrix when
        :meth:`from_statespace` re-diagonalises a non-diagonal state matrix.

    Notes
    -----
    One order per layer (every channel keeps ``r`` half-states, ``r`` the largest channel order capped
    at the smallest numerical rank; see :mod:`ssmred_torch.layers.s4d` for why per-channel orders would
    not pay), write-back with the per-channel step kept and the ZOH aliasing guard. The moment
    projection (policy ``"project"``) works per channel as for the LRU: with the lifting
    :math:`x_{old} \approx M_h x_{new}` and the new input gains,
    :math:`\tilde b_{old} \approx K^+_h\tilde b_{new}` with
    :math:`K^+_h = \mathrm{diag}(1/\varphi_{old})M_h\mathrm{diag}(\varphi_{new})`, and
    :math:`c_{old} \approx c_{new}N_h`;
    the per-state ``log_A_real``, ``A_imag`` get the convex combinations of
    :func:`ssmred_torch.optim.project_per_state_`.

    Examples
    --------
    >>> from ssmred_torch import adapter_for
    >>> layer = S4D(4, 16, dtype=torch.float64)
    >>> adapter = adapter_for(layer)
    >>> adapter.state_sizes(layer), adapter.systems(layer).lam.shape, adapter.systems(layer).output
    ((8,), torch.Size([4, 8]), 'two_real')
    """

    layer_type: ClassVar[type[nn.Module]] = S4D
    #: ``B_re``, ``B_im`` are buffers (so no state parameters) with ``learn_B=False``
    state_axes: ClassVar[Mapping[str, int]] = {
        "log_A_real": 1,
        "A_imag": 1,
        "B_re": 1,
        "B_im": 1,
        "C_re": 1,
        "C_im": 1,
    }
    state_size_attribute: ClassVar[str] = "n_states"
    dynamics_parameters: ClassVar[tuple[str, ...]] = ("log_dt", "log_A_real", "A_imag", "B_re", "B_im")
    supports_projection: ClassVar[bool] = True
    max_condition: float = 1e8

    # ------------------------------------------------------------------ conversion
    def to_statespace(self, layer: S4D, *, exact: bool = False) -> StateSpace:
        r"""The analysed block-diagonal complex system (``exact=False``) or the layer's real map (``exact=True``).

        Parameters
        ----------
        layer
            An S4D layer (matrices copied to the host in complex128 / float64).
        exact
            ``False``: :math:`(\Lambda, \bar B, C, \mathrm{diag}D)`, ``d_model * n_states`` complex states,
            state ``h * n + k`` is half-state ``k`` of channel ``h``; ``True``: the real system of
            ``2 * d_model * n_states`` states whose impulse response is the forward pass (see the module
            docstring of :mod:`ssmred_torch.layers.s4d`).

        Returns
        -------
        StateSpace
            Discrete-time (``dt = 1``).
        """
        with torch.no_grad():
            lam, _, Bbar, C = (t.cpu().numpy() for t in s4d_matrices(layer))
            D = layer.D.detach().to(torch.float64).cpu().numpy()
        H, n = lam.shape
        rows = np.arange(H * n)
        chan = rows // n
        Bm = np.zeros((H * n, H), dtype=np.complex128)
        Cm = np.zeros((H, H * n), dtype=np.complex128)
        Bm[rows, chan] = Bbar.reshape(-1)
        Cm[chan, rows] = C.reshape(-1)
        A = np.diag(lam.reshape(-1))
        if not exact:
            return StateSpace(A, Bm, Cm, np.diag(D).astype(np.complex128), dt=1.0)
        Dx = np.diag(D + 2.0 * np.real((C * Bbar).sum(-1))).astype(np.complex128)
        return StateSpace(A, lam.reshape(-1)[:, None] * Bm, 2.0 * Cm, Dx, dt=1.0).to_real()

    def channel_statespaces(self, layer: S4D, *, exact: bool = False) -> tuple[StateSpace, ...]:
        r"""The ``d_model`` SISO systems of the layer, one per channel (``n_states`` or ``2 n_states`` states each).

        :meth:`to_statespace` stacks these block-diagonally into one dense system of
        ``d_model * n_states`` states, which is large for a wide layer (``H = 256``, ``N = 64``: 8192
        complex states, 1 GiB); per-channel analysis (HSVs, bounds, norms) should use these.

        Parameters
        ----------
        layer
            An S4D layer.
        exact
            As for :meth:`to_statespace`: the analysed complex systems or the real input/output maps.

        Returns
        -------
        tuple of StateSpace
            Discrete-time (``dt = 1``) SISO systems.

        Examples
        --------
        >>> layer = S4D(3, 8, dtype=torch.float64)
        >>> systems = S4DAdapter().channel_statespaces(layer, exact=True)
        >>> len(systems), systems[0].n_states, systems[0].n_inputs
        (3, 8, 1)
        """
        with torch.no_grad():
            lam, _, Bbar, C = (t.cpu().numpy() for t in s4d_matrices(layer))
            D = layer.D.detach().to(torch.float64).cpu().numpy()
        out = []
        for h in range(lam.shape[0]):
            b, c, d = Bbar[h][:, None], C[h][None, :], np.array([[D[h]]], dtype=np.complex128)
            if exact:
                sys = StateSpace(np.diag(lam[h]), lam[h][:, None] * b, 2.0 * c, d + 2.0 * np.real(c @ b), dt=1.0)
                out.append(sys.to_real())
            else:
                out.append(StateSpace(np.diag(lam[h]), b, c, d, dt=1.0))
        return tuple(out)

    def from_statespace(self, sys: StateSpace, *, like: S4D, exact: bool = False) -> S4D:
        r"""A new S4D layer realising ``sys`` per channel (the inverse of :meth:`to_statespace`).

        ``exact=False``: ``sys`` is an analysed system — complex or real, states grouped by channel
        (each state couples to one input/output channel), ``D`` diagonal; a non-diagonal channel block is
        re-diagonalised. ``exact=True``: ``sys`` is the real input/output map (as returned by
        ``to_statespace(layer, exact=True)``): per channel its one-step advance is undone and it is
        turned into half-states, one member per conjugate pair and real poles with half their residue
        (:func:`~ssmred_torch.layers._continuous.half_states_from_real`). Channels with fewer modes are
        padded with zero-residue modes. Steps, discretisation and the other settings come from ``like``
        (per channel; the ZOH branch of each mode from ``like``'s nearest mode).

        Parameters
        ----------
        sys
            A stable discrete-time system with ``n_inputs = n_outputs = like.d_model``.
        like
            Template layer.
        exact
            See above.

        Returns
        -------
        S4D
            The new layer.

        Raises
        ------
        TypeError
            For wrong argument types.
        ValueError
            For a continuous-time system.
        DimensionError
            If the system does not decouple into ``d_model`` SISO channels or ``D`` is not diagonal.
        NotStableError
            If an eigenvalue lies outside the unit disc beyond round-off.
        DiagonalizationError
            If a channel's state matrix is defective or too ill-conditioned.
        """
        check_conversion(sys, like, S4D, discrete="the layer is analysed after discretisation")
        H = like.d_model
        D = np.asarray(sys.D)
        if not is_diagonal(D):
            raise DimensionError("sys.D must be diagonal: an S4D layer has a per-channel feedthrough D * u")
        A, Bs, Cs = np.asarray(sys.A), np.asarray(sys.B), np.asarray(sys.C)
        modes: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        D_new = np.real(np.diag(D)).astype(np.float64).copy()
        for h, idx in enumerate(_split_channels(sys, H)):
            if idx.size == 0:
                modes.append((np.zeros(0, np.complex128), np.zeros(0, np.complex128), np.zeros(0, np.complex128)))
                continue
            Ah, bh, ch = A[np.ix_(idx, idx)], Bs[idx, h][:, None], Cs[h, idx][None, :]
            if exact:
                if np.iscomplexobj(Ah) or np.iscomplexobj(bh) or np.iscomplexobj(ch):
                    raise TypeError("exact=True needs the real input/output system (a real StateSpace)")
                mu, Bd, Cd = half_states_from_real(Ah, bh, ch, max_condition=self.max_condition)
                if np.any(mu == 0):
                    raise ValueError("exact=True needs an invertible state matrix (the one-step advance is undone)")
                Bd = Bd[:, 0] / mu  # undo the advance: (mu, mu b, c) -> (mu, b, c), D -> D - 2 Re(c b)
                Cd = Cd[0]
                D_new[h] = float(np.real(D[h, h]) - 2.0 * np.real((Cd * Bd).sum()))
            else:
                mu, Bd, Cd = diagonal_modes(Ah, bh, ch, max_condition=self.max_condition, where=f"channel {h}: ")
                Bd, Cd = Bd[:, 0], Cd[0]
            modes.append((mu, Bd, Cd))
        mu, Bd, Cd = (torch.from_numpy(x) for x in _pad(modes))
        with torch.no_grad():
            lam_old, log_old, _, _ = s4d_matrices(like)
            ref = log_old.cpu().gather(1, nearest_modes(mu, lam_old.cpu()))
        params, _, _, unstable = _parameters_from_modes(like, mu, Bd, Cd, ref)
        if bool(unstable.any()):
            raise NotStableError(f"sys has an eigenvalue with |mu| = {float(mu.abs().max()):.12g} > 1")
        layer = S4D(
            H,
            2 * mu.shape[1],
            discretization=like.discretization,
            init=like.init,
            dt_min=like.dt_min,
            dt_max=like.dt_max,
            learn_B=like.learn_B,
            mode=like.mode,
            dtype=like.D.dtype,
            device=like.D.device,
            generator=torch.Generator().manual_seed(0),
        )
        layer.replace_parameters_(log_dt=like.log_dt.detach(), D=torch.from_numpy(D_new), **params)
        return layer

    # ------------------------------------------------------------------ the protocol
    def systems(self, layer: S4D) -> DiagonalSystems:
        r"""``G = d_model`` SISO systems :math:`(\lambda_h, \bar b_h, c_h)` with log-eigenvalues; output ``"two_real"``.

        Parameters
        ----------
        layer
            The layer.

        Returns
        -------
        DiagonalSystems
            ``lam`` ``(H, n)``, ``B`` ``(H, n, 1)``, ``C`` ``(H, 1, n)``.
        """
        lam, log_lam, Bbar, C = s4d_matrices(layer)
        return DiagonalSystems(lam, Bbar[:, :, None], C[:, None, :], log_lam, "two_real")

    def write_back_(self, layer: S4D, reduced: ReducedSystems) -> StateMap:
        r"""Per channel, each reduced mode becomes one half-state (step kept, ZOH aliasing guard).

        Parameters
        ----------
        layer
            The layer.
        reduced
            ``d_model`` reduced systems of one common order.

        Returns
        -------
        StateMap
            With the old and new input gains :math:`\varphi` (and, for ``learn_B=False``, the state
            rescaling) in ``extra``.

        Raises
        ------
        ReductionRefused
            For non-finite parameters or a reduced eigenvalue outside the unit disc beyond round-off.
        """
        H = layer.d_model
        if reduced.mu.shape[0] != H:
            raise ReductionRefused(f"expected {H} reduced systems (one per channel); got {reduced.mu.shape[0]}")
        with torch.no_grad():
            lam_old, log_old, _, _ = s4d_matrices(layer)
            mu = reduced.mu.to(torch.complex128).to(lam_old.device)
            ref = log_old.gather(1, nearest_modes(mu, lam_old))
            params, phi_new, scale, unstable = _parameters_from_modes(
                layer, mu, reduced.B[:, :, 0].to(mu.device), reduced.C[:, 0, :].to(mu.device), ref
            )
            if not all(bool(torch.isfinite(v).all()) for v in params.values()):
                raise ReductionRefused("the reduced parameters are not finite")
            if bool(unstable.any()):
                raise ReductionRefused("the reduced system is unstable (|mu| > 1 beyond round-off)")
            f64 = torch.float64
            a_old = torch.complex(-torch.exp(layer.log_A_real.detach().to(f64)), layer.A_imag.detach().to(f64))
            step = torch.exp(layer.log_dt.detach().to(torch.float64))[:, None]
            phi_old = discretize_diagonal(a_old, step, layer.discretization)[2]
        n = layer.n_states
        layer.replace_parameters_(**params)
        extra = {"phi_old": phi_old, "phi_new": phi_new, "scale": scale}
        return StateMap(layer, n, reduced.r, reduced.N, reduced.M, extra)

    def project_moments_(self, optimizer: torch.optim.Optimizer, layer: S4D, state_map: StateMap) -> None:
        r"""Project Adam/SGD moments through every channel's truncation (see the class notes).

        Parameters
        ----------
        optimizer
            The optimizer.
        layer
            The reduced layer.
        state_map
            Its map, with ``N``, ``M`` ``(H, r, n)``, ``(H, n, r)`` and the input gains.

        Raises
        ------
        ValueError
            If the map has no projections.
        """
        N, M = projections(state_map)
        # stored new state x_s = diag(1/scale) x_r (learn_B=False moves the input residue into c)
        scale = state_map.extra["scale"]
        N = N.to(scale.device) / scale[:, :, None]
        M = M.to(scale.device) * scale[:, None, :]
        states = moment_states(optimizer, layer, self.state_parameters(layer))
        # per-state parameters: convex combinations with weights |N_kj M_jk| (per channel)
        weights = (N * M.transpose(-1, -2)).abs()
        weights = weights / weights.sum(-1, keepdim=True).clamp_min(1e-300)
        for name in ("log_A_real", "A_imag"):
            st = states.get(name)
            for key, v in list((st or {}).items()):
                if key in _MOMENTS and isinstance(v, torch.Tensor):
                    new = (weights.to(v.device) @ v.to(torch.float64)[:, :, None])[:, :, 0]
                    st[key] = new.to(v.dtype)  # type: ignore[index]
        # row parameters (H, n): g_new[h] = g_old[h] @ K_h, batched through (H, 1, n) views
        maps = {("C_re", "C_im"): N.mH}
        if layer.learn_B:
            Kplus = (M / state_map.extra["phi_old"].to(M.device)[:, :, None]) * state_map.extra["phi_new"].to(M.device)[
                :, None, :
            ]
            maps[("B_re", "B_im")] = Kplus.conj()
        for pair, K in maps.items():
            views = {}
            for name in pair:
                st = states.get(name)
                views[name] = {k: v[:, None, :] for k, v in (st or {}).items() if k in _MOMENTS} or None
            project_pair_(views, pair, K, left=False)
            for name in pair:
                st = states.get(name)
                for k, v in (views[name] or {}).items():
                    if v.ndim == 3:
                        st[k] = v[:, 0, :]  # type: ignore[index]


register_adapter(S4DAdapter())
