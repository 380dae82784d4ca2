r"""The adapter of the JAX :class:`~ssmred_jax.LRU` (registered on import): analysed and exact systems, write-back.

The analysed system is :math:`\Sigma = (\mathrm{diag}\lambda, \mathrm{diag}(\gamma)(B_{re} + iB_{im}),
C_{re} + iC_{im}, \mathrm{diag}D)` (``dt = 1``); ``exact=True`` gives the layer's one-step convention
:math:`(\Lambda, \Lambda\tilde B, C, \mathrm{diag}(D) + C\tilde B)` (see :mod:`ssmred_jax.convert`).
The state layout is declared (:attr:`LRUAdapter.state_axes`); the batched write-back maps reduced
modes to parameters with :func:`ssmred_jax.kernels.lru_parameters_from_diagonal`. The counterpart
of ``ssmred_torch.layers.lru_adapter``.
"""

from __future__ import annotations

import functools
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
from ssmred_jax.layers._conversion import check_condition, check_target, is_diagonal  # noqa: E402
from ssmred_jax.layers._conversion import host_f64 as _host_f64  # noqa: E402
from ssmred_jax.layers.lru import LRU  # noqa: E402

__all__ = ["LRUAdapter"]

_STATE_AXES: dict[str, int] = {
    "nu_log": 0,
    "theta_log": 0,
    "gamma_log": 0,
    "B_re": 0,
    "B_im": 0,
    "C_re": 1,
    "C_im": 1,
}


@functools.partial(jax.jit, static_argnames=("diagonal", "dtype_name"))
def _diagonal_parameters(
    A: jax.Array, B: jax.Array, C: jax.Array, diagonal: bool, dtype_name: str
) -> tuple[dict[str, jax.Array], jax.Array, jax.Array, jax.Array]:
    """LRU parameters of one system (re-diagonalised unless ``diagonal``), in one compiled call."""
    from ssmred_jax import kernels

    if diagonal:
        mu, Bd, Cd, cond = jnp.diagonal(A)[None], B[None], C[None], jnp.asarray(1.0)
    else:
        form = kernels.diagonalize(A[None], B[None], C[None])
        mu, Bd, Cd, cond = form.mu, form.B, form.C, form.cond[0]
    dtype = jnp.dtype(dtype_name)
    params, unstable = kernels.lru_parameters_from_diagonal(mu, Bd, Cd, dtype=dtype)
    return {k: v[0].astype(dtype) for k, v in params.items()}, unstable[0], cond, jnp.max(jnp.abs(mu))


