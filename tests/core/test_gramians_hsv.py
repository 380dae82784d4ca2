"""Deterministic tests of Gramians, Hankel singular values and the BT reductor (closed forms, edge cases).

The literature oracles (SLICOT, MATLAB) live in tests/reference/; here the expected values come from
closed forms derived in the test (decoupled systems, geometric series, conjugation discipline).
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
import scipy.linalg as spla

import ssmred
from ssmred import StateSpace
from ssmred.errors import AccuracyWarning


def _orthogonal(n: int, seed: int, complex_: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((n, n))
    if complex_:
        M = M + 1j * rng.standard_normal((n, n))
    return spla.qr(M)[0]


def _decoupled(sigma: np.ndarray, *, discrete: bool, seed: int = 0, complex_: bool = False) -> StateSpace:
    """n decoupled first-order channels (MIMO, m = p = n) with prescribed HSVs, then a unitary rotation.

    Channel i: a_i, b_i, c_i with P_ii = b_i² / (-2 a_i) (CT) or b_i² / (1 - a_i²) (DT), Q_ii likewise
    with c_i; P and Q are diagonal, so σ_i = |b_i c_i| / (-2 a_i) or |b_i c_i| / (1 - a_i²).
    """
    n = sigma.size
    rng = np.random.default_rng(seed)
    a = -rng.uniform(0.5, 2.0, n) if not discrete else rng.uniform(-0.9, 0.9, n)
    denom = -2.0 * a if not discrete else 1.0 - a**2
    b = np.sqrt(sigma * denom) * rng.uniform(0.5, 2.0, n)
    c = sigma * denom / b
    U = _orthogonal(n, seed + 1, complex_)
    sys = StateSpace(np.diag(a), np.diag(b), np.diag(c), dt=1.0 if discrete else None)
    return sys.similarity(U)


# ---------------------------------------------------------------------------------------- accuracy of the tail
@pytest.mark.parametrize("discrete", [False, True], ids=["ct", "dt"])
@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
def test_hsv_graded_tail_accuracy(discrete, complex_):
    """HSVs spanning 14 decades, dense realization: the SLICOT-level criterion of issue 2."""
    sigma = np.logspace(0, -14, 8)
    sys = _decoupled(sigma, discrete=discrete, complex_=complex_)
    s = ssmred.hankel_singular_values(sys)
    assert s.dtype == np.float64
    np.testing.assert_allclose(s, sigma, rtol=0, atol=2e-9 * sigma[0])
    big = sigma >= 1e-3 * sigma[0]
    np.testing.assert_allclose(s[big], sigma[big], rtol=1e-7, atol=0)


@pytest.mark.parametrize("discrete", [False, True], ids=["ct", "dt"])
def test_hsv_of_rank_deficient_system_are_zero_not_nan(discrete):
    """Uncontrollable / unobservable states give (near-)zero HSVs: never NaN, never negative."""
    a = [-1.0, -2.0, -3.0, -4.0] if not discrete else [0.5, -0.3, 0.2, 0.7]
    B = np.array([[1.0], [1.0], [0.0], [0.0]])  # states 3, 4 uncontrollable
    C = np.array([[1.0, 0.0, 1.0, 0.0]])  # states 2, 4 unobservable
    sys = StateSpace(np.diag(a), B, C, dt=1.0 if discrete else None)
    for method in ("auto", "scipy", "diagonal"):
        s = ssmred.hankel_singular_values(sys, method=method)
        assert np.all(np.isfinite(s))
        assert np.all(s >= 0.0)
        # only state 1 is both controllable and observable: one nonzero HSV = |b c| / (-2a) or / (1 - a²)
        expected = 1.0 / (-2.0 * a[0]) if not discrete else 1.0 / (1.0 - a[0] ** 2)
        np.testing.assert_allclose(s[0], expected, rtol=1e-12, atol=0)
        np.testing.assert_allclose(s[1:], 0.0, rtol=0, atol=1e-14 * s[0])
    dense = sys.similarity(_orthogonal(4, 3))
    s = ssmred.hankel_singular_values(dense)
    assert np.all(np.isfinite(s))
    np.testing.assert_allclose(s[1:], 0.0, rtol=0, atol=1e-12 * s[0])


def test_hsv_zero_input_matrix():
    sys = StateSpace(np.diag([-1.0, -2.0]), np.zeros((2, 1)), np.ones((1, 2)))
    s = ssmred.hankel_singular_values(sys, method="scipy")
    np.testing.assert_allclose(s, 0.0, rtol=0, atol=0)


# ---------------------------------------------------------------------------------------- conjugation discipline
@pytest.mark.parametrize("method", ["scipy", "diagonal", "auto"])
def test_complex_discrete_gramians_are_geometric_series(method):
    """P = Σ A^k B Bᴴ (Aᴴ)^k and Q = Σ (Aᴴ)^k Cᴴ C A^k: catches Aᵀ-for-Aᴴ mistakes."""
    rng = np.random.default_rng(7)
    lam = 0.7 * np.exp(1j * rng.uniform(0, 2 * np.pi, 4))
    B = rng.standard_normal((4, 2)) + 1j * rng.standard_normal((4, 2))
    C = rng.standard_normal((3, 4)) + 1j * rng.standard_normal((3, 4))
    sys = StateSpace(np.diag(lam), B, C, dt=1.0)
    P_ref = np.zeros((4, 4), dtype=complex)
    Q_ref = np.zeros((4, 4), dtype=complex)
    Ak = np.eye(4, dtype=complex)
    for _ in range(200):  # 0.7^400 < 1e-60
        P_ref += Ak @ B @ B.conj().T @ Ak.conj().T
        Q_ref += Ak.conj().T @ C.conj().T @ C @ Ak
        Ak = Ak @ sys.A
    P = ssmred.controllability_gramian(sys, method=method)
    Q = ssmred.observability_gramian(sys, method=method)
    np.testing.assert_allclose(P, P_ref, rtol=0, atol=1e-12 * spla.norm(P_ref))
    np.testing.assert_allclose(Q, Q_ref, rtol=0, atol=1e-12 * spla.norm(Q_ref))
    # and the transposed (wrong) equation has a different solution here: the test can fail
    Q_wrong = spla.solve_discrete_lyapunov(sys.A.T, C.conj().T @ C)
    assert spla.norm(Q_wrong - Q_ref) > 1e-3 * spla.norm(Q_ref)
    # HSVs from the reference Gramians
    s_ref = np.sqrt(np.sort(np.abs(spla.eigvals(P_ref @ Q_ref)))[::-1])
    np.testing.assert_allclose(ssmred.hankel_singular_values(sys, method=method), s_ref, rtol=1e-8, atol=0)


@pytest.mark.parametrize("method", ["scipy", "diagonal"])
def test_complex_continuous_diagonal_closed_form(method):
    lam = np.array([-0.5 + 2.0j, -1.0 - 1.0j, -0.1 + 0.3j])
    rng = np.random.default_rng(11)
    B = rng.standard_normal((3, 2)) + 1j * rng.standard_normal((3, 2))
    C = rng.standard_normal((2, 3)) + 1j * rng.standard_normal((2, 3))
    sys = ssmred.from_diagonal(lam, B, C)
    BBh, ChC = B @ B.conj().T, C.conj().T @ C
    P_ref = -BBh / (lam[:, None] + lam.conj()[None, :])
    Q_ref = -ChC / (lam.conj()[:, None] + lam[None, :])
    np.testing.assert_allclose(ssmred.controllability_gramian(sys, method=method), P_ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ssmred.observability_gramian(sys, method=method), Q_ref, rtol=0, atol=1e-12)
    P, Q = ssmred.diagonal_gramians(lam, B, C, dt=None)
    np.testing.assert_allclose(P, P_ref, rtol=1e-14, atol=0)
    np.testing.assert_allclose(Q, Q_ref, rtol=1e-14, atol=0)


@pytest.mark.parametrize("discrete", [False, True], ids=["ct", "dt"])
def test_real_output_hsv_via_conjugate_augmentation(discrete):
    """to_real() is similar to (diag(A, Ā), [B; B̄], ½[C, C̄]): same HSVs (SPEC §3)."""
    sys = ssmred.random_stable(4, 2, 2, dt=1.0 if discrete else None, complex_=True, rng=5)
    A, B, C = sys.A, sys.B, sys.C
    aug = StateSpace(spla.block_diag(A, A.conj()), np.vstack([B, B.conj()]), 0.5 * np.hstack([C, C.conj()]), dt=sys.dt)
    s_real = ssmred.hankel_singular_values(sys.to_real())
    s_aug = ssmred.hankel_singular_values(aug)
    np.testing.assert_allclose(s_real, s_aug, rtol=1e-9, atol=1e-12 * s_aug[0])
    # the complex-system HSVs are only a proxy: here they differ from the real-output ones
    s_cplx = ssmred.hankel_singular_values(sys)
    assert abs(s_cplx[0] - s_real[0]) > 1e-3 * s_real[0]


# ---------------------------------------------------------------------------------------- dtypes and shapes
@pytest.mark.parametrize("discrete", [False, True], ids=["ct", "dt"])
def test_gramian_dtypes_and_factor_shapes(discrete):
    dt = 1.0 if discrete else None
    real = ssmred.random_stable(5, 2, 3, dt=dt, rng=1)
    cplx = ssmred.random_stable(5, 2, 3, dt=dt, complex_=True, rng=1)
    for sys in (real, cplx):
        P = ssmred.controllability_gramian(sys)
        Q = ssmred.observability_gramian(sys)
        Lc, Lo = ssmred.gramian_factors(sys)
        for M in (P, Q, Lc, Lo):
            assert M.shape == (5, 5)
            assert np.iscomplexobj(M) == sys.is_complex
        np.testing.assert_allclose(Lc @ Lc.conj().T, P, rtol=0, atol=1e-12 * spla.norm(P))
        np.testing.assert_allclose(Lo @ Lo.conj().T, Q, rtol=0, atol=1e-12 * spla.norm(Q))


@pytest.mark.parametrize("dt", [None, 1.0])
def test_hsv_diagonal_shapes(dt):
    rng = np.random.default_rng(2)
    lam = (-rng.uniform(0.1, 1.0, (2, 3, 4)) if dt is None else rng.uniform(-0.9, 0.9, (2, 3, 4))).astype(complex)
    B = rng.standard_normal((2, 3, 4, 2))
    C = rng.standard_normal((2, 3, 1, 4))
    s = ssmred.hsv_diagonal(lam, B, C, dt=dt)
    assert s.shape == (2, 3, 4)
    assert s.dtype == np.float64
    assert np.all(np.diff(s, axis=-1) <= 0.0)
    P, Q = ssmred.diagonal_gramians(lam, B, C, dt=dt)
    assert P.shape == Q.shape == (2, 3, 4, 4)
    one = ssmred.hsv_diagonal(lam[1, 2], B[1, 2], C[1, 2], dt=dt)
    np.testing.assert_allclose(s[1, 2], one, rtol=1e-13, atol=0)


# ---------------------------------------------------------------------------------------- the reductor
def test_sr_reduced_model_is_balanced_in_continuous_time():
    sigma = np.array([3.0, 1.0, 0.2, 0.01, 1e-4])
    sys = _decoupled(sigma, discrete=False, seed=4)
    res = ssmred.balanced_truncation(sys, 3, method="sr")
    P = ssmred.controllability_gramian(res.reduced)
    Q = ssmred.observability_gramian(res.reduced)
    np.testing.assert_allclose(P, np.diag(sigma[:3]), rtol=0, atol=1e-10)
    np.testing.assert_allclose(Q, np.diag(sigma[:3]), rtol=0, atol=1e-10)


def test_bfsr_and_sr_give_same_transfer_function():
    sys = ssmred.random_stable(6, 2, 2, rng=8, with_d=True)
    omega = np.array([-2.0, 0.0, 0.3, 4.0])
    sr = ssmred.balanced_truncation(sys, 3, method="sr").reduced
    bf = ssmred.balanced_truncation(sys, 3, method="bfsr").reduced
    np.testing.assert_allclose(sr.frequency_response(omega), bf.frequency_response(omega), rtol=1e-9, atol=1e-12)


def test_reductor_caches_and_selects_orders():
    sigma = np.array([4.0, 2.0, 1.0, 0.25, 0.05])
    sys = _decoupled(sigma, discrete=True, seed=9)
    bt = ssmred.BalancedTruncation(sys)
    np.testing.assert_allclose(bt.hsv, sigma, rtol=1e-10, atol=0)
    assert not bt.hsv.flags.writeable
    bounds = bt.error_bounds()
    np.testing.assert_allclose(bounds, 2.0 * np.array([7.3, 3.3, 1.3, 0.3, 0.05, 0.0]), rtol=1e-9, atol=1e-15)
    # tol: the smallest r with 2 Σ_{i>r} σ_i <= tol
    assert bt.reduce(tol=0.61).r == 3
    assert bt.reduce(tol=0.59).r == 4
    assert bt.reduce(tol=100.0).r == 1  # never below 1
    # energy τ: smallest r keeping (1 - τ) of Σσ = 7.3
    assert bt.reduce(energy=0.0).r == 5
    assert bt.reduce(energy=0.05).r == 3  # 7.0 / 7.3 = 0.959 >= 0.95
    assert bt.reduce(energy=0.5).r == 1  # 4.0 / 7.3 = 0.548 >= 0.5
    res = bt.reduce(2)
    assert res.lower_bound == pytest.approx(1.0, rel=1e-10)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.r = 3  # type: ignore[misc]
    for arr in (res.hsv, res.T, res.Ti):
        assert not arr.flags.writeable


def test_truncation_between_equal_hsvs_warns():
    """Two identical channels give σ₁ = σ₂: cutting between them voids the guarantee (AccuracyWarning)."""
    sys = StateSpace(np.diag([-1.0, -1.0, -5.0]), np.eye(3), np.eye(3))
    with pytest.warns(AccuracyWarning, match="equal"):
        ssmred.balanced_truncation(sys, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = ssmred.balanced_truncation(sys, 2)  # a genuine gap: no warning
    assert res.r == 2
