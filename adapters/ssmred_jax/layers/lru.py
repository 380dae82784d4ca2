r"""The Linear Recurrent Unit (Orvieto et al. 2023) as an equinox module.

One LRU layer is a complex diagonal, discrete-time MIMO system driven by all ``H`` channels:

.. math::

    x_k = \mathrm{diag}(\lambda)\, x_{k-1} + \mathrm{diag}(\gamma)(B_{re} + i B_{im})\, u_k,\qquad
    y_k = \mathrm{Re}\big((C_{re} + i C_{im})\, x_k\big) + D \odot u_k,

with :math:`\lambda_j = \exp(-e^{\nu_j} + i e^{\theta_j})` and :math:`\gamma_j = e^{\gamma^{log}_j}`.

The fields, their order, shapes and the forward pass are those of the published equinox LRU layer
(CompreSSM's ``LRULayer``): ``nu_log`` ``(n,)``, ``theta_log`` ``(n,)``, ``B_re``, ``B_im`` ``(n, H)``,
``C_re``, ``C_im`` ``(H, n)``, ``D`` ``(H,)``, ``gamma_log`` ``(n,)``; the recurrence is evaluated by
``jax.lax.associative_scan`` over time and the layer maps an unbatched ``(length, H)`` sequence (batch
with ``jax.vmap``; leading batch axes are accepted too). A layer trained with the published code
converts field by field (:meth:`LRU.from_parameters`), and because the pytree leaves come in the same
order, ``eqx.tree_deserialise_leaves`` of a published checkpoint into an :class:`LRU` of the same
sizes works as well.

The conversions to and from :class:`ssmred.StateSpace` follow ``ssmred_torch`` exactly (the one-step
convention and ``exact=True``, see :func:`ssmred_jax.to_statespace`); they are the adapter's, in
:mod:`ssmred_jax.layers.lru_adapter` (``LRUAdapter`` is still importable from here). The scans are
:mod:`ssmred_jax.scan`'s (re-exported here).

References
----------
orvieto2023, blelloch1990
"""

from __future__ import annotations

import functools
import math
from typing import Any

from ssmred._require import require

require("jax")
require("equinox")

import equinox as eqx  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import jax.random as jr  # noqa: E402
from jax import lax  # noqa: E402
from jaxtyping import Array, Float  # noqa: E402

from ssmred.errors import DimensionError  # noqa: E402
from ssmred_jax._adapter import _lazy_attributes  # noqa: E402
from ssmred_jax.layers._conversion import host_f64 as _host_f64  # noqa: E402, F401 (its former home)
from ssmred_jax.layers._fields import (  # noqa: E402  # noqa: E402
    _check_positive_int,
    _real_dtype,
    check_field_shapes,
    check_float_dtype,
    new_module,
)
from ssmred_jax.scan import diagonal_scan, diagonal_scan_sequential  # noqa: E402

__all__ = ["LRU", "LRU_FIELDS", "LRUAdapter", "diagonal_scan", "diagonal_scan_sequential"]  # noqa: F822 (LRUAdapter: __getattr__)

#: The LRU's fields in the published order (the pytree leaf order).
LRU_FIELDS: tuple[str, ...] = ("nu_log", "theta_log", "B_re", "B_im", "C_re", "C_im", "D", "gamma_log")
_SHAPES: dict[str, tuple[str, ...]] = {
    "nu_log": ("n",),
    "theta_log": ("n",),
    "gamma_log": ("n",),
    "B_re": ("n", "H"),
    "B_im": ("n", "H"),
    "C_re": ("H", "n"),
    "C_im": ("H", "n"),
    "D": ("H",),
}


@functools.partial(jax.jit, static_argnames=("n", "H", "r_min", "r_max", "max_phase", "dtype_name"))
def _init_arrays(
    key: jax.Array, n: int, H: int, r_min: float, r_max: float, max_phase: float, dtype_name: str
) -> dict[str, jax.Array]:
    """SPEC §1 initialisation in one compiled call (two random draws: XLA compiles each draw separately)."""
    dt = jnp.dtype(dtype_name)
    u_key, z_key = jr.split(key)
    u1, u2 = jnp.split(jr.uniform(u_key, (2 * n,), dtype=dt), 2)
    z = jr.normal(z_key, (4 * n * H + H,), dtype=dt)
    B_re, B_im, C_re, C_im = (z[k * n * H : (k + 1) * n * H] for k in range(4))
    mod2 = u1 * (r_max**2 - r_min**2) + r_min**2
    return {
        "nu_log": jnp.log(-0.5 * jnp.log(mod2)),
        "theta_log": jnp.log(max_phase * jnp.maximum(u2, jnp.finfo(dt).tiny)),
        "B_re": B_re.reshape(n, H) / math.sqrt(2 * H),
        "B_im": B_im.reshape(n, H) / math.sqrt(2 * H),
        "C_re": C_re.reshape(H, n) / math.sqrt(n),
        "C_im": C_im.reshape(H, n) / math.sqrt(n),
        "D": z[4 * n * H :],
        "gamma_log": 0.5 * jnp.log1p(-mod2),
    }


