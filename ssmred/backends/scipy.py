r"""Numerical kernels built on scipy.linalg (real and complex, continuous and discrete).

* :func:`lyapunov_factor` computes a Cholesky-type factor :math:`L` with :math:`P = L L^H` of the
  solution of :math:`A P + P A^H + B B^H = 0` (CT) or :math:`A P A^H - P + B B^H = 0` (DT) directly,
  by Hammarling's method on the complex Schur form, without ever forming :math:`P`. This keeps the
  accuracy of the small Hankel singular values (a factor of a computed ``P`` loses half the digits).
* :func:`equilibrate` scales the states by powers of two (exact in floating point) so that the rows
  and columns of ``[[A, B], [C, 0]]`` are balanced, like SLICOT's TB01ID.
* :func:`psd_factor` is a rank-revealing pivoted Cholesky factor of a given PSD matrix.

The Hammarling kernels themselves (:func:`triangular_lyapunov_factor`, :func:`diagonal_lyapunov_factor`
and their helpers) live in the private :mod:`ssmred.backends._hammarling` and are re-exported here;
this module owns the Schur forms, the scalings and the Gramian-factor drivers built on them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np
import scipy.linalg as spla
from scipy.linalg import lapack

from ssmred.backends._hammarling import _ZTRSV as _ZTRSV
from ssmred.backends._hammarling import _deflate_generator as _deflate_generator
from ssmred.backends._hammarling import _hammarling_pivot as _hammarling_pivot
from ssmred.backends._hammarling import _householder_drop_first as _householder_drop_first
from ssmred.backends._hammarling import _load_ztrsv as _load_ztrsv
from ssmred.backends._hammarling import _narrow_generator as _narrow_generator
from ssmred.backends._hammarling import _ShiftedTriangularSolver as _ShiftedTriangularSolver
from ssmred.backends._hammarling import diagonal_lyapunov_factor as diagonal_lyapunov_factor
from ssmred.backends._hammarling import triangular_lyapunov_factor as triangular_lyapunov_factor

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
