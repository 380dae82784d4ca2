r"""S5 (Smith, Warrington & Linderman 2023) as an equinox module in lindermanlab/S5's parameter layout.

One S5 layer is the continuous-time MIMO system :math:`\dot x = \mathrm{diag}(\Lambda)x + \tilde Bu`,
sampled with one step :math:`\Delta_p = e^{\text{log\_step}_p}` per state by ZOH or bilinear
(:mod:`ssmred_jax.layers._continuous`):

.. math::

    x_k = \mathrm{diag}(\bar\Lambda)x_{k-1} + \bar Bu_k,\quad \bar B = \mathrm{diag}(\varphi)\tilde B,\qquad
    y_k = \kappa\,\mathrm{Re}(\tilde Cx_k) + D\odot u_k,

with :math:`\kappa = 2` under ``conj_sym`` (only half of the conjugate states are stored) and 1
otherwise. The fields are lindermanlab/S5's ``S5SSM`` parameters with their names and shapes:
``Lambda_re``, ``Lambda_im`` ``(P,)``, ``B`` ``(P, H, 2)`` and ``C`` ``(H, P, 2)`` (:math:`\tilde B`,
:math:`\tilde C` as trailing real/imaginary pairs), ``D`` ``(H,)``, ``log_step`` ``(P, 1)``, ``P`` the
number of stored states; a trained S5 parameter dict converts name by name
(:meth:`S5.from_parameters`). The conventions of the analysed and exact systems, the write-back
(the step of the nearest old state is kept, the ZOH aliasing guard) and the bound factor
:math:`\kappa` are those of ``ssmred_torch.S5`` (:mod:`ssmred_torch.layers.s5`), which stores the same
numbers as separate ``B_re``/``B_im``/``C_re``/``C_im`` and a ``(P,)`` ``log_step``.

The adapter is in :mod:`ssmred_jax.layers.s5_adapter` (``S5Adapter`` is still importable from
here). Bidirectional S5 layers are not supported.

References
----------
smith2023s5
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
import numpy as np  # noqa: E402
import scipy.linalg as spla  # noqa: E402
from jax import lax  # noqa: E402
from jaxtyping import Array, Float  # noqa: E402

from ssmred.errors import DimensionError  # noqa: E402
from ssmred_jax._adapter import _lazy_attributes  # noqa: E402
from ssmred_jax.layers._continuous import check_discretization, discretize_diagonal  # noqa: E402
from ssmred_jax.layers._fields import (  # noqa: E402  # noqa: E402
    _check_positive_int,
    _real_dtype,
    check_field_shapes,
    check_float_dtype,
    new_module,
)
from ssmred_jax.scan import diagonal_scan  # noqa: E402

__all__ = ["S5", "S5_FIELDS", "S5Adapter", "hippo_n"]  # noqa: F822 (S5Adapter: __getattr__)

#: The S5 fields in lindermanlab/S5's names (the pytree leaf order).
S5_FIELDS: tuple[str, ...] = ("Lambda_re", "Lambda_im", "B", "C", "D", "log_step")
_SHAPES: dict[str, tuple[str | int, ...]] = {
    "Lambda_re": ("P",),
    "Lambda_im": ("P",),
    "B": ("P", "H", 2),
    "C": ("H", "P", 2),
    "D": ("H",),
    "log_step": ("P", 1),
}
_CLIP = -1e-4  # S5's clip_eigs bound on the real part


def hippo_n(size: int) -> tuple[np.ndarray, np.ndarray]:
    r"""HiPPO-N: eigenvalues and unitary eigenvectors of the normal part of the HiPPO-LegS matrix (host).

    :math:`S = A_{LegS} + pp^T = -\tfrac12 I + K` with :math:`K` skew-symmetric, so
    :math:`S = V\mathrm{diag}(-\tfrac12 + i\omega)V^H` (``ssmred_torch.hippo_n``).

    Parameters
    ----------
    size
        Matrix size ``N``.

    Returns
    -------
    tuple of numpy.ndarray
        ``(Lambda, V)``: complex128 ``(N,)`` and ``(N, N)``.

    Examples
    --------
    >>> lam, V = hippo_n(4)
    >>> bool(np.allclose(lam.real, -0.5)), bool(np.allclose(V.conj().T @ V, np.eye(4)))
    (True, True)
    """
    N = _check_positive_int("size", size)
    k = np.arange(N, dtype=np.float64)
    s = np.sqrt(np.outer(k + 0.5, k + 0.5))
    K = np.triu(s, 1) - np.tril(s, -1)
    omega, V = spla.eigh(-1j * K)
    return -0.5 + 1j * omega, V


class S5(eqx.Module):
    r"""S5 layer: one MIMO diagonal continuous-time system, one step per state (equinox, S5's layout).

    Parameters
    ----------
    d_model
        Number of channels ``H``.
    d_state
        State size ``P`` in S5's convention (``ssm_size``); under ``conj_sym`` ``P / 2`` states are stored.
    discretization
        ``"zoh"`` or ``"bilinear"``.
    conj_sym
        Store half the states and read :math:`2\,\mathrm{Re}(\tilde Cx)`.
    blocks
        Number of HiPPO-N blocks of the initial state matrix (must divide ``P``; even blocks under
        ``conj_sym``).
    clip_eigs
        Use :math:`\min(\text{Lambda\_re}, -10^{-4})` as the real part (S5's ``clip_eigs``).
    dt_min, dt_max
        Range of the log-uniform initial steps.
    dtype
        ``float32`` or ``float64`` (needs ``jax.enable_x64``); default: JAX's default float.
    key
        PRNG key.

    Raises
    ------
    ValueError
        For invalid sizes, steps or choices.
    TypeError
        For an unsupported dtype or non-bool flags.

    Notes
    -----
    Initialisation as ``ssmred_torch.S5`` (HiPPO-N blocks, :math:`\tilde B = V^HB` with
    :math:`B \sim N(0, 1/P)`, :math:`\tilde C = CV` with complex :math:`C`, :math:`N(0, 1/P)` per part,
    log-uniform steps, :math:`D \sim N(0, 1)`), with JAX's random numbers.

    Examples
    --------
    >>> layer = S5(4, 16, blocks=2, key=jax.random.key(0))
    >>> layer(jnp.ones((10, 4))).shape, layer.n_states, layer.d_state, layer.B.shape
    ((10, 4), 8, 16, (8, 4, 2))
    """

    Lambda_re: Float[Array, " P"]
    Lambda_im: Float[Array, " P"]
    B: Float[Array, "P H 2"]
    C: Float[Array, "H P 2"]
    D: Float[Array, " H"]
    log_step: Float[Array, "P 1"]
    discretization: str = eqx.field(static=True)
    conj_sym: bool = eqx.field(static=True)
    clip_eigs: bool = eqx.field(static=True)

    def __init__(
        self,
        d_model: int,
        d_state: int,
        *,
        discretization: str = "zoh",
        conj_sym: bool = True,
        blocks: int = 1,
        clip_eigs: bool = False,
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        dtype: Any = None,
        key: jax.Array,
    ) -> None:
        H = _check_positive_int("d_model", d_model)
        P = _check_positive_int("d_state", d_state)
        J = _check_positive_int("blocks", blocks)
        _check_flags(conj_sym, clip_eigs)
        if P % J or (conj_sym and (P // J) % 2):
            raise ValueError(
                f"blocks must divide d_state into blocks of {'even ' if conj_sym else ''}size; got d_state={P}, "
                f"blocks={J}"
            )
        lo, hi = float(dt_min), float(dt_max)
        if not (math.isfinite(lo) and math.isfinite(hi) and 0.0 < lo <= hi):
            raise ValueError(f"need 0 < dt_min <= dt_max (finite); got dt_min={dt_min!r}, dt_max={dt_max!r}")
        dt = _real_dtype(dtype)
        block = P // J
        keep = block // 2 if conj_sym else block
        lam, V = hippo_n(block)
        lam, V = lam[:keep], V[:, :keep]
        Lambda = np.tile(lam, J)
        Vfull = spla.block_diag(*([V] * J))  # (P, n)
        n = Lambda.size
        z = np.asarray(_init_draws(key, P * H + 2 * H * P + H, n), dtype=np.float64)
        B = z[: P * H].reshape(P, H) / math.sqrt(P)
        C = (z[P * H : 2 * P * H].reshape(H, P) + 1j * z[2 * P * H : 3 * P * H].reshape(H, P)) / math.sqrt(P)
        D = z[3 * P * H : 3 * P * H + H]
        u = z[3 * P * H + H :]
        log_step = u * (math.log(hi) - math.log(lo)) + math.log(lo)
        Bt = Vfull.conj().T @ B
        Ct = C @ Vfull
        values = {
            "Lambda_re": Lambda.real,
            "Lambda_im": Lambda.imag,
            "B": np.stack([Bt.real, Bt.imag], axis=-1),
            "C": np.stack([Ct.real, Ct.imag], axis=-1),
            "D": D,
            "log_step": log_step[:, None],
        }
        for name in S5_FIELDS:
            setattr(self, name, jnp.asarray(values[name].astype(dt.name)))
        self.discretization = check_discretization(discretization)
        self.conj_sym = conj_sym
        self.clip_eigs = clip_eigs

    # ------------------------------------------------------------------ construction from arrays
    @classmethod
    def from_parameters(
        cls,
        *,
        Lambda_re: Any,
        Lambda_im: Any,
        B: Any,
        C: Any,
        D: Any,
        log_step: Any,
        discretization: str = "zoh",
        conj_sym: bool = True,
        clip_eigs: bool = False,
        step_rescale: float = 1.0,
    ) -> S5:
        r"""An S5 layer holding the given arrays (e.g. the parameters of a trained lindermanlab/S5 ``S5SSM``).

        Parameters
        ----------
        Lambda_re, Lambda_im
            Shape ``(P,)``.
        B
            :math:`\tilde B` as real/imaginary pairs, ``(P, H, 2)``.
        C
            :math:`\tilde C` as real/imaginary pairs, ``(H, P, 2)``.
        D
            Shape ``(H,)``.
        log_step
            Shape ``(P, 1)`` (or ``(P,)``).
        discretization, conj_sym, clip_eigs
            The model's settings.
        step_rescale
            S5's ``step_rescale``, folded into ``log_step`` (the steps used are
            :math:`\text{step\_rescale}\cdot e^{\text{log\_step}}`).

        Returns
        -------
        S5
            The layer (all arrays share one float dtype).

        Raises
        ------
        DimensionError
            If the shapes are inconsistent.
        TypeError
            If the dtypes differ or are not floating, or the flags are not bools.
        ValueError
            For an unknown discretization or an invalid ``step_rescale``; for bidirectional layers use
            two layers (not supported).

        Examples
        --------
        >>> src = S5(2, 8, key=jax.random.key(0))
        >>> copy = S5.from_parameters(**{f: getattr(src, f) for f in S5_FIELDS})
        >>> bool(jnp.allclose(copy(jnp.ones((10, 2))), src(jnp.ones((10, 2)))))
        True
        """
        check_discretization(discretization)
        _check_flags(conj_sym, clip_eigs)
        scale = float(step_rescale)
        if not (math.isfinite(scale) and scale > 0.0):
            raise ValueError(f"step_rescale must be a finite float > 0; got {step_rescale!r}")
        arrays = {
            k: jnp.asarray(v)
            for k, v in {
                "Lambda_re": Lambda_re,
                "Lambda_im": Lambda_im,
                "B": B,
                "C": C,
                "D": D,
                "log_step": log_step,
            }.items()
        }
        if arrays["log_step"].ndim == 1:
            arrays["log_step"] = arrays["log_step"][:, None]
        check_field_shapes(arrays, _SHAPES, sizes={"P": "Lambda_re", "H": "D"})
        check_float_dtype(arrays, "S5")
        if scale != 1.0:
            arrays["log_step"] = arrays["log_step"] + jnp.asarray(math.log(scale), dtype=arrays["log_step"].dtype)
        settings = {"discretization": discretization, "conj_sym": conj_sym, "clip_eigs": clip_eigs}
        return new_module(cls, {**{name: arrays[name] for name in S5_FIELDS}, **settings})

    # ------------------------------------------------------------------ sizes and system data
    @property
    def d_model(self) -> int:
        """Number of channels ``H``."""
        return int(self.D.shape[0])

    @property
    def n_states(self) -> int:
        """Stored complex states (``P / 2`` under ``conj_sym``; a reduced layer has fewer)."""
        return int(self.Lambda_re.shape[0])

    @property
    def d_state(self) -> int:
        """The state size in S5's convention: ``2 * n_states`` under ``conj_sym``, else ``n_states``."""
        return 2 * self.n_states if self.conj_sym else self.n_states

    def continuous_eigenvalues(self) -> jax.Array:
        r""":math:`\Lambda = \text{Lambda\_re} + i\,\text{Lambda\_im}` (real part clipped under ``clip_eigs``).

        Returns
        -------
        jax.Array
            Complex, ``(n_states,)``.

        Examples
        --------
        >>> float(S5(2, 8, key=jax.random.key(0)).continuous_eigenvalues().real.max())
        -0.5
        """
        re = jnp.minimum(self.Lambda_re, _CLIP) if self.clip_eigs else self.Lambda_re
        return lax.complex(re, self.Lambda_im)

    def discrete_system(self) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
        r"""The discrete data :math:`(\bar\Lambda, \log\bar\Lambda, \bar B, \tilde C)` in the parameter precision.

        Returns
        -------
        tuple of jax.Array
            Complex, ``(n,)``, ``(n,)``, ``(n, H)``, ``(H, n)``; differentiable.

        Examples
        --------
        >>> lam, log_lam, Bbar, C = S5(3, 8, key=jax.random.key(0)).discrete_system()
        >>> Bbar.shape, C.shape
        ((4, 3), (3, 4))
        """
        return _discrete(self, self.D.dtype)

    # ------------------------------------------------------------------ forward
    def __call__(self, u: jax.Array) -> jax.Array:
        r"""Apply the layer by the associative scan: :math:`y_k = \kappa\,\mathrm{Re}(\tilde Cx_k) + D\odot u_k`.

        Parameters
        ----------
        u
            Real input ``(length, d_model)`` (or ``(..., length, d_model)``), in the parameters' dtype.

        Returns
        -------
        jax.Array
            Output, same shape as ``u``.

        Raises
        ------
        DimensionError
            If the last axis of ``u`` is not ``d_model``.
        """
        if u.ndim < 2 or u.shape[-1] != self.d_model:
            raise DimensionError(f"u must have shape (..., length, d_model={self.d_model}); got {tuple(u.shape)}")
        return _forward(self, u)


def _check_flags(conj_sym: object, clip_eigs: object) -> None:
    if not isinstance(conj_sym, bool):
        raise TypeError(f"conj_sym must be a bool; got {conj_sym!r}")
    if not isinstance(clip_eigs, bool):
        raise TypeError(f"clip_eigs must be a bool; got {clip_eigs!r}")


@functools.partial(jax.jit, static_argnames=("size", "n"))
def _init_draws(key: jax.Array, size: int, n: int) -> jax.Array:
    k1, k2 = jr.split(key)
    return jnp.concatenate([jr.normal(k1, (size,)), jr.uniform(k2, (n,))])


def _discrete(layer: S5, dtype: Any) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    re = layer.Lambda_re.astype(dtype)
    if layer.clip_eigs:
        re = jnp.minimum(re, _CLIP)
    a = lax.complex(re, layer.Lambda_im.astype(dtype))
    lam, log_lam, phi = discretize_diagonal(a, jnp.exp(layer.log_step[:, 0].astype(dtype)), layer.discretization)
    B = layer.B.astype(dtype)
    C = layer.C.astype(dtype)
    Bbar = phi[:, None] * lax.complex(B[..., 0], B[..., 1])
    return lam, log_lam, Bbar, lax.complex(C[..., 0], C[..., 1])


@jax.jit
def _forward(layer: S5, u: jax.Array) -> jax.Array:
    lam, _, Bbar, _ = layer.discrete_system()
    x = diagonal_scan(lam, lax.complex(u @ Bbar.real.T, u @ Bbar.imag.T))
    y = jnp.real(x) @ layer.C[..., 0].T - jnp.imag(x) @ layer.C[..., 1].T
    D = jnp.reshape(layer.D, (1,) * (u.ndim - 1) + (layer.d_model,))
    return (2.0 * y if layer.conj_sym else y) + D * u


#: ``S5Adapter`` lives in ``layers/s5_adapter.py`` (which imports this module); still importable from here
__getattr__ = _lazy_attributes(__name__, S5Adapter="ssmred_jax.layers.s5_adapter")
