r"""Hammarling's recursion: triangular factors of Lyapunov/Stein solutions, never forming the Gramian.

This private module owns the kernels behind :mod:`ssmred.backends.scipy`:

* :func:`triangular_lyapunov_factor` for an upper-triangular (complex Schur) ``S``, with the
  in-place BLAS ``ztrsv`` solver of the shifted leading blocks (:class:`_ShiftedTriangularSolver`);
* :func:`diagonal_lyapunov_factor`, the same recursion for a diagonal ``A`` in :math:`O(n^2 m)`;
* the helpers both share (generator narrowing, pivot, deflation by one Householder reflection).

The Schur forms and the Gramian-factor drivers (:func:`ssmred.backends.scipy.lyapunov_factor`,
:func:`ssmred.backends.scipy.lyapunov_factor_pair`) stay in :mod:`ssmred.backends.scipy`, which
re-exports these names.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import scipy.linalg as spla

__all__ = ["diagonal_lyapunov_factor", "triangular_lyapunov_factor"]


def _householder_drop_first(X: np.ndarray, v: np.ndarray) -> np.ndarray:
    r"""Return ``Y`` with :math:`Y Y^H = X (I - v v^H) X^H` for a unit vector ``v`` (one column less).

    With the Householder reflector :math:`H = I - 2 w w^H`, :math:`H v = \beta e_1`, one has
    :math:`I - v v^H = H (I - e_1 e_1^H) H`, so ``Y = (X H)[:, 1:]``.
    """
    v = v / np.sqrt(np.vdot(v, v).real)
    v1 = v[0]
    beta = -v1 / abs(v1) if v1 != 0 else -1.0
    w = v.copy()
    w[0] -= beta
    wn = np.sqrt(np.vdot(w, w).real)
    if wn == 0.0:  # v = beta e1 already: I - v v^H = I - e1 e1^H
        return X[:, 1:].copy()
    w /= wn
    XH = X - 2.0 * np.outer(X @ w, w.conj())
    return XH[:, 1:]


def _load_ztrsv() -> Callable[..., None] | None:
    """BLAS ``ztrsv`` from scipy's Cython BLAS table, callable with an explicit leading dimension.

    scipy's f2py wrappers copy non-contiguous matrices; Hammarling's recursion solves with the
    leading ``k x k`` block of the Schur form for every ``k``, and those copies dominate the run time
    (O(n^3) memory traffic). Calling BLAS with ``lda = n`` avoids them. Returns ``None`` when the
    capsule is unavailable; callers then fall back to copying.
    """
    try:
        import ctypes

        from scipy.linalg import cython_blas

        capsule = cython_blas.__pyx_capi__["ztrsv"]
        get_name = ctypes.pythonapi.PyCapsule_GetName
        get_name.restype = ctypes.c_char_p
        get_name.argtypes = [ctypes.py_object]
        get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
        get_pointer.restype = ctypes.c_void_p
        get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
        address = get_pointer(capsule, get_name(capsule))
        c_int_p = ctypes.POINTER(ctypes.c_int)
        proto = ctypes.CFUNCTYPE(
            None, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, c_int_p, ctypes.c_void_p, c_int_p,
            ctypes.c_void_p, c_int_p,
        )  # fmt: skip
        raw = proto(address)
    except Exception:  # pragma: no cover - depends on the scipy build
        return None

    def ztrsv(k: int, a: np.ndarray, lda: int, x: np.ndarray) -> None:
        raw(b"U", b"N", b"N", ctypes.byref(ctypes.c_int(k)), a.ctypes.data, ctypes.byref(ctypes.c_int(lda)),
            x.ctypes.data, ctypes.byref(ctypes.c_int(1)))  # fmt: skip

    ztrsv.raw = raw  # type: ignore[attr-defined]
    return ztrsv


_ZTRSV = _load_ztrsv()


class _ShiftedTriangularSolver:
    r"""Solves :math:`(S_{1:k,1:k} + \mu I)\,x = b` for upper-triangular ``S``, any ``k`` and shift ``μ``.

    The fast path shifts the diagonal of one Fortran-ordered copy of ``S`` in place (through a strided
    view of the diagonal), calls BLAS ``ztrsv`` on its leading block with ``lda = n`` and restores the
    diagonal from a saved copy, so no block is ever copied and the argument objects of the foreign call
    are built once.
    """

    def __init__(self, S: np.ndarray, *, use_blas: bool = True) -> None:
        self.S = np.array(S, dtype=np.complex128, order="F")
        self.n = n = self.S.shape[0]
        self.use_blas = use_blas and _ZTRSV is not None
        self.diag = self.S.reshape(-1, order="F")[:: n + 1]  # a view of the diagonal
        self.diag0 = self.diag.copy()
        if self.use_blas:
            import ctypes

            self._k = ctypes.c_int(0)
            self._args = (
                ctypes.byref(self._k), self.S.ctypes.data, ctypes.byref(ctypes.c_int(n)),
            )  # fmt: skip
            self._one = ctypes.byref(ctypes.c_int(1))
            self._raw = _ZTRSV.raw  # type: ignore[union-attr]

    def solve(self, k: int, shift: complex, rhs: np.ndarray) -> np.ndarray:
        """Solve in place on ``rhs`` (a fresh complex128 vector of length ``k``) and return it."""
        if not self.use_blas:
            W = np.array(self.S[:k, :k])
            W[np.diag_indices(k)] += shift
            return spla.solve_triangular(W, rhs, check_finite=False)
        x = rhs if (rhs.dtype == np.complex128 and rhs.flags.c_contiguous) else np.ascontiguousarray(rhs, np.complex128)
        d = self.diag[:k]
        np.add(self.diag0[:k], shift, out=d)
        self._k.value = k
        try:
            self._raw(b"U", b"N", b"N", *self._args, x.ctypes.data, self._one)
        finally:
            d[...] = self.diag0[:k]
        return x


def _narrow_generator(B: np.ndarray, n: int, dtype: np.dtype) -> np.ndarray:
    """A generator with at most ``n`` columns and the same ``B B^H`` (``B B^H = R^H R`` from a QR)."""
    Bw = np.array(B, dtype=dtype)
    if Bw.shape[1] > n:
        Bw = spla.qr(Bw.conj().T, mode="r")[0][:n].conj().T
    return Bw


def _hammarling_pivot(mu: complex, b: np.ndarray, *, discrete: bool) -> float:
    r"""Diagonal entry of the factor: :math:`\alpha = \|b\| / \sqrt{-2\,\mathrm{Re}\,\mu}` (CT).

    In discrete time :math:`\alpha = \|b\| / \sqrt{1 - |\mu|^2}`.
    """
    nb = np.sqrt(np.vdot(b, b).real)
    denom = (1.0 - abs(mu) ** 2) if discrete else (-2.0 * mu.real)
    return float(nb / np.sqrt(denom))


def _deflate_generator(
    B1: np.ndarray, u: np.ndarray, c: np.ndarray, mu: complex, *, discrete: bool, z: np.ndarray | None = None
) -> np.ndarray:
    r"""Right-hand side generator of the remaining ``k x k`` problem after eliminating one state.

    CT: :math:`B_1 - u c^H`. DT: ``X (I - v v^H) X^H`` with :math:`X = [z, B_1]`,
    :math:`v = [\bar\mu; c]` (unit norm), via one Householder reflection.
    """
    if not discrete:
        return B1 - np.outer(u, c.conj())
    assert z is not None
    return _householder_drop_first(np.column_stack([z, B1]), np.concatenate([[np.conj(mu)], c]))


def triangular_lyapunov_factor(S: np.ndarray, B: np.ndarray, *, discrete: bool, use_blas: bool = True) -> np.ndarray:
    r"""Upper-triangular :math:`U` with :math:`P = U U^H` for an upper-triangular stable ``S``.

    Solves :math:`S P + P S^H + B B^H = 0` (CT) or :math:`S P S^H - P + B B^H = 0` (DT) by Hammarling's
    recursion, eliminating the last state first. Partition :math:`S = [[S_1, s],[0, \lambda]]`,
    :math:`B = [B_1; b]`, :math:`U = [[U_1, u],[0, \alpha]]`:

    * CT: :math:`\alpha = \|b\| / \sqrt{-2\,\mathrm{Re}\,\lambda}`,
      :math:`(S_1 + \bar\lambda I) u = -B_1 c - \alpha s` with :math:`c = b^H/\alpha`, and the
      remaining problem has :math:`\hat B_1 = B_1 - u c^H`.
    * DT: :math:`\alpha = \|b\| / \sqrt{1 - |\lambda|^2}`,
      :math:`(\bar\lambda S_1 - I) u = -B_1 c - \bar\lambda \alpha s`; with :math:`z = S_1 u + \alpha s`,
      :math:`X = [z, B_1]` and the unit vector :math:`v = [\bar\lambda; c]`, the remaining right-hand
      side is :math:`X (I - v v^H) X^H`, of rank ``m`` (one Householder reflection).

    Parameters
    ----------
    S
        Upper-triangular complex matrix (complex Schur form), stable.
    B
        Input matrix in the same coordinates, shape ``(n, m)``.
    discrete
        Discrete-time (Stein) equation instead of the continuous one.
    use_blas
        Call BLAS ``ztrsv`` on the leading blocks in place (fast); ``False`` copies each block
        (reference path, used to test the fast one).

    Returns
    -------
    numpy.ndarray
        Upper-triangular complex ``U`` of shape ``(n, n)``.

    References
    ----------
    hammarling1982
    """
    n = S.shape[0]
    Bw = np.array(_narrow_generator(B, n, np.dtype(np.complex128)), dtype=np.complex128, order="C")
    U = np.zeros((n, n), dtype=np.complex128, order="F")
    solver = _ShiftedTriangularSolver(S, use_blas=use_blas)
    SF = solver.S
    lams = solver.diag0.tolist()
    sqrt = math.sqrt
    for k in range(n - 1, -1, -1):
        lam = lams[k]
        b = Bw[k]
        nb = sqrt(np.vdot(b, b).real)
        denom = (1.0 - abs(lam) ** 2) if discrete else (-2.0 * lam.real)
        alpha = nb / sqrt(denom)
        U[k, k] = alpha
        if k == 0:
            break
        B1 = Bw[:k]
        if alpha == 0.0:
            Bw = B1
            continue
        cc = b * (1.0 / alpha)  # conj(c), c = b^H / alpha
        s = SF[:k, k]
        lam_c = lam.conjugate()
        if discrete:
            rhs = B1 @ cc.conj()
            rhs += (lam_c * alpha) * s
            np.negative(rhs, out=rhs)
            if abs(lam) > 1e-150:  # (conj(lam) S1 - I) u = rhs  <=>  (S1 - I/conj(lam)) u = rhs/conj(lam)
                rhs *= 1.0 / lam_c
                u = solver.solve(k, -1.0 / lam_c, rhs)
            else:
                u = -rhs
            z = SF[:k, :k] @ u
            z += alpha * s
            Bw = _householder_drop_first(np.column_stack([z, B1]), np.concatenate([[lam_c], cc.conj()]))
        else:
            rhs = B1 @ cc.conj()
            rhs += alpha * s
            np.negative(rhs, out=rhs)
            u = solver.solve(k, lam_c, rhs)
            B1 -= u[:, None] * cc[None, :]
        U[:k, k] = u
    return U


def diagonal_lyapunov_factor(lam: np.ndarray, B: np.ndarray, *, discrete: bool) -> np.ndarray:
    r"""Upper-triangular :math:`U` with :math:`P = U U^H` for :math:`A = \mathrm{diag}(\lambda)`, in :math:`O(n^2 m)`.

    Hammarling's recursion (see :func:`triangular_lyapunov_factor`) specialised to a diagonal ``S``:
    the coupling column ``s`` vanishes and the triangular solves become divisions,
    :math:`u_i = -(B_1 c)_i / (\lambda_i + \bar\lambda_k)` (CT) or
    :math:`u_i = -(B_1 c)_i / (\bar\lambda_k \lambda_i - 1)` (DT). Unlike a factorisation of the
    explicitly formed closed-form Gramian, it keeps the relative accuracy of tiny Hankel singular
    values (a pivoted Cholesky of ``P`` loses everything below ~``eps * ||P||``). Real input gives a
    real factor.

    Parameters
    ----------
    lam
        Eigenvalues, shape ``(n,)``, stable.
    B
        Input matrix, shape ``(n, m)``.
    discrete
        Stein equation instead of the continuous Lyapunov equation.

    Returns
    -------
    numpy.ndarray
        Upper-triangular ``U`` of shape ``(n, n)``.

    Examples
    --------
    >>> U = diagonal_lyapunov_factor(np.array([-1.0, -2.0]), np.ones((2, 1)), discrete=False)
    >>> np.round(U @ U.T, 6)
    array([[0.5     , 0.333333],
           [0.333333, 0.25    ]])
    """
    lam = np.asarray(lam)
    dtype = np.result_type(lam, B, np.float64)
    lam = lam.astype(dtype)
    n = lam.size
    Bw = _narrow_generator(B, n, dtype)
    U = np.zeros((n, n), dtype=dtype)
    for k in range(n - 1, -1, -1):
        mu = lam[k]
        b = Bw[k]
        alpha = _hammarling_pivot(mu, b, discrete=discrete)
        U[k, k] = alpha
        if k == 0:
            break
        B1 = Bw[:k]
        if alpha == 0.0:
            Bw = B1
            continue
        c = b.conj() / alpha
        if discrete:  # (conj(mu) diag(lam) - I) u = -B1 c, elementwise
            u = -(B1 @ c) / (np.conj(mu) * lam[:k] - 1.0)
            Bw = _deflate_generator(B1, u, c, mu, discrete=True, z=lam[:k] * u)
        else:  # (diag(lam) + conj(mu) I) u = -B1 c
            u = -(B1 @ c) / (lam[:k] + np.conj(mu))
            Bw = _deflate_generator(B1, u, c, mu, discrete=False)
        U[:k, k] = u
    return U
