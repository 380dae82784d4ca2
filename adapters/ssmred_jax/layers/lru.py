r"""The Linear Recurrent Unit (Orvieto et al. 2023) as an equinox module, and its adapter.

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
convention and ``exact=True``, see :func:`ssmred_jax.to_statespace`).

References
----------
orvieto2023, blelloch1990
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any, ClassVar, final

from ssmred._require import require

require("jax")
require("equinox")

import equinox as eqx  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import jax.random as jr  # noqa: E402
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402
from jaxtyping import Array, Float  # noqa: E402

from ssmred.errors import DimensionError, NotStableError  # noqa: E402
from ssmred.statespace import StateSpace  # noqa: E402
from ssmred_jax._adapter import AbstractAdapter, MomentLayout, register_adapter  # noqa: E402
from ssmred_jax.layers._conversion import check_condition, check_target, is_diagonal  # noqa: E402
from ssmred_jax.layers._conversion import host_f64 as _host_f64  # noqa: E402

__all__ = ["LRU", "LRU_FIELDS", "LRUAdapter", "diagonal_scan", "diagonal_scan_sequential"]

#: The LRU's fields in the published order (the pytree leaf order).
LRU_FIELDS: tuple[str, ...] = ("nu_log", "theta_log", "B_re", "B_im", "C_re", "C_im", "D", "gamma_log")
_STATE_AXES: dict[str, int] = {
    "nu_log": 0,
    "theta_log": 0,
    "gamma_log": 0,
    "B_re": 0,
    "B_im": 0,
    "C_re": 1,
    "C_im": 1,
}


# ---------------------------------------------------------------------------------------------- scans
def _check_scan_inputs(lam: jax.Array, x: jax.Array) -> None:
    if lam.ndim != 1:
        raise DimensionError(f"lam must have shape (n_states,); got {tuple(lam.shape)}")
    if x.ndim < 2 or x.shape[-1] != lam.shape[0]:
        raise DimensionError(f"x must have shape (..., length, n_states={lam.shape[0]}); got {tuple(x.shape)}")


def _combine(first: tuple[jax.Array, jax.Array], second: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
    a_i, b_i = first
    a_j, b_j = second
    return a_j * a_i, a_j * b_i + b_j


def diagonal_scan(lam: jax.Array, x: jax.Array) -> jax.Array:
    r"""All states of :math:`h_k = \lambda \odot h_{k-1} + x_k`, :math:`h_{-1} = 0`, by ``jax.lax.associative_scan``.

    The elements :math:`(\lambda, x_k)` are combined with the associative operator
    :math:`(a, b) \bullet (a', b') = (a a', a' b + b')` (Blelloch 1990), as in the published layer.

    Parameters
    ----------
    lam
        Diagonal of the state matrix, complex, shape ``(n_states,)``.
    x
        Inputs :math:`x_k`, complex, shape ``(..., length, n_states)``, same dtype as ``lam``.

    Returns
    -------
    jax.Array
        The states :math:`h_k`, same shape and dtype as ``x``.

    Raises
    ------
    DimensionError
        If the shapes do not fit.

    Examples
    --------
    >>> lam = jnp.array([0.5 + 0.0j], dtype=jnp.complex64)
    >>> diagonal_scan(lam, jnp.ones((4, 1), dtype=jnp.complex64))[:, 0].real
    Array([1.   , 1.5  , 1.75 , 1.875], dtype=float32)
    """
    _check_scan_inputs(lam, x)
    if x.shape[-2] == 0:
        return x
    return _associative(lam, x)


@jax.jit
def _associative(lam: jax.Array, x: jax.Array) -> jax.Array:
    lam_b = jnp.broadcast_to(lam.astype(x.dtype), x.shape)
    return lax.associative_scan(_combine, (lam_b, x), axis=x.ndim - 2)[1]


def diagonal_scan_sequential(lam: jax.Array, x: jax.Array) -> jax.Array:
    r"""Reference for :func:`diagonal_scan`: :math:`h_k = \lambda \odot h_{k-1} + x_k` by ``jax.lax.scan``.

    Parameters
    ----------
    lam
        Diagonal of the state matrix, shape ``(n_states,)``.
    x
        Inputs, shape ``(..., length, n_states)``.

    Returns
    -------
    jax.Array
        The states, same shape as ``x``.

    Raises
    ------
    DimensionError
        If the shapes do not fit.

    Examples
    --------
    >>> lam = jnp.array([0.5 + 0.0j], dtype=jnp.complex64)
    >>> diagonal_scan_sequential(lam, jnp.ones((3, 1), dtype=jnp.complex64))[:, 0].real
    Array([1.  , 1.5 , 1.75], dtype=float32)
    """
    _check_scan_inputs(lam, x)
    if x.shape[-2] == 0:
        return x
    return _sequential(lam, x)


@jax.jit
def _sequential(lam: jax.Array, x: jax.Array) -> jax.Array:
    xs = jnp.moveaxis(x, -2, 0)
    lam = lam.astype(x.dtype)

    def step(h: jax.Array, xk: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = jnp.broadcast_to(lam, h.shape) * h + xk
        return h, h

    _, hs = lax.scan(step, jnp.zeros_like(xs[0]), xs)
    return jnp.moveaxis(hs, 0, -2)


# ---------------------------------------------------------------------------------------------- LRU
def _check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < 1:
        raise ValueError(f"{name} must be an int >= 1; got {value!r}")
    return int(value)


def _real_dtype(dtype: Any) -> jnp.dtype:
    if dtype is None:
        return jnp.dtype(jax.dtypes.canonicalize_dtype(jnp.float64))  # float32 unless x64 is enabled
    try:
        dt = jnp.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype must be float32 or float64; got {dtype!r}") from exc
    if dt not in (jnp.dtype(jnp.float32), jnp.dtype(jnp.float64)):
        raise TypeError(f"dtype must be float32 or float64; got {dtype!r}")
    if dt == jnp.float64 and not jax.config.x64_enabled:
        raise ValueError("dtype=float64 needs 64-bit types: create the layer inside `with jax.enable_x64(True):`")
    return dt


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
        _check_parameter_shapes(arrays)
        dtypes = {a.dtype for a in arrays.values()}
        if len(dtypes) != 1 or not jnp.issubdtype(next(iter(dtypes)), jnp.floating):
            raise TypeError(f"the LRU parameters must share one float dtype; got {sorted(str(d) for d in dtypes)}")
        layer = object.__new__(cls)  # how equinox itself rebuilds a module from its leaves
        for name in LRU_FIELDS:
            object.__setattr__(layer, name, arrays[name])
        return layer

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


def _check_parameter_shapes(arrays: Mapping[str, jax.Array]) -> None:
    n = int(arrays["nu_log"].shape[0]) if arrays["nu_log"].ndim == 1 else -1
    H = int(arrays["D"].shape[0]) if arrays["D"].ndim == 1 else -1
    if n < 1 or H < 1:
        raise DimensionError(
            f"nu_log and D must be non-empty vectors; got shapes {tuple(arrays['nu_log'].shape)} and "
            f"{tuple(arrays['D'].shape)}"
        )
    expected = {
        "nu_log": (n,),
        "theta_log": (n,),
        "gamma_log": (n,),
        "B_re": (n, H),
        "B_im": (n, H),
        "C_re": (H, n),
        "C_im": (H, n),
        "D": (H,),
    }
    for name, shape in expected.items():
        if tuple(arrays[name].shape) != shape:
            raise DimensionError(f"{name} must have shape {shape} (n={n}, H={H}); got {tuple(arrays[name].shape)}")


# ---------------------------------------------------------------------------------------------- adapter
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
