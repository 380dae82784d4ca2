r"""The H-infinity machinery behind :func:`ssmred.norms.peak_gain`: gain evaluation, level sets, refinement.

This private module owns

* :class:`_Gain`, the gain :math:`\sigma_{\max}(G)` and its slope from one complex Schur form;
* :func:`_level_set`, the Bruinsma-Steinbuch level-set (Hamiltonian) iteration;
* :func:`_refine`, the peak frequency located on the zero of the slope;
* small helpers (:func:`_imaginary_eigs`, :func:`_svdmax`, :func:`_sigma_max`, :func:`_pow2`).

The driver :func:`ssmred.norms.peak_gain` (scaling, bilinear transform, endpoints, accuracy warning) and
the public norms stay in :mod:`ssmred.norms`, which re-exports these names.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
import scipy.linalg as spla

from ssmred.backends import scipy as scipy_backend
from ssmred.errors import AccuracyWarning
from ssmred.statespace import StateSpace, _is_diagonal

_EPS = float(np.finfo(float).eps)


def _sigma_max(sys: StateSpace, omega: np.ndarray) -> np.ndarray:
    """Largest singular value of G(iω) for a continuous-time system."""
    G = sys(1j * np.asarray(omega, dtype=float))
    return np.array([spla.svdvals(g)[0] for g in G])


class _Gain:
    r"""Gain :math:`\sigma_{\max}(G)` and its slope on the imaginary axis (CT) or the unit circle (DT).

    One complex Schur form :math:`A = Z S Z^H`; each point costs two triangular solves:
    :math:`X = (zI - S)^{-1} Z^H B`, :math:`G = C Z X + D`, :math:`G' = -C Z (zI - S)^{-1} X`, and for a
    simple largest singular value :math:`\sigma` with vectors :math:`u, v`,
    :math:`d\sigma/d\omega = \mathrm{Re}(u^H G'(z)\,\tfrac{dz}{d\omega}\,v)` with :math:`dz/d\omega = i`
    (CT) or :math:`i z` (DT, :math:`z = e^{i\omega}`).
    """

    def __init__(self, A: np.ndarray, B: np.ndarray, C: np.ndarray, D: np.ndarray, *, discrete: bool) -> None:
        self.discrete = discrete
        self.D = np.asarray(D, dtype=np.complex128)
        self.S: np.ndarray | None
        if _is_diagonal(A):
            self.S = None
            self.CZ, self.ZB = np.asarray(C, dtype=np.complex128), np.asarray(B, dtype=np.complex128)
            self.lam: np.ndarray = np.diag(A).astype(np.complex128)
        else:
            S, Z = scipy_backend.complex_schur(A)
            self.S = S
            self.CZ, self.ZB = C @ Z, Z.conj().T @ B
            self.lam = np.diag(S).copy()
        self.n = A.shape[0]

    def point(self, w: float) -> complex:
        return complex(np.exp(1j * w)) if self.discrete else complex(0.0, w)

    def _solve(self, z: complex, R: np.ndarray) -> np.ndarray:
        if self.S is None:
            return R / (z - self.lam)[:, None]
        M = -self.S
        M[np.diag_indices(self.n)] += z
        return spla.solve_triangular(M, R, check_finite=False)

    def pole_distance(self, w: float) -> float:
        return float(np.min(np.abs(self.point(w) - self.lam))) if self.lam.size else np.inf

    def rounding_floor(self, w: float) -> tuple[float, float]:
        r"""Rounding error of the computed :math:`\|G(z)\|` at ``w``: a backward error :math:`\epsilon\|S\|`
        in the Schur form moves :math:`X = (zI - S)^{-1} Z^H B` by :math:`\epsilon\|S\|\|X\|/d` (``d``
        the distance of ``z`` to the nearest pole), and ``G`` by ``||C Z||`` times that. Returns the
        absolute floor and the relative amplification ``4 n eps ||S|| / d``.
        """
        z = self.point(w)
        X = self._solve(z, self.ZB)
        d = self.pole_distance(w)
        if d == 0.0:
            return np.inf, np.inf
        snorm = float(np.max(np.abs(self.lam))) if self.S is None else float(np.abs(self.S).sum(axis=0).max())
        xn = float(np.sqrt(np.vdot(X, X).real))
        cn = float(np.sqrt(np.vdot(self.CZ, self.CZ).real))
        proximity = 4.0 * self.n * np.finfo(float).eps * max(snorm, d) / d
        return proximity * cn * xn, proximity

    def values(self, omega: np.ndarray) -> np.ndarray:
        out = np.empty(len(omega))
        for i, w in enumerate(np.asarray(omega, dtype=float)):
            G = self.CZ @ self._solve(self.point(w), self.ZB) + self.D
            out[i] = _svdmax(G)
        return out

    def slope(self, w: float) -> tuple[float, float, float]:
        """``(gain, d gain / d w, gap)`` at ``w``; ``gap`` = relative gap to the second singular value."""
        z = self.point(w)
        X = self._solve(z, self.ZB)
        G = self.CZ @ X + self.D
        dG = -(self.CZ @ self._solve(z, X)) * (1j * z if self.discrete else 1j)
        U, sv, Vh = spla.svd(G, check_finite=False)
        gap = 1.0 if sv.size < 2 or sv[0] == 0 else float((sv[0] - sv[1]) / sv[0])
        return float(sv[0]), float(np.real(np.vdot(U[:, 0], dG @ Vh[0].conj()))), gap


def _svdmax(G: np.ndarray) -> float:
    if G.shape == (1, 1):
        return float(abs(G[0, 0]))
    return float(spla.svdvals(G, check_finite=False)[0])


def _imaginary_eigs(H: np.ndarray, *, tol: float) -> np.ndarray:
    """Sorted imaginary parts of the eigenvalues of H that lie (numerically) on the imaginary axis.

    The tolerance is generous on purpose: a spurious candidate only costs one evaluation of G, while
    a missed crossing would end the iteration early.
    """
    ev = np.asarray(spla.eigvals(H))
    scale = np.maximum(1.0, np.abs(ev))
    on_axis = np.abs(np.real(ev)) <= tol * scale
    return np.sort(np.imag(ev[on_axis]))


def _refine(gain: _Gain, w0: float, g0: float, *, lo_bound: float, hi_bound: float) -> tuple[float, float]:
    r"""Locate a local maximum of the gain near ``w0`` to rounding accuracy, on the zero of its slope.

    Comparing nearly equal gains (golden section) resolves a smooth peak only to
    :math:`\sqrt\epsilon`-relative frequency; the zero of :math:`d\sigma/d\omega` resolves it to
    rounding. From ``w0`` the search steps uphill (doubling steps) until the slope changes sign, then
    runs Brent's method on the slope inside that bracket. Falls back to a golden-section search when the
    largest singular value is (nearly) double there (a non-smooth peak) or no sign change is found. The
    result is never below ``g0`` and is attained at the returned frequency up to the rounding noise of the
    gain evaluation (relative ~1e-12 on a smooth peak).
    """
    from scipy.optimize import brentq, minimize_scalar

    unit = max(abs(w0), 1.0)
    best_g, best_w = g0, w0
    try:
        g_w0, s0, gap = gain.slope(w0)
        if g_w0 > best_g:
            best_g = g_w0
        if np.isfinite(s0) and gap > 1e-6 and s0 != 0.0:
            direction = 1.0 if s0 > 0 else -1.0
            a, h = w0, 1e-10 * unit
            bracket = None
            for _ in range(80):
                b = min(max(a + direction * h, lo_bound), hi_bound)
                if b == a:
                    break
                sb = gain.slope(b)[1]
                if not np.isfinite(sb):
                    break
                if sb == 0.0 or (sb > 0) != (s0 > 0):
                    bracket = (min(a, b), max(a, b))
                    break
                a, h = b, 2.0 * h
            if bracket is not None:
                w = float(brentq(lambda x: gain.slope(x)[1], *bracket, xtol=1e-300, rtol=4 * _EPS, maxiter=200))  # type: ignore[arg-type]
                g = float(gain.values(np.array([w]))[0])
                # near the maximum the computed gains differ only by rounding noise (~eps * condition): the
                # stationary point is the peak, and the best gain seen (a rounding away from it) is kept
                if g >= best_g * (1.0 - 1e-9):
                    return max(g, best_g), float(w)
    except (ValueError, RuntimeError, spla.LinAlgError):
        pass
    span = 1e-4 * unit
    lo, hi = max(w0 - span, lo_bound), min(w0 + span, hi_bound)
    if lo < hi:
        res = minimize_scalar(
            lambda w: -gain.values(np.array([w]))[0],
            bounds=(lo, hi),
            method="bounded",
            options={"xatol": unit * 1e-13, "maxiter": 200},
        )
        if np.isfinite(res.fun) and -res.fun > best_g:
            best_g, best_w = float(-res.fun), float(res.x)
    return best_g, best_w


def _level_set(
    A: np.ndarray,
    B: np.ndarray,
    C: np.ndarray,
    D: np.ndarray,
    *,
    sigma: Callable[[np.ndarray], np.ndarray],
    two_sided: bool,
    cand: np.ndarray,
    rtol: float,
    max_iter: int,
) -> tuple[float, float, np.ndarray]:
    """Bruinsma-Steinbuch level-set iteration for a stable continuous-time system ``(A, B, C, D)``.

    Starting from the best of the candidate frequencies ``cand``, each step tests the level
    gamma = (1 + 2 rtol) * gamma_lb: if the Hamiltonian H(gamma) has no imaginary eigenvalue, no frequency
    has a larger gain and gamma_lb is the norm to rtol. Otherwise the gain is evaluated at the crossings
    and their midpoints, which raises gamma_lb. ``sigma`` evaluates the gain (on the original system,
    so rounding in a transformation only affects where crossings are searched, never a reported gain).
    Returns ``(gamma_lb, omega, evaluated frequencies)``; ``omega = inf`` for the feedthrough.
    """
    m, p = B.shape[1], C.shape[0]
    values = sigma(cand)
    evaluated = [cand]
    d_norm = float(spla.svdvals(D)[0]) if D.size else 0.0
    best = int(np.argmax(values))
    gamma_lb, omega_pk = float(values[best]), float(cand[best])
    if d_norm >= gamma_lb:
        gamma_lb, omega_pk = d_norm, float("inf")
    if gamma_lb == 0.0:
        return 0.0, 0.0, cand
    converged = False
    Dh = D.conj().T
    for _ in range(max_iter):
        gamma = (1.0 + 2.0 * rtol) * gamma_lb
        R = Dh @ D - gamma**2 * np.eye(m)
        S = D @ Dh - gamma**2 * np.eye(p)
        try:
            Rinv_DhC = spla.solve(R, Dh @ C, assume_a="her", check_finite=False)
            Rinv_Bh = spla.solve(R, B.conj().T, assume_a="her", check_finite=False)
            Sinv_C = spla.solve(S, C, assume_a="her", check_finite=False)
        except spla.LinAlgError:  # gamma is a singular value of D to working precision: step up
            gamma_lb *= 1.0 + rtol
            continue
        H = np.block(
            [
                [A - B @ Rinv_DhC, -gamma * (B @ Rinv_Bh)],
                [gamma * (C.conj().T @ Sinv_C), -A.conj().T + C.conj().T @ D @ Rinv_Bh],
            ]
        )
        if not np.all(np.isfinite(H)):
            break
        w = _imaginary_eigs(H, tol=1e-6)
        if not two_sided:
            w = np.abs(w)
            w = np.unique(np.concatenate([-w, w]))
        if w.size == 0:
            converged = True
            break
        # midpoints of consecutive crossings, the crossings, and points beyond the outermost ones (a
        # crossing lost to rounding leaves an odd count; the interval above gamma is then one-sided)
        reach = max(1.0, float(w[-1] - w[0]))
        pts = np.concatenate([0.5 * (w[:-1] + w[1:]), w, [w[0] - 0.5 * reach, w[-1] + 0.5 * reach]])
        if not two_sided:
            pts = np.unique(np.abs(pts))
        vals = sigma(pts)
        evaluated.append(pts)
        k = int(np.argmax(vals))
        if vals[k] <= gamma_lb * (1.0 + rtol):
            converged = True  # crossings flagged, but no higher gain between them: gamma_lb is the peak
            break
        gamma_lb, omega_pk = float(vals[k]), float(pts[k])
    if not converged:
        warnings.warn(
            f"hinf_norm: level-set iteration did not converge in {max_iter} steps", AccuracyWarning, stacklevel=4
        )
    return gamma_lb, omega_pk, np.concatenate(evaluated)


def _pow2(x: float) -> float:
    """The power of two nearest to ``x > 0`` (exact scaling)."""
    return math.ldexp(1.0, round(math.log2(x))) if x > 0 and np.isfinite(x) else 1.0