class LRU(eqx.Module):
    r"""Linear Recurrent Unit: a complex diagonal discrete-time MIMO state-space layer (equinox).

    Parameters
    ----------
    d_model
        Number of channels ``H`` (inputs = outputs).
    d_state
        Number of complex states ``n``. (The published layer takes ``(state_dim, hidden_dim)``; this
        signature follows ``ssmred_torch.LRU(d_model, d_state)``.)
    r_min, r_max
        Initial eigenvalue moduli lie on the ring ``[r_min, r_max]`` with :math:`|\lambda|^2` uniform,
        ``0 <= r_min < r_max < 1``.
    max_phase
        Initial phases are uniform on ``[0, max_phase]``.
    dtype
        ``float32`` or ``float64`` (needs ``jax.enable_x64``); default: JAX's default float.
    key
        PRNG key.

    Raises
    ------
    ValueError
        For non-positive sizes, an invalid ring or phase, or ``float64`` without 64-bit types.
    TypeError
        For another dtype.

    Notes
    -----
    Fields (the published layer's, in its order): ``nu_log``, ``theta_log`` — :math:`\log(-\log|\lambda|)`
    and :math:`\log\arg\lambda`, ``(n,)``; ``B_re``, ``B_im`` — the input matrix before the
    normalisation, ``(n, H)``; ``C_re``, ``C_im`` — the output matrix, ``(H, n)``; ``D`` — the
    feedthrough, ``(H,)``; ``gamma_log`` — :math:`\log\gamma`, ``(n,)``.

    Initialisation (SPEC §1): :math:`\nu = \log(-\tfrac12\log(u_1 (r_{max}^2 - r_{min}^2) + r_{min}^2))`,
    :math:`\theta = \log(\phi_{max} u_2)`, :math:`\gamma = \sqrt{1-|\lambda|^2}`,
    :math:`B_{re}, B_{im} \sim N(0, 1/(2H))`, :math:`C_{re}, C_{im} \sim N(0, 1/n)`,
    :math:`D \sim N(0, 1)`.

    Examples
    --------
    >>> layer = LRU(2, 8, key=jax.random.key(0))
    >>> layer(jnp.ones((10, 2))).shape
    (10, 2)
    >>> bool((jnp.abs(layer.eigenvalues()) < 1).all())
    True
    """

    nu_log: Float[Array, " n"]
    theta_log: Float[Array, " n"]
    B_re: Float[Array, "n H"]
    B_im: Float[Array, "n H"]
    C_re: Float[Array, "H n"]
    C_im: Float[Array, "H n"]
    D: Float[Array, " H"]
    gamma_log: Float[Array, " n"]

    def __init__(
        self,
        d_model: int,
        d_state: int,
        *,
        r_min: float = 0.9,
        r_max: float = 0.999,
        max_phase: float = 2 * math.pi,
        dtype: Any = None,
        key: jax.Array,
    ) -> None:
        H = _check_positive_int("d_model", d_model)
        n = _check_positive_int("d_state", d_state)
        if not 0.0 <= float(r_min) < float(r_max) < 1.0:
            raise ValueError(f"need 0 <= r_min < r_max < 1; got r_min={r_min}, r_max={r_max}")
        if not (math.isfinite(float(max_phase)) and float(max_phase) > 0.0):
            raise ValueError(f"max_phase must be a finite float > 0; got {max_phase!r}")
        dt = _real_dtype(dtype)
        values = _init_arrays(key, n, H, float(r_min), float(r_max), float(max_phase), dt.name)
        for name in LRU_FIELDS:
            setattr(self, name, values[name])

    # ------------------------------------------------------------------ construction from arrays
    @classmethod
    def from_parameters(
        cls,
        *,
        nu_log: Any,
        theta_log: Any,
        B_re: Any,
        B_im: Any,
        C_re: Any,
        C_im: Any,
        D: Any,
        gamma_log: Any,
    ) -> LRU:
        """An LRU holding the given arrays (e.g. the fields of a layer trained with the published code).

        Parameters
        ----------
        nu_log, theta_log, gamma_log
            Shape ``(n,)``.
        B_re, B_im
            Shape ``(n, H)``.
        C_re, C_im
            Shape ``(H, n)``.
        D
            Shape ``(H,)``.

        Returns
        -------
        LRU
            The layer (arrays converted with ``jnp.asarray``; all must share one float dtype).

        Raises
        ------
        DimensionError
            If the shapes are inconsistent.
        TypeError
            If the dtypes differ or are not floating.

        Examples
        --------
        >>> src = LRU(2, 8, key=jax.random.key(0))
        >>> copy = LRU.from_parameters(**{f: getattr(src, f) for f in LRU_FIELDS})
        >>> bool(jnp.allclose(copy(jnp.ones((10, 2))), src(jnp.ones((10, 2)))))
        True
        """
        values = {
            "nu_log": nu_log,
            "theta_log": theta_log,
            "B_re": B_re,
            "B_im": B_im,
            "C_re": C_re,
            "C_im": C_im,
            "D": D,
            "gamma_log": gamma_log,
        }
        arrays = {k: jnp.asarray(v) for k, v in values.items()}
        check_field_shapes(arrays, _SHAPES, sizes={"n": "nu_log", "H": "D"})
        check_float_dtype(arrays, "LRU")
        return new_module(cls, {name: arrays[name] for name in LRU_FIELDS})

    # ------------------------------------------------------------------ sizes and matrices
    @property
    def d_model(self) -> int:
        """Number of channels ``H``."""
        return int(self.D.shape[0])

    @property
    def d_state(self) -> int:
        """Number of complex states ``n`` (a reduced layer has fewer)."""
        return int(self.nu_log.shape[0])

    def eigenvalues(self) -> jax.Array:
        r"""The diagonal :math:`\lambda_j = \exp(-e^{\nu_j} + i e^{\theta_j})`.

        Returns
        -------
        jax.Array
            Complex, shape ``(d_state,)``.

        Examples
        --------
        >>> bool(jnp.abs(LRU(2, 8, key=jax.random.key(0)).eigenvalues()).max() < 1)
        True
        """
        return jnp.exp(lax.complex(-jnp.exp(self.nu_log), jnp.exp(self.theta_log)))

    def input_matrix(self) -> jax.Array:
        r"""The effective input matrix :math:`\tilde B = \mathrm{diag}(\gamma)(B_{re} + iB_{im})`.

        Returns
        -------
        jax.Array
            Complex, shape ``(d_state, d_model)``.

        Examples
        --------
        >>> LRU(2, 8, key=jax.random.key(0)).input_matrix().shape
        (8, 2)
        """
        g = jnp.exp(self.gamma_log)[:, None]
        return lax.complex(g * self.B_re, g * self.B_im)

    def output_matrix(self) -> jax.Array:
        r"""The output matrix :math:`C = C_{re} + iC_{im}`.

        Returns
        -------
        jax.Array
            Complex, shape ``(d_model, d_state)``.

        Examples
        --------
        >>> LRU(2, 8, key=jax.random.key(0)).output_matrix().shape
        (2, 8)
        """
        return lax.complex(self.C_re, self.C_im)

    # ------------------------------------------------------------------ forward
    def _check_input(self, u: jax.Array) -> None:
        if u.ndim < 2 or u.shape[-1] != self.d_model:
            raise DimensionError(f"u must have shape (..., length, d_model={self.d_model}); got {tuple(u.shape)}")

    def _drive(self, u: jax.Array) -> jax.Array:
        g = jnp.exp(self.gamma_log)[:, None]
        return lax.complex(u @ (g * self.B_re).T, u @ (g * self.B_im).T)

    def _read(self, h: jax.Array, u: jax.Array) -> jax.Array:
        D = jnp.reshape(self.D, (1,) * (u.ndim - 1) + (self.d_model,))
        return jnp.real(h) @ self.C_re.T - jnp.imag(h) @ self.C_im.T + D * u

    def __call__(self, u: jax.Array) -> jax.Array:
        r"""Apply the layer: :math:`y_k = \mathrm{Re}(Cx_k) + D \odot u_k` (zero initial state).

        Parameters
        ----------
        u
            Real input of shape ``(length, d_model)`` (or ``(..., length, d_model)``), in the
            parameters' dtype.

        Returns
        -------
        jax.Array
            Output, same shape as ``u``.

        Raises
        ------
        DimensionError
            If the last axis of ``u`` is not ``d_model``.
        """
        self._check_input(u)
        return _forward(self, u)

    def forward_sequential(self, u: jax.Array) -> jax.Array:
        """The same map as ``__call__`` by the step-by-step recurrence (``lax.scan``; reference).

        Parameters
        ----------
        u
            Input of shape ``(..., length, d_model)``.

        Returns
        -------
        jax.Array
            Output, same shape as ``u``.

        Raises
        ------
        DimensionError
            If the last axis of ``u`` is not ``d_model``.
        """
        self._check_input(u)
        return _forward_sequential(self, u)


@jax.jit
def _forward(layer: LRU, u: jax.Array) -> jax.Array:
    # one compiled program per shape (eager callers would otherwise compile every scan level's ops)
    return layer._read(diagonal_scan(layer.eigenvalues(), layer._drive(u)), u)


@jax.jit
def _forward_sequential(layer: LRU, u: jax.Array) -> jax.Array:
    return layer._read(diagonal_scan_sequential(layer.eigenvalues(), layer._drive(u)), u)


#: ``LRUAdapter`` lives in ``layers/lru_adapter.py`` (which imports this module); still importable from here
__getattr__ = _lazy_attributes(__name__, LRUAdapter="ssmred_jax.layers.lru_adapter")
