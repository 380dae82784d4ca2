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

This module owns the :class:`BTResult` value type, the :class:`BalancedTruncation` reductor and the
functions built on it. Singular perturbation (:class:`SPAResult`, :func:`singular_perturbation`) lives
in the private :mod:`ssmred._spa`, the helpers both share (zero realization, bound-reliability
warnings) in :mod:`ssmred._reduction`; both are re-exported here.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ssmred._reduction import _EPS as _EPS
from ssmred._reduction import BOUND_ATOL as BOUND_ATOL
from ssmred._reduction import BOUND_RTOL as BOUND_RTOL
from ssmred._reduction import _frozen as _frozen
from ssmred._reduction import _numerically_zero as _numerically_zero
from ssmred._reduction import _trusted as _trusted
from ssmred._reduction import _warn_if_bound_unreliable as _warn_if_bound_unreliable
from ssmred._reduction import _zero_realization as _zero_realization
from ssmred._spa import SPAResult as SPAResult
from ssmred._spa import singular_perturbation as singular_perturbation
from ssmred._threads import _default_size, kernel, limit_for
from ssmred.backends import GramianMethod, check_choice
from ssmred.bounds import _select_order, bt_error_bounds
from ssmred.errors import AccuracyWarning
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
