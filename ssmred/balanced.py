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

from ssmred._dense import SquareRoot
from ssmred._threads import _default_size, kernel, limit_for
from ssmred.backends import GramianMethod, check_choice
from ssmred.bounds import _select_order, bt_error_bounds, select_order
from ssmred.errors import AccuracyWarning, NotStableError
from ssmred.hsv import HankelSVD
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
_EPS = float(np.finfo(float).eps)


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
        Left projection, shape ``(r, n)``, with ``Ti @ T = I_r`` (``x_r = Ti x``). For a system whose
        transfer function is zero to rounding (Hankel rank 0, e.g. ``g - g``) there is nothing to
        project on: ``reduced`` is then the zero realization (``B_r = 0``, ``C_r = 0``, ``A_r = -I``
        in continuous time, ``0`` in discrete time) and ``T``, ``Ti`` are zero.
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

    Notes
    -----
    The factors, their SVD and the projections are computed in *computation coordinates* (the states
    after the exact power-of-two scaling, or their real Schur basis on the SLICOT path), where the data
    are balanced; only :attr:`BTResult.T` / ``Ti`` are mapped back to the original coordinates.

    Examples
    --------
    >>> sys = StateSpace(np.diag([-1.0, -10.0, -100.0]), np.ones((3, 1)), np.ones((1, 3)))
    >>> bt = BalancedTruncation(sys)
    >>> res = bt.reduce(1)
    >>> res.reduced.n_states, bool(res.error_bound >= 2 * bt.hsv[1:].sum() - 1e-15)
    (1, True)
    """

    def __init__(self, sys: StateSpace, *, gramian_method: GramianMethod = "auto") -> None:
        self._setup(sys, gramian_method, None)

    @classmethod
    def _for_order(cls, sys: StateSpace, gramian_method: GramianMethod, order: int | None) -> BalancedTruncation:
        """A reductor that may compute bases for ``order`` states only (the SLICOT path); private."""
        self = cls.__new__(cls)
        self._setup(sys, gramian_method, order)
        return self

    @kernel(lambda self, sys, *args, **kwargs: _default_size(sys))
    def _setup(self, sys: StateSpace, gramian_method: GramianMethod, order_hint: int | None) -> None:
        from ssmred.hsv import _square_root

        self.sys = sys
        hint = order_hint if isinstance(order_hint, int) and 1 <= order_hint <= getattr(sys, "n_states", 0) else None
        self._sr = _square_root(sys, gramian_method, order_hint=hint)
        self._hsv = self._sr.hsv
        self._zero: bool | None = None

    @property
    def hsv(self) -> np.ndarray:
        """Hankel singular values, descending (read-only copy)."""
        s = self._hsv.copy()
        s.setflags(write=False)
        return s

    @property
    def _svd(self) -> HankelSVD:
        """Gramian factors and SVD in the original coordinates (compatibility view)."""
        Lc, Lo = self._sr.factors_original()
        return HankelSVD(Lc, Lo, self._sr.U, self._hsv, self._sr.Vh)

    def error_bounds(self) -> np.ndarray:
        r"""The a-priori bound :math:`2\sum_{i>r}\sigma_i` for every ``r = 0, ..., n``.

        Returns
        -------
        numpy.ndarray
            Shape ``(n + 1,)``.
        """
        return bt_error_bounds(self._hsv)

    def is_zero(self) -> bool:
        r"""Whether the transfer function is zero to rounding (``G - D ≡ 0``, e.g. ``g - g``).

        True when every HSV is exactly 0, or when :math:`\sigma_1` is at the rounding floor of the
        Gramian factors and ``G - D`` evaluates to zero (relative to the size of its terms) at four
        points away from the spectrum.

        Returns
        -------
        bool
            ``True`` for a numerically zero transfer function.
        """
        if self._zero is None:
            self._zero = _numerically_zero(self._sr)
        return self._zero

    def numerical_rank(self, *, rtol: float | None = None) -> int:
        r"""Number of HSVs above ``rtol * σ_1`` (the order of a minimal realization, numerically).

        Parameters
        ----------
        rtol
            Relative threshold; default ``n * eps``. A transfer function that is zero to rounding
            (:meth:`is_zero`) has rank 0 whatever ``rtol``.

        Returns
        -------
        int
            The numerical Hankel rank.
        """
        s = self._hsv
        if s[0] == 0.0 or (self._zero is not False and self.is_zero()):
            return 0
        threshold = (s.size * _EPS if rtol is None else float(rtol)) * s[0]
        return int(np.count_nonzero(s > threshold))

    @kernel(lambda self, *args, **kwargs: self.sys.n_states)
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
            If :math:`\sigma_r \approx \sigma_{r+1}` (the bound's stability guarantee needs a gap), or
            if the rounding errors of the computation can exceed the bound: poles within
            ~:math:`\sqrt\epsilon`-relative distance of the stability boundary or an ill-conditioned
            projection (the warning gives the estimated rounding floor the bound does not cover).
        """
        return self._reduce(r, tol, energy, method)

    def _reduce(self, r: int | None, tol: float | None, energy: float | None, method: str) -> BTResult:
        check_choice("method", method, ("sr", "bfsr"))
        s = self._hsv
        sys = self.sys
        order = _select_order(s, r, tol, energy)
        rank = self.numerical_rank()
        if rank == 0:  # G - D is zero to rounding: the zero realization (nothing to balance)
            hsv = s.copy()
            T = np.zeros((sys.n_states, order), dtype=sys.dtype)
            Ti = np.zeros((order, sys.n_states), dtype=sys.dtype)
            _frozen(hsv, T, Ti)
            return BTResult(_zero_realization(sys, order), hsv, order, float(bt_error_bounds(s)[order]), T, Ti)
        if order > rank:
            if r is not None:
                raise ValueError(
                    f"r={order} exceeds the numerical rank {rank} of the Hankel operator "
                    f"(sigma_{order}={s[order - 1]:.3g} <= n*eps*sigma_1); the system has a minimal "
                    f"realization of order {rank}: choose r <= {rank}"
                )
            order = rank
        if order < s.size and s[order] > 0 and (s[order - 1] - s[order]) <= 1e-10 * s[order - 1]:
            warnings.warn(
                f"sigma_{order} = {s[order - 1]:.6g} and sigma_{order + 1} = {s[order]:.6g} are equal to "
                "1e-10: truncating between equal HSVs voids the stability guarantee",
                AccuracyWarning,
                stacklevel=3,
            )
        sr = self._sr
        Tc, Tic, cond = sr.projections(order, method)
        # = bt_error_bounds(s)[order], bit for bit (the tail summed smallest first), without re-validating s
        bound = 2.0 * float(np.cumsum(s[::-1])[s.size - 1 - order]) if order < s.size else 0.0
        _warn_if_bound_unreliable(sr, order, bound, cond, what="balanced truncation", stacklevel=4)
        reduced = _trusted(Tic @ sr.Ac @ Tc, Tic @ sr.Bc, sr.Cc @ Tc, sys.D, sys.dt)
        T, Ti = sr.to_original(Tc, Tic)
        hsv = s.copy()
        _frozen(hsv, T, Ti)
        return BTResult(reduced, hsv, order, bound, T, Ti)


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


@kernel()
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
    hint = int(r) if (r is not None and tol is None and energy is None and type(r) is int) else None
    bt = BalancedTruncation._for_order(sys, gramian_method, hint)
    return bt.reduce(r, tol=tol, energy=energy, method=method)


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
        The reduced system (``sys`` itself when it is already minimal). A transfer function that is
        zero to rounding (``G ≡ D``, e.g. ``g - g``) has a minimal realization with 0 states; a
        :class:`~ssmred.StateSpace` has at least one, so it is returned as one state with ``B = 0``,
        ``C = 0``, ``A = -1`` (CT) or ``0`` (DT) and the original ``D``.

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
    with limit_for(sys.n_states if isinstance(sys, StateSpace) else 0):
        bt = BalancedTruncation(sys)
        k = bt.numerical_rank(rtol=rtol)
        if k == 0:  # G - D ≡ 0 to rounding: one state with B = 0, C = 0 (StateSpace needs n >= 1)
            return _zero_realization(sys, 1)
        if k == sys.n_states:
            return sys
        return bt.reduce(k).reduced
