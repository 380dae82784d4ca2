r"""System norms: :math:`\mathcal H_2`, :math:`\mathcal H_\infty` and the Hankel norm.

The H-infinity norm uses the level-set method of Boyd-Balakrishnan / Bruinsma-Steinbuch on the
Hamiltonian matrix (quadratically convergent), for real and complex systems. Discrete-time systems
are mapped to continuous time by the bilinear transform :math:`z = (1+s)/(1-s)`, which maps the unit
circle onto the imaginary axis and leaves the H-infinity norm unchanged.

The iteration itself (gain evaluation, level sets, peak refinement) lives in the private
:mod:`ssmred._hinf` and is re-exported here; this module owns the public norms, the bilinear transform
and the :func:`peak_gain` driver.
"""

from __future__ import annotations

import numbers
import warnings
from typing import NamedTuple

import numpy as np
import scipy.linalg as spla

from ssmred._hinf import _EPS as _EPS
from ssmred._hinf import _Gain as _Gain
from ssmred._hinf import _imaginary_eigs as _imaginary_eigs
from ssmred._hinf import _level_set as _level_set
from ssmred._hinf import _pow2 as _pow2
from ssmred._hinf import _refine as _refine
from ssmred._hinf import _sigma_max as _sigma_max
from ssmred._hinf import _svdmax as _svdmax
from ssmred._threads import kernel
from ssmred.backends import scipy as scipy_backend
from ssmred.errors import AccuracyWarning
from ssmred.gramians import require_stable
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
