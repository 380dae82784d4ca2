"""Hankel matrix H = (P^1/2 Q P^1/2)^1/2, Weyl reports and the coordinate-free Hankel-distance bound."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.linalg as spla
from hypothesis import given
from hypothesis import strategies as st
from strategies import make_system, random_unitary, systems

import ssmred
from ssmred import (
    DimensionError,
    HSVPerturbation,
    NotStableError,
    StateSpace,
    hankel_distance,
    hankel_matrix,
    hankel_singular_values,
    hsv_perturbation,
)


def decoupled(sigmas, *, dt=None, alpha=1.0):
    """Diagonal system with B, C diagonal: P, Q diagonal, H = diag(sigmas) exactly (known answer)."""
    s = np.asarray(sigmas, dtype=float)
    if dt is None:
        # P_ii = b^2/(2 alpha), Q_ii = c^2/(2 alpha), sigma = b c / (2 alpha) with b = c
        b = np.sqrt(2.0 * alpha * s)
        return StateSpace(-alpha * np.eye(s.size), np.diag(b), np.diag(b))
    # DT, pole a: sigma = b c / (1 - a^2)
    a = alpha
    b = np.sqrt((1.0 - a**2) * s)
    return StateSpace(a * np.eye(s.size), np.diag(b), np.diag(b), dt=dt)


# ------------------------------------------------------------------ hankel_matrix
@pytest.mark.parametrize("complex_", [False, True])
@pytest.mark.parametrize("dt", [None, 0.5])
def test_hankel_matrix_is_hermitian_psd_with_hsv_eigenvalues(complex_, dt):
    sys = ssmred.random_stable(7, 2, 3, dt=dt, complex_=complex_, rng=3)
    H = hankel_matrix(sys)
    assert H.shape == (7, 7)
    assert np.iscomplexobj(H) == complex_
    np.testing.assert_allclose(H, H.conj().T, rtol=0, atol=1e-14 * np.abs(H).max())
    ev = spla.eigvalsh(H)[::-1]
    hsv = hankel_singular_values(sys)
    np.testing.assert_allclose(ev, hsv, rtol=0, atol=1e-12 * hsv[0])
    assert ev[-1] >= -1e-12 * hsv[0]


def test_hankel_matrix_definition_against_gramians():
    """H^2 = P^1/2 Q P^1/2 with the principal square root of P (small well-conditioned case)."""
    sys = ssmred.random_stable(4, 1, 2, rng=5)
    P = ssmred.controllability_gramian(sys)
    Q = ssmred.observability_gramian(sys)
    w, V = spla.eigh(P)
    P_half = (V * np.sqrt(np.maximum(w, 0))) @ V.T
    H = hankel_matrix(sys)
    np.testing.assert_allclose(H @ H, P_half @ Q @ P_half, rtol=1e-10, atol=1e-10 * np.abs(H @ H).max())


@pytest.mark.parametrize("dt", [None, 1.0])
def test_hankel_matrix_known_scalar(dt):
    a, b, c = (-0.5, 2.0, 3.0) if dt is None else (0.6, 2.0, 3.0)
    sys = StateSpace([[a]], [[b]], [[c]], dt=dt)
    expected = abs(b * c) / (2 * abs(a)) if dt is None else abs(b * c) / (1 - a**2)
    np.testing.assert_allclose(hankel_matrix(sys), [[expected]], rtol=1e-14)


def test_hankel_matrix_decoupled_is_diagonal():
    H = hankel_matrix(decoupled([3.0, 1.0, 0.25]))
    np.testing.assert_allclose(H, np.diag([3.0, 1.0, 0.25]), rtol=1e-14, atol=1e-15)


def test_hankel_matrix_unitary_covariance_and_coordinate_dependence():
    sys = ssmred.random_stable(5, 2, 2, dt=1.0, complex_=True, rng=11)
    H = hankel_matrix(sys)
    U = random_unitary(np.random.default_rng(0), 5, True)
    np.testing.assert_allclose(hankel_matrix(sys.similarity(U)), U.conj().T @ H @ U, rtol=0, atol=1e-12 * H.max())
    T = np.diag([1.0, 10.0, 0.1, 3.0, 1.0])  # non-unitary: H changes, its eigenvalues do not
    H_T = hankel_matrix(sys.similarity(T))
    assert np.abs(H_T - H).max() > 0.1 * np.abs(H).max()
    np.testing.assert_allclose(spla.eigvalsh(H_T), spla.eigvalsh(H), rtol=0, atol=1e-11 * np.abs(H).max())


def test_hankel_matrix_rejects_unstable():
    with pytest.raises(NotStableError, match="sys"):
        hankel_matrix(StateSpace([[1.0]], [[1.0]], [[1.0]]))


# ------------------------------------------------------------------ hsv_perturbation: known answers
def test_perturbation_scalar_known_answer():
    a = StateSpace([[-1.0]], [[1.0]], [[1.0]])  # sigma = 1/2
    b = a.with_(B=[[2.0]])  # sigma = 1
    rep = hsv_perturbation(a, b)
    assert isinstance(rep, HSVPerturbation)
    np.testing.assert_allclose(rep.hsv_a, [0.5], rtol=1e-14)
    np.testing.assert_allclose(rep.hsv_b, [1.0], rtol=1e-14)
    np.testing.assert_allclose(rep.delta, [0.5], rtol=1e-14)
    assert rep.bound == pytest.approx(0.5, rel=1e-14)
    assert rep.holds
    assert rep.slack == pytest.approx(0.0, abs=1e-14)
    assert rep.ratio == pytest.approx(1.0, rel=1e-13)


@pytest.mark.parametrize("dt", [None, 1.0])
def test_perturbation_decoupled_crossing_known_answer(dt):
    """H_a = diag(3, 1) -> H_b = diag(1.5, 2): sorted deltas [1, 0.5], bound max(1.5, 1) = 1.5."""
    a = decoupled([3.0, 1.0], dt=dt, alpha=1.0 if dt is None else 0.5)
    b = decoupled([1.5, 2.0], dt=dt, alpha=1.0 if dt is None else 0.5)
    rep = hsv_perturbation(a, b)
    np.testing.assert_allclose(rep.hsv_a, [3.0, 1.0], rtol=1e-13)
    np.testing.assert_allclose(rep.hsv_b, [2.0, 1.5], rtol=1e-13)
    np.testing.assert_allclose(rep.delta, [1.0, 0.5], rtol=1e-12)
    assert rep.bound == pytest.approx(1.5, rel=1e-12)
    assert rep.slack == pytest.approx(0.5, rel=1e-11)
    assert rep.holds


def test_perturbation_identical_systems():
    sys = ssmred.random_stable(4, rng=2)
    rep = hsv_perturbation(sys, sys)
    assert rep.bound == 0.0
    np.testing.assert_array_equal(rep.delta, 0.0)
    assert rep.holds
    assert rep.ratio == 0.0


def test_perturbation_report_is_frozen_and_read_only():
    sys = ssmred.random_stable(3, rng=1)
    rep = hsv_perturbation(sys, sys.with_(C=2 * sys.C))
    with pytest.raises(dataclasses.FrozenInstanceError):
        rep.bound = 0.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        rep.delta[0] = 1.0


def test_perturbation_hsv_match_square_root_hsvs():
    sys = ssmred.random_stable(6, 2, 2, dt=1.0, complex_=True, rng=8)
    rep = hsv_perturbation(sys, sys)
    ref = hankel_singular_values(sys)
    np.testing.assert_allclose(rep.hsv_a, ref, rtol=0, atol=1e-12 * ref[0])


def test_perturbation_mixed_real_complex():
    sys = ssmred.random_stable(4, 1, 1, dt=1.0, rng=4)
    other = sys.with_(B=sys.B + 1e-3j)
    rep = hsv_perturbation(sys, other)
    assert rep.holds
    assert rep.bound > 0


def test_bound_valid_but_loose_in_other_coordinates():
    """Weyl holds for any Hermitian pair, but across a coordinate change it says nothing useful."""
    sys = ssmred.random_stable(5, 1, 1, rng=6)
    moved = sys.similarity(np.diag([1.0, 5.0, 0.2, 1.0, 3.0]))
    rep = hsv_perturbation(sys, moved)
    assert rep.holds
    assert rep.max_delta < 1e-10 * rep.hsv_a[0]
    assert rep.bound > 0.1 * rep.hsv_a[0]
    assert hankel_distance(sys, moved) < 1e-10 * rep.hsv_a[0]  # same transfer function


# ------------------------------------------------------------------ property tests
def _perturb(sys: StateSpace, eps: float, seed: int) -> StateSpace:
    rng = np.random.default_rng(seed)

    def noise(M):
        E = rng.standard_normal(M.shape)
        if np.iscomplexobj(M):
            E = E + 1j * rng.standard_normal(M.shape)
        return M + eps * np.abs(M).max() * E

    for _ in range(20):
        new = sys.with_(A=noise(sys.A), B=noise(sys.B), C=noise(sys.C))
        if new.is_stable():
            return new
        eps /= 4
    return sys.with_(B=noise(sys.B))


@given(sys=systems(n=(1, 7)), eps=st.floats(1e-9, 0.2), seed=st.integers(0, 2**16))
def test_weyl_bound_holds_hypothesis(sys, eps, seed):
    other = _perturb(sys, eps, seed)
    rep = hsv_perturbation(sys, other)
    assert rep.holds
    tol = 1e3 * sys.n_states * np.finfo(float).eps * max(rep.hsv_a[0], rep.hsv_b[0])
    assert rep.slack >= -tol
    np.testing.assert_array_less(rep.delta, rep.bound + tol + 1e-300)


@given(sys=systems(n=(1, 6)), eps=st.floats(1e-9, 0.2), seed=st.integers(0, 2**16))
def test_hankel_distance_bounds_every_hsv_change(sys, eps, seed):
    other = _perturb(sys, eps, seed)
    s_a, s_b = hankel_singular_values(sys), hankel_singular_values(other)
    dist = hankel_distance(sys, other)
    tol = 1e-9 * max(s_a[0], s_b[0])
    np.testing.assert_array_less(np.abs(s_b - s_a), dist + tol)


def test_hankel_distance_known_and_different_dimensions():
    a = StateSpace([[-1.0]], [[1.0]], [[1.0]])
    assert hankel_distance(a, a) == pytest.approx(0.0, abs=1e-15)
    big = StateSpace(np.diag([-1.0, -4.0]), [[1.0], [1.0]], [[1.0, 1.0]])
    # difference = 1/(s+4): Hankel norm 1/8 bounds |sigma_1 change| and sigma_2 (missing value = 0)
    d = hankel_distance(a, big)
    assert d == pytest.approx(1.0 / 8.0, rel=1e-12)
    s_big = hankel_singular_values(big)
    assert abs(s_big[0] - 0.5) <= d + 1e-15
    assert s_big[1] <= d + 1e-15


# ------------------------------------------------------------------ bad input
def test_unequal_dimensions_raise_dimension_error():
    a = make_system(0, 3, 1, 1, dt=None, complex_=False, kind="dense")
    b = make_system(1, 4, 1, 1, dt=None, complex_=False, kind="dense")
    with pytest.raises(DimensionError, match=r"sys_a has 3 states and sys_b has 4"):
        hsv_perturbation(a, b)


def test_unstable_system_is_named():
    good = StateSpace([[-1.0]], [[1.0]], [[1.0]])
    bad = StateSpace([[0.5]], [[1.0]], [[1.0]])
    with pytest.raises(NotStableError, match="sys_b is not stable"):
        hsv_perturbation(good, bad)
    with pytest.raises(NotStableError, match="sys_a is not stable"):
        hsv_perturbation(bad, good)
    with pytest.raises(NotStableError, match="sys_a is not stable"):
        hankel_distance(StateSpace([[1.5]], [[1.0]], [[1.0]], dt=1.0), StateSpace([[0.5]], [[1.0]], [[1.0]], dt=1.0))


def test_time_base_mismatch_and_type_errors():
    ct = StateSpace([[-1.0]], [[1.0]], [[1.0]])
    dt = StateSpace([[0.5]], [[1.0]], [[1.0]], dt=1.0)
    with pytest.raises(ValueError, match="time base"):
        hsv_perturbation(ct, dt)
    with pytest.raises(ValueError, match="time base"):
        hankel_distance(ct, dt)
    with pytest.raises(TypeError, match="sys_b must be a ssmred.StateSpace"):
        hsv_perturbation(ct, np.eye(1))  # type: ignore[arg-type]