@final
class LRUAdapter(AbstractAdapter[LRU]):
    """The adapter of :class:`LRU` (registered; found with :func:`ssmred_jax.adapter_for`).

    Examples
    --------
    >>> from ssmred_jax import adapter_for
    >>> adapter_for(LRU(2, 8, key=jax.random.key(0))).state_parameters(None)["C_re"]
    1
    """

    layer_type: ClassVar[type] = LRU
    state_axes: ClassVar[Mapping[str, int]] = _STATE_AXES
    state_size_attribute: ClassVar[str] = "d_state"
    moment_fields: ClassVar[MomentLayout] = MomentLayout(
        ("nu_log", "theta_log", "gamma_log"), ("B_re", "B_im"), ("C_re", "C_im")
    )

    def to_statespace(self, layer: LRU, *, exact: bool = False) -> StateSpace:
        """See :func:`ssmred_jax.to_statespace`.

        Parameters
        ----------
        layer
            The layer.
        exact
            See :func:`ssmred_jax.to_statespace`.

        Returns
        -------
        StateSpace
            Complex, ``dt = 1``.
        """
        if not isinstance(layer, LRU):
            raise TypeError(f"layer must be an ssmred_jax.LRU; got {type(layer).__name__}")
        log_lam = -np.exp(_host_f64(layer.nu_log)) + 1j * np.exp(_host_f64(layer.theta_log))
        lam = np.exp(log_lam)
        gamma = np.exp(_host_f64(layer.gamma_log))
        B = gamma[:, None] * (_host_f64(layer.B_re) + 1j * _host_f64(layer.B_im))
        C = _host_f64(layer.C_re) + 1j * _host_f64(layer.C_im)
        D = np.diag(_host_f64(layer.D)).astype(np.complex128)
        if exact:
            D = D + C @ B
            B = lam[:, None] * B
        return StateSpace(np.diag(lam), B, C, D, dt=1.0)

    def from_statespace(self, sys: StateSpace, *, like: LRU, max_condition: float = 1e8) -> LRU:
        """See :func:`ssmred_jax.from_statespace`.

        Parameters
        ----------
        sys
            A stable discrete-time system.
        like
            Template layer.
        max_condition
            Largest accepted eigenvector condition number.

        Returns
        -------
        LRU
            The new layer.
        """
        check_target(sys, like, LRU, discrete_reason="an LRU layer is a discrete recurrence")
        D_real = np.real(sys.D)
        if not is_diagonal(D_real):
            raise DimensionError("sys.D must be diagonal: an LRU layer has an elementwise feedthrough D * u")
        dtype = like.D.dtype
        diagonal = is_diagonal(np.asarray(sys.A))
        with jax.enable_x64(True):
            A, B, C = (jnp.asarray(np.asarray(M, dtype=np.complex128)) for M in (sys.A, sys.B, sys.C))
            params, unstable, cond, mu_max = _diagonal_parameters(A, B, C, diagonal, jnp.dtype(dtype).name)
            cond, mu_max = float(cond), float(mu_max)
            if not diagonal:
                check_condition(cond, max_condition)
            if bool(unstable):
                raise NotStableError(
                    f"sys has an eigenvalue with |mu| = {mu_max:.12g} > 1: an LRU layer must be stable"
                )
            values = dict(params)
            values["D"] = jnp.asarray(np.diag(D_real).copy()).astype(dtype)
            return LRU.from_parameters(**values)

    def systems(self, layer: LRU) -> tuple[jax.Array, jax.Array, jax.Array]:
        r"""``(log_lam, B, C)`` in complex128 from the float64-cast parameters (traceable; needs x64).

        :math:`\log\lambda = -e^\nu + ie^\theta`, :math:`\tilde B = \mathrm{diag}(e^{\gamma^{log}})(B_{re}+iB_{im})`,
        :math:`C = C_{re}+iC_{im}` — the torch adapter's ``layer_matrices``.

        Parameters
        ----------
        layer
            The layer.

        Returns
        -------
        tuple of jax.Array
            Shapes ``(n,)``, ``(n, H)``, ``(H, n)``.
        """
        f64 = jnp.float64
        log_lam = lax.complex(-jnp.exp(layer.nu_log.astype(f64)), jnp.exp(layer.theta_log.astype(f64)))
        g = jnp.exp(layer.gamma_log.astype(f64))[:, None]
        B = lax.complex(g * layer.B_re.astype(f64), g * layer.B_im.astype(f64))
        C = lax.complex(layer.C_re.astype(f64), layer.C_im.astype(f64))
        return log_lam, B, C

    def parameters_from_modes(
        self, like: LRU, data: Any, mu: jax.Array, B: jax.Array, C: jax.Array, *, dtype: Any, r: jax.Array
    ) -> tuple[dict[str, jax.Array], jax.Array, jax.Array]:
        """Batched write-back data by :func:`ssmred_jax.kernels.lru_parameters_from_diagonal` (traceable).

        Parameters
        ----------
        like
            A layer of the group (unused).
        data
            Unused (``()``).
        mu, B, C
            Modes ``(G, n)``, ``(G, n, H)``, ``(G, H, n)``.
        dtype
            The layer dtype.
        r
            Orders ``(G,)``.

        Returns
        -------
        tuple
            ``(params, unstable (G,), gamma (G, n))``.
        """
        from ssmred_jax import kernels

        params, unstable = kernels.lru_parameters_from_diagonal(mu, B, C, dtype=dtype, r=r)
        return params, unstable, jnp.exp(params["gamma_log"])

    def input_gain(self, layer: LRU) -> jax.Array:
        r""":math:`\gamma = e^{\gamma^{log}}` ``(n,)``, float64 (needs x64).

        Parameters
        ----------
        layer
            The layer.

        Returns
        -------
        jax.Array
            The gains.
        """
        return jnp.exp(jnp.asarray(layer.gamma_log).astype(jnp.float64))


register_adapter(LRUAdapter())
