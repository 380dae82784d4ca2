r"""Square-root balanced truncation of batched diagonal systems (kernel step 4).

:math:`T = L_cV_r\Sigma_r^{-1/2}`, :math:`T_i = \Sigma_r^{-1/2}U_r^HL_o^H` (so :math:`T_iT = I_r`) and the
reduced :math:`(T_i\,\mathrm{diag}(\lambda)\,T,\ T_iB,\ CT)`; per-system orders as a mask over a common
static size (:func:`truncate_masked`), or one static order (:func:`truncate_diagonal`).

References
----------
laub1987, antoulas2005
"""

from __future__ import annotations

from ssmred._require import require

require("jax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax import lax  # noqa: E402

from ssmred_jax.kernels._common import _CDTYPE, _as_complex, _mH, _orders  # noqa: E402
from ssmred_jax.kernels.gramians import HankelSVD, hankel_svd_diagonal  # noqa: E402, F401 (hankel_svd_diagonal: the doctests)

__all__ = ["truncate_diagonal", "truncate_masked"]


def truncate_masked(
    lam: jax.Array, B: jax.Array, C: jax.Array, svd: HankelSVD, r: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array, jax.Array]:
    r"""Square-root balanced truncation with one order per batch member, in arrays of the static size ``n``.

    As :func:`truncate_diagonal`, but ``r`` is an array (traced: one compiled program serves every set
    of orders) and the results keep the full size: the reduced quantities occupy the leading ``r``
    rows/columns and the rest is zero, i.e. :math:`\Sigma_r^{-1/2}` is extended by zeros. States with
    :math:`\sigma_i = 0` inside the leading ``r`` also get a zero scale.

    Parameters
    ----------
    lam, B, C
        The systems (shapes ``(batch, n)``, ``(batch, n, m)``, ``(batch, p, n)``).
    svd
        Their :func:`hankel_svd_diagonal`.
    r
        Orders, int array of shape ``(batch,)`` (or a scalar for all), ``1 <= r <= n``.

    Returns
    -------
    tuple of jax.Array
        ``(A, B_r, C_r, T, Ti)`` with shapes ``(batch, n, n)``, ``(batch, n, m)``, ``(batch, p, n)``,
        ``(batch, n, n)``, ``(batch, n, n)``; ``A[:, :r, :r]`` is the reduced state matrix.

    Examples
    --------
    >>> with jax.enable_x64(True):
    ...     lam = jnp.array([[0.5 + 0j, 0.1 + 0j]])
    ...     B, C = jnp.ones((1, 2, 1)), jnp.ones((1, 1, 2))
    ...     A, Br, Cr, T, Ti = truncate_masked(lam, B, C, hankel_svd_diagonal(lam, B, C), jnp.array([1]))
    ...     print(A.shape, float(jnp.abs(A[0, 1, 1])))
    (1, 2, 2) 0.0
    """
    G, n = lam.shape
    lam, B, C = _as_complex(lam), _as_complex(B), _as_complex(C)
    Lc, Lo, U, s, Vh = svd
    keep = (jnp.arange(n, dtype=jnp.int32)[None, :] < _orders(r, G, n)[:, None]) & (s > 0)
    scale = jnp.where(keep, lax.rsqrt(jnp.where(keep, s, 1.0)), 0.0).astype(_CDTYPE)
    T = (Lc @ _mH(Vh)) * scale[:, None, :]
    Ti = scale[:, :, None] * (_mH(U) @ _mH(Lo))
    A = (Ti * lam[:, None, :]) @ T
    return A, Ti @ B, C @ T, T, Ti


def truncate_diagonal(
    lam: jax.Array, B: jax.Array, C: jax.Array, svd: HankelSVD, r: int
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array, jax.Array]:
    r"""Square-root balanced truncation of a batch of diagonal systems to the common order ``r``.

    :math:`T = L_cV_r\Sigma_r^{-1/2}`, :math:`T_i = \Sigma_r^{-1/2}U_r^HL_o^H` (so :math:`T_iT = I_r`),
    reduced :math:`(T_i\,\mathrm{diag}(\lambda)\,T,\ T_iB,\ CT)` — the leading blocks of
    :func:`truncate_masked`.

    Parameters
    ----------
    lam, B, C
        The systems (shapes ``(batch, n)``, ``(batch, n, m)``, ``(batch, p, n)``).
    svd
        Their :func:`hankel_svd_diagonal`.
    r
        Reduced order (a Python int, static), ``1 <= r <= n``; needs :math:`\sigma_r > 0`.

    Returns
    -------
    tuple of jax.Array
        ``(A_r, B_r, C_r, T, Ti)`` with shapes ``(batch, r, r)``, ``(batch, r, m)``, ``(batch, p, r)``,
        ``(batch, n, r)``, ``(batch, r, n)``.

    Raises
    ------
    ValueError
        If ``r`` is not an int in ``[1, n]``.

    Examples
    --------
    >>> with jax.enable_x64(True):
    ...     lam = jnp.array([[0.5 + 0j, 0.1 + 0j]])
    ...     B, C = jnp.ones((1, 2, 1)), jnp.ones((1, 1, 2))
    ...     Ar, Br, Cr, T, Ti = truncate_diagonal(lam, B, C, hankel_svd_diagonal(lam, B, C), 1)
    ...     print(Ar.shape, bool(jnp.allclose(Ti @ T, 1.0)))
    (1, 1, 1) True
    """
    n = lam.shape[-1]
    if isinstance(r, bool) or not isinstance(r, int) or not 1 <= r <= n:
        raise ValueError(f"r must be an int with 1 <= r <= n_states={n}; got {r!r}")
    A, B_r, C_r, T, Ti = truncate_masked(lam, B, C, svd, jnp.asarray(r))
    return A[:, :r, :r], B_r[:, :r], C_r[:, :, :r], T[:, :, :r], Ti[:, :r]
