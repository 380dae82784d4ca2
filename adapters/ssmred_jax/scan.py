r"""The parallel associative scan of diagonal recurrences :math:`h_k = \lambda \odot h_{k-1} + x_k` (and its reference).

The forward pass of every diagonal layer family of the JAX adapter (LRU, S5) evaluates its
recurrence with :func:`diagonal_scan` (``jax.lax.associative_scan``, Blelloch 1990); the
step-by-step :func:`diagonal_scan_sequential` (``jax.lax.scan``) is the reference the tests compare
it with. The counterpart of ``ssmred_torch.scan``.

References
----------
blelloch1990
"""

from __future__ import annotations

from ssmred._require import require

require("jax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax import lax  # noqa: E402

from ssmred.errors import DimensionError  # noqa: E402

__all__ = ["diagonal_scan", "diagonal_scan_sequential"]


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
