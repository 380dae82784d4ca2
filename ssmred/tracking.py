r"""Hankel singular value trajectories through a training history, and rank-stability metrics.

SPEC §5: between two training steps every HSV moves by at most :math:`\beta = \|H' - H\|_2` (Weyl),
but *which* state is which is not determined by sorting: two trajectories may cross. Along the
straight path :math:`H(t) = (1-t) H + t H'` the eigenvalues can be followed as analytic branches
(Rellich), each moving by at most :math:`\beta`; so an admissible identification of the values at
consecutive steps pairs :math:`\sigma` with :math:`\sigma'` only if :math:`|\sigma' - \sigma| \le
\beta` (the new value lies in the :math:`\pm\beta` interval of the old one). Among admissible
pairings the one closest to a constant-velocity prediction is chosen by linear assignment
(:func:`scipy.optimize.linear_sum_assignment`). The sorted pairing is always admissible, so an
admissible pairing exists whenever the bounds are true bounds.

That the ordering is stable and the tail energy small after ~10 % of training is an empirical
claim; :func:`rank_stability` measures it: Kendall's τ between the orders at two steps, the overlap
of the top-k sets, and the fraction of HSV energy (plain sum, as in SPEC §6) in the bottom states.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.optimize
import scipy.stats

from ssmred._typing import ArrayLike
from ssmred.bounds import order_from_energy
from ssmred.errors import NotStableError
from ssmred.perturbation import _check_system, _hankel_eig, _perturbation, hankel_distance
from ssmred.statespace import StateSpace

__all__ = ["HSVTrajectories", "RankStability", "rank_stability", "tail_energy", "track_hsvs"]


@dataclass(frozen=True)
class HSVTrajectories:
    r"""HSV trajectories with identities matched across steps.

    Attributes
    ----------
    steps
        Step labels, shape ``(K,)`` (e.g. training iterations).
    values
        ``(K, T)`` value of track ``t`` at step ``k``; NaN where the track does not exist (before it
        appears or after the state dimension shrank).
    bounds
        ``(K,)``: ``bounds[k]`` bounds the change of every HSV from step ``k-1`` to step ``k``
        (``bounds[0] = 0``; ``inf`` where no bound was available).
    admissible
        ``(K, T)`` bool: the move of the track into step ``k`` stayed within ``bounds[k]`` (``True``
        at ``k = 0``, for newly appearing tracks and where the track is absent).
    """

    steps: np.ndarray
    values: np.ndarray
    bounds: np.ndarray
    admissible: np.ndarray

    @property
    def n_steps(self) -> int:
        """Number of steps ``K``."""
        return int(self.values.shape[0])

    @property
    def n_tracks(self) -> int:
        """Number of tracks ``T`` (at least the largest state dimension in the history)."""
        return int(self.values.shape[1])

    def order(self, k: int) -> np.ndarray:
        """Track ids present at step ``k``, by decreasing HSV.

        Parameters
        ----------
        k
            Step position (negative values count from the end).

        Returns
        -------
        numpy.ndarray
            Integer track ids.
        """
        row = self.values[_step_index(k, self.n_steps, "k")]
        ids = np.flatnonzero(~np.isnan(row))
        return ids[np.argsort(-row[ids], kind="stable")]

    def hsv(self, k: int) -> np.ndarray:
        """The HSVs at step ``k``, descending.

        Parameters
        ----------
        k
            Step position (negative values count from the end).

        Returns
        -------
        numpy.ndarray
            The sorted values (NaNs dropped).
        """
        return self.values[_step_index(k, self.n_steps, "k"), self.order(k)]

    @property
    def all_admissible(self) -> bool:
        """Whether every matched move stayed within its bound."""
        return bool(np.all(self.admissible))


@dataclass(frozen=True)
class RankStability:
    r"""Rank-stability metrics between two steps ``a`` and ``b`` of a trajectory.

    Attributes
    ----------
    step_a, step_b
        The two step labels.
    k
        Size of the "kept" set (top-``k`` states at step ``a``).
    kendall_tau
        Kendall's τ between the values of the tracks present at both steps (1: same order, -1:
        reversed; NaN with fewer than two common tracks or constant values).
    top_k_overlap
        :math:`|\mathrm{top}_k(a) \cap \mathrm{top}_k(b)| / k` (tracks, not positions).
    tail_energy_a
        :math:`\sum_{i>k}\sigma_i(a) / \sum_i \sigma_i(a)`: HSV energy in the bottom states at ``a``.
    tail_energy_b
        The same at step ``b`` (its own bottom states).
    carried_tail_energy
        Energy fraction at step ``b`` held by the tracks that were in the bottom at step ``a``: what
        a truncation decided at ``a`` would discard at ``b``.
    """

    step_a: float
    step_b: float
    k: int
    kendall_tau: float
    top_k_overlap: float
    tail_energy_a: float
    tail_energy_b: float
    carried_tail_energy: float


def _step_index(k: int, n_steps: int, name: str) -> int:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise TypeError(f"{name} must be an int step position; got {type(k).__name__}")
    if not -n_steps <= int(k) < n_steps:
        raise IndexError(f"{name}={k} is out of range for a history of {n_steps} steps")
    return int(k) % n_steps


def _as_hsv(values: ArrayLike, name: str) -> np.ndarray:
    s = np.asarray(values, dtype=np.float64)
    if s.ndim != 1 or s.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array of HSVs; got shape {s.shape}")
    if not np.all(np.isfinite(s)) or np.any(s < 0):
        raise ValueError(f"{name} must contain finite, non-negative HSVs")
    return np.sort(s)[::-1]


def _history_from_systems(history: Sequence[StateSpace]) -> tuple[list[np.ndarray], np.ndarray]:
    hsvs: list[np.ndarray] = []
    bounds = np.zeros(len(history))
    for k, sys in enumerate(history):
        name = f"history[{k}]"
        if not isinstance(sys, StateSpace):
            raise TypeError(f"{name} must be a StateSpace like history[0]; got {type(sys).__name__}")
        prev = history[k - 1] if k > 0 else None
        if prev is not None and prev.n_states == sys.n_states and prev.is_discrete == sys.is_discrete:
            rep = _perturbation(prev, sys, names=(f"history[{k - 1}]", name), method="auto")
            hsvs.append(np.array(rep.hsv_b))
            bounds[k] = rep.bound
            continue
        hsvs.append(np.array(_hankel_eig(_check_system(sys, name), "auto")[1]))
        if prev is not None:
            try:
                bounds[k] = hankel_distance(prev, sys)
            except NotStableError as exc:
                raise NotStableError(f"{name}: {exc}") from None
    return hsvs, bounds


def track_hsvs(
    history: Sequence[StateSpace] | Sequence[ArrayLike],
    *,
    bounds: ArrayLike | None = None,
    steps: ArrayLike | None = None,
    predict: bool = True,
) -> HSVTrajectories:
    r"""Follow each Hankel singular value through a history, matching identities by linear assignment.

    At step ``k`` the values :math:`\sigma'_j` are assigned to the tracks alive at step ``k-1``
    (values :math:`\sigma_i`, bound :math:`\beta_k`) by minimising, over one-to-one pairings,

    .. math::

        \sum_{(i,j)} \frac{|\sigma'_j - \hat\sigma_i|}{s} + (T+1)\,[\,|\sigma'_j - \sigma_i| > \beta_k\,],

    where :math:`\hat\sigma_i` is a constant-velocity prediction clipped to
    :math:`[\sigma_i - \beta_k, \sigma_i + \beta_k]` and ``s`` normalises the first term to at most 1
    per pair: pairings inside the :math:`\pm\beta_k` intervals are always preferred, and among them the
    one closest to the prediction wins, which follows crossing trajectories.

    Parameters
    ----------
    history
        Either a sequence of stable :class:`~ssmred.StateSpace` (one layer at successive steps, in the
        same coordinates), or a sequence of 1-D HSV arrays. The state dimension may change (tracks
        end or start).
    bounds
        Only for HSV arrays: ``K - 1`` non-negative bounds on the change between consecutive steps
        (e.g. the ``bound`` of :func:`ssmred.hsv_perturbation`); ``None`` means unbounded. For
        systems, the Weyl bound :math:`\|H_k - H_{k-1}\|_2` is computed (the coordinate-free
        :func:`ssmred.hankel_distance` when the state dimension changed).
    steps
        ``K`` step labels (default ``0, 1, ..., K-1``).
    predict
        Use the constant-velocity prediction (``False``: match to the previous value).

    Returns
    -------
    HSVTrajectories
        Values per track and step, bounds, and which moves stayed within their bound.

    Raises
    ------
    ValueError
        If ``history`` is empty, an HSV array is invalid, or ``bounds``/``steps`` have the wrong
        length or invalid entries.
    NotStableError
        If a system in the history is unstable (the message names its index).
    TypeError
        If ``history`` mixes systems and arrays, or ``bounds`` is given together with systems.

    Examples
    --------
    Two trajectories crossing between steps 2 and 3 keep their identities:

    >>> hist = [[3.0, 1.0], [2.5, 1.5], [2.1, 1.9], [2.3, 1.7], [2.7, 1.3]]
    >>> traj = track_hsvs(hist, bounds=[0.6] * 4)
    >>> traj.values[:, 0]
    array([3. , 2.5, 2.1, 1.7, 1.3])
    """
    is_sequence = isinstance(history, (Sequence, np.ndarray)) and not isinstance(history, (str, bytes))
    if not is_sequence:
        raise TypeError(f"history must be a sequence of StateSpace or HSV arrays; got {type(history).__name__}")
    K = len(history)
    if K == 0:
        raise ValueError("history must contain at least one step (got an empty sequence)")
    if isinstance(history[0], StateSpace):
        if bounds is not None:
            raise TypeError("bounds are computed from the systems; pass bounds only with a history of HSV arrays")
        hsvs, bound_arr = _history_from_systems(history)  # type: ignore[arg-type]
    else:
        hsvs = []
        for k, h in enumerate(history):
            if isinstance(h, StateSpace):
                raise TypeError(f"history[{k}] is a StateSpace but history[0] is an array: do not mix them")
            hsvs.append(_as_hsv(h, f"history[{k}]"))
        if bounds is None:
            bound_arr = np.full(K, np.inf)
            bound_arr[0] = 0.0
        else:
            b = np.asarray(bounds, dtype=np.float64)
            if b.shape != (K - 1,):
                raise ValueError(f"bounds must have shape (len(history) - 1,) = ({K - 1},); got {b.shape}")
            if np.any(np.isnan(b)) or np.any(b < 0):
                raise ValueError("bounds must be non-negative (inf allowed)")
            bound_arr = np.concatenate([[0.0], b])
    if steps is None:
        step_arr = np.arange(K, dtype=np.float64)
    else:
        step_arr = np.asarray(steps, dtype=np.float64)
        if step_arr.shape != (K,):
            raise ValueError(f"steps must have shape (len(history),) = ({K},); got {step_arr.shape}")

    n_max = sum(h.size for h in hsvs)  # upper bound on the number of tracks
    values = np.full((K, n_max), np.nan)
    admissible = np.ones((K, n_max), dtype=bool)
    values[0, : hsvs[0].size] = hsvs[0]
    n_tracks = hsvs[0].size
    for k in range(1, K):
        new = hsvs[k]
        alive = np.flatnonzero(~np.isnan(values[k - 1, :n_tracks]))
        prev = values[k - 1, alive]
        beta = bound_arr[k]
        pred = prev.copy()
        if predict and k >= 2:
            older = values[k - 2, alive]
            has_velocity = ~np.isnan(older)
            pred[has_velocity] = 2.0 * prev[has_velocity] - older[has_velocity]
            pred = np.clip(pred, prev - beta, prev + beta) if np.isfinite(beta) else pred
            pred = np.maximum(pred, 0.0)
        dist = np.abs(new[None, :] - pred[:, None])
        scale = float(np.max(dist)) if dist.size and np.max(dist) > 0 else 1.0
        tol = 1e-12 * max(float(np.max(new)), float(np.max(prev)) if prev.size else 0.0)
        outside = np.abs(new[None, :] - prev[:, None]) > beta + tol
        cost = dist / scale + (n_max + 1.0) * outside
        rows, cols = scipy.optimize.linear_sum_assignment(cost)
        values[k, alive[rows]] = new[cols]
        admissible[k, alive[rows]] = ~outside[rows, cols]
        unmatched = np.setdiff1d(np.arange(new.size), cols)
        values[k, n_tracks : n_tracks + unmatched.size] = new[unmatched]
        n_tracks += unmatched.size
    values = values[:, :n_tracks]
    admissible = admissible[:, :n_tracks]
    for arr in (step_arr, values, bound_arr, admissible):
        arr.setflags(write=False)
    return HSVTrajectories(step_arr, values, bound_arr, admissible)


def tail_energy(hsv: ArrayLike, k: int) -> float:
    r"""Fraction of the (plain) HSV sum in the states below the top ``k``: :math:`\sum_{i>k}\sigma_i / \sum_i\sigma_i`.

    Parameters
    ----------
    hsv
        Hankel singular values (any order; they are sorted).
    k
        Number of kept states, ``0 <= k <= n``.

    Returns
    -------
    float
        The discarded fraction τ of SPEC §6 (0 when all HSVs are 0).

    Raises
    ------
    ValueError
        If ``hsv`` is empty or invalid, or ``k`` is out of range.

    Examples
    --------
    >>> tail_energy([4.0, 3.0, 2.0, 1.0], 2)
    0.3
    """
    s = _as_hsv(hsv, "hsv")
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or not 0 <= int(k) <= s.size:
        raise ValueError(f"k must be an int with 0 <= k <= {s.size}; got {k!r}")
    total = float(np.sum(s))
    return 0.0 if total == 0.0 else float(np.sum(s[int(k) :]) / total)


def rank_stability(
    traj: HSVTrajectories, a: int, b: int, *, k: int | None = None, energy: float | None = None
) -> RankStability:
    r"""How stable the HSV ranking is between steps ``a`` and ``b`` (positions in the trajectory).

    Parameters
    ----------
    traj
        Output of :func:`track_hsvs`.
    a, b
        Step positions (negative values count from the end).
    k
        Size of the kept set.
    energy
        Alternatively τ: ``k`` is the order CompreSSM's tolerance rule picks at step ``a``
        (:func:`ssmred.bounds.order_from_energy`). Give exactly one of ``k`` and ``energy``.

    Returns
    -------
    RankStability
        Kendall's τ, top-``k`` overlap, tail energies at ``a`` and ``b``, and the energy at ``b`` of
        the tracks that were in the tail at ``a``.

    Raises
    ------
    ValueError
        If not exactly one of ``k``/``energy`` is given or ``k`` is out of range.
    IndexError
        If ``a`` or ``b`` is out of range.

    Examples
    --------
    >>> traj = track_hsvs([[3.0, 2.0, 1.0], [3.1, 0.9, 2.2]], bounds=[1.5])
    >>> rs = rank_stability(traj, 0, 1, k=2)
    >>> rs.kendall_tau, rs.top_k_overlap
    (1.0, 1.0)
    """
    if not isinstance(traj, HSVTrajectories):
        raise TypeError(f"traj must be an HSVTrajectories (from track_hsvs); got {type(traj).__name__}")
    ia = _step_index(a, traj.n_steps, "a")
    ib = _step_index(b, traj.n_steps, "b")
    order_a, order_b = traj.order(ia), traj.order(ib)
    hsv_a, hsv_b = traj.values[ia, order_a], traj.values[ib, order_b]
    if (k is None) == (energy is None):
        raise ValueError("give exactly one of k and energy")
    kk = order_from_energy(hsv_a, energy) if energy is not None else k
    if isinstance(kk, bool) or not isinstance(kk, numbers.Integral) or not 1 <= int(kk) <= order_a.size:
        raise ValueError(f"k must be an int with 1 <= k <= {order_a.size} (states at step a); got {kk!r}")
    kk = int(kk)
    common = np.intersect1d(order_a, order_b)
    tau = float("nan")
    if common.size >= 2:
        va, vb = traj.values[ia, common], traj.values[ib, common]
        if np.ptp(va) > 0 and np.ptp(vb) > 0:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                tau = float(scipy.stats.kendalltau(va, vb).statistic)
    top_a = order_a[:kk]
    top_b = order_b[: min(kk, order_b.size)]
    overlap = np.intersect1d(top_a, top_b).size / kk
    total_b = float(np.sum(hsv_b))
    tail_ids = order_a[kk:]
    carried = traj.values[ib, tail_ids]
    carried_energy = 0.0 if total_b == 0.0 else float(np.nansum(carried) / total_b)
    return RankStability(
        float(traj.steps[ia]),
        float(traj.steps[ib]),
        kk,
        tau,
        float(overlap),
        tail_energy(hsv_a, kk),
        tail_energy(hsv_b, min(kk, hsv_b.size)),
        carried_energy,
    )
