"""Thin wrappers around SLICOT routines (via slycot), used as a backend and as a test oracle.

SLICOT works in real arithmetic: every function here raises ``TypeError`` for complex input instead
of letting slycot cast it to real silently. Two defects of slycot 0.7.1 are avoided here:

* ``ab09bd`` is never called (its work array is undersized and SISO n >= 10 corrupts memory);
  singular perturbation uses ``ab09nd``.
* ``sb03od``'s default workspace, ``4 n``, is below SLICOT's documented minimum
  ``4 n + min(m, n)``: SB03OD writes past the end of it (heap corruption, seen as a crash at
  interpreter exit after an n = 1000 call). :func:`lyapunov_factor_pair` always passes a sufficient
  ``ldwork``.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as spla

from ssmred._require import require

__all__ = [
    "ab09ad",
    "ab09nd",
    "ab13dd",
    "balance",
    "lyapunov_factor",
    "lyapunov_factor_pair",
    "sb03od_ldwork",
    "sr_projections",
]


def _real(name: str, *arrays: np.ndarray) -> None:
    if any(np.iscomplexobj(a) for a in arrays):
        raise TypeError(
            f"{name}: SLICOT is real-only and would silently drop imaginary parts; use method='scipy' "
            "or the real realization sys.to_real()"
        )


def sb03od_ldwork(n: int, m: int) -> int:
    """Workspace for SB03OD: SLICOT's documented minimum ``max(1, 4n + min(m, n))``, plus room for blocking.

    Parameters
    ----------
    n, m
        Order of ``A`` and number of rows of ``op(B)``.

    Returns
    -------
    int
        ``ldwork`` to pass to ``slycot.sb03od``.

    Examples
    --------
    >>> sb03od_ldwork(1000, 4) >= 4 * 1000 + 4
    True
    """
    return max(1, 4 * n + min(m, n), n * 32)


def balance(
    A: np.ndarray, B: np.ndarray, C: np.ndarray, *, check: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    r"""SLICOT TB01ID state scaling of ``[[A, B], [C, 0]]`` (the equilibration AB09AD's ``equil='S'`` does).

    Parameters
    ----------
    A, B, C
        Real system matrices.
    check
        Refuse complex input (``False`` for ssmred's own, known-real calls).

    Returns
    -------
    tuple of numpy.ndarray
        ``(D^{-1} A D, D^{-1} B, C D, d)`` with ``d = diag(D)`` (powers of two).
    """
    slycot = require("slycot")
    if check:
        _real("slycot.tb01id", A, B, C)
    n, m, p = A.shape[0], B.shape[1], C.shape[0]
    _, As, Bs, Cs, d, info = slycot._wrapper.tb01id(
        n, m, p, 100.0, np.array(A, dtype=float, order="F"), np.array(B, dtype=float, order="F"),
        np.array(C, dtype=float, order="F"), job="A",
    )  # fmt: skip
    if info != 0:  # pragma: no cover - only for illegal arguments
        raise RuntimeError(f"SLICOT TB01ID failed with info={info}")
    return As, Bs, Cs, d


def lyapunov_factor_pair(
    T: np.ndarray, B: np.ndarray, C: np.ndarray, *, discrete: bool
) -> tuple[np.ndarray, np.ndarray, int]:
    r"""Both Gramian factors in the coordinates of a real Schur form, by SLICOT SB03OD (``fact='F'``).

    ``T`` is quasi upper triangular (a real Schur form) and ``B``, ``C`` are given in its coordinates;
    then ``P = U_c U_c^T`` and ``Q = L_o L_o^T`` with the returned factors (``U_c`` upper triangular,
    ``L_o`` lower triangular). One Schur form serves both equations (``Q = I`` is passed, so SB03OD
    does not transform back). SLICOT's overflow guard ``scale`` is divided out.

    Parameters
    ----------
    T
        Real Schur form of a stable ``A``.
    B, C
        Input and output matrices in the Schur coordinates.
    discrete
        Stein equations instead of the continuous Lyapunov equations.

    Returns
    -------
    tuple
        ``(Lc, Lo, info)``; ``info`` is SB03OD's largest indicator (1: the equation is nearly
        singular, a pole close to the stability boundary).
    """
    slycot = require("slycot")
    _real("slycot.sb03od", T, B, C)
    n = T.shape[0]
    TF = np.asfortranarray(T, dtype=float)
    eye = np.eye(n, order="F")
    dico = "D" if discrete else "C"

    def solve(G: np.ndarray, trans: str) -> tuple[np.ndarray, int]:
        # trans='T' takes op(B) = B^T with B (n, m); trans='N' takes B (m, n). The wrapper wants (n, n).
        k = G.shape[1] if trans == "T" else G.shape[0]
        if k > n:  # B B^T = R^T R: an n-column generator
            G = np.asarray(spla.qr(G.T if trans == "T" else G, mode="r")[0])[:n]
            G = G.T if trans == "T" else G
            k = n
        pad = np.zeros((n, n), order="F")
        if trans == "T":
            pad[:, :k] = G
        else:
            pad[:k, :] = G
        U, scale, _wr, _wi, info = slycot._wrapper.sb03od(
            dico, n, k, TF, eye, pad, fact="F", trans=trans, ldwork=sb03od_ldwork(n, k)
        )
        if info < 0 or info > 1:
            raise RuntimeError(f"SLICOT SB03OD failed with info={info} (is the Schur form stable?)")
        U = np.triu(U)
        return (U / scale if scale != 1.0 else U), int(info)

    Uc, info_c = solve(np.asarray(B, dtype=float), "T")
    Uo, info_o = solve(np.asarray(C, dtype=float), "N")
    return Uc, Uo.T, max(info_c, info_o)


def sr_projections(
    T: np.ndarray, B: np.ndarray, C: np.ndarray, *, discrete: bool, order: int | None = None, check: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    r"""HSVs and the square-root bases of the numerical rank by SLICOT AB09AX (``job='B'``, automatic order).

    AB09AX computes both Cholesky factors (SB03OU) on the Schur form ``T``, the SVD of their product
    (MB03UD) and the square-root projections :math:`T_k = L_c V_k \Sigma_k^{-1/2}`,
    :math:`T_{i,k} = \Sigma_k^{-1/2} U_k^T L_o^T` for the order ``k`` of a minimal realization
    (HSVs above ``n eps sigma_1``), in one Fortran call. Returned as the bases
    :math:`W_c = L_c V_k = T_k \Sigma_k^{1/2}`, :math:`W_o = L_o U_k = T_{i,k}^T \Sigma_k^{1/2}`, from which
    the square-root and balancing-free projections of every order ``r <= k`` follow.

    Parameters
    ----------
    T
        Real Schur form of a stable ``A``.
    B, C
        Input and output matrices in the Schur coordinates.
    discrete
        Discrete-time Gramians.
    order
        Compute the bases for this many states only (``None``: the numerical rank); cheaper when the
        caller knows the order it will reduce to.
    check
        Refuse complex input (``False`` for ssmred's own, known-real calls).

    Returns
    -------
    tuple or None
        ``(hsv, Wc, Wo)``, or ``None`` when SLICOT scaled the equations against overflow or its SVD
        failed (the caller then uses :func:`lyapunov_factor_pair`).
    """
    slycot = require("slycot")
    if check:
        _real("slycot.ab09ax", T, B, C)
    n, m, p = T.shape[0], B.shape[1], C.shape[0]
    nr, _a, _b, _c, hsv, Tp, Tip, _iwarn, info = slycot._wrapper.ab09ax(
        "D" if discrete else "C", "B", "A" if order is None else "F", n, m, p, 0 if order is None else int(order),
        np.asfortranarray(T, dtype=float), np.asfortranarray(B, dtype=float), np.asfortranarray(C, dtype=float),
        tol=0.0,
    )  # fmt: skip
    if info != 0:
        return None
    hsv = np.asarray(hsv, dtype=float)
    root = np.sqrt(hsv[:nr])
    Wc = Tp[:, :nr] * root[None, :]
    Wo = Tip[:nr, :].T * root[None, :]
    # SLICOT's overflow guard (scale < 1) leaves T_k, T_ik scaled; then Ti T != I: use the factor path
    if nr and abs(float(Tip[0, :] @ Tp[:, 0]) - 1.0) > 1e-6:
        return None
    return hsv, Wc, Wo


def lyapunov_factor(A: np.ndarray, B: np.ndarray, *, discrete: bool) -> np.ndarray:
    r"""Factor :math:`L` with :math:`P = L L^T` from SLICOT SB03OD (Hammarling's method).

    Parameters
    ----------
    A, B
        Real state and input matrices (``A`` stable).
    discrete
        Stein equation instead of the continuous Lyapunov equation.

    Returns
    -------
    numpy.ndarray
        Factor of shape ``(n, n)`` in the original coordinates.
    """
    from ssmred.backends.scipy import real_schur

    _real("slycot.sb03od", A, B)
    T, Z, _ = real_schur(np.asarray(A, dtype=float))
    Uc, _, _ = lyapunov_factor_pair(T, Z.T @ B, np.zeros((1, A.shape[0])), discrete=discrete)
    return Z @ Uc


def ab09ad(A, B, C, *, discrete: bool, r: int, method: str = "sr", equilibrate: bool = True):
    """Balanced truncation by SLICOT AB09AD; returns ``(r, Ar, Br, Cr, hsv)`` (D is unchanged)."""
    slycot = require("slycot")
    _real("slycot.ab09ad", A, B, C)
    n, m, p = A.shape[0], B.shape[1], C.shape[0]
    return slycot.ab09ad(
        "D" if discrete else "C",
        "B" if method == "sr" else "N",
        "S" if equilibrate else "N",
        n,
        m,
        p,
        np.array(A, float),
        np.array(B, float),
        np.array(C, float),
        nr=r,
    )


def ab09nd(A, B, C, D, *, discrete: bool, r: int, equilibrate: bool = True):
    """Singular perturbation approximation by SLICOT AB09ND (job='N', balancing-free).

    Returns ``(r, Ar, Br, Cr, Dr, hsv)``. ``job='B'`` is avoided: in discrete time it does not
    preserve ``G(1)``.
    """
    slycot = require("slycot")
    _real("slycot.ab09nd", A, B, C, D)
    n, m, p = A.shape[0], B.shape[1], C.shape[0]
    alpha = 1.0 if discrete else 0.0
    nr, Ar, Br, Cr, Dr, _ns, hsv = slycot.ab09nd(
        "D" if discrete else "C",
        "N",
        "S" if equilibrate else "N",
        n,
        m,
        p,
        np.array(A, float),
        np.array(B, float),
        np.array(C, float),
        np.array(D, float),
        alpha=alpha,
        nr=r,
    )
    return nr, Ar[:nr, :nr], Br[:nr], Cr[:, :nr], Dr, hsv


def ab13dd(A, B, C, D, *, discrete: bool, tol: float = 1e-10) -> tuple[float, float]:
    """L-infinity norm and peak frequency by SLICOT AB13DD; returns ``(gain, omega)``."""
    slycot = require("slycot")
    _real("slycot.ab13dd", A, B, C, D)
    n, m, p = A.shape[0], B.shape[1], C.shape[0]
    gpeak, fpeak = slycot.ab13dd(
        "D" if discrete else "C",
        "I",
        "S",
        "D",
        n,
        m,
        p,
        np.array(A, float),
        np.eye(n),
        np.array(B, float),
        np.array(C, float),
        np.array(D, float),
        tol,
    )
    return float(gpeak), float(fpeak)
