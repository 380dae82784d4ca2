r"""System norms: :math:`\mathcal H_2`, :math:`\mathcal H_\infty` and the Hankel norm.

The H-infinity norm uses the level-set method of Boyd-Balakrishnan / Bruinsma-Steinbuch on the
Hamiltonian matrix (quadratically convergent), for real and complex systems. Discrete-time systems
are mapped to continuous time by the bilinear transform :math:`z = (1+s)/(1-s)`, which maps the unit
circle onto the imaginary axis and leaves the H-infinity norm unchanged.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import scipy.linalg as spla

from ssmred.backends import scipy as scipy_backend
from ssmred.errors import AccuracyWarning
from ssmred.gramians import gramian_factors, require_stable
from ssmred.hsv import hankel_singular_values
from ssmred.statespace import StateSpace, _is_diagonal

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
    Lc = gramian_factors(sys).Lc
    value = np.sum(np.abs(sys.C @ Lc) ** 2)
    if sys.is_discrete:
        value += np.sum(np.abs(sys.D) ** 2)
    return float(np.sqrt(value))


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


def _imaginary_eigs(H: np.ndarray, *, tol: float) -> np.ndarray:
    """Sorted imaginary parts of the eigenvalues of H that lie (numerically) on the imaginary axis.

    The tolerance is generous on purpose: a spurious candidate only costs one evaluation of G, while
    a missed crossing would end the iteration early.
    """
    ev = spla.eigvals(H)
    scale = np.maximum(1.0, np.abs(ev))
    on_axis = np.abs(ev.real) <= tol * scale
    return np.sort(ev[on_axis].imag)


def _polish(
    sigma: Callable[[np.ndarray], np.ndarray], omega: float, gain: float, grid: np.ndarray
) -> tuple[float, float]:
    """Golden-section refinement of a local maximum of sigma_max(G(i w)) between neighbouring grid points."""
    from scipy.optimize import minimize_scalar

    grid = np.unique(np.concatenate([grid[np.isfinite(grid)], [omega]]))
    k = int(np.searchsorted(grid, omega))
    span = max(abs(omega), 1.0) * 1e-3
    lo = grid[k - 1] if k > 0 else omega - span
    hi = grid[k + 1] if k + 1 < grid.size else omega + span
    if not lo < hi:
        return gain, omega
    res = minimize_scalar(
        lambda w: -sigma(np.array([w]))[0],
        bounds=(lo, hi),
        method="bounded",
        options={"xatol": max(abs(omega), 1e-3) * 1e-13, "maxiter": 200},
    )
    if -res.fun > gain:
        return float(-res.fun), float(res.x)
    return gain, omega


def _peak_continuous(
    sys: StateSpace, *, rtol: float, max_iter: int, sigma: Callable[[np.ndarray], np.ndarray] | None = None
) -> PeakGain:
    """Bruinsma-Steinbuch level-set iteration for a stable continuous-time system.

    Starting from the best of a frequency grid (pole frequencies plus a log grid), each step tests the
    level gamma = (1 + 2 rtol) * gamma_lb: if the Hamiltonian H(gamma) has no imaginary eigenvalue,
    no frequency has a larger gain and gamma_lb is the norm to rtol. Otherwise sigma_max is evaluated
    at the crossings and their midpoints, which raises gamma_lb. The returned gain is always attained
    at the returned frequency (a certified lower bound); a final golden-section polish removes the
    rtol-sized gap.

    ``sigma(omega)`` evaluates the gain (default: on ``sys``); the discrete-time caller passes an
    evaluation on the original discrete system, so rounding in the bilinear transform can only
    affect where crossings are searched, never the reported gain.
    """
    if sigma is None:

        def sigma(omega: np.ndarray) -> np.ndarray:
            return _sigma_max(sys, omega)

    A, B, C, D = sys.A, sys.B, sys.C, sys.D
    m, p = sys.n_inputs, sys.n_outputs
    poles = sys.poles()
    mags = np.abs(poles)
    positive = mags[mags > 0]
    # a wide grid: when the gain is nearly flat at sigma_max(D) over decades, a level gamma close to
    # sigma_max(D) makes the Hamiltonian ill-conditioned (R = D^H D - gamma^2 I nearly singular), so the
    # starting level should already be near the peak
    lo, hi = (positive.min() / 1e3, positive.max() * 1e4) if positive.size else (1e-4, 1e4)
    grid = np.logspace(np.log10(lo), np.log10(hi), 160)
    cand = np.concatenate([[0.0], poles.imag, mags, grid])
    if sys.is_complex:
        cand = np.concatenate([cand, -mags, -grid])
    cand = np.unique(cand)
    values = sigma(cand)
    evaluated = [cand]
    d_norm = spla.svdvals(D)[0] if D.size else 0.0
    best = int(np.argmax(values))
    gamma_lb, omega_pk = float(values[best]), float(cand[best])
    if d_norm >= gamma_lb:
        gamma_lb, omega_pk = float(d_norm), float("inf")
    if gamma_lb == 0.0:
        return PeakGain(0.0, 0.0)
    converged = False
    for _ in range(max_iter):
        gamma = (1.0 + 2.0 * rtol) * gamma_lb
        R = D.conj().T @ D - gamma**2 * np.eye(m)
        S = D @ D.conj().T - gamma**2 * np.eye(p)
        Rinv_DhC = spla.solve(R, D.conj().T @ C, assume_a="her")
        Rinv_Bh = spla.solve(R, B.conj().T, assume_a="her")
        Sinv_C = spla.solve(S, C, assume_a="her")
        H = np.block(
            [
                [A - B @ Rinv_DhC, -gamma * (B @ Rinv_Bh)],
                [gamma * (C.conj().T @ Sinv_C), -A.conj().T + C.conj().T @ D @ Rinv_Bh],
            ]
        )
        w = _imaginary_eigs(H, tol=1e-6)
        if w.size == 0:
            converged = True
            break
        # midpoints of consecutive crossings, the crossings, and points beyond the outermost ones (a
        # crossing lost to rounding leaves an odd count; the interval above gamma is then one-sided)
        reach = max(1.0, float(w[-1] - w[0]))
        pts = np.concatenate([0.5 * (w[:-1] + w[1:]), w, [w[0] - 0.5 * reach, w[-1] + 0.5 * reach]])
        vals = sigma(pts)
        evaluated.append(pts)
        k = int(np.argmax(vals))
        if vals[k] <= gamma_lb * (1.0 + rtol):
            converged = True  # crossings flagged, but no higher gain between them: gamma_lb is the peak
            break
        gamma_lb, omega_pk = float(vals[k]), float(pts[k])
    if not converged:
        warnings.warn(
            f"hinf_norm: level-set iteration did not converge in {max_iter} steps", AccuracyWarning, stacklevel=3
        )
    if np.isfinite(omega_pk):
        gamma_lb, omega_pk = _polish(sigma, omega_pk, gamma_lb, np.concatenate(evaluated))
    return PeakGain(gamma_lb, omega_pk)


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
    if not _is_diagonal(sys.A):  # exact power-of-two scaling: same G, smaller rounding errors
        A, B, C, _ = scipy_backend.equilibrate(sys.A, sys.B, sys.C)
        sys = StateSpace(A, B, C, sys.D, dt=sys.dt)
    if not sys.is_discrete:
        return _peak_continuous(sys, rtol=rtol, max_iter=max_iter)
    discrete = sys

    def sigma_on_circle(omega_c: np.ndarray) -> np.ndarray:
        # s = i omega_c  <->  z = exp(i theta) with theta = 2 arctan(omega_c)
        theta = 2.0 * np.arctan(np.asarray(omega_c, dtype=float))
        G = discrete(np.exp(1j * theta))
        return np.array([spla.svdvals(g)[0] for g in G])

    peak = _peak_continuous(bilinear_to_continuous(sys), rtol=rtol, max_iter=max_iter, sigma=sigma_on_circle)
    theta = np.pi if np.isinf(peak.omega) else 2.0 * np.arctan(peak.omega)
    return PeakGain(peak.gain, float(theta / sys.dt))


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
