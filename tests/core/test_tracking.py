"""HSV trajectories (identity matching by linear assignment) and rank-stability metrics."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import ssmred
from ssmred import (
    HSVTrajectories,
    NotStableError,
    RankStability,
    StateSpace,
    rank_stability,
    tail_energy,
    track_hsvs,
)


def crossing_history(n_steps: int = 21):
    """Track 0 falls 3 -> 1, track 1 rises 1 -> 3 (they cross at the middle), track 2 stays at 0.5."""
    t = np.linspace(0.0, 1.0, n_steps)
    true = np.column_stack([3.0 - 2.0 * t, 1.0 + 2.0 * t, 0.5 + 0.0 * t])
    return t, true


def decoupled_ct(sigmas):
    s = np.asarray(sigmas, dtype=float)
    b = np.sqrt(2.0 * s)
    return StateSpace(-np.eye(s.size), np.diag(b), np.diag(b))


def test_crossing_trajectories_recovered_from_sorted_arrays():
    t, true = crossing_history()
    hist = [np.sort(row)[::-1] for row in true]  # identities lost by sorting
    step = 2.0 * (t[1] - t[0])
    traj = track_hsvs(hist, bounds=[1.5 * step] * (len(hist) - 1), steps=100 * t)
    assert isinstance(traj, HSVTrajectories)
    assert traj.n_tracks == 3
    np.testing.assert_allclose(traj.values, true, rtol=1e-12)
    assert traj.all_admissible
    np.testing.assert_allclose(traj.steps, 100 * t)


def test_crossing_not_recovered_without_prediction():
    """Nearest-value matching bounces off the crossing: prediction is what follows the identities."""
    _, true = crossing_history()
    hist = [np.sort(row)[::-1] for row in true]
    traj = track_hsvs(hist, predict=False)
    assert not np.allclose(traj.values, true)


def test_crossing_recovered_from_systems_with_weyl_bounds():
    _, true = crossing_history(11)
    history = [decoupled_ct(row) for row in true]  # H = diag(row) exactly; sorting loses identity
    traj = track_hsvs(history)
    np.testing.assert_allclose(traj.values, true, rtol=1e-10)
    # for diagonal H the Weyl bound is max_i |change of H_ii| = 2/(n_steps - 1)
    np.testing.assert_allclose(traj.bounds[1:], 0.2, rtol=1e-10)
    assert traj.bounds[0] == 0.0
    assert traj.all_admissible


def test_bounds_exclude_a_closer_but_inadmissible_match():
    """A value outside the +-bound interval is not taken even when it is closer to the prediction."""
    # the track rises 2 -> 3 (prediction 4, clipped to 3.5); 3.6 is closer to it but 0.6 > bound 0.5 away
    traj = track_hsvs([[2.0], [3.0], [3.6, 2.6]], bounds=[np.inf, 0.5])
    np.testing.assert_allclose(traj.values[:, 0], [2.0, 3.0, 2.6])
    np.testing.assert_allclose(traj.values[2, 1], 3.6)  # a new track starts
    assert traj.all_admissible


def test_inadmissible_move_is_flagged():
    traj = track_hsvs([[2.0, 1.0], [5.0, 1.0]], bounds=[0.5])
    assert not traj.all_admissible
    assert not traj.admissible[1, 0]
    assert traj.admissible[1, 1]


def test_dimension_change_ends_tracks():
    full = ssmred.random_stable(4, 1, 1, rng=0)
    red = ssmred.balanced_truncation(full, 2).reduced
    traj = track_hsvs([full, full, red])
    assert traj.n_tracks == 4
    assert np.isnan(traj.values[2]).sum() == 2
    np.testing.assert_allclose(traj.hsv(2), ssmred.hankel_singular_values(red), rtol=1e-8)
    np.testing.assert_allclose(traj.bounds[2], ssmred.hankel_distance(full, red), rtol=1e-12)


def test_dimension_growth_starts_tracks():
    traj = track_hsvs([[2.0], [2.1, 0.3]])
    assert traj.n_tracks == 2
    assert np.isnan(traj.values[0, 1])
    np.testing.assert_allclose(traj.values[1], [2.1, 0.3])


def test_order_and_hsv_accessors():
    traj = track_hsvs([[3.0, 1.0], [1.2, 2.9]], bounds=[1.0])
    np.testing.assert_array_equal(traj.order(0), [0, 1])
    np.testing.assert_allclose(traj.hsv(-1), [2.9, 1.2])
    with pytest.raises(IndexError):
        traj.order(2)


def test_results_are_frozen():
    traj = track_hsvs([[1.0], [1.0]])
    with pytest.raises(dataclasses.FrozenInstanceError):
        traj.values = None  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        traj.values[0, 0] = 2.0
    rs = rank_stability(traj, 0, 1, k=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        rs.k = 3  # type: ignore[misc]


# ------------------------------------------------------------------ rank stability
def test_rank_stability_identical_and_reversed():
    hist = [[4.0, 3.0, 2.0, 1.0], [4.0, 3.0, 2.0, 1.0]]
    rs = rank_stability(track_hsvs(hist), 0, 1, k=2)
    assert isinstance(rs, RankStability)
    assert rs.kendall_tau == pytest.approx(1.0)
    assert rs.top_k_overlap == 1.0
    assert rs.tail_energy_a == pytest.approx(0.3)
    assert rs.carried_tail_energy == pytest.approx(0.3)


def test_rank_stability_after_crossing():
    t, true = crossing_history()
    hist = [np.sort(row)[::-1] for row in true]
    traj = track_hsvs(hist, bounds=[0.15] * (len(hist) - 1))
    rs = rank_stability(traj, 0, -1, k=1)
    assert rs.kendall_tau == pytest.approx(1.0 / 3.0)  # one discordant pair out of three
    assert rs.top_k_overlap == 0.0  # the top state at the start is not the top one at the end
    assert rs.tail_energy_a == pytest.approx(1.5 / 4.5)
    assert rs.carried_tail_energy == pytest.approx(3.5 / 4.5)  # tracks 1 and 2 at the end: 3 + 0.5
    assert rs.step_a == 0.0
    assert rs.step_b == 20.0


def test_rank_stability_energy_rule_and_nan_tau():
    traj = track_hsvs([[5.0, 3.0, 1.5, 0.5], [5.0, 3.0, 1.5, 0.5]])
    rs = rank_stability(traj, 0, 1, energy=0.1)
    assert rs.k == ssmred.order_from_energy([5.0, 3.0, 1.5, 0.5], 0.1) == 3
    one = track_hsvs([[1.0], [2.0]])
    assert np.isnan(rank_stability(one, 0, 1, k=1).kendall_tau)


def test_tail_energy():
    assert tail_energy([1.0, 4.0, 2.0, 3.0], 2) == pytest.approx(0.3)
    assert tail_energy([1.0, 2.0], 0) == 1.0
    assert tail_energy([0.0, 0.0], 1) == 0.0
    with pytest.raises(ValueError, match="k must be"):
        tail_energy([1.0, 2.0], 3)
    with pytest.raises(ValueError, match="hsv"):
        tail_energy([], 0)


# ------------------------------------------------------------------ bad input
def test_empty_history_raises():
    with pytest.raises(ValueError, match="history must contain at least one step"):
        track_hsvs([])


def test_bad_bounds_and_steps():
    with pytest.raises(ValueError, match="bounds must have shape"):
        track_hsvs([[1.0], [1.0]], bounds=[0.1, 0.2])
    with pytest.raises(ValueError, match="non-negative"):
        track_hsvs([[1.0], [1.0]], bounds=[-0.1])
    with pytest.raises(ValueError, match="steps must have shape"):
        track_hsvs([[1.0], [1.0]], steps=[0])
    with pytest.raises(ValueError, match=r"history\[1\]"):
        track_hsvs([[1.0], [-1.0]])
    with pytest.raises(ValueError, match=r"history\[0\]"):
        track_hsvs([[]])


def test_mixing_and_bounds_with_systems_raise():
    sys = StateSpace([[-1.0]], [[1.0]], [[1.0]])
    with pytest.raises(TypeError, match="do not mix"):
        track_hsvs([[1.0], sys])
    with pytest.raises(TypeError, match=r"history\[1\] must be a StateSpace"):
        track_hsvs([sys, [1.0]])
    with pytest.raises(TypeError, match="bounds"):
        track_hsvs([sys, sys], bounds=[0.1])
    with pytest.raises(TypeError, match="sequence"):
        track_hsvs(sys)  # type: ignore[arg-type]


def test_unstable_system_in_history_is_named():
    good = StateSpace([[-1.0]], [[1.0]], [[1.0]])
    bad = StateSpace([[1.0]], [[1.0]], [[1.0]])
    with pytest.raises(NotStableError, match=r"history\[2\]"):
        track_hsvs([good, good, bad])
    with pytest.raises(NotStableError, match=r"history\[0\]"):
        track_hsvs([bad])
    big_bad = StateSpace(np.diag([1.0, -1.0]), np.ones((2, 1)), np.ones((1, 2)))
    with pytest.raises(NotStableError, match=r"history\[1\]"):
        track_hsvs([good, big_bad])


def test_rank_stability_bad_input():
    traj = track_hsvs([[2.0, 1.0], [2.0, 1.0]])
    with pytest.raises(ValueError, match="exactly one"):
        rank_stability(traj, 0, 1)
    with pytest.raises(ValueError, match="exactly one"):
        rank_stability(traj, 0, 1, k=1, energy=0.1)
    with pytest.raises(ValueError, match="k must be"):
        rank_stability(traj, 0, 1, k=3)
    with pytest.raises(IndexError):
        rank_stability(traj, 0, 5, k=1)
    with pytest.raises(TypeError, match="HSVTrajectories"):
        rank_stability([[1.0]], 0, 0, k=1)  # type: ignore[arg-type]
