r"""The adapter of the JAX :class:`~ssmred_jax.S5` (registered on import): analysed and exact systems, write-back.

Analysed system :math:`\Sigma = (\mathrm{diag}\bar\Lambda, \bar B, \tilde C, \mathrm{diag}D)` (``dt = 1``);
the write-back inverts the discretisation with the step of the nearest old state (the ZOH aliasing
guard, :mod:`ssmred_jax.layers._continuous`); the bound factor :math:`\kappa` is 2 under
``conj_sym``. The counterpart of ``ssmred_torch.layers.s5_adapter``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, final

from ssmred._require import require

require("jax")
require("equinox")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402

from ssmred.errors import DimensionError, NotStableError  # noqa: E402
from ssmred.statespace import StateSpace  # noqa: E402
from ssmred_jax._adapter import AbstractAdapter, MomentLayout, register_adapter  # noqa: E402
from ssmred_jax.layers._continuous import (  # noqa: E402
    continuous_from_discrete,
    discretize_diagonal,
    half_states_from_real,
    nearest_modes,
)
from ssmred_jax.layers._conversion import check_condition, check_target, is_diagonal  # noqa: E402
from ssmred_jax.layers._conversion import host_f64 as _host_f64  # noqa: E402
from ssmred_jax.layers.s5 import _CLIP, S5, _discrete  # noqa: E402

__all__ = ["S5Adapter"]

_STATE_AXES: dict[str, int] = {"Lambda_re": 0, "Lambda_im": 0, "log_step": 0, "B": 0, "C": 1}


def _modes_to_parameters(
    layer_like: S5,
    log_step: jax.Array,
    log_old: jax.Array,
    mu: jax.Array,
    Bbar: jax.Array,
    C: jax.Array,
    dtype: Any,
) -> tuple[dict[str, jax.Array], jax.Array, jax.Array]:
    """S5 parameters (float64, S5 layout) for modes ``mu (..., r)``: steps, ZOH branches of the nearest old states."""
    idx = nearest_modes(mu, jnp.exp(log_old))
    step = jnp.exp(jnp.take_along_axis(log_step, idx, axis=-1))
    ref = jnp.take_along_axis(log_old, idx, axis=-1)
    a, phi, unstable = continuous_from_discrete(mu, step, layer_like.discretization, ref_log=ref, dtype=dtype)
    if layer_like.clip_eigs:
        # a mode kept at the clipping bound comes back with round-off around it; beyond it the clip would change it
        unstable = unstable | (a.real > _CLIP * (1.0 - 1e-8))
        a = lax.complex(jnp.minimum(a.real, _CLIP), a.imag)
    Bt = Bbar / phi[..., :, None]
    params = {
        "Lambda_re": a.real,
        "Lambda_im": a.imag,
        "log_step": jnp.log(step)[..., None],
        "B": jnp.stack([Bt.real, Bt.imag], axis=-1),
        "C": jnp.stack([C.real, C.imag], axis=-1),
    }
    return params, unstable, phi


@final
class S5Adapter(AbstractAdapter[S5]):
    r"""The adapter of :class:`S5` (registered): one MIMO system per layer, bound factor :math:`\kappa`.

    Notes
    -----
    Analysed system :math:`\Sigma = (\mathrm{diag}\bar\Lambda, \bar B, \tilde C, \mathrm{diag}D)`, ``dt = 1``;
    exact system: the real ``2n``-state :math:`\mathrm{realify}(\bar\Lambda, \bar\Lambda\bar B, \kappa\tilde C,
    \mathrm{diag}D + \kappa\mathrm{Re}\,\tilde C\bar B)`. Write-back keeps one step per state (the
    nearest old state's) and the ZOH aliasing guard; the moment projection is the LRU's with the input
    gains :math:`\varphi` for :math:`\gamma` (``ssmred_torch.S5Adapter``).

    Examples
    --------
    >>> from ssmred_jax import adapter_for
    >>> adapter_for(S5(2, 8, key=jax.random.key(0))).state_parameters(None)["C"]
    1
    """

    layer_type: ClassVar[type] = S5
    state_axes: ClassVar[Mapping[str, int]] = _STATE_AXES
    state_size_attribute: ClassVar[str] = "n_states"  # the stored states
    moment_fields: ClassVar[MomentLayout] = MomentLayout(("Lambda_re", "Lambda_im", "log_step"), "B", "C")

    def to_statespace(self, layer: S5, *, exact: bool = False) -> StateSpace:
        r"""The analysed complex system (``exact=False``) or the layer's real input/output map (``exact=True``).

        Parameters
        ----------
        layer
            The layer.
        exact
            ``False``: :math:`(\bar\Lambda, \bar B, \tilde C, \mathrm{diag}D)`; ``True``: the real ``2n``-state
            system whose impulse response is the forward pass.

        Returns
        -------
        StateSpace
            Discrete-time (``dt = 1``).
        """
        if not isinstance(layer, S5):
            raise TypeError(f"layer must be an ssmred_jax.S5; got {type(layer).__name__}")
        with jax.enable_x64(True):
            lam, _, Bbar, C = (np.asarray(jax.device_get(x)) for x in _discrete(layer, jnp.float64))
        D = np.diag(_host_f64(layer.D)).astype(np.complex128)
        if not exact:
            return StateSpace(np.diag(lam), Bbar, C, D, dt=1.0)
        kappa = 2.0 if layer.conj_sym else 1.0
        return StateSpace(np.diag(lam), lam[:, None] * Bbar, kappa * C, D + kappa * C @ Bbar, dt=1.0).to_real()

    def from_statespace(self, sys: StateSpace, *, like: S5, max_condition: float = 1e8, exact: bool = False) -> S5:
        r"""A new S5 layer realising ``sys`` (inverse of :meth:`to_statespace`); steps of ``like``'s nearest states.

        Parameters
        ----------
        sys
            A stable discrete-time system with ``n_inputs = n_outputs = like.d_model``, diagonal ``D``.
        like
            Template layer (steps, settings, dtype).
        max_condition
            Largest accepted eigenvector condition number when ``sys`` must be re-diagonalised.
        exact
            ``True`` (``conj_sym`` layers): ``sys`` is the real input/output map (``to_statespace(...,
            exact=True)``); its one-step advance is undone and it is split into conjugate half-states.

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
        from ssmred_jax import kernels

        check_target(sys, like, S5, discrete_reason="the layer is analysed after discretisation")
        Dm = np.asarray(sys.D)
        A, Bs, Cs = np.asarray(sys.A), np.asarray(sys.B), np.asarray(sys.C)
        if exact:
            if not like.conj_sym:
                raise ValueError("exact=True builds conjugate half-states: it needs a conj_sym layer")
            if sys.is_complex:
                raise TypeError("exact=True needs the real input/output system (a real StateSpace)")
            mu, Bd, Cd = half_states_from_real(A, Bs, Cs, max_condition=max_condition)
            if np.any(mu == 0):
                raise ValueError("exact=True needs an invertible state matrix (the one-step advance is undone)")
            Bd = Bd / mu[:, None]
            Dm = Dm - 2.0 * np.real(Cd @ Bd)
        elif is_diagonal(A):
            mu, Bd, Cd = np.diag(A).astype(np.complex128), Bs.astype(np.complex128), Cs.astype(np.complex128)
        else:
            with jax.enable_x64(True):
                systems = (jnp.asarray(np.asarray(x, dtype=np.complex128))[None] for x in (A, Bs, Cs))
                form = kernels.diagonalize(*systems)
                cond = float(form.cond[0])
                mu, Bd, Cd = (np.asarray(jax.device_get(x[0])) for x in (form.mu, form.B, form.C))
            check_condition(cond, max_condition)
        scale = max(1.0, float(np.abs(Dm).max())) if Dm.size else 1.0
        if np.abs(Dm - np.diag(np.diag(Dm))).max(initial=0.0) > (1e-10 * scale if exact else 0.0):
            raise DimensionError("sys.D must be diagonal: an S5 layer has an elementwise feedthrough D * u")
        dtype = like.D.dtype
        with jax.enable_x64(True):
            _, log_old, _, _ = _discrete(like, jnp.float64)
            params, unstable, _ = _modes_to_parameters(
                like,
                like.log_step[:, 0].astype(jnp.float64),
                log_old,
                jnp.asarray(mu, dtype=jnp.complex128),
                jnp.asarray(Bd, dtype=jnp.complex128),
                jnp.asarray(Cd, dtype=jnp.complex128),
                dtype,
            )
            if bool(jnp.any(unstable)):
                raise NotStableError(
                    f"sys has an eigenvalue with |mu| = {float(np.abs(mu).max()):.12g} > 1 (or, with clip_eigs, a "
                    f"continuous real part above {_CLIP:g})"
                )
            values = {k: np.asarray(jax.device_get(v)) for k, v in params.items()}
        D = np.real(np.diag(Dm)).astype(np.float64)
        return S5.from_parameters(
            **{k: jnp.asarray(v.astype(jnp.dtype(dtype).name)) for k, v in values.items()},
            D=jnp.asarray(D.astype(jnp.dtype(dtype).name)),
            discretization=like.discretization,
            conj_sym=like.conj_sym,
            clip_eigs=like.clip_eigs,
        )

    def systems(self, layer: S5) -> tuple[jax.Array, jax.Array, jax.Array]:
        r"""``(log_lam, Bbar, C)``: :math:`\log\bar\Lambda`, :math:`\bar B`, :math:`\tilde C`, complex128 (traceable).

        Parameters
        ----------
        layer
            The layer.

        Returns
        -------
        tuple of jax.Array
            Shapes ``(n,)``, ``(n, H)``, ``(H, n)``.
        """
        _, log_lam, Bbar, C = _discrete(layer, jnp.float64)
        return log_lam, Bbar, C

    def output_factor(self, layer: S5) -> float:
        r""":math:`\kappa`: 2 under ``conj_sym`` (the real output :math:`2\,\mathrm{Re}(\tilde Cx)`), else 1.

        Parameters
        ----------
        layer
            The layer.

        Returns
        -------
        float
            The factor of the reported bound.
        """
        return 2.0 if layer.conj_sym else 1.0

    def truncation_data(self, layer: S5) -> tuple[jax.Array, jax.Array]:
        """``(log_step (n,), log_lam (n,))`` in 64 bits: the old steps and log-eigenvalues (traceable).

        Parameters
        ----------
        layer
            The layer.

        Returns
        -------
        tuple of jax.Array
            float64 and complex128.
        """
        _, log_lam, _, _ = _discrete(layer, jnp.float64)
        return layer.log_step[:, 0].astype(jnp.float64), log_lam

    def parameters_from_modes(
        self, like: S5, data: Any, mu: jax.Array, B: jax.Array, C: jax.Array, *, dtype: Any, r: jax.Array
    ) -> tuple[dict[str, jax.Array], jax.Array, jax.Array]:
        """Batched write-back data: S5 parameters, per-mode instability and input gains (traceable).

        Parameters
        ----------
        like
            A layer of the group (its static settings).
        data
            Stacked :meth:`truncation_data`.
        mu, B, C
            Diagonal modes ``(G, n)``, ``(G, n, H)``, ``(G, H, n)``.
        dtype
            The layer dtype.
        r
            Orders ``(G,)``: only the leading ``r`` modes are checked (the rest is padding).

        Returns
        -------
        tuple
            ``(params, unstable (G,), phi (G, n))``.
        """
        log_step, log_old = data
        params, unstable, phi = _modes_to_parameters(like, log_step, log_old, mu, B, C, dtype)
        valid = jnp.arange(mu.shape[-1], dtype=jnp.int32)[None, :] < r[:, None]
        return params, jnp.any(valid & unstable, axis=-1), phi

    def input_gain(self, layer: S5) -> jax.Array:
        r"""The input gains :math:`\varphi` ``(n,)`` (complex128; needs x64).

        Parameters
        ----------
        layer
            The layer.

        Returns
        -------
        jax.Array
            :math:`\bar B = \mathrm{diag}(\varphi)\tilde B`.
        """
        re = layer.Lambda_re.astype(jnp.float64)
        if layer.clip_eigs:
            re = jnp.minimum(re, _CLIP)
        a = lax.complex(re, layer.Lambda_im.astype(jnp.float64))
        return discretize_diagonal(a, jnp.exp(layer.log_step[:, 0].astype(jnp.float64)), layer.discretization)[2]


register_adapter(S5Adapter())
