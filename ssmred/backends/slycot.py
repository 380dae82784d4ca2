"""Thin wrappers around SLICOT routines (via slycot), used as a backend and as a test oracle.

SLICOT works in real arithmetic: every function here raises ``TypeError`` for complex input instead
of letting slycot cast it to real silently. ``ab09bd`` is never called (its work array is undersized
in slycot 0.7.1 and SISO n >= 10 corrupts memory); singular perturbation uses ``ab09nd``.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as spla

from ssmred._require import require

__all__ = ["ab09ad", "ab09nd", "ab13dd", "lyapunov_factor"]


def _real(name: str, *arrays: np.ndarray) -> None:
    if any(np.iscomplexobj(a) for a in arrays):
        raise TypeError(
            f"{name}: SLICOT is real-only and would silently drop imaginary parts; use method='scipy' "
            "or the real realization sys.to_real()"
        )


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
        Lower-triangular-in-Schur-basis factor of shape ``(n, n)``.
    """
    slycot = require("slycot")
    _real("slycot.sb03od", A, B)
    n, m = B.shape
    if m > n:  # B B^T = R^T R: an n-column generator (the wrapper wants B of shape (n, n) then)
        B = spla.qr(np.asarray(B, dtype=float).T, mode="r")[0][:n].T
        m = n
    # SB03OD with trans='T' solves A X + X A^T = -scale^2 B B^T (CT) or A X A^T - X = ... (DT),
    # X = U U^T; the wrapper wants B padded to shape (n, max(m, n)).
    Bpad = np.zeros((n, n))
    Bpad[:, :m] = B
    U, scale, _ = slycot.sb03od(
        n, m, np.array(A, dtype=float), np.zeros((n, n)), Bpad, "D" if discrete else "C", trans="T"
    )
    return np.triu(U[:n, :n]) / scale


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
