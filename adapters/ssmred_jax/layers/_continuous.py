r"""Continuous-time diagonal modes (the S5 family): discretisation and its inverse, in JAX.

The conventions and formulas are those of ``ssmred_torch.layers._continuous`` (see its docstring for
the derivations): a mode :math:`\dot x = a x + \tilde b u` sampled with step :math:`\Delta` becomes
:math:`x_k = \lambda x_{k-1} + \varphi\tilde b u_k` with

* **ZOH**: :math:`\lambda = e^{\Delta a}`, :math:`\varphi = (e^{\Delta a} - 1)/a`, :math:`\log\lambda = \Delta a`;
* **bilinear**: :math:`z = \Delta a/2`, :math:`\lambda = (1 + z)/(1 - z)`, :math:`\varphi = \Delta/(1 - z)`,
  :math:`\log\lambda = \tfrac12\mathrm{log1p}(4\,\mathrm{Re}\,z/|1-z|^2) + i(\arg(1+z) - \arg(1-z))`.

The inverse (:func:`continuous_from_discrete`) keeps a given step; for ZOH the branch of
:math:`\mathrm{Im}\,\Delta a` is the one nearest to a reference log-eigenvalue (the aliasing guard),
unless that branch would shrink :math:`|\varphi|` by more than :math:`10^3`. All functions are pure
and traceable (they run inside the jitted truncation); :func:`half_states_from_real` is a host
(numpy/scipy) function.
"""

from __future__ import annotations

import math
from typing import Literal

from ssmred._require import require

