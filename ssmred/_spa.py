r"""Singular perturbation approximation: :class:`SPAResult` and :func:`singular_perturbation`.

This private module owns the balanced-residualization reductor (the Schur complement of the discarded
states of a balanced minimal realization). It reuses :class:`ssmred.balanced.BalancedTruncation` for the
Gramian factors and HSVs (imported where it is used, since :mod:`ssmred.balanced` re-exports these
names) and the shared checks of :mod:`ssmred._reduction`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg as spla

from ssmred._reduction import _frozen, _trusted, _warn_if_bound_unreliable, _zero_realization
from ssmred._threads import limit_for
from ssmred.backends import GramianMethod
from ssmred.bounds import bt_error_bounds, select_order
from ssmred.errors import NotStableError
from ssmred.statespace import StateSpace

__all__ = ["SPAResult", "singular_perturbation"]


@dataclass(frozen=True)
class SPAResult:
    r"""Result of singular perturbation approximation (same bounds as balanced truncation).

    Attributes
    ----------
    reduced
        The reduced system; it matches the steady-state gain (``G(0)`` CT, ``G(1)`` DT).
    hsv
        All Hankel singular values of the original system.
    r
        The reduced order.
    error_bound
        :math:`2\sum_{i>r}\sigma_i`.
    """

    reduced: StateSpace
    hsv: np.ndarray
    r: int
    error_bound: float

    @property
    def lower_bound(self) -> float:
        r"""The lower bound :math:`\sigma_{r+1}` (0 when nothing was truncated)."""
        return float(self.hsv[self.r]) if self.r < self.hsv.size else 0.0


def singular_perturbation(
    sys: StateSpace,
    r: int | None = None,
    *,
    tol: float | None = None,
    energy: float | None = None,
    gramian_method: GramianMethod = "auto",
) -> SPAResult:
    r"""Singular perturbation approximation: balanced truncation corrected to match the DC gain.

    With the balanced realization partitioned into kept (1) and discarded (2) states,

    .. math::

        \text{CT: } A_r = A_{11} - A_{12}A_{22}^{-1}A_{21},\; B_r = B_1 - A_{12}A_{22}^{-1}B_2,\;
        C_r = C_1 - C_2A_{22}^{-1}A_{21},\; D_r = D - C_2A_{22}^{-1}B_2,

    and in DT the same with :math:`A_{22}^{-1}` replaced by :math:`-(I - A_{22})^{-1}`. Then
    :math:`G_r(0) = G(0)` (CT) or :math:`G_r(1) = G(1)` (DT), and the bound
    :math:`\|G-G_r\|_\infty \le 2\sum_{i>r}\sigma_i` holds as for truncation.

    Parameters
    ----------
    sys
        A stable system.
    r
        Reduced order.
    tol
        Choose ``r`` by the a-priori bound.
    energy
        Choose ``r`` by the discarded fraction of the HSV sum.
    gramian_method
        See :func:`ssmred.gramian_factors`.

    Returns
    -------
    SPAResult
        ``reduced``, ``hsv``, ``r``, ``error_bound``.

    Raises
    ------
    NotStableError
        If ``sys`` is unstable.

    Examples
    --------
    >>> sys = StateSpace(np.diag([-1.0, -10.0]), [[1.0], [1.0]], [[1.0, 1.0]])
    >>> red = singular_perturbation(sys, 1).reduced
    >>> bool(np.allclose(red(0.0), sys(0.0)))
    True
    """
    from ssmred.balanced import BalancedTruncation

    with limit_for(sys.n_states if isinstance(sys, StateSpace) else 0):
        bt = BalancedTruncation(sys, gramian_method=gramian_method)
        s = bt._hsv
        order = select_order(s, r=r, tol=tol, energy=energy)
        k = bt.numerical_rank()
        if k == 0:  # G - D is zero to rounding: the zero realization, which matches G(0) = D exactly
            hsv = s.copy()
            _frozen(hsv)
            return SPAResult(_zero_realization(sys, order), hsv, order, float(bt_error_bounds(s)[order]))
        if r is not None and order > k:
            raise ValueError(
                f"r={order} exceeds the numerical rank {k} of the Hankel operator; the system has a minimal "
                f"realization of order {k}: choose r <= {k}"
            )
        order = min(order, k)
        sr = bt._sr
        # balanced minimal realization of order k (SR), then a Schur complement on states order..k
        T, Ti, cond = sr.projections(k, "sr")
        A, B, C = Ti @ sr.Ac @ T, Ti @ sr.Bc, sr.Cc @ T
        D = np.array(sys.D)
        if order < k:
            A11, A12, A21, A22 = A[:order, :order], A[:order, order:], A[order:, :order], A[order:, order:]
            B1, B2, C1, C2 = B[:order], B[order:], C[:, :order], C[:, order:]
            M = A22 if not sys.is_discrete else np.eye(k - order) - A22
            sign = -1.0 if not sys.is_discrete else 1.0
            lu = spla.lu_factor(M, check_finite=False)
            X_A = spla.lu_solve(lu, A21, check_finite=False)
            X_B = spla.lu_solve(lu, B2, check_finite=False)
            A = A11 + sign * A12 @ X_A
            B = B1 + sign * A12 @ X_B
            D = D + sign * C2 @ X_B
            C = C1 + sign * C2 @ X_A
            rcond = float(np.min(np.abs(np.diag(lu[0]))) / max(np.max(np.abs(np.diag(lu[0]))), 1e-300))
            cond = cond / max(rcond, 1e-300)
        bound = float(bt_error_bounds(s)[order])
        _warn_if_bound_unreliable(sr, order, bound, cond, what="singular perturbation", stacklevel=3)
        if not (
            np.all(np.isfinite(A)) and np.all(np.isfinite(B)) and np.all(np.isfinite(C)) and np.all(np.isfinite(D))
        ):
            raise NotStableError(
                "singular perturbation: the Schur complement of the discarded states is singular to working "
                f"precision (poles within {sr.delta:.2g} of the stability boundary); use balanced_truncation"
            )
        reduced = _trusted(A, B, C, D, sys.dt)
        hsv = s.copy()
        _frozen(hsv)
        return SPAResult(reduced, hsv, order, bound)
