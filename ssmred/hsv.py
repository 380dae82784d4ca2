r"""Hankel singular values by the square-root method.

With Gramian factors :math:`P = L_c L_c^H`, :math:`Q = L_o L_o^H`, the Hankel singular values are the
singular values of :math:`L_o^H L_c`, since :math:`\sigma_i^2 = \lambda_i(PQ) = \lambda_i(L_c^H Q L_c)
= \sigma_i(L_o^H L_c)^2`. They are real, non-negative and invariant under state coordinate changes.
Taking ``sqrt(eigvals(P @ Q))`` instead squares the condition number, loses the small values and can
return NaN or complex numbers; ssmred never does that.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import scipy.linalg as spla

from ssmred._require import require
from ssmred._threads import kernel
from ssmred._typing import ArrayLike, HSVArray
from ssmred.backends import GramianMethod
from ssmred.gramians import _check_diagonal_inputs, _diag_size, diagonal_gramian_factors
from ssmred.statespace import StateSpace

__all__ = ["HankelSVD", "hankel_singular_values", "hankel_svd", "hsv_diagonal", "robust_svd"]


def robust_svd(M: np.ndarray, *, compute_uv: bool = True) -> Any:
    """SVD by LAPACK's divide-and-conquer ``gesdd`` (fast), falling back to ``gesvd`` if it fails.

    ``gesdd`` is 5-10x faster than ``gesvd`` when singular vectors are needed and equally accurate in
    the singular values; on the rare matrices where it does not converge, ``gesvd`` is used.

    Parameters
    ----------
    M
        Matrix to decompose.
    compute_uv
        Also return the singular vectors (``U, s, Vh``); otherwise only ``s``.

    Returns
    -------
    tuple or numpy.ndarray
        ``(U, s, Vh)`` or ``s`` (descending).

    Examples
    --------
    >>> robust_svd(np.diag([1.0, 3.0]), compute_uv=False)
    array([3., 1.])
    """
    try:
        return spla.svd(M, compute_uv=compute_uv, lapack_driver="gesdd")
    except spla.LinAlgError:
        return spla.svd(M, compute_uv=compute_uv, lapack_driver="gesvd")


class HankelSVD(NamedTuple):
    r"""Square-root data: factors and the SVD :math:`L_o^H L_c = U\,\mathrm{diag}(\sigma)\,V^H`."""

    Lc: np.ndarray
    Lo: np.ndarray
    U: np.ndarray
    hsv: np.ndarray
    Vh: np.ndarray


@kernel()
def hankel_svd(sys: StateSpace, *, method: GramianMethod = "auto") -> HankelSVD:
    r"""Gramian factors and the SVD of :math:`L_o^H L_c` (the data every square-root algorithm uses).

    Parameters
    ----------
    sys
        A stable system.
    method
        Gramian method, see :func:`ssmred.gramian_factors`.

    Returns
    -------
    HankelSVD
        ``(Lc, Lo, U, hsv, Vh)`` with ``hsv`` descending.

    Raises
    ------
    NotStableError
        If ``sys`` is not asymptotically stable.

    Examples
    --------
    >>> h = hankel_svd(StateSpace([[-1.0]], [[1.0]], [[1.0]]))
    >>> float(h.hsv[0])
    0.5
    """
    sr = _square_root(sys, method)
    Lc, Lo = sr.factors_original()
    return HankelSVD(Lc, Lo, sr.U, sr.hsv, sr.Vh)


@kernel()
def hankel_singular_values(sys: StateSpace, *, method: GramianMethod = "auto") -> HSVArray:
    r"""Hankel singular values :math:`\sigma_1 \ge \dots \ge \sigma_n \ge 0` of a stable system.

    Parameters
    ----------
    sys
        A stable system (real or complex, continuous or discrete).
    method
        Gramian method, see :func:`ssmred.gramian_factors`.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``(n_states,)``, descending; never NaN, never complex.

    Raises
    ------
    NotStableError
        If ``sys`` is not asymptotically stable.

    Notes
    -----
    :math:`\sigma_i = \sigma_i(L_o^H L_c)` with directly computed Gramian factors (square-root method).

    Examples
    --------
    MATLAB reference values (python-control's tests):

    >>> sys = StateSpace([[1.0, -2.0], [3.0, -4.0]], [[5.0], [7.0]], [[6.0, 8.0]], [[9.0]])
    >>> hankel_singular_values(sys).round(5)
    array([24.42686,  0.57314])
    """
    return _square_root(sys, method, svd=False, what="Hankel singular values").hsv


def _square_root(  # noqa: ANN202
    sys: StateSpace, method: str, *, svd: bool = True, what: str = "Gramians", order_hint: int | None = None
):
    from ssmred._dense import square_root
    from ssmred.gramians import _resolve

    backend = _resolve(sys, method)
    if backend == "slycot":
        require("slycot")
    return square_root(sys, backend, svd=svd, what=what, order_hint=order_hint)


@kernel(_diag_size)
def hsv_diagonal(lam: ArrayLike, B: ArrayLike, C: ArrayLike, *, dt: float | None) -> np.ndarray:
    r"""Hankel singular values of a batch of diagonal systems :math:`(\mathrm{diag}(\lambda), B, C)`.

    Gramian factors without a Schur form or Lyapunov solve (:func:`ssmred.gramians.diagonal_gramian_factors`:
    Hammarling's recursion on the diagonal, or the closed-form Gramians with a pivoted Cholesky
    factorisation for large systems), then the singular values of :math:`L_o^H L_c`. Cost
    :math:`O(n^2(m+p) + n^3)` per system.

    Parameters
    ----------
    lam
        Eigenvalues, shape ``(..., n)``.
    B
        Input matrices, shape ``(..., n, m)``.
    C
        Output matrices, shape ``(..., p, n)``.
    dt
        Required: ``None`` for continuous time, a float ``> 0`` for discrete time (deep SSM layers are
        discrete; there is no default, so a continuous eigenvalue set is never analysed as discrete).

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``(..., n)``, each row descending.

    Raises
    ------
    DimensionError
        If the shapes do not fit.
    NotStableError
        If some system is unstable.

    Examples
    --------
    >>> lam = np.array([[0.5, -0.25], [0.9, 0.1]])
    >>> B = np.ones((2, 2, 1)); C = np.ones((2, 1, 2))
    >>> hsv_diagonal(lam, B, C, dt=1.0).shape
    (2, 2)
    """
    lam_, B_, C_ = _check_diagonal_inputs(lam, B, C, dt=dt)
    batch = lam_.shape[:-1]
    n = lam_.shape[-1]
    lam_f = lam_.reshape(-1, n)
    B_f = B_.reshape(-1, n, B_.shape[-1])
    C_f = C_.reshape(-1, C_.shape[-2], n)
    out = np.empty((lam_f.shape[0], n))
    for i in range(lam_f.shape[0]):
        Lc, Lo = diagonal_gramian_factors(lam_f[i], B_f[i], C_f[i], dt=dt)
        out[i] = robust_svd(Lo.conj().T @ Lc, compute_uv=False)
    return out.reshape(*batch, n)