require("jax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax import lax  # noqa: E402

from ssmred.transforms import half_states_from_real  # noqa: E402  (the adapters' shared host step)

__all__ = [
    "DISCRETIZATIONS",
    "check_discretization",
    "continuous_from_discrete",
    "discretize_diagonal",
    "half_states_from_real",
    "nearest_modes",
]

Discretization = Literal["zoh", "bilinear"]
DISCRETIZATIONS: tuple[str, ...] = ("zoh", "bilinear")
_BRANCH_GAIN_LIMIT = 1e-3
_TWO_PI = 2.0 * math.pi


def check_discretization(value: object) -> str:
    """``value`` if it is ``"zoh"`` or ``"bilinear"``, else a ``ValueError`` naming the choices."""
    if not isinstance(value, str) or value not in DISCRETIZATIONS:
        raise ValueError(f"discretization must be one of 'zoh', 'bilinear'; got {value!r}")
    return value


def discretize_diagonal(a: jax.Array, step: jax.Array, method: str) -> tuple[jax.Array, jax.Array, jax.Array]:
    r"""Discretise diagonal continuous-time modes: :math:`(\lambda, \log\lambda, \varphi)` (module docstring).

    Parameters
    ----------
    a
        Continuous eigenvalues (complex), any shape.
    step
        Steps :math:`\Delta > 0` (real), broadcastable to ``a``.
    method
        ``"zoh"`` or ``"bilinear"``.

    Returns
    -------
    tuple of jax.Array
        ``(lam, log_lam, phi)``, complex, the shape of ``a``; differentiable.

    Examples
    --------
    >>> a = jnp.array([-0.5 + 3.0j])
    >>> lam, log_lam, phi = discretize_diagonal(a, jnp.array([0.1]), "zoh")
    >>> bool(jnp.allclose(lam, jnp.exp(0.1 * a))), bool(jnp.allclose(log_lam, 0.1 * a))
    (True, True)
    """
    step = jnp.asarray(step).astype(a.dtype)  # complex: no mixed-kind promotion (strict promotion works)
    ell = a * step
    if method == "zoh":
        small = ell == 0
        safe = jnp.where(small, jnp.ones_like(ell), ell)
        phi = jnp.where(small, step * jnp.ones_like(ell), step * jnp.expm1(safe) / safe)
        return jnp.exp(ell), ell, phi
    if method == "bilinear":
        z = 0.5 * ell
        one_minus = 1.0 - z
        lam = (1.0 + z) / one_minus
        re = 0.5 * jnp.log1p(4.0 * z.real / (one_minus.real**2 + one_minus.imag**2))
        log_lam = lax.complex(re, jnp.angle(1.0 + z) - jnp.angle(one_minus))
        return lam, log_lam, step / one_minus
    raise ValueError(f"discretization must be one of 'zoh', 'bilinear'; got {method!r}")


def nearest_modes(mu: jax.Array, lam: jax.Array) -> jax.Array:
    r"""For every new eigenvalue the index of the nearest old one, :math:`\arg\min_j|\mu_k - \lambda_j|`.

    Parameters
    ----------
    mu
        New eigenvalues ``(..., r)``.
    lam
        Old eigenvalues ``(..., n)`` (same leading shape).

    Returns
    -------
    jax.Array
        int32 indices ``(..., r)``.

    Examples
    --------
    >>> nearest_modes(jnp.array([0.1, 0.9]), jnp.array([1.0, 0.0])).tolist()
    [1, 0]
    """
    return jnp.argmin(jnp.abs(mu[..., :, None] - lam[..., None, :]), axis=-1)


def continuous_from_discrete(
    mu: jax.Array,
    step: jax.Array,
    method: str,
    *,
    ref_log: jax.Array | None = None,
    dtype: object = jnp.float64,
    instability_tol: float = 1e-8,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    r"""Continuous eigenvalues :math:`a` with :math:`\lambda(a, \Delta) = \mu`, their input gains, instability flags.

    Parameters
    ----------
    mu
        Discrete eigenvalues (complex128), any shape.
    step
        The steps to keep (float64), broadcastable to ``mu``.
    method
        ``"zoh"`` or ``"bilinear"``.
    ref_log
        ZOH only: reference log-eigenvalues selecting the branch (aliasing guard); ``None``: principal.
    dtype
        Real dtype of the target parameters (the decay is floored at its machine epsilon).
    instability_tol
        Moduli above ``1 + instability_tol`` (or non-finite values) are flagged.

    Returns
    -------
    tuple of jax.Array
        ``(a, phi, unstable)``, the shape of ``mu``.

    Examples
    --------
    >>> with jax.enable_x64(True):
    ...     a0 = jnp.array([-0.2 + 7.0j])                      # Im(step * a) = 3.5 > pi
    ...     mu = jnp.exp(0.5 * a0)
    ...     a, phi, bad = continuous_from_discrete(mu, jnp.array(0.5), "zoh", ref_log=0.5 * a0)
    ...     print(bool(jnp.allclose(a, a0)), bool(bad.any()))
    True False
    """
    finfo = jnp.finfo(dtype)
    modulus = jnp.abs(mu)
    unstable = (modulus > 1.0 + instability_tol) | ~jnp.isfinite(modulus)
    step = jnp.asarray(step).astype(mu.dtype)  # complex, as the arithmetic below
    if method == "zoh":
        re = jnp.clip(jnp.log(modulus), math.log(float(finfo.tiny)), -float(finfo.eps))
        im = jnp.angle(mu)
        if ref_log is not None:
            shift = jnp.round((jnp.imag(ref_log) - im) / _TWO_PI)
            branch = im + _TWO_PI * shift
            principal = jnp.abs(lax.complex(re, im))
            shifted = jnp.abs(lax.complex(re, branch))
            im = jnp.where(principal >= _BRANCH_GAIN_LIMIT * shifted, branch, im)
        ell = lax.complex(re, im)
        a = ell / step
        return a, jnp.expm1(ell) / a, unstable
    if method == "bilinear":
        limit = 1.0 - float(finfo.eps)
        shrink = jnp.where(modulus > limit, limit / jnp.maximum(modulus, float(finfo.tiny)), 1.0)
        m = mu * shrink.astype(mu.dtype)
        a = (2.0 / step) * (m - 1.0) / (m + 1.0)
        phi = 0.5 * step * (1.0 + m)
        unstable = unstable | ~(jnp.isfinite(a.real) & jnp.isfinite(a.imag))
        return a, phi, unstable
    raise ValueError(f"discretization must be one of 'zoh', 'bilinear'; got {method!r}")
