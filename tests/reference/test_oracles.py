"""Every reference number of shared/ORACLES.md (SLICOT documentation example, MATLAB values).

Sources: SLICOT AB09AD/AB13AD/AB09MD documentation example; MATLAB values quoted in python-control's
test-suite. Numbers are copied here; no other project's tests are imported.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as spla

from ssmred import (
    StateSpace,
    balanced_truncation,
    controllability_gramian,
    discretize,
    h2_norm,
    hankel_norm,
    hankel_singular_values,
    hinf_norm,
    minimal_realization,
    observability_gramian,
    singular_perturbation,
    spectral_split,
)
from ssmred.examples import slicot_ab09ad

MATLAB_A = np.array([[1.0, -2.0], [3.0, -4.0]])


def test_slicot_ab09ad_hsv_order_and_hankel_norm():
    sys = slicot_ab09ad()
    published = [2.5139, 2.0846, 1.9178, 0.7666, 0.5473, 0.0253, 0.0246]
    np.testing.assert_allclose(hankel_singular_values(sys), published, rtol=0, atol=5e-5)
    assert hankel_norm(sys) == pytest.approx(2.51388, rel=0, abs=5e-6)
    res = balanced_truncation(sys, tol=0.1)
    assert res.r == 5


def test_slicot_ab09md_alpha_stable_part():
    inner = spectral_split(slicot_ab09ad(), -0.6).inner
    np.testing.assert_allclose(
        hankel_singular_values(inner), [1.9178, 0.8621, 0.7666, 0.0336, 0.0246], rtol=0, atol=5e-5
    )
    # SLICOT's TOL keeps the states with sigma_i > 0.1: 3 stable states + 2 states outside the region
    hsv = hankel_singular_values(inner)
    order = int(np.count_nonzero(hsv > 0.1)) + (slicot_ab09ad().n_states - inner.n_states)
    assert order == 5


def test_matlab_siso_hsv():
    sys = StateSpace(MATLAB_A, [[5.0], [7.0]], [[6.0, 8.0]], [[9.0]])
    np.testing.assert_allclose(hankel_singular_values(sys), [24.42686, 0.5731395], rtol=1e-6, atol=0)


def test_matlab_mimo_gramians_and_cholesky_factors():
    sys = StateSpace(MATLAB_A, [[5.0, 6.0], [7.0, 8.0]], [[4.0, 5.0], [6.0, 7.0]])
    Wc = controllability_gramian(sys)
    Wo = observability_gramian(sys)
    np.testing.assert_allclose(Wc, [[18.5, 24.5], [24.5, 32.5]], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(Wo, [[257.5, -94.5], [-94.5, 56.5]], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(spla.cholesky(Wc), [[4.30116263, 5.6961343], [0, 0.23249528]], rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(spla.cholesky(Wo), [[16.04680654, -5.8890222], [0, 4.67112593]], rtol=1e-7, atol=1e-8)
    d = discretize(sys, 0.2)
    np.testing.assert_allclose(
        controllability_gramian(d), [[3.666767, 4.853625], [4.853625, 6.435233]], rtol=2e-6, atol=0
    )
    np.testing.assert_allclose(
        observability_gramian(d),
        [[1305.369179, -440.046414], [-440.046414, 333.034844]],
        rtol=2e-6,
        atol=0,
    )


def test_matlab_siso_gramians_continuous_and_zoh():
    sys = StateSpace(MATLAB_A, [[5.0], [7.0]], [[6.0, 8.0]])
    np.testing.assert_allclose(
        controllability_gramian(sys), [[7.166667, 9.833333], [9.833333, 13.5]], rtol=1e-6, atol=0
    )
    np.testing.assert_allclose(observability_gramian(sys), [[198.0, -72.0], [-72.0, 44.0]], rtol=1e-10, atol=1e-9)
    d = discretize(sys, 0.2)
    np.testing.assert_allclose(
        controllability_gramian(d), [[1.418978, 1.946180], [1.946180, 2.670758]], rtol=2e-6, atol=0
    )
    np.testing.assert_allclose(
        observability_gramian(d),
        [[1001.835511, -335.337663], [-335.337663, 263.355793]],
        rtol=2e-6,
        atol=0,
    )


def _canonical_fourth_order() -> StateSpace:
    A = [[-15.0, -7.5, -6.25, -1.875], [8.0, 0, 0, 0], [0, 4.0, 0, 0], [0, 0, 1.0, 0]]
    return StateSpace(A, [[2.0], [0], [0], [0]], [[0.5, 0.6875, 0.7031, 0.5]])


@pytest.mark.parametrize("method", ["sr", "bfsr"])
def test_matlab_balred_truncate_order_2(method):
    sys = _canonical_fourth_order()
    red = balanced_truncation(sys, 2, method=method).reduced
    ref = StateSpace([[-1.958, -1.194], [-1.194, -0.8344]], [[0.9057], [0.4068]], [[0.9057, 0.4068]])
    w = np.logspace(-2, 2, 40)
    # the published matrices have 4 digits: compare transfer functions at that accuracy
    np.testing.assert_allclose(red.frequency_response(w), ref.frequency_response(w), rtol=3e-3, atol=3e-4)


def test_matlab_balred_singular_perturbation_feedthrough():
    red = singular_perturbation(_canonical_fourth_order(), 2).reduced
    assert float(red.D[0, 0]) == pytest.approx(-0.08383902, rel=1e-6)
    np.testing.assert_allclose(red(0.0), _canonical_fourth_order()(0.0), rtol=1e-10, atol=0)


def test_matlab_norms_first_order():
    sys = StateSpace([[-1.0]], [[1.0]], [[1.0]])
    assert hinf_norm(sys) == pytest.approx(1.0, rel=1e-10)
    assert h2_norm(sys) == pytest.approx(0.707106781186547, rel=1e-12)
    d = discretize(sys, 0.1)
    assert hinf_norm(d) == pytest.approx(1.0, rel=1e-10)
    # MATLAB's quoted value agrees to 1e-8; the exact value sqrt(b^2 / (1 - a^2)) with a = exp(-0.1),
    # b = 1 - a is 0.2235137019466143936 (evaluated with 30-digit arithmetic), which ssmred matches to 1e-14.
    assert h2_norm(d) == pytest.approx(0.223513699524858, rel=2e-8)
    assert h2_norm(d) == pytest.approx(0.2235137019466143936, rel=1e-14)


def test_matlab_minimal_realization():
    A = [[-2.0, 0.5, 0], [0.5, -0.3, 0], [0, 0, -0.1]]
    B = [[0.3, -1.3], [0.1, 0], [1.0, 0]]
    C = [[0, 0.1, 0], [-0.3, -0.2, 0]]
    D = [[0, -0.8], [-0.3, 0]]
    sys = StateSpace(A, B, C, D)
    mr = minimal_realization(sys)
    assert mr.n_states == 2
    np.testing.assert_allclose(np.sort(mr.poles().real), [-2.136154, -0.1638459], rtol=1e-6, atol=0)
    np.testing.assert_allclose(np.abs(mr.poles().imag), 0.0, rtol=0, atol=1e-10)
    w = np.logspace(-2, 2, 20)
    np.testing.assert_allclose(mr.frequency_response(w), sys.frequency_response(w), rtol=1e-9, atol=1e-12)
