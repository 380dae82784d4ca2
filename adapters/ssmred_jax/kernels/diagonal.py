r"""Re-diagonalisation of reduced systems and the LRU parameters of diagonal modes (step 5 of the kernels).

:math:`A_r = V\mathrm{diag}(\mu)V^{-1}` with :math:`B_d = V^{-1}B`, :math:`C_d = CV`, modes balanced
and sorted, the condition number of :math:`V` reported (:func:`diagonalize`, :class:`DiagonalForm`);
and the LRU's :math:`(\nu, \theta, \gamma, B, C)` of diagonal modes with the edge cases of SPEC §4
(:func:`lru_parameters_from_diagonal`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

from ssmred._require import require

require("jax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax import lax  # noqa: E402

from ssmred_jax.kernels._common import _CDTYPE, _as_complex, _mH, _orders  # noqa: E402

__all__ = ["PADDING_EIGENVALUE", "DiagonalForm", "diagonalize", "lru_parameters_from_diagonal"]


#: Eigenvalue given to the padding states by :func:`diagonalize` with orders: outside the unit disc, so a
#: padding mode is never mistaken for a mode of a stable reduced system.
PADDING_EIGENVALUE = 1.5


class DiagonalForm(NamedTuple):
    r"""A batch of diagonal realizations :math:`(\mu, B_d, C_d)` of :math:`(A, B, C)` and the change of basis.

    Attributes
    ----------
    mu
        Eigenvalues, ``(batch, n)`` (with orders: the ``r`` modes of the system first, then padding).
    B, C
        Diagonal-form input and output matrices.
    W
        :math:`x_d = Wx` (``W = diag(s) V^{-1}``, rows permuted like ``mu``).
    V
        :math:`x = Vx_d` (``V diag(1/s)``, columns permuted).
    cond
        1-norm condition number of the unit-column eigenvector matrix of the system's modes (``inf`` if
        singular, or if the padding could not be told apart).
    """

    mu: jax.Array
    B: jax.Array
    C: jax.Array
    W: jax.Array
    V: jax.Array
    cond: jax.Array


def _norm1(M: jax.Array) -> jax.Array:
    return jnp.max(jnp.sum(jnp.abs(M), axis=-2), axis=-1)


def diagonalize(
    A: jax.Array, B: jax.Array, C: jax.Array, *, sort: bool = True, r: jax.Array | None = None
) -> DiagonalForm:
    r"""Re-diagonalise a batch of systems, :math:`A = V\mathrm{diag}(\mu)V^{-1}`, :math:`B_d = V^{-1}B`, :math:`C_d=CV`.

    The transfer function is unchanged. Each mode's input row and output column are scaled to equal
    norms (:math:`\|B_{d,i:}\| = \|C_{d,:i}\|`), and with ``sort`` the modes are ordered by
    :math:`\|B_{d,i:}\|\|C_{d,:i}\|/(1-|\mu_i|^2)` (the Hankel singular value of the mode alone), largest
    first — the conventions of the torch adapter.

    With orders ``r`` the system of member ``g`` is the leading ``r_g x r_g`` block (first ``r_g`` rows of
    ``B``, columns of ``C``) of arrays of a static size, as returned by :func:`truncate_masked`: the
    padding block is replaced by :data:`PADDING_EIGENVALUE` times the identity (decoupled, outside the
    unit disc), its modes are recognised by their eigenvectors (supported on the padding coordinates)
    and sorted last. One compiled program then serves every set of orders.

    Parameters
    ----------
    A
        State matrices, shape ``(batch, n, n)``.
    B
        Input matrices, shape ``(batch, n, m)``.
    C
        Output matrices, shape ``(batch, p, n)``.
    sort
        Order the modes by their own Hankel singular value (required with ``r``).
    r
        Optional orders, int array ``(batch,)``.

    Returns
    -------
    DiagonalForm
        ``(mu, B, C, W, V, cond)``; a (nearly) defective ``A`` shows as a huge or infinite ``cond``.

    Raises
    ------
    ValueError
        For ``r`` without ``sort``.

    Examples
    --------
    >>> with jax.enable_x64(True):
    ...     A = jnp.array([[[0.5, 1.0], [0.0, 0.25]]], dtype=jnp.complex128)
    ...     d = diagonalize(A, jnp.ones((1, 2, 1)), jnp.ones((1, 1, 2)))
    ...     print(sorted(float(m) for m in d.mu.real.ravel()))
    [0.25, 0.5]
    """
    if r is not None and not sort:
        raise ValueError("diagonalize with orders r needs sort=True (the padding modes are sorted last)")
    A, B, C = _as_complex(A), _as_complex(B), _as_complex(C)
    G, n = A.shape[0], A.shape[-1]
    if r is not None:
        orders = _orders(r, G, n)
        real = jnp.arange(n, dtype=jnp.int32)[None, :] < orders[:, None]
        A = jnp.where(real[:, :, None] & real[:, None, :], A, 0.0)
        A = A + jnp.where(~real, PADDING_EIGENVALUE, 0.0).astype(_CDTYPE)[:, :, None] * jnp.eye(n, dtype=_CDTYPE)[None]
        B = jnp.where(real[:, :, None], B, 0.0)
        C = jnp.where(real[:, None, :], C, 0.0)
    mu, V = jnp.linalg.eig(A)
    # V^{-1} = R^{-1} Q^H from V = QR (backward stable; compiles in a fraction of the time of an LU inverse)
    Qv, Rv = jnp.linalg.qr(V)
    Vinv = lax.linalg.triangular_solve(Rv, _mH(Qv), left_side=True, lower=False)
    Bd = Vinv @ B
    Cd = C @ V
    nb = jnp.linalg.norm(Bd, axis=-1)
    nc = jnp.linalg.norm(Cd, axis=-2)
    ok = (nb > 0) & (nc > 0) & jnp.isfinite(nb) & jnp.isfinite(nc)
    s = jnp.where(ok, jnp.sqrt(nc / jnp.where(ok, nb, 1.0)), 1.0)
    sc = s.astype(_CDTYPE)
    Bd = Bd * sc[..., :, None]
    Cd = Cd / sc[..., None, :]
    Vs = V / sc[..., None, :]
    W = Vinv * sc[..., :, None]
    if sort:
        modulus = jnp.maximum(jnp.abs(mu), 1e-300)
        key = (nb * nc) / jnp.maximum(-jnp.expm1(2.0 * jnp.log(modulus)), 1e-300)
        key = jnp.where(jnp.isfinite(key), key, jnp.inf)
        if r is not None:
            weight_pad = jnp.sum(jnp.where(real[:, :, None], 0.0, jnp.abs(V) ** 2), axis=-2)
            padding = weight_pad > 0.5 * jnp.sum(jnp.abs(V) ** 2, axis=-2)  # (batch, n), one flag per mode
            key = jnp.where(padding, -1.0, key)
        order = jnp.argsort(key, axis=-1, descending=True, stable=True)
        mu = jnp.take_along_axis(mu, order, axis=-1)
        Bd = jnp.take_along_axis(Bd, order[..., :, None], axis=-2)
        Cd = jnp.take_along_axis(Cd, order[..., None, :], axis=-1)
        V = jnp.take_along_axis(V, order[..., None, :], axis=-1)
        Vs = jnp.take_along_axis(Vs, order[..., None, :], axis=-1)
        Vinv = jnp.take_along_axis(Vinv, order[..., :, None], axis=-2)
        W = jnp.take_along_axis(W, order[..., :, None], axis=-2)
    if r is None:
        cond = _norm1(V) * _norm1(Vinv)
        finite = jnp.all(jnp.isfinite(Vinv), axis=(-2, -1))
    else:
        both = real[:, :, None] & real[:, None, :]  # after sorting: system modes x system coordinates
        cond = _norm1(jnp.where(both, V, 0.0)) * _norm1(jnp.where(both, Vinv, 0.0))
        finite = jnp.all(jnp.isfinite(jnp.where(both, Vinv, 0.0)), axis=(-2, -1))
        finite = finite & (jnp.sum(~padding, axis=-1, dtype=jnp.int32) == orders)
    cond = jnp.where(finite, cond, jnp.inf)
    return DiagonalForm(mu, Bd, Cd, W, Vs, cond)


def lru_parameters_from_diagonal(
    mu: jax.Array,
    B: jax.Array,
    C: jax.Array,
    *,
    dtype: jnp.dtype | type,
    instability_tol: float = 1e-8,
    r: jax.Array | None = None,
) -> tuple[dict[str, jax.Array], jax.Array]:
    r"""LRU parameters (SPEC §4) for diagonal systems :math:`(\mathrm{diag}\mu, B, C)`, batched.

    .. math::

        \nu = \log(-\log|\mu|),\quad \theta = \log(\arg\mu \bmod 2\pi),\quad
        \gamma = \sqrt{1-|\mu|^2},\quad B_{re} + iB_{im} = B/\gamma,\quad C_{re} + iC_{im} = C.

    Edge cases (the torch adapter's): a phase of exactly 0 is stored as the equivalent :math:`2\pi`
    (finite :math:`\theta`); the decay rate :math:`-\log|\mu|` is floored at the machine epsilon of
    ``dtype`` (so :math:`|\mu| \ge 1` from round-off becomes :math:`e^{-\epsilon} < 1`) and capped at
    :math:`-\log(\text{tiny})` (for :math:`\mu = 0`); moduli above ``1 + instability_tol`` (or non-finite)
    are flagged in ``unstable``.

    Parameters
    ----------
    mu
        Eigenvalues, shape ``(batch, r)``.
    B
        Input matrices, shape ``(batch, r, H)``.
    C
        Output matrices, shape ``(batch, H, r)``.
    dtype
        Real dtype of the target layer (sets the floors above).
    instability_tol
        Moduli above ``1 + instability_tol`` are flagged as unstable.
    r
        Optional orders ``(batch,)``: only the leading ``r`` modes are checked (the rest is padding,
        see :func:`diagonalize`).

    Returns
    -------
    tuple
        ``(params, unstable)``: float64 arrays ``nu_log``, ``theta_log``, ``gamma_log`` ``(batch, r)``,
        ``B_re``, ``B_im`` ``(batch, r, H)``, ``C_re``, ``C_im`` ``(batch, H, r)``; a bool array ``(batch,)``.

    Examples
    --------
    >>> with jax.enable_x64(True):
    ...     mu = jnp.array([[0.5 + 0j]])
    ...     p, bad = lru_parameters_from_diagonal(mu, jnp.ones((1, 1, 1)), jnp.ones((1, 1, 1)), dtype=jnp.float32)
    ...     print(round(float(jnp.exp(p["theta_log"][0, 0])), 6), bool(bad[0]))
    6.283185 False
    """
    mu, B, C = _as_complex(mu), _as_complex(B), _as_complex(C)
    finfo = jnp.finfo(dtype)
    modulus = jnp.abs(mu)
    checked = (
        jnp.ones(mu.shape, dtype=bool)
        if r is None
        else jnp.arange(mu.shape[-1], dtype=jnp.int32)[None, :] < _orders(r, mu.shape[0], mu.shape[-1])[:, None]
    )
    unstable = jnp.any(checked & (modulus > 1.0 + instability_tol), axis=-1) | ~jnp.all(
        jnp.where(checked, jnp.isfinite(modulus), True), axis=-1
    )
    decay = jnp.clip(-jnp.log(modulus), float(finfo.eps), -math.log(float(finfo.tiny)))
    two_pi = 2.0 * math.pi
    phase = jnp.remainder(jnp.angle(mu), two_pi)
    phase = jnp.where(phase > 0.0, phase, two_pi)
    gamma_log = 0.5 * jnp.log(-jnp.expm1(-2.0 * decay))
    Bs = B * jnp.exp(-gamma_log).astype(_CDTYPE)[..., :, None]
    params = {
        "nu_log": jnp.log(decay),
        "theta_log": jnp.log(phase),
        "gamma_log": gamma_log,
        "B_re": jnp.real(Bs),
        "B_im": jnp.imag(Bs),
        "C_re": jnp.real(C),
        "C_im": jnp.imag(C),
    }
    return params, unstable
