"""Helpers shared by the projection reductors (balanced truncation, singular perturbation).

This private module owns how a reduced model is built from matrices ssmred computed itself
(:func:`_trusted`), the zero realization of a transfer function that is zero to rounding
(:func:`_zero_realization`, :func:`_numerically_zero`), read-only result arrays (:func:`_frozen`), and
the check that the a-priori bound covers the rounding errors (:data:`BOUND_RTOL`, :data:`BOUND_ATOL`,
:func:`_warn_if_bound_unreliable`). :mod:`ssmred.balanced` re-exports these names.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg as spla

from ssmred._dense import SquareRoot
from ssmred.errors import AccuracyWarning
from ssmred.statespace import StateSpace

_EPS = float(np.finfo(float).eps)


def _frozen(*arrays: np.ndarray) -> None:
    for a in arrays:
        a.setflags(write=False)


def _trusted(A: np.ndarray, B: np.ndarray, C: np.ndarray, D: np.ndarray, dt: float | None) -> StateSpace:
    """A StateSpace from matrices ssmred computed itself (shapes known); validated if anything is off."""
    return StateSpace._from_computed(A, B, C, D, dt)


def _zero_realization(sys: StateSpace, r: int) -> StateSpace:
    """The transfer function ``D`` with ``r`` states: ``A = -I`` (CT) or ``0`` (DT), ``B = 0``, ``C = 0``."""
    dtype = sys.dtype
    A = np.zeros((r, r), dtype=dtype) if sys.is_discrete else -np.eye(r, dtype=dtype)
    return StateSpace(
        A, np.zeros((r, sys.n_inputs), dtype=dtype), np.zeros((sys.n_outputs, r), dtype=dtype), sys.D, dt=sys.dt
    )


def _numerically_zero(sr: SquareRoot) -> bool:
    """``G - D ≡ 0`` to rounding: sigma_1 at the factors' rounding floor and G - D ~ 0 at four points."""
    s1 = float(sr.hsv[0]) if sr.hsv.size else 0.0
    if s1 == 0.0:
        return True
    if s1 > 128.0 * sr.hsv_floor * np.sqrt(max(sr.n, 1)):
        return False
    A, B, C = sr.Ac, sr.Bc, sr.Cc
    n = A.shape[0]
    rho = (1.0 + 1.0 / n) * max(float(np.max(np.abs(A).sum(axis=0))), np.finfo(float).tiny)
    eye = np.eye(n)
    eps = np.finfo(float).eps
    for phi in (0.37, 1.13, 2.21, -0.83):
        z = rho * np.exp(1j * phi)
        X = spla.solve(z * eye - A, B.astype(np.complex128), check_finite=False)
        G = C @ X
        scale = float(np.sqrt(np.vdot(C, C).real) * np.sqrt(np.vdot(X, X).real))
        if float(np.sqrt(np.vdot(G, G).real)) > 1e3 * n * eps * scale:
            return False
    return True


#: The bound is reported as reliable when the estimated rounding floor is below both limits: a relative
#: part of the bound, and an absolute part of sigma_1 (errors there are rounding level for any G_r).
BOUND_RTOL = 1e-6
BOUND_ATOL = 1e-10


def _warn_if_bound_unreliable(
    sr: SquareRoot, order: int, bound: float, cond: float, *, what: str, stacklevel: int
) -> None:
    """AccuracyWarning when rounding errors can push ``||G - G_r||_inf`` above the bound by more than the
    tolerance ``BOUND_RTOL * bound + BOUND_ATOL * sigma_1`` (poles close to the stability boundary), or when
    the projection is too ill-conditioned for the reduced matrices to carry any accuracy.
    """
    floor = sr.error_floor()
    s1 = float(sr.hsv[0])
    kind = "unit circle" if sr.discrete else "imaginary axis"
    if floor > max(BOUND_RTOL * bound, BOUND_ATOL * s1):
        warnings.warn(
            f"{what} to order {order}: the a-priori bound 2*sum(discarded HSVs) = {bound:.3g} does not cover "
            f"rounding errors, which can reach ~{floor:.2g} here (a pole within {sr.delta:.2g} of the {kind}, "
            f"||A|| = {sr.anorm:.3g}: the HSVs and the reduced model are accurate only to ~eps*||A||/distance "
            f"relative); expect ||G - G_r||_inf up to ~{bound + floor:.3g}",
            AccuracyWarning,
            stacklevel=stacklevel,
        )
    if cond * _EPS > 1e-6:
        warnings.warn(
            f"{what} to order {order}: the projection has condition number {cond:.2g}; the reduced matrices carry "
            f"~{cond * _EPS:.1g} relative rounding errors, which the bound does not cover",
            AccuracyWarning,
            stacklevel=stacklevel,
        )
    for note in sr.notes:
        warnings.warn(f"{what}: {note}", AccuracyWarning, stacklevel=stacklevel)
