r"""The adapter of the :class:`~ssmred_torch.Mamba` family: a selective layer reduced through its mean-LTI surrogate.

Conventions and the surrogate are in :mod:`ssmred_torch.layers.mamba`; the reduction rules here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, final

from ssmred._require import require

require("torch")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from ssmred.statespace import StateSpace  # noqa: E402
from ssmred_torch._adapter import (  # noqa: E402
    AbstractAdapter,
    DiagonalSystems,
    ReducedSystems,
    ReductionRefused,
    StateMap,
    register_adapter,
)
from ssmred_torch.kernels import diagonalize, hankel_svd_diagonal, truncate_diagonal  # noqa: E402
from ssmred_torch.layers.mamba import CalibrationError, Mamba, surrogate_matrices  # noqa: E402
from ssmred_torch.optim import projections  # noqa: E402

__all__ = ["MambaAdapter", "modal_error_bound", "mode_energies"]


def mode_energies(systems: DiagonalSystems) -> torch.Tensor:
    r"""Balanced (Hankel) energy of every original diagonal mode of every system.

    With the square-root data :math:`L_o^H L_c = U\Sigma V^H`, each Hankel singular value splits over
    the original modes, :math:`\sigma_i = \sum_k x_{ik}` with
    :math:`x_{ik} = \overline{(L_oU)_{ki}}\,(L_cV)_{ki}` (mode ``k``'s share of balanced state ``i``:
    :math:`\sigma_i\,T^{-1}_{ik}T_{ki}`). The energy of mode ``k`` is
    :math:`e_k = \sum_i \sigma_i\,|x_{ik}| / \sum_{k'}|x_{ik'}|`, so :math:`\sum_k e_k = \sum_i \sigma_i`.

    Parameters
    ----------
    systems
        ``G`` diagonal systems of ``n`` states.

    Returns
    -------
    torch.Tensor
        float64, ``(G, n)``.

    Examples
    --------
    >>> lam = torch.tensor([[0.9 + 0j, 0.1 + 0j]])
    >>> e = mode_energies(DiagonalSystems(lam, torch.ones(1, 2, 1), torch.ones(1, 1, 2)))
    >>> bool(e[0, 0] > e[0, 1])
    True
    """
    svd = hankel_svd_diagonal(systems.lam, systems.B, systems.C, log_lam=systems.log_lam)
    x = ((svd.Lo @ svd.U).conj() * (svd.Lc @ svd.Vh.mH)).abs()  # (G, k, i)
    share = x / x.sum(-2, keepdim=True).clamp_min(torch.finfo(torch.float64).tiny)
    return (share * svd.hsv[:, None, :]).sum(-1)


def modal_error_bound(systems: DiagonalSystems, keep: torch.Tensor) -> torch.Tensor:
    r"""H-infinity bound of modal truncation, :math:`\sum_{k\ \text{dropped}} \|c_k\|\,\|b_k\|/(1-|\lambda_k|)`.

    Each dropped mode contributes :math:`c_k b_k^T/(1-\lambda_k z^{-1})`, whose norm on the unit
    circle is at most :math:`\|c_k\|\|b_k\|/(1-|\lambda_k|)` (triangle inequality).

    Parameters
    ----------
    systems
        ``G`` diagonal systems of ``n`` states.
    keep
        Boolean ``(G, n)``: the kept modes.

    Returns
    -------
    torch.Tensor
        float64, ``(G,)``.

    Examples
    --------
    >>> lam = torch.tensor([[0.5 + 0j, 0.5 + 0j]])
    >>> s = DiagonalSystems(lam, torch.ones(1, 2, 1), torch.ones(1, 1, 2))
    >>> modal_error_bound(s, torch.tensor([[True, False]])).tolist()
    [2.0]
    """
    gain = torch.linalg.vector_norm(systems.B, dim=-1) * torch.linalg.vector_norm(systems.C, dim=-2)
    per_mode = gain.to(torch.float64) / (1.0 - systems.lam.abs().to(torch.float64))
    return torch.where(keep, torch.zeros_like(per_mode), per_mode).sum(-1)


def _block_diagonal(lam: torch.Tensor, B: torch.Tensor, C: torch.Tensor) -> tuple[np.ndarray, ...]:
    d, r = lam.shape
    eye = torch.eye(d, dtype=B.dtype)
    Bb = (B[:, :, None] * eye[:, None, :]).reshape(d * r, d)  # state (d, k) driven by input d
    Cb = (C[None, :, :] * eye[:, :, None]).reshape(d, d * r)
    return torch.diag(lam.reshape(-1)).numpy(), Bb.numpy(), Cb.numpy()


@final
@dataclass(frozen=True)
class MambaAdapter(AbstractAdapter[Mamba]):
    r"""The protocol for :class:`~ssmred_torch.Mamba` layers: selective, analysed through a mean-LTI surrogate.

    ``time_invariant = False``. :meth:`systems` returns the surrogate of the layer's calibration
    statistics (:mod:`ssmred_torch.layers.mamba`): ``G = d_inner`` SISO systems of ``d_state`` states,
    :math:`(\bar\lambda_d, \bar B_d, \bar C_d)`, output ``"real"``. The order is one per layer (the
    largest channel order, capped at the smallest numerical rank, :func:`~ssmred_torch.plan_reduction`);
    which states are kept is the layer's ``rule``:

    ``"modal_shared"``
        Keep the ``r`` original modes with the largest balanced energy summed over the channels
        (:func:`mode_energies`): the same ``r`` columns of ``A_log`` and rows of ``x_proj`` for every
        channel. A stays exactly diagonal and real, :math:`B_t, C_t` stay shared — the reduced block is
        a plain Mamba with ``d_state = r`` (cheapest forward pass). No BT bound applies; the surrogate's
        error is bounded by :func:`modal_error_bound` (the bound the reduction report shows for the
        modal rules).
    ``"modal_channel"``
        Keep, per channel, its own ``r`` modes of largest energy (buffer ``mode_index``): A stays
        exactly diagonal; ``x_proj`` keeps all features and each channel reads its modes of
        :math:`B_t, C_t`.
    ``"balanced"``
        Balanced truncation of every channel's surrogate, re-diagonalised
        :math:`T_i\bar A_dT = V\mathrm{diag}(\mu)V^{-1}` (complex :math:`\mu` allowed): the stored
        per-channel transforms :math:`N_d = (V^{-1}T_i)_d`, :math:`M_d = (TV)_d` act on the fresh
        :math:`\Delta_tB_t` and :math:`C_t` (buffers ``B_map``, ``C_map``), and the rates become
        :math:`a = \log\mu / \mathbb E[\Delta_d]` (principal logarithm) so that the step-size
        selectivity is kept: :math:`\exp(\Delta_t a)`, which equals :math:`\mu` at the mean step.
        Under ``transition="exp_mean"`` and ``drive="mean_product"`` the reduced layer's surrogate *is*
        the balanced truncation of the old one (``2Σσ_tail`` bound); for the selective layer it is an
        approximation. The imaginary parts of the rates are kept fixed afterwards (buffer ``A_imag``);
        ``A_log`` keeps training the decay rates.

    ``to_statespace`` returns the surrogate of all channels as one block-diagonal system (``d_inner``
    inputs and outputs, ``d_inner * d_state`` states; ``exact=True``: the frozen core's realization
    :math:`(\bar A, \bar A\bar B, \bar C, D + \bar C\bar B)`, the core's exact map when
    :math:`\Delta, B_t, C_t` are constant). ``from_statespace`` refuses: a selective layer is not
    determined by an LTI system.

    Optimizer surgery: ``A_log`` (state axis 1) and, for ``modal_shared``, ``x_proj.weight`` (axis 0,
    only its :math:`B, C` rows are state rows; "slice" therefore resets it) are the state parameters;
    "project" selects the moments of the kept modes exactly (modal rules) or takes convex combinations
    over the old modes (balanced, as for the LRU's per-state parameters).

    Examples
    --------
    >>> from ssmred_torch import adapter_for, calibrate_
    >>> layer = Mamba(4, 8, dtype=torch.float64)
    >>> calibrate_(layer, torch.randn(3, 16, 4, dtype=torch.float64))
    >>> adapter = adapter_for(layer)
    >>> adapter.time_invariant, adapter.systems(layer).lam.shape
    (False, torch.Size([8, 8]))
    """

    layer_type: ClassVar[type[nn.Module]] = Mamba
    state_axes: ClassVar[Mapping[str, int]] = {"A_log": 1}
    state_size_attribute: ClassVar[str] = "d_state"
    time_invariant: ClassVar[bool] = False
    dynamics_parameters: ClassVar[tuple[str, ...]] = ("A_log", "D")
    supports_projection: ClassVar[bool] = True

    def to_statespace(self, layer: Mamba, *, exact: bool = False) -> StateSpace:
        r"""The surrogate of every channel as one block-diagonal system (``dt = 1``).

        Parameters
        ----------
        layer
            A calibrated Mamba layer.
        exact
            ``True``: :math:`(\bar A, \bar A\bar B, \bar C, D + \bar C\bar B)` (the frozen core's map).

        Returns
        -------
        StateSpace
            ``d_inner * d_state`` states, ``d_inner`` inputs and outputs; real unless ``balanced``-reduced.

        Raises
        ------
        CalibrationError
            If the layer has no calibration statistics.
        """
        with torch.no_grad():
            lam, _, B, C = (t.cpu() for t in surrogate_matrices(layer))
            D = torch.diag(layer.D.detach().cpu().to(torch.complex128))
            if exact:
                D = D + torch.diag((C * B).sum(-1))
                B = lam * B
            A, Bb, Cb = _block_diagonal(lam, B, C)
            D = D.numpy()
        if not layer.projected:
            A, Bb, Cb, D = A.real, Bb.real, Cb.real, D.real
        return StateSpace(A, Bb, Cb, D, dt=1.0)

    def from_statespace(self, sys: StateSpace, *, like: Mamba) -> Mamba:
        """Refused: a selective layer is not determined by a linear time-invariant system.

        Parameters
        ----------
        sys
            Any system.
        like
            A Mamba layer.

        Returns
        -------
        Mamba
            Never.

        Raises
        ------
        NotImplementedError
            Always.
        """
        raise NotImplementedError(
            "a Mamba layer is selective (input-dependent): no LTI system determines it; reduce it in place "
            "with ssmred_torch.reduce_model (through its calibrated surrogate) instead"
        )

    def systems(self, layer: Mamba) -> DiagonalSystems:
        """The surrogate: ``G = d_inner`` SISO systems, output ``"real"``.

        Parameters
        ----------
        layer
            A calibrated Mamba layer.

        Returns
        -------
        DiagonalSystems
            ``lam (d_inner, d_state)``, ``B (d_inner, d_state, 1)``, ``C (d_inner, 1, d_state)``.

        Raises
        ------
        CalibrationError
            If the layer has no (usable) calibration statistics.
        """
        lam, log_lam, B, C = surrogate_matrices(layer)
        return DiagonalSystems(lam, B[:, :, None], C[:, None, :], log_lam, "real")

    def write_back_(self, layer: Mamba, reduced: ReducedSystems) -> StateMap:
        """Reduce the layer in place by its rule (see the class docstring) to ``reduced.r`` states.

        Parameters
        ----------
        layer
            The layer.
        reduced
            The balanced-truncated surrogate (the modal rules use only its order; when the plan was
            made without projections the balanced rule recomputes the same truncation for them).

        Returns
        -------
        StateMap
            Selection maps (modal) or the truncation projections (balanced); for a modal rule
            ``extra["index"]`` holds the kept modes and ``error_bound`` the surrogate's modal bound
            (:func:`modal_error_bound`, the largest over the channels), which the report then shows
            instead of the balanced-truncation bound.

        Raises
        ------
        ReductionRefused
            Without calibration statistics, or for reduced mean eigenvalues on or outside the unit
            circle (balanced).
        """
        n, r, d = layer.d_state, reduced.r, layer.d_inner
        if not 1 <= r < n:
            raise ReductionRefused(f"order r={r} is not below the state size {n}")
        try:
            stats = layer.statistics()
            systems = self.systems(layer) if layer.rule != "balanced" else None
        except CalibrationError as exc:
            raise ReductionRefused(str(exc)) from None
        if layer.rule == "balanced":
            mu, N, M = reduced.mu, reduced.N, reduced.M
            if N is None or M is None:  # a plan made without projections: the same truncation, recomputed
                with torch.no_grad():
                    s = self.systems(layer)
                    svd = hankel_svd_diagonal(s.lam, s.B, s.C, log_lam=s.log_lam)
                    A_r, B_r, C_r, T, Ti = truncate_diagonal(s.lam, s.B, s.C, svd, r)
                    form = diagonalize(A_r, B_r, C_r)
                mu, N, M = form.mu, form.W @ Ti, T @ form.V
            mu = mu.to(torch.complex128)
            if not bool(torch.isfinite(torch.view_as_real(mu)).all()) or not bool((mu.abs() < 1.0).all()):
                raise ReductionRefused("a reduced mean eigenvalue is not finite or not inside the unit circle")
            rates = torch.log(mu) / stats.delta.to(mu.device)[:, None]
            layer.project_(rates, N, M)
            return StateMap(layer, n, r, N, M)
        assert systems is not None
        with torch.no_grad():
            energy = mode_energies(systems)  # (d, n)
            if layer.rule == "modal_shared":
                index = torch.sort(torch.topk(energy.sum(0), r).indices).values
                full = index.expand(d, r)
            else:
                index = torch.sort(torch.topk(energy, r, dim=1).indices, dim=1).values
                full = index
            N = torch.zeros(d, r, n, dtype=torch.complex128, device=energy.device)
            N.scatter_(2, full[:, :, None].to(energy.device), 1.0)
            keep = torch.zeros(d, n, dtype=torch.bool, device=energy.device).scatter_(1, full, True)
            bound = float(modal_error_bound(systems, keep).max())
        layer.keep_modes_(index)
        return StateMap(layer, n, r, N, N.mT.clone(), {"index": full}, error_bound=bound)

    def state_parameters(self, layer: Mamba) -> Mapping[str, int]:
        """``A_log`` (axis 1) and, for ``modal_shared``, ``x_proj.weight`` (axis 0).

        Parameters
        ----------
        layer
            The layer.

        Returns
        -------
        Mapping
            Name to state axis.
        """
        axes = dict(super().state_parameters(layer))
        if layer.rule == "modal_shared":
            axes["x_proj.weight"] = 0
        return axes

    def project_moments_(self, optimizer: torch.optim.Optimizer, layer: Mamba, state_map: StateMap) -> None:
        """Moments of the kept modes (modal rules) or convex combinations over the old modes (balanced).

        Parameters
        ----------
        optimizer
            The optimizer.
        layer
            The reduced layer.
        state_map
            What :meth:`write_back_` returned.

        Raises
        ------
        ValueError
            If the map has no projections.
        """
        N, M = projections(state_map)
        st_A = optimizer.state.get(layer.A_log)
        index = state_map.extra.get("index")
        if index is not None:
            old_n = state_map.n
            for key, v in list((st_A or {}).items()):
                if isinstance(v, torch.Tensor) and v.ndim == 2 and v.shape[1] == old_n:
                    st_A[key] = v.gather(1, index.to(v.device))  # type: ignore[index]
            if layer.rule == "modal_shared":
                R, kept = layer.dt_rank, index[0].cpu()
                old_rows = torch.cat([torch.arange(R), R + kept, R + old_n + kept])
                st_W = optimizer.state.get(layer.x_proj.weight)
                for key, v in list((st_W or {}).items()):
                    if isinstance(v, torch.Tensor) and v.ndim == 2 and v.shape[0] == R + 2 * old_n:
                        st_W[key] = v[old_rows.to(v.device)]  # type: ignore[index]
            return
        weights = (N * M.mT).abs()  # (d, r, n): |N_kj M_jk|
        weights = weights / weights.sum(-1, keepdim=True).clamp_min(1e-300)
        for key, v in list((st_A or {}).items()):
            if isinstance(v, torch.Tensor) and v.ndim == 2 and v.shape[1] == state_map.n:
                new = (weights.to(v.device) @ v.to(torch.float64)[:, :, None]).squeeze(-1)
                st_A[key] = new.to(v.dtype)  # type: ignore[index]


register_adapter(MambaAdapter())
