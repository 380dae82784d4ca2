r"""Perturbation bounds for Hankel singular values (Weyl's theorem, SPEC §5).

The Hermitian positive semidefinite matrix

.. math::

    H = \big(P^{1/2}\, Q\, P^{1/2}\big)^{1/2}

has the Hankel singular values as eigenvalues (:math:`\lambda_i(H)^2 = \lambda_i(P^{1/2}QP^{1/2}) =
\lambda_i(PQ) = \sigma_i^2`). For two systems with Hermitian matrices :math:`H_a, H_b` of the same
size, Weyl's inequality gives, for every index ``i`` (values sorted descending),

.. math::

    |\sigma_i(b) - \sigma_i(a)| \le \|H_b - H_a\|_2 .

A second, coordinate-free bound comes from the Hankel *operators*: the Hankel singular values are the
singular values of :math:`\Gamma_G`, the map is linear (:math:`\Gamma_{G_b} - \Gamma_{G_a} =
\Gamma_{G_b - G_a}`), and singular values of operators are 1-Lipschitz, so

.. math::

    |\sigma_i(b) - \sigma_i(a)| \le \|\Gamma_{G_b} - \Gamma_{G_a}\| = \|G_b - G_a\|_H ,

the Hankel norm of the difference system (:func:`hankel_distance`). It needs no common coordinates
and not even equal state dimensions. Both bounds hold; neither dominates the other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg as spla

from ssmred._threads import kernel
from ssmred.backends import GramianMethod
from ssmred.errors import DimensionError
from ssmred.gramians import check_stable_poles, check_system, gramian_factors
from ssmred.hsv import hankel_singular_values
from ssmred.statespace import StateSpace, stability_slack

__all__ = ["HSVPerturbation", "hankel_distance", "hankel_matrix", "hsv_perturbation"]

_EPS = float(np.finfo(np.float64).eps)


def _check_system(sys: object, name: str) -> StateSpace:
    """Type and stability check (same rule as the Gramians) with a message that names the argument."""
    check_system(sys, name)
    assert isinstance(sys, StateSpace)
    check_stable_poles(
        sys.poles(), discrete=sys.is_discrete, what=f"{name} is not stable: Hankel singular values",
        slack=stability_slack(sys.A),
    )  # fmt: skip
    return sys


def _hermitian_sqrt_of_factor(L: np.ndarray) -> np.ndarray:
    r""":math:`(L L^H)^{1/2}` from the SVD of ``L`` (the polar decomposition), never from ``sqrtm``."""
    U, s, _ = spla.svd(L, full_matrices=False, lapack_driver="gesvd")
    return (U * s[None, :]) @ U.conj().T


def _hankel_eig(sys: StateSpace, method: GramianMethod) -> tuple[np.ndarray, np.ndarray]:
    r"""``(H, sigma)`` with ``H = W diag(sigma) W^H`` built from the SVD of :math:`L_o^H P^{1/2}`."""
    Lc, Lo = gramian_factors(sys, method=method)
    P_half = _hermitian_sqrt_of_factor(Lc)
    # P^{1/2} Q P^{1/2} = M^H M with M = Lo^H P^{1/2} = U diag(s) W^H, so its square root is W diag(s) W^H.
    _, s, Wh = spla.svd(Lo.conj().T @ P_half, lapack_driver="gesvd")
    W = Wh.conj().T
    H = (W * s[None, :]) @ Wh
    scale = float(s[0]) if s.size else 0.0
    # internal invariants (cheap): H is Hermitian to rounding and its eigenvalues s are >= 0
    asym = float(np.max(np.abs(H - H.conj().T))) if H.size else 0.0
    assert asym <= 1e3 * sys.n_states * _EPS * max(scale, np.finfo(np.float64).tiny), asym
    assert np.all(s >= 0.0)
    H = 0.5 * (H + H.conj().T)
    if not sys.is_complex:
        H = H.real
    return H, s


@kernel()
def hankel_matrix(sys: StateSpace, *, method: GramianMethod = "auto") -> np.ndarray:
    r"""The Hermitian PSD matrix :math:`H = (P^{1/2} Q P^{1/2})^{1/2}` whose eigenvalues are the HSVs.

    Computed from the square-root factors :math:`P = L_c L_c^H`, :math:`Q = L_o L_o^H` of
    :func:`ssmred.gramian_factors` with two SVDs and no matrix square root of a product:

    1. :math:`L_c = U_c S_c V_c^H` gives :math:`P^{1/2} = U_c S_c U_c^H` (polar decomposition);
    2. :math:`M = L_o^H P^{1/2} = U \Sigma W^H` gives :math:`P^{1/2} Q P^{1/2} = M^H M = W \Sigma^2 W^H`,
       hence :math:`H = W \Sigma W^H` with :math:`\Sigma = \mathrm{diag}(\sigma_1, \dots, \sigma_n)`.

    The singular values of :math:`M` are the Hankel singular values (since :math:`L_c = P^{1/2}
    U_c V_c^H`, :math:`M` and :math:`L_o^H L_c` differ by a unitary factor).

    Parameters
    ----------
    sys
        A stable system (real or complex, continuous or discrete).
    method
        Gramian method, see :func:`ssmred.gramian_factors`.

    Returns
    -------
    numpy.ndarray
        Hermitian positive semidefinite ``(n, n)`` matrix; real for real systems.

    Raises
    ------
    NotStableError
        If ``sys`` is not asymptotically stable.

    Notes
    -----
    :math:`H` depends on the realization: under a change of coordinates :math:`x = T\tilde x` the
    Gramians become :math:`T^{-1} P T^{-H}` and :math:`T^H Q T`, and :math:`H` changes (it is only
    *unitarily* covariant: :math:`H \mapsto U^H H U` for unitary :math:`T = U`). Its eigenvalues, the
    HSVs, do not change. This is why the Weyl bound of :func:`hsv_perturbation` is informative only
    when both systems are written in the same coordinates (the same parameterisation, e.g. two
    training steps of one layer): in unrelated coordinates the bound is still true but typically
    far from the actual change.

    Examples
    --------
    >>> sys = StateSpace([[-1.0, 0.0], [0.0, -3.0]], [[1.0], [1.0]], [[1.0, 1.0]])
    >>> H = hankel_matrix(sys)
    >>> bool(np.allclose(H, H.T)), bool(np.allclose(spla.eigvalsh(H)[::-1], hankel_singular_values(sys)))
    (True, True)
    """
    _check_system(sys, "sys")
    return _hankel_eig(sys, method)[0]


@dataclass(frozen=True)
class HSVPerturbation:
    r"""Weyl check of the change of the Hankel singular values between two systems.

    Attributes
    ----------
    hsv_a
        HSVs of the first system, descending (eigenvalues of :math:`H_a`).
    hsv_b
        HSVs of the second system, descending.
    delta
        :math:`|\sigma_i(b) - \sigma_i(a)|` for every index ``i``.
    bound
        The Weyl bound :math:`\|H_b - H_a\|_2`.
    holds
        Whether :math:`\delta_i \le` ``bound`` for every ``i`` (up to the rounding level
        ``1e3 · n · eps · max(σ_1(a), σ_1(b))`` of the computed matrices).
    slack
        ``bound - max(delta)`` (non-negative when the bound holds exactly).
    """

    hsv_a: np.ndarray
    hsv_b: np.ndarray
    delta: np.ndarray
    bound: float
    holds: bool
    slack: float

    @property
    def max_delta(self) -> float:
        r""":math:`\max_i |\sigma_i(b) - \sigma_i(a)|`."""
        return float(np.max(self.delta))

    @property
    def ratio(self) -> float:
        """``max(delta) / bound`` (how much of the bound was used; 0 when both are 0)."""
        if self.bound == 0.0:
            return 0.0 if self.max_delta == 0.0 else float("inf")
        return self.max_delta / self.bound


def _perturbation(
    sys_a: StateSpace, sys_b: StateSpace, *, names: tuple[str, str], method: GramianMethod
) -> HSVPerturbation:
    _check_system(sys_a, names[0])
    _check_system(sys_b, names[1])
    if sys_a.is_discrete != sys_b.is_discrete:
        raise ValueError(
            f"{names[0]} and {names[1]} must share a time base (both continuous or both discrete); got "
            f"dt={sys_a.dt} and dt={sys_b.dt}"
        )
    if sys_a.n_states != sys_b.n_states:
        raise DimensionError(
            f"{names[0]} has {sys_a.n_states} states and {names[1]} has {sys_b.n_states}: the Weyl bound compares "
            "Hankel matrices of equal size in the same coordinates (use hankel_distance for different sizes)"
        )
    H_a, s_a = _hankel_eig(sys_a, method)
    H_b, s_b = _hankel_eig(sys_b, method)
    bound = float(spla.svdvals(H_b - H_a)[0])
    delta = np.abs(s_b - s_a)
    tol = 1e3 * sys_a.n_states * _EPS * max(float(s_a[0]), float(s_b[0]))
    holds = bool(np.all(delta <= bound + tol))
    for arr in (s_a, s_b, delta):
        arr.setflags(write=False)
    return HSVPerturbation(s_a, s_b, delta, bound, holds, bound - float(np.max(delta)))


@kernel()
def hsv_perturbation(sys_a: StateSpace, sys_b: StateSpace, *, method: GramianMethod = "auto") -> HSVPerturbation:
    r"""Per-index change of the Hankel singular values and its Weyl bound :math:`\|H_b - H_a\|_2`.

    With :math:`H = (P^{1/2} Q P^{1/2})^{1/2}` (:func:`hankel_matrix`), Weyl's inequality for Hermitian
    matrices gives :math:`|\sigma_i(b) - \sigma_i(a)| \le \|H_b - H_a\|_2` for every ``i``.

    Parameters
    ----------
    sys_a, sys_b
        Stable systems with the same number of states and the same time base (both continuous or both
        discrete), written **in the same state coordinates** (e.g. one layer at two training steps).
        Real and complex systems may be mixed.
    method
        Gramian method, see :func:`ssmred.gramian_factors`.

    Returns
    -------
    HSVPerturbation
        ``hsv_a``, ``hsv_b``, ``delta``, ``bound``, ``holds``, ``slack``.

    Raises
    ------
    DimensionError
        If the state dimensions differ.
    NotStableError
        If either system is unstable (the message names which one).
    ValueError
        If one system is continuous and the other discrete.

    Notes
    -----
    The inequality holds for any two Hermitian matrices, so it is never wrong; but :math:`H` depends
    on the state coordinates (see :func:`hankel_matrix`), and the bound reflects the actual change only
    when the coordinates agree: then :math:`H` is a continuous function of :math:`(A, B, C)` and a
    small parameter step gives a small bound (SPEC §5). The HSVs returned are the eigenvalues of the
    two :math:`H` (equal to :func:`ssmred.hankel_singular_values` up to rounding). For a bound that is
    independent of coordinates and dimensions see :func:`hankel_distance`.

    Examples
    --------
    >>> a = StateSpace([[-1.0, 0.0], [0.0, -2.0]], [[1.0], [1.0]], [[1.0, 1.0]])
    >>> b = a.with_(B=[[1.1], [1.0]])
    >>> rep = hsv_perturbation(a, b)
    >>> rep.holds, bool(rep.slack >= 0), rep.delta.shape
    (True, True, (2,))
    """
    return _perturbation(sys_a, sys_b, names=("sys_a", "sys_b"), method=method)


@kernel()
def hankel_distance(sys_a: StateSpace, sys_b: StateSpace) -> float:
    r"""Hankel norm of the difference, :math:`\|G_b - G_a\|_H = \|\Gamma_{G_b} - \Gamma_{G_a}\|`.

    A coordinate-free bound on the change of every Hankel singular value:
    :math:`|\sigma_i(b) - \sigma_i(a)| \le \|G_b - G_a\|_H \le \|G_b - G_a\|_\infty` (singular values of
    the Hankel operators are 1-Lipschitz and the operator is linear in :math:`G`). Missing values
    count as zero when the state dimensions differ.

    Parameters
    ----------
    sys_a, sys_b
        Stable systems with the same time base and the same numbers of inputs and outputs; the state
        dimensions and coordinates may differ.

    Returns
    -------
    float
        The largest Hankel singular value of the ``n_a + n_b``-state system :math:`G_b - G_a`.

    Raises
    ------
    NotStableError
        If either system is unstable.
    DimensionError
        If the input/output sizes differ.
    ValueError
        If the time bases differ.

    Examples
    --------
    >>> a = StateSpace([[-1.0]], [[1.0]], [[1.0]])
    >>> b = StateSpace([[-1.0]], [[1.2]], [[1.0]])
    >>> round(hankel_distance(a, b), 12)  # the difference is 0.2/(s+1), Hankel norm 0.2/2
    0.1
    """
    _check_system(sys_a, "sys_a")
    _check_system(sys_b, "sys_b")
    if sys_a.dt != sys_b.dt:
        raise ValueError(f"sys_a and sys_b must share a time base; got dt={sys_a.dt} and dt={sys_b.dt}")
    return float(hankel_singular_values(sys_b - sys_a)[0])
