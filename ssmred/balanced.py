r"""Balanced truncation (square-root and balancing-free square-root) and singular perturbation.

With :math:`L_o^H L_c = U \Sigma V^H` (see :mod:`ssmred.hsv`):

* **SR** (Laub et al. 1987): :math:`T = L_c V_r \Sigma_r^{-1/2}`, :math:`T_i = \Sigma_r^{-1/2} U_r^H L_o^H`,
  so :math:`T_i T = I_r` and the reduced model :math:`(T_i A T, T_i B, C T, D)` is balanced in
  continuous time.
* **BFSR** (Varga 1991): orthonormal bases :math:`X = \mathrm{orth}(L_c V_r)`,
  :math:`Y = \mathrm{orth}(L_o U_r)`, :math:`T = X`, :math:`T_i = (Y^H X)^{-1} Y^H`. Same transfer
  function, better conditioned when the HSVs span many decades; the reduced model is not balanced.

``inv(T)`` is never formed. For any stable system and :math:`\sigma_r > \sigma_{r+1}` the reduced model
is stable and :math:`\sigma_{r+1} \le \|G - G_r\|_\infty \le 2\sum_{i>r}\sigma_i`. In discrete time the
truncated model is stable but not balanced: recompute its Gramians before reducing it again.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.linalg as spla

from ssmred.backends import GramianMethod, check_choice
from ssmred.bounds import bt_error_bounds, select_order
from ssmred.errors import AccuracyWarning
from ssmred.hsv import HankelSVD, hankel_svd
from ssmred.statespace import StateSpace

__all__ = [
    "BTResult",
    "BalancedTruncation",
    "SPAResult",
    "balanced_truncation",
    "minimal_realization",
    "singular_perturbation",
]

BTMethod = Literal["sr", "bfsr"]


def _frozen(*arrays: np.ndarray) -> None:
    for a in arrays:
        a.setflags(write=False)


@dataclass(frozen=True)
class BTResult:
    r"""Result of balanced truncation.

    Attributes
    ----------
    reduced
        The reduced system :math:`(T_i A T, T_i B, C T, D)` with ``r`` states.
    hsv
        All Hankel singular values of the original system (descending).
    r
        The reduced order.
    error_bound
        :math:`2\sum_{i>r}\sigma_i`, an upper bound on :math:`\|G-G_r\|_\infty`.
    T
        Right projection, shape ``(n, r)`` (``x ≈ T x_r``).
    Ti
        Left projection, shape ``(r, n)``, with ``Ti @ T = I_r`` (``x_r = Ti x``).
    """

    reduced: StateSpace
    hsv: np.ndarray
    r: int
    error_bound: float
    T: np.ndarray
    Ti: np.ndarray

    @property
    def lower_bound(self) -> float:
        r"""The lower bound :math:`\sigma_{r+1}` (0 when nothing was truncated)."""
        return float(self.hsv[self.r]) if self.r < self.hsv.size else 0.0


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


class BalancedTruncation:
    r"""Balanced-truncation reductor: computes the Gramian factors and HSVs once, reduces to any order.

    Parameters
    ----------
    sys
        A stable system (real or complex, continuous or discrete).
    gramian_method
        How the Gramian factors are computed, see :func:`ssmred.gramian_factors`.

    Raises
    ------
    NotStableError
        If ``sys`` is not asymptotically stable.

    Examples
    --------
    >>> sys = StateSpace(np.diag([-1.0, -10.0, -100.0]), np.ones((3, 1)), np.ones((1, 3)))
    >>> bt = BalancedTruncation(sys)
    >>> res = bt.reduce(1)
    >>> res.reduced.n_states, bool(res.error_bound >= 2 * bt.hsv[1:].sum() - 1e-15)
    (1, True)
    """

    def __init__(self, sys: StateSpace, *, gramian_method: GramianMethod = "auto") -> None:
        self.sys = sys
        self._svd: HankelSVD = hankel_svd(sys, method=gramian_method)

    @property
    def hsv(self) -> np.ndarray:
        """Hankel singular values, descending (read-only copy)."""
        s = self._svd.hsv.copy()
        s.setflags(write=False)
        return s

    def error_bounds(self) -> np.ndarray:
        r"""The a-priori bound :math:`2\sum_{i>r}\sigma_i` for every ``r = 0, ..., n``.

        Returns
        -------
        numpy.ndarray
            Shape ``(n + 1,)``.
        """
        return bt_error_bounds(self._svd.hsv)

    def numerical_rank(self, *, rtol: float | None = None) -> int:
        r"""Number of HSVs above ``rtol * σ_1`` (the order of a minimal realization, numerically).

        Parameters
        ----------
        rtol
            Relative threshold; default ``n * eps``.

        Returns
        -------
        int
            The numerical Hankel rank.
        """
        s = self._svd.hsv
        if s[0] == 0.0:
            return 0
        threshold = (s.size * np.finfo(float).eps if rtol is None else float(rtol)) * s[0]
        return int(np.count_nonzero(s > threshold))

    def reduce(
        self,
        r: int | None = None,
        *,
        tol: float | None = None,
        energy: float | None = None,
        method: BTMethod = "bfsr",
    ) -> BTResult:
        r"""Truncate to order ``r`` (or the order selected by ``tol`` / ``energy``).

        Parameters
        ----------
        r
            Reduced order, ``1 <= r <= n``.
        tol
            Choose the smallest ``r`` whose bound :math:`2\sum_{i>r}\sigma_i` is ``<= tol``.
        energy
            CompreSSM rule: τ, the discarded fraction of :math:`\sum_i\sigma_i`
            (see :func:`ssmred.bounds.order_from_energy`).
        method
            ``"sr"`` (balanced reduced model) or ``"bfsr"`` (balancing-free, better conditioned).

        Returns
        -------
        BTResult
            The reduced system, HSVs, order, bound and projections.

        Raises
        ------
        ValueError
            If not exactly one of ``r``/``tol``/``energy`` is given, a value is out of range, or ``r``
            exceeds the numerical rank of the Hankel operator (the projection would be singular).

        Warns
        -----
        AccuracyWarning
            If :math:`\sigma_r \approx \sigma_{r+1}` (the bound's stability guarantee needs a gap).
        """
        check_choice("method", method, ("sr", "bfsr"))
        s = self._svd.hsv
        order = select_order(s, r=r, tol=tol, energy=energy)
        rank = self.numerical_rank()
        if order > rank:
            if r is not None:
                raise ValueError(
                    f"r={order} exceeds the numerical rank {rank} of the Hankel operator "
                    f"(sigma_{order}={s[order - 1]:.3g} <= n*eps*sigma_1); the system has a minimal "
                    f"realization of order {rank}: choose r <= {rank}"
                )
            order = max(rank, 1)
        if order < s.size and s[order] > 0 and (s[order - 1] - s[order]) <= 1e-10 * s[order - 1]:
            warnings.warn(
                f"sigma_{order} = {s[order - 1]:.6g} and sigma_{order + 1} = {s[order]:.6g} are equal to "
                "1e-10: truncating between equal HSVs voids the stability guarantee",
                AccuracyWarning,
                stacklevel=2,
            )
        T, Ti = _projections(self._svd, order, method)
        sys = self.sys
        reduced = StateSpace(Ti @ sys.A @ T, Ti @ sys.B, sys.C @ T, sys.D, dt=sys.dt)
        hsv = s.copy()
        _frozen(hsv, T, Ti)
        return BTResult(reduced, hsv, order, float(bt_error_bounds(s)[order]), T, Ti)


def _projections(svd: HankelSVD, r: int, method: str) -> tuple[np.ndarray, np.ndarray]:
    Lc, Lo, U, s, Vh = svd
    Ur = U[:, :r]
    Vr = Vh[:r].conj().T
    if method == "sr":
        scale = 1.0 / np.sqrt(s[:r])
        T = (Lc @ Vr) * scale[None, :]
        Ti = scale[:, None] * (Ur.conj().T @ Lo.conj().T)
        return T, Ti
    X = spla.qr(Lc @ Vr, mode="economic")[0]
    Y = spla.qr(Lo @ Ur, mode="economic")[0]
    Ti = spla.solve(Y.conj().T @ X, Y.conj().T)
    return X, Ti


def balanced_truncation(
    sys: StateSpace,
    r: int | None = None,
    *,
    tol: float | None = None,
    energy: float | None = None,
    method: BTMethod = "bfsr",
    gramian_method: GramianMethod = "auto",
) -> BTResult:
    r"""Balanced truncation of a stable system to order ``r`` (or by ``tol`` / ``energy``).

    Parameters
    ----------
    sys
        A stable system (real or complex, continuous or discrete, MIMO).
    r
        Reduced order, ``1 <= r <= n``.
    tol
        Choose the smallest order whose bound :math:`2\sum_{i>r}\sigma_i` is at most ``tol``.
    energy
        τ: discard this fraction of the plain HSV sum (CompreSSM's tolerance mode).
    method
        ``"bfsr"`` (default, balancing-free square root) or ``"sr"`` (square root, balanced output).
    gramian_method
        See :func:`ssmred.gramian_factors`.

    Returns
    -------
    BTResult
        ``reduced``, ``hsv``, ``r``, ``error_bound``, ``T``, ``Ti``.

    Raises
    ------
    NotStableError
        If ``sys`` is unstable.
    ValueError
        If not exactly one of ``r``, ``tol``, ``energy`` is given or the value is out of range.

    Notes
    -----
    :math:`\sigma_{r+1} \le \|G - G_r\|_\infty \le 2\sum_{i>r}\sigma_i` (Glover 1984; Al-Saggaf &
    Franklin 1987 for discrete time).

    References
    ----------
    laub1987, varga1991, glover1984

    Examples
    --------
    The SLICOT AB09AD example (7 states) with ``tol=0.1`` keeps 5 states:

    >>> from ssmred.examples import slicot_ab09ad
    >>> res = balanced_truncation(slicot_ab09ad(), tol=0.1)
    >>> res.r, round(res.error_bound, 4)
    (5, 0.0997)
    """
    return BalancedTruncation(sys, gramian_method=gramian_method).reduce(r, tol=tol, energy=energy, method=method)


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
    bt = BalancedTruncation(sys, gramian_method=gramian_method)
    s = bt._svd.hsv
    order = select_order(s, r=r, tol=tol, energy=energy)
    k = max(bt.numerical_rank(), 1)
    if r is not None and order > k:
        raise ValueError(
            f"r={order} exceeds the numerical rank {k} of the Hankel operator; the system has a minimal "
            f"realization of order {k}: choose r <= {k}"
        )
    order = min(order, k)
    # balanced minimal realization of order k (SR), then a Schur complement on states order..k
    T, Ti = _projections(bt._svd, k, "sr")
    A, B, C = Ti @ sys.A @ T, Ti @ sys.B, sys.C @ T
    D = np.array(sys.D)
    if order < k:
        A11, A12, A21, A22 = A[:order, :order], A[:order, order:], A[order:, :order], A[order:, order:]
        B1, B2, C1, C2 = B[:order], B[order:], C[:, :order], C[:, order:]
        M = A22 if not sys.is_discrete else np.eye(k - order) - A22
        sign = -1.0 if not sys.is_discrete else 1.0
        lu = spla.lu_factor(M)
        X_A = spla.lu_solve(lu, A21)
        X_B = spla.lu_solve(lu, B2)
        A = A11 + sign * A12 @ X_A
        B = B1 + sign * A12 @ X_B
        D = D + sign * C2 @ X_B
        C = C1 + sign * C2 @ X_A
    reduced = StateSpace(A, B, C, D, dt=sys.dt)
    hsv = s.copy()
    _frozen(hsv)
    return SPAResult(reduced, hsv, order, float(bt_error_bounds(s)[order]))


def minimal_realization(sys: StateSpace, *, rtol: float | None = None) -> StateSpace:
    r"""A minimal realization of a stable system: balanced truncation to the numerical Hankel rank.

    States with :math:`\sigma_i \le \text{rtol}\cdot\sigma_1` are uncontrollable or unobservable
    (numerically) and are removed; the transfer function is unchanged up to :math:`2\sum` of the
    removed values.

    Parameters
    ----------
    sys
        A stable system.
    rtol
        Relative HSV threshold; default ``n * eps``.

    Returns
    -------
    StateSpace
        The reduced system (``sys`` itself when it is already minimal).

    Raises
    ------
    NotStableError
        If ``sys`` is unstable.

    Examples
    --------
    >>> sys = StateSpace(np.diag([-1.0, -2.0]), [[1.0], [0.0]], [[1.0, 1.0]])   # state 2 uncontrollable
    >>> minimal_realization(sys).n_states
    1
    """
    bt = BalancedTruncation(sys)
    k = max(bt.numerical_rank(rtol=rtol), 1)
    if k == sys.n_states:
        return sys
    return bt.reduce(k).reduced
