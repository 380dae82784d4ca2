r"""System norms: :math:`\mathcal H_2`, :math:`\mathcal H_\infty` and the Hankel norm.

The H-infinity norm uses the level-set method of Boyd-Balakrishnan / Bruinsma-Steinbuch on the
Hamiltonian matrix (quadratically convergent), for real and complex systems. Discrete-time systems
are mapped to continuous time by the bilinear transform :math:`z = (1+s)/(1-s)`, which maps the unit
circle onto the imaginary axis and leaves the H-infinity norm unchanged.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import scipy.linalg as spla

from ssmred._threads import kernel
from ssmred.backends import scipy as scipy_backend
from ssmred.errors import AccuracyWarning
from ssmred.gramians import require_stable
from ssmred.hsv import hankel_singular_values
from ssmred.statespace import StateSpace, _is_diagonal

_EPS = float(np.finfo(float).eps)

__all__ = ["PeakGain", "bilinear_to_continuous", "h2_norm", "hankel_norm", "hinf_norm", "peak_gain"]


class PeakGain(NamedTuple):
    r"""The H-infinity norm and a frequency (rad per time unit) where it is attained.

    Attributes
    ----------
    gain
        :math:`\|G\|_\infty`, a gain attained at ``omega`` (so never an overestimate).
    omega
        Peak frequency; ``inf`` when the peak is the feedthrough at infinite frequency.
    """

    gain: float
    omega: float


@kernel()
def h2_norm(sys: StateSpace) -> float:
    r"""The :math:`\mathcal H_2` norm.

    CT: :math:`\|G\|_2^2 = \mathrm{tr}(C P C^H)` (infinite when ``D != 0``);
    DT: :math:`\|G\|_2^2 = \mathrm{tr}(C P C^H + D D^H)`, computed as :math:`\|[C L_c,\ D]\|_F^2`.

    Parameters
    ----------
    sys
        A stable system.

    Returns
    -------
    float
        The norm (``inf`` for a continuous-time system with nonzero ``D``).

    Raises
    ------
    NotStableError
        If ``sys`` is unstable.

    Examples
    --------
    >>> round(h2_norm(StateSpace([[-1.0]], [[1.0]], [[1.0]])), 12)
    0.707106781187
    """
    require_stable(sys, "the H2 norm")
    if not sys.is_discrete and np.any(sys.D != 0):
        return float("inf")
    from ssmred._dense import square_root
    from ssmred.gramians import _resolve

    backend = _resolve(sys, "auto")
    sr = square_root(sys, backend, what="the H2 norm", svd=False)
    # ||C Lc||_F at the true scale: Cc (true) @ Lc (scaled by 1/beta) times beta, with the Frobenius norm
    # taken on a rescaled copy so that values near 1e-300 or 1e300 neither underflow nor overflow
    parts = [sr.Cc @ sr.Lc * sr.beta] + ([sys.D] if sys.is_discrete else [])
    return _fro(*parts)


@kernel()
def _fro(*arrays: np.ndarray) -> float:
    """Frobenius norm of several arrays together, scaled against under- and overflow."""
    scale = max((float(np.max(np.abs(a))) for a in arrays if a.size), default=0.0)
    if scale == 0.0 or not np.isfinite(scale):
        return scale
    return float(scale * np.sqrt(sum(float(np.sum(np.abs(a / scale) ** 2)) for a in arrays)))


def hankel_norm(sys: StateSpace) -> float:
    r"""The Hankel norm :math:`\sigma_1`, the largest Hankel singular value.

    Parameters
    ----------
    sys
        A stable system.

    Returns
    -------
    float
        :math:`\sigma_1`.

    Examples
    --------
    >>> hankel_norm(StateSpace([[-1.0]], [[1.0]], [[1.0]]))
    0.5
    """
    return float(hankel_singular_values(sys)[0])


def bilinear_to_continuous(sys: StateSpace) -> StateSpace:
    r"""Continuous-time system with :math:`G_c(s) = G_d\big(\tfrac{1+s}{1-s}\big)` (a discrete ``sys``).

    .. math::

        A_c = (A+I)^{-1}(A-I),\; B_c = \sqrt2 (A+I)^{-1}B,\; C_c = \sqrt2\, C (A+I)^{-1},\;
        D_c = D - C(A+I)^{-1}B .

    Points :math:`s = i\omega` map to :math:`z = e^{i\theta}` with :math:`\omega = \tan(\theta/2)`;
    stability, Gramians and Hankel singular values are preserved.

    Parameters
    ----------
    sys
        A discrete-time system without eigenvalue ``-1``.

    Returns
    -------
    StateSpace
        The continuous-time system.

    Raises
    ------
    ValueError
        If ``sys`` is continuous or ``A + I`` is singular.

    Examples
    --------
    >>> c = bilinear_to_continuous(StateSpace([[0.5]], [[1.0]], [[1.0]], dt=1.0))
    >>> bool(np.allclose(c(0.0), StateSpace([[0.5]], [[1.0]], [[1.0]], dt=1.0)(1.0)))
    True
    """
    if not sys.is_discrete:
        raise ValueError("bilinear_to_continuous needs a discrete-time system (dt > 0)")
    n = sys.n_states
    I = np.eye(n)
    lu = spla.lu_factor(sys.A + I)
    if np.any(np.diag(lu[0]) == 0):
        raise ValueError("A + I is singular (eigenvalue -1): the bilinear transform is undefined")
    X_A = spla.lu_solve(lu, sys.A - I)
    X_B = spla.lu_solve(lu, sys.B)
    CX = spla.lu_solve(lu, sys.C.T, trans=1).T  # C (A+I)^{-1}
    s2 = np.sqrt(2.0)
    return StateSpace(X_A, s2 * X_B, s2 * CX, sys.D - sys.C @ X_B)


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


@kernel()
def peak_gain(sys: StateSpace, *, rtol: float = 1e-10, max_iter: int = 100) -> PeakGain:
    r"""H-infinity norm :math:`\sup_\omega \sigma_{\max}(G(i\omega))` (or over the unit circle) and its frequency.

    Parameters
    ----------
    sys
        A stable system (real or complex, continuous or discrete).
    rtol
        Relative accuracy of the level-set iteration.
    max_iter
        Iteration cap (the iteration converges quadratically; a warning is raised if it is hit).

    Returns
    -------
    PeakGain
        ``(gain, omega)``; ``omega`` in rad per time unit (``inf`` when the peak is at infinite
        frequency, i.e. the feedthrough ``D``). For DT, ``omega`` lies in ``(-π/dt, π/dt]``.

    Raises
    ------
    NotStableError
        If ``sys`` is unstable.

    Warns
    -----
    AccuracyWarning
        If the level-set iteration hits ``max_iter``, or if the gain at the peak is accurate to less than
        1e-3 relative (evaluated within rounding distance of a pole: near-boundary systems and their
        error systems ``G - G_r``).

    Notes
    -----
    Level-set (Hamiltonian) iteration of Boyd-Balakrishnan / Bruinsma-Steinbuch on an exactly scaled
    copy of the system (powers of two: gain and, in continuous time, the time scale normalised to 1, so
    systems scaled by 1e-150 or 1e150 neither underflow nor overflow), discrete time through a bilinear
    transform rotated away from the poles. The endpoints (:math:`\omega = 0`, :math:`\omega = \infty`;
    :math:`\theta = 0, \pi` in discrete time) are evaluated explicitly on the original system, and the
    peak frequency is refined on the zero of :math:`d\sigma_{\max}/d\omega` (~1e-12 relative on a
    smooth peak, where comparing gains gives only ~1e-8). The gain returned is attained at ``omega``.

    Examples
    --------
    >>> g = peak_gain(StateSpace([[-1.0]], [[1.0]], [[1.0]]))
    >>> round(g.gain, 10), round(g.omega, 10)
    (1.0, 0.0)
    """
    if isinstance(rtol, bool) or not isinstance(rtol, numbers.Real) or not (1e-15 <= float(rtol) <= 1e-2):
        raise ValueError(f"rtol must be a float in [1e-15, 1e-2]; got {rtol!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer; got {max_iter!r}")
    require_stable(sys, "the H-infinity norm")
    discrete = sys.is_discrete
    A, B, C, D = sys.A, sys.B, sys.C, sys.D
    # exact power-of-two scaling: G~ = G / (beta gamma) with B, C at the size of A, states balanced
    beta, gamma_ = scipy_backend.io_scaling(A, B, C)
    B, C, D = B / beta, C / gamma_, D / (beta * gamma_)
    if not _is_diagonal(A):
        A, B, C, _ = scipy_backend.equilibrate(A, B, C)
    # continuous time: normalise the time scale (s = alpha * s~), frequencies scale by alpha
    alpha = 1.0
    if not discrete:
        alpha = _pow2(float(np.max(np.abs(A).sum(axis=0))))
        A, B = A / alpha, B / alpha
    native = _Gain(A, B, C, D, discrete=discrete)
    poles = np.diag(A).astype(np.complex128) if _is_diagonal(A) else np.asarray(spla.eigvals(A))
    two_sided = sys.is_complex
    # gain scale (power of two) from a first look at the poles' frequencies and the endpoints
    if discrete:
        ends = np.array([0.0, np.pi] + ([-np.pi / 2, np.pi / 2] if two_sided else [np.pi / 2]))
        probe = np.concatenate([ends, np.angle(poles)])
    else:
        probe = np.concatenate([[0.0, 1.0], np.imag(poles)])
    probe_vals = native.values(probe)
    d_norm = float(spla.svdvals(D)[0]) if D.size else 0.0
    g_scale = _pow2(max(float(np.max(probe_vals)), d_norm))
    if g_scale != 1.0:
        C, D = C / g_scale, D / g_scale
        native = _Gain(A, B, C, D, discrete=discrete)

    if discrete:
        # bilinear transform rotated by phi: z = e^{i phi} (1 + s) / (1 - s); theta = phi + 2 arctan(omega_c).
        # phi = 0 (a real transform) unless a pole is close to z = -e^{i phi}, where (A + e^{i phi} I) is
        # nearly singular.
        phi = 0.0
        if poles.size and float(np.min(np.abs(poles + 1.0))) < 0.1:
            options = np.linspace(-np.pi, np.pi, 13)[:-1]
            dist = [float(np.min(np.abs(poles + np.exp(1j * f)))) for f in options]
            phi = float(options[int(np.argmax(dist))])
        rot = np.exp(-1j * phi)
        Ar, Br = (A, B) if phi == 0.0 else (A * rot, B * rot)
        ct = bilinear_to_continuous(StateSpace(Ar, Br, C, D, dt=1.0))
        two_sided_ct = two_sided or phi != 0.0

        def to_native(omega: np.ndarray) -> np.ndarray:
            th = phi + 2.0 * np.arctan(np.asarray(omega, dtype=float))
            return np.angle(np.exp(1j * th))

        def sigma(omega: np.ndarray) -> np.ndarray:
            return native.values(to_native(omega))

        cpoles = ct.poles()
        cmags = np.abs(cpoles)
    else:
        ct = StateSpace(A, B, C, D)
        two_sided_ct = two_sided
        cpoles = poles
        cmags = np.abs(poles)

        def to_native(omega: np.ndarray) -> np.ndarray:
            return np.asarray(omega, dtype=float)

        sigma = native.values
    positive = cmags[cmags > 0]
    # a wide grid: when the gain is nearly flat at sigma_max(D) over decades, a level gamma close to
    # sigma_max(D) makes the Hamiltonian ill-conditioned, so the starting level should already be near the peak
    lo, hi = (positive.min() / 1e3, positive.max() * 1e4) if positive.size else (1e-4, 1e4)
    grid = np.logspace(np.log10(lo), np.log10(hi), 160)
    cand = np.concatenate([[0.0], np.imag(cpoles), cmags, grid])
    if two_sided_ct:
        cand = np.concatenate([cand, -cmags, -grid, -np.imag(cpoles)])
    else:  # a real system's gain is even in omega
        cand = np.abs(cand)
    cand = np.unique(cand)
    gain_c, omega_c, evaluated = _level_set(
        ct.A, ct.B, ct.C, ct.D, sigma=sigma, two_sided=two_sided_ct, cand=cand, rtol=rtol, max_iter=max_iter
    )
    # native candidates: the level-set peak and the endpoints, each refined where smooth
    if discrete:
        w_pk = float(phi + np.pi) if np.isinf(omega_c) else float(to_native(np.array([omega_c]))[0])
        w_pk = float(np.angle(np.exp(1j * w_pk)))
        if not two_sided and w_pk < 0:
            w_pk = -w_pk
        lo_b, hi_b = (-np.pi, np.pi) if two_sided else (0.0, np.pi)
        ends = [0.0, np.pi] if not two_sided else [0.0, np.pi, -np.pi]
    else:
        w_pk = omega_c
        lo_b, hi_b = (-np.inf, np.inf) if two_sided else (0.0, np.inf)
        ends = [0.0]
    best_g, best_w = gain_c, w_pk
    if np.isfinite(w_pk):
        best_g, best_w = _refine(native, w_pk, gain_c, lo_bound=lo_b, hi_bound=hi_b)
    end_vals = native.values(np.array(ends))
    k = int(np.argmax(end_vals))
    if end_vals[k] > best_g:  # the peak sits at an endpoint (theta = 0 or pi, omega = 0)
        best_g, best_w = float(end_vals[k]), float(ends[k])
    elif not two_sided:
        # a real system's gain is even about omega = 0 (and theta = pi): a maximum found within rounding of
        # an endpoint, with the same gain to rounding, is that endpoint
        for e, v in zip(ends, end_vals, strict=True):
            if abs(best_w - e) <= 1e-6 * max(1.0, abs(e)) and v >= best_g * (1.0 - 16.0 * np.finfo(float).eps):
                best_g, best_w = max(float(v), best_g), float(e)
    if not discrete and d_norm / g_scale > best_g:
        best_g, best_w = d_norm / g_scale, float("inf")
    gain_out = best_g * g_scale * (beta * gamma_)
    if np.isfinite(best_w) and best_g > 0:
        floor, proximity = native.rounding_floor(best_w)
        # warn when the value is rounding-dominated *because* the peak sits at a pole within rounding reach
        # (near the stability boundary); a tiny gain far from the poles (the error of a near-exact
        # reduction) is rounding noise of the terms' size, which is what any evaluation gives
        if floor > 1e-3 * best_g and proximity > 1e-10:
            warnings.warn(
                f"hinf_norm: the computed peak gain {gain_out:.6g} is accurate only to ~{floor / best_g:.1g} relative: "
                f"G is evaluated within {native.pole_distance(best_w):.2g} of a pole, where rounding errors of "
                "eps*||A|| are amplified (an error system G - G_r near the stability boundary also cancels large "
                "terms); the true norm can differ by that much",
                AccuracyWarning,
                stacklevel=3,
            )
    if discrete:
        if best_w <= -np.pi:
            best_w += 2 * np.pi
        assert sys.dt is not None
        return PeakGain(gain_out, float(best_w / sys.dt))
    return PeakGain(gain_out, float(best_w * alpha))


@kernel()
def hinf_norm(sys: StateSpace, *, rtol: float = 1e-10) -> float:
    r"""The :math:`\mathcal H_\infty` norm of a stable system (see :func:`peak_gain`).

    Parameters
    ----------
    sys
        A stable system.
    rtol
        Relative accuracy.

    Returns
    -------
    float
        :math:`\|G\|_\infty`.

    Raises
    ------
    NotStableError
        If ``sys`` is unstable.

    Examples
    --------
    >>> round(hinf_norm(StateSpace([[0.9]], [[0.1]], [[1.0]], dt=0.1)), 10)
    1.0
    """
    return peak_gain(sys, rtol=rtol).gain
