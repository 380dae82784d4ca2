r"""Numerical kernels built on scipy.linalg (real and complex, continuous and discrete).

* :func:`lyapunov_factor` computes a Cholesky-type factor :math:`L` with :math:`P = L L^H` of the
  solution of :math:`A P + P A^H + B B^H = 0` (CT) or :math:`A P A^H - P + B B^H = 0` (DT) directly,
  by Hammarling's method on the complex Schur form, without ever forming :math:`P`. This keeps the
  accuracy of the small Hankel singular values (a factor of a computed ``P`` loses half the digits).
* :func:`equilibrate` scales the states by powers of two (exact in floating point) so that the rows
  and columns of ``[[A, B], [C, 0]]`` are balanced, like SLICOT's TB01ID.
* :func:`psd_factor` is a rank-revealing pivoted Cholesky factor of a given PSD matrix.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np
import scipy.linalg as spla
from scipy.linalg import lapack

__all__ = [
    "equilibrate",
    "lyapunov_factor",
    "psd_factor",
    "lyapunov_factor_pair",
    "realify_factor",
    "triangular_lyapunov_factor",
]


def equilibrate(
    A: np.ndarray, B: np.ndarray, C: np.ndarray, *, max_sweeps: int = 32
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    r"""Diagonal state scaling :math:`x = D \tilde x` by powers of two that balances the system.

    Returns ``(D^{-1} A D, D^{-1} B, C D, d)`` with ``d = diag(D)``. Row ``i`` of ``[A, B]`` and column
    ``i`` of ``[A; C]`` (off-diagonal 1-norms) are made comparable, as SLICOT's TB01ID does. Scaling by
    powers of two is exact, so the transfer function and Hankel singular values are unchanged. One step
    changes a state's scale by at most ``2**64`` and never makes an entry overflow, so extreme data
    (``B * 1e50``) converge over several sweeps instead of producing ``inf``.

    Parameters
    ----------
    A, B, C
        System matrices.
    max_sweeps
        Upper bound on the number of passes over the states.

    Returns
    -------
    tuple
        ``(A_scaled, B_scaled, C_scaled, d)``.

    Examples
    --------
    >>> A = np.array([[-1.0, 1e4], [0.0, -2.0]]); B = np.array([[1.0], [1e-4]]); C = np.array([[1.0, 1e4]])
    >>> As, Bs, Cs, d = equilibrate(A, B, C)
    >>> bool(abs(As[0, 1]) < 1e4)
    True
    """
    n = A.shape[0]
    absA = np.abs(A)
    absA[np.diag_indices(n)] = 0.0
    col = absA.sum(axis=0) + np.abs(C).sum(axis=0)  # off-diagonal 1-norms of the columns of [A; C]
    row = absA.sum(axis=1) + np.abs(B).sum(axis=1)  # ... and of the rows of [A, B]
    logd = np.zeros(n, dtype=np.int64)
    huge = 2.0**900
    for _ in range(max_sweeps):
        changed = False
        for i in range(n):
            c, r = float(col[i]), float(row[i])
            if not (0.0 < c < huge and 0.0 < r < huge):
                continue
            e = max(-64, min(64, int(round(0.5 * math.log2(r / c)))))
            if e == 0:
                continue
            f = math.ldexp(1.0, e)
            if c * f + r / f >= 0.95 * (c + r):
                continue
            changed = True
            logd[i] += e
            # column i of A and C grows by f, row i of A and B shrinks by f; update the sums in O(n)
            row += absA[:, i] * (f - 1.0)
            col += absA[i, :] * (1.0 / f - 1.0)
            col[i] = c * f
            row[i] = r / f
            absA[:, i] *= f
            absA[i, :] /= f
        if not changed:
            break
    d = np.ldexp(1.0, logd)
    if not logd.any():
        return np.array(A), np.array(B), np.array(C), d
    return A * (d[None, :] / d[:, None]), B / d[:, None], C * d[None, :], d


def io_scaling(A: np.ndarray, B: np.ndarray, C: np.ndarray) -> tuple[float, float]:
    r"""Powers of two :math:`\beta, \gamma` that bring :math:`\|B\|` and :math:`\|C\|` to the size of :math:`\|A\|`.

    Scaling the input and output by constants, :math:`\tilde B = B/\beta`, :math:`\tilde C = C/\gamma`,
    scales the Gramians by :math:`\beta^{-2}`, :math:`\gamma^{-2}` and the Hankel singular values by
    :math:`(\beta\gamma)^{-1}` exactly (powers of two). Balancing the states afterwards can then not
    be pulled to extreme gradings of ``A`` by an extreme input or output scale (``B * 1e50``).

    Parameters
    ----------
    A, B, C
        System matrices.

    Returns
    -------
    tuple of float
        ``(beta, gamma)``; ``1.0`` for an all-zero ``B`` or ``C``.

    Examples
    --------
    >>> np.log2(io_scaling(np.eye(2), np.full((2, 1), 1e50), np.full((1, 2), 1e-50)))
    array([ 167., -166.])
    """
    ref = max(_norm1(A), _TINY * 2**60)

    def power(M: np.ndarray) -> float:
        v = _norm1(M)
        return 1.0 if v == 0.0 or not np.isfinite(v) else math.ldexp(1.0, round(math.log2(v / ref)))

    return power(B), power(C)


def _norm1(M: np.ndarray) -> float:
    return float(np.abs(M).sum(axis=0).max()) if M.size else 0.0


_TINY = float(np.finfo(float).tiny)


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


def realify_factor(L: np.ndarray) -> np.ndarray:
    r"""Real factor :math:`R` with :math:`R R^T = \mathrm{Re}(L L^H)`.

    Computed by a QR factorisation of :math:`[\mathrm{Re}L,\ \mathrm{Im}L]^T`.

    Parameters
    ----------
    L
        Complex factor whose Gramian :math:`L L^H` is real (a real system's Gramian).

    Returns
    -------
    numpy.ndarray
        Real lower-triangular factor of shape ``(n, n)``.
    """
    M = np.vstack([L.real.T, L.imag.T])
    R = spla.qr(M, mode="r")[0][: L.shape[0]]
    return R.T


@functools.cache
def _gees(dtype_char: str) -> Callable[..., tuple]:
    return lapack.get_lapack_funcs("gees", dtype=np.dtype(dtype_char))


@functools.lru_cache(maxsize=256)
def _gees_lwork(dtype_char: str, n: int) -> int:
    """Optimal workspace of ``?gees`` for order ``n`` (a workspace query, cached: blocked Hessenberg step)."""
    work = _gees(dtype_char)(_no_sort, np.zeros((n, n), dtype=np.dtype(dtype_char)), lwork=-1)[-2]
    return max(1, int(np.real(work[0])), 3 * n)


def _no_sort(*_: object) -> None:  # pragma: no cover - never called (sort_t=0)
    return None


def real_schur(A: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Real Schur form ``A = Z T Z^T`` by LAPACK ``dgees`` (no scipy front end: ~10 us less per call).

    Parameters
    ----------
    A
        Real square matrix (finite).

    Returns
    -------
    tuple of numpy.ndarray
        ``(T, Z, eigenvalues)``; ``T`` quasi upper triangular, ``Z`` orthogonal (Fortran order).

    Raises
    ------
    numpy.linalg.LinAlgError
        If the QR algorithm does not converge.

    Examples
    --------
    >>> T, Z, w = real_schur(np.array([[0.0, 1.0], [-2.0, -3.0]]))
    >>> np.sort(w.real)
    array([-2., -1.])
    """
    A = np.asarray(A, dtype=np.float64)
    n = A.shape[0]
    T, _sdim, wr, wi, Z, _work, info = _gees("d")(_no_sort, A, sort_t=0, lwork=_gees_lwork("d", n))
    if info != 0:
        raise spla.LinAlgError(f"the real Schur decomposition did not converge (LAPACK dgees info={info})")
    return T, Z, wr + 1j * wi


def complex_schur(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Complex Schur form ``A = Z S Z^H``; for real ``A`` via the (cheaper) real Schur form + rsf2csf."""
    if np.iscomplexobj(A):
        A = np.asarray(A, dtype=np.complex128)
        n = A.shape[0]
        S, _sdim, _w, Z, _work, info = _gees("D")(_no_sort, A, sort_t=0, lwork=_gees_lwork("D", n))
        if info != 0:
            raise spla.LinAlgError(f"the complex Schur decomposition did not converge (LAPACK zgees info={info})")
        return S, Z
    T, Z, _ = real_schur(A)
    return _real_to_complex_schur(T, Z)


def _real_to_complex_schur(T: np.ndarray, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Triangularise the 2x2 blocks of a real Schur form by complex Givens rotations (as ``rsf2csf``).

    Same algorithm as ``scipy.linalg.rsf2csf``, with the block eigenvalue in closed form instead of a
    call to ``eigvals`` per block (which dominated the cost for small ``n``).
    """
    S = np.array(T, dtype=np.complex128)
    Zc = np.array(Z, dtype=np.complex128)
    n = S.shape[0]
    eps = np.finfo(float).eps
    for m in range(n - 1, 0, -1):
        sub = S[m, m - 1]
        if abs(sub) > eps * (abs(S[m - 1, m - 1]) + abs(S[m, m])):
            a, b, d = S[m - 1, m - 1], S[m - 1, m], S[m, m]
            half = 0.5 * (a - d)
            mu = half + np.sqrt(half * half + b * sub)  # an eigenvalue of the block, minus d
            r = np.hypot(abs(mu), abs(sub))
            c, s = mu / r, sub / r
            G = np.array([[np.conj(c), s], [-s, c]])
            S[m - 1 : m + 1, m - 1 :] = G @ S[m - 1 : m + 1, m - 1 :]
            Gh = G.conj().T
            S[: m + 1, m - 1 : m + 1] = S[: m + 1, m - 1 : m + 1] @ Gh
            Zc[:, m - 1 : m + 1] = Zc[:, m - 1 : m + 1] @ Gh
        S[m, m - 1] = 0.0
    return np.triu(S), Zc


def lyapunov_factor(A: np.ndarray, B: np.ndarray, *, discrete: bool) -> np.ndarray:
    r"""Factor :math:`L` of the Gramian, :math:`P = L L^H`, for a stable ``A`` (dense, any structure).

    Complex Schur form :math:`A = Z S Z^H`, then Hammarling's method on :math:`(S, Z^H B)` and
    :math:`L = Z U`. For real input the factor is returned real.

    Parameters
    ----------
    A, B
        State and input matrices.
    discrete
        Solve the Stein equation :math:`A P A^H - P + B B^H = 0` instead of the CT equation.

    Returns
    -------
    numpy.ndarray
        Factor of shape ``(n, n)`` (float64 for real input, complex128 otherwise).

    Examples
    --------
    >>> A = np.array([[-1.0, 2.0], [0.0, -3.0]]); B = np.array([[1.0], [1.0]])
    >>> L = lyapunov_factor(A, B, discrete=False)
    >>> P = L @ L.T
    >>> bool(np.allclose(A @ P + P @ A.T + B @ B.T, 0))
    True
    """
    real = not (np.iscomplexobj(A) or np.iscomplexobj(B))
    S, Z = complex_schur(A)
    U = triangular_lyapunov_factor(S, Z.conj().T @ B, discrete=discrete)
    L = Z @ U
    return realify_factor(L) if real else L


def lyapunov_factor_pair(
    A: np.ndarray,
    B: np.ndarray,
    C: np.ndarray,
    *,
    discrete: bool,
    schur: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Both Gramian factors from one complex Schur form.

    With :math:`A = Z S Z^H` and the reversal permutation :math:`J`,
    :math:`A^H = (ZJ)(J S^H J)(ZJ)^H` where :math:`J S^H J` is again upper triangular, so the
    observability factor needs no second Schur decomposition.

    Parameters
    ----------
    A, B, C
        System matrices, ``A`` stable.
    discrete
        Discrete-time equations.
    schur
        A precomputed complex Schur form ``(S, Z)`` of ``A`` (see :func:`complex_schur`).

    Returns
    -------
    tuple of numpy.ndarray
        ``(Lc, Lo)`` with :math:`P = L_c L_c^H`, :math:`Q = L_o L_o^H` (real for real input).
    """
    real = not (np.iscomplexobj(A) or np.iscomplexobj(B) or np.iscomplexobj(C))
    S, Z = complex_schur(A) if schur is None else schur
    Uc = triangular_lyapunov_factor(S, Z.conj().T @ B, discrete=discrete)
    ZJ = Z[:, ::-1]
    SJ = S.conj().T[::-1, ::-1]
    Uo = triangular_lyapunov_factor(SJ, ZJ.conj().T @ np.conj(C).T, discrete=discrete)
    Lc, Lo = Z @ Uc, ZJ @ Uo
    if real:
        return realify_factor(Lc), realify_factor(Lo)
    return Lc, Lo


def psd_factor(P: np.ndarray, *, rtol: float | None = None) -> np.ndarray:
    r"""Rank-revealing factor :math:`L` (``n x n``) with :math:`L L^H \approx P` for Hermitian PSD ``P``.

    Pivoted Cholesky (LAPACK ``?pstrf``): :math:`\Pi^T P \Pi = R^H R`, :math:`L = \Pi R^H`, columns
    beyond the numerical rank set to zero. Never produces NaN on semidefinite input.

    Parameters
    ----------
    P
        Hermitian positive semidefinite matrix.
    rtol
        Relative pivot tolerance: pivots ``<= rtol * max(diag(P))`` end the factorisation. The
        default 0 stops only at non-positive pivots, so no information is thrown away; for a
        closed-form diagonal Gramian (entries accurate relative to :math:`\sqrt{P_{ii}P_{jj}}`)
        this keeps Hankel singular values accurate to about ``1e-10 * sigma_1``.

    Returns
    -------
    numpy.ndarray
        The factor, same dtype as ``P``.

    Examples
    --------
    >>> L = psd_factor(np.array([[4.0, 2.0], [2.0, 1.0]]))   # rank 1
    >>> bool(np.allclose(L @ L.T, [[4, 2], [2, 1]]))
    True
    """
    P = np.asarray(P)
    n = P.shape[0]
    cplx = np.iscomplexobj(P)
    P = np.array(P, dtype=np.complex128 if cplx else np.float64, order="F")
    P = 0.5 * (P + P.conj().T)
    diag_max = float(np.max(P.diagonal().real)) if n else 0.0
    if diag_max <= 0.0:
        return np.zeros_like(P)
    tol = (0.0 if rtol is None else float(rtol)) * diag_max
    pstrf = lapack.zpstrf if cplx else lapack.dpstrf
    R, piv, rank, info = pstrf(P, tol=tol, lower=0)
    if info < 0:
        raise RuntimeError(f"LAPACK pstrf failed with info={info}")
    R = np.triu(R)
    R[rank:, :] = 0.0
    L = np.zeros_like(R)
    L[piv - 1, :] = R.conj().T
    return L
