"""Zero and rank-deficient systems, and extreme scaling (issue 8).

* ``g - g`` (transfer function zero, realization of order 2n): every HSV is zero or at the rounding
  floor; the reductions return the zero realization instead of crashing ("r=1 exceeds the numerical rank
  0 ... choose r <= 0") or dividing by sqrt(sigma_1) = 0 ("A must be finite").
* Partly-zero tails (uncontrollable states appended): exactly-zero HSVs never reach a division.
* Scaling: ``B * s``, ``C / s`` with ``s`` up to 1e100, and whole systems scaled by 1e-150 / 1e150 give
  the right answers (not a false NotStableError, not a raw scipy error).
"""

from __future__ import annotations

import numpy as np
import pytest

import ssmred
from ssmred import StateSpace
from ssmred.errors import NotStableError

TIME_BASES = [pytest.param(None, id="ct"), pytest.param(1.0, id="dt")]
KINDS = [pytest.param(False, id="real"), pytest.param(True, id="complex")]


def _g(dt, complex_, n=4, m=2, p=3, seed=1):
    return ssmred.random_stable(n, m, p, dt=dt, complex_=complex_, rng=seed, with_d=True)


def _assert_zero_realization(red: StateSpace, sys: StateSpace, n_states: int) -> None:
    assert red.n_states == n_states
    assert red.dt == sys.dt
    assert red.is_complex == sys.is_complex
    np.testing.assert_array_equal(red.B, 0.0)
    np.testing.assert_array_equal(red.C, 0.0)
    np.testing.assert_array_equal(red.D, sys.D)
    assert red.is_stable()
    assert np.all(np.isfinite(red.A))


# ------------------------------------------------------------------------------------------------ G == 0
@pytest.mark.parametrize("complex_", KINDS)
@pytest.mark.parametrize("dt", TIME_BASES)
def test_minimal_realization_of_g_minus_g_is_zero(dt, complex_):
    g = _g(dt, complex_)
    z = g - g
    assert ssmred.BalancedTruncation(z).is_zero()
    assert ssmred.BalancedTruncation(z).numerical_rank() == 0
    _assert_zero_realization(ssmred.minimal_realization(z), z, 1)


@pytest.mark.parametrize("complex_", KINDS)
@pytest.mark.parametrize("dt", TIME_BASES)
def test_exactly_zero_hsvs(dt, complex_):
    """A diagonal g - g (the issue's case): HSVs 0 or at the rounding floor; no ValueError, no NaN."""
    lam = np.array([-1.0, -2.0, -3.0]) if dt is None else np.array([0.5, -0.3, 0.2])
    if complex_:
        lam = lam * np.exp(0.3j)
    rng = np.random.default_rng(0)
    B, C = rng.standard_normal((3, 2)), rng.standard_normal((2, 3))
    g = ssmred.from_diagonal(lam, B, C, dt=dt)
    z = g - g
    hsv = ssmred.hankel_singular_values(z)
    assert np.all(np.isfinite(hsv))
    _assert_zero_realization(ssmred.minimal_realization(z), z, 1)
    for r in (1, 2):
        spa = ssmred.singular_perturbation(z, r)
        _assert_zero_realization(spa.reduced, z, r)
        assert spa.error_bound == pytest.approx(2 * hsv[r:].sum(), rel=1e-12, abs=1e-300)
        bt = ssmred.balanced_truncation(z, r)
        _assert_zero_realization(bt.reduced, z, r)
        assert bt.T.shape == (6, r)
        assert bt.Ti.shape == (r, 6)
        np.testing.assert_array_equal(bt.T, 0.0)


@pytest.mark.parametrize("complex_", KINDS)
@pytest.mark.parametrize("dt", TIME_BASES)
@pytest.mark.parametrize("method", ["sr", "bfsr"])
def test_bt_and_spa_of_g_minus_g_by_selector(dt, complex_, method):
    z = _g(dt, complex_) - _g(dt, complex_)
    for kwargs in ({"r": 1}, {"r": 3}, {"tol": 1e-3}, {"energy": 0.1}):
        res = ssmred.balanced_truncation(z, method=method, **kwargs)
        assert np.all(np.isfinite(res.reduced.A))
        np.testing.assert_array_equal(res.reduced.C, 0.0)
        spa = ssmred.singular_perturbation(z, **kwargs)
        np.testing.assert_array_equal(spa.reduced.B, 0.0)
        np.testing.assert_array_equal(spa.reduced.D, z.D)
    # the reductions are exact: the error system is zero
    assert ssmred.hinf_norm(z - ssmred.balanced_truncation(z, tol=1e-3).reduced) <= 1e-13


@pytest.mark.parametrize("complex_", KINDS)
@pytest.mark.parametrize("dt", TIME_BASES)
def test_partly_zero_tail(dt, complex_):
    """Two uncontrollable states appended: HSVs 5, 6 are exactly zero; orders up to the rank work."""
    g = _g(dt, complex_)
    extra = StateSpace(
        np.diag([-1.0, -2.0]) if dt is None else np.diag([0.5, 0.2]), np.zeros((2, 2)), np.ones((3, 2)), dt=dt
    )
    sys = g + extra
    hsv = ssmred.hankel_singular_values(sys)
    np.testing.assert_array_equal(hsv[4:], 0.0)
    assert ssmred.BalancedTruncation(sys).numerical_rank() == 4
    for r in (1, 3, 4):
        for res in (ssmred.balanced_truncation(sys, r, method="sr"), ssmred.balanced_truncation(sys, r)):
            assert np.all(np.isfinite(res.reduced.A))
            assert res.reduced.n_states == r
        spa = ssmred.singular_perturbation(sys, r)
        assert np.all(np.isfinite(spa.reduced.A))
    # tol / energy stop at the rank, never at a zero HSV
    assert ssmred.balanced_truncation(sys, tol=1e-300).r == 4
    assert ssmred.singular_perturbation(sys, tol=1e-300).r == 4
    np.testing.assert_allclose(ssmred.minimal_realization(sys)(0.3), sys(0.3), rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="exceeds the numerical rank 4"):
        ssmred.balanced_truncation(sys, 5)


# ------------------------------------------------------------------------------------------------ scaling
@pytest.mark.parametrize("dt", TIME_BASES)
@pytest.mark.parametrize("s", [1e30, 1e50, 1e100, 1e-50])
def test_input_output_scaling(dt, s):
    """B * s, C / s: the same transfer function, so the same HSVs, bound and norm."""
    g = ssmred.random_stable(6, 2, 2, dt=dt, rng=3)
    gs = StateSpace(g.A, g.B * s, g.C / s, dt=dt)
    ref = ssmred.hankel_singular_values(g)
    for method in ("auto", "scipy"):
        np.testing.assert_allclose(
            ssmred.hankel_singular_values(gs, method=method), ref, rtol=1e-9, atol=1e-12 * ref[0]
        )
    res = ssmred.balanced_truncation(gs, 2)
    res0 = ssmred.balanced_truncation(g, 2)
    assert res.error_bound == pytest.approx(res0.error_bound, rel=1e-9)
    np.testing.assert_allclose(res.reduced(0.4j), res0.reduced(0.4j), rtol=1e-7)
    assert ssmred.hinf_norm(gs) == pytest.approx(ssmred.hinf_norm(g), rel=1e-9)
    dc = 0.0 if dt is None else 1.0  # the steady-state point that SPA matches
    np.testing.assert_allclose(ssmred.singular_perturbation(gs, 2).reduced(dc), g(dc), rtol=1e-8)


@pytest.mark.parametrize("dt", TIME_BASES)
@pytest.mark.parametrize("s", [1e-150, 1e150])
def test_whole_system_scaled(dt, s):
    """(A, B, C, D) * s in continuous time is s G(./s) (gain and time scale); (A, B * s, C, D * s) is s G."""
    g = ssmred.random_stable(6, 2, 2, dt=dt, rng=3, with_d=True)
    if dt is None:
        gs = StateSpace(g.A * s, g.B * s, g.C * s, g.D * s)
    else:
        gs = StateSpace(g.A, g.B * s, g.C, g.D * s, dt=dt)
    assert gs.is_stable()
    ref_hsv = ssmred.hankel_singular_values(g)
    np.testing.assert_allclose(ssmred.hankel_singular_values(gs) / s, ref_hsv, rtol=1e-9)
    peak, peak0 = ssmred.peak_gain(gs), ssmred.peak_gain(g)
    assert peak.gain / s == pytest.approx(peak0.gain, rel=1e-9)
    if dt is None:
        assert peak.omega / s == pytest.approx(peak0.omega, rel=1e-6)
    res = ssmred.balanced_truncation(gs, 3)
    assert res.error_bound / s == pytest.approx(ssmred.balanced_truncation(g, 3).error_bound, rel=1e-9)
    h2 = ssmred.h2_norm(StateSpace(gs.A, gs.B, gs.C, dt=dt))
    factor = s**1.5 if dt is None else s  # ||s G(./s)||_2 = s^1.5 ||G||_2
    assert h2 / factor == pytest.approx(ssmred.h2_norm(StateSpace(g.A, g.B, g.C, dt=dt)), rel=1e-9)


def test_state_scaling_extreme():
    """A similarity with scalings spanning 1e60 (x = D x~): equilibration undoes it exactly."""
    g = ssmred.random_stable(5, 1, 1, rng=7)
    d = 10.0 ** np.linspace(-30, 30, 5)
    gs = StateSpace(g.A * d[None, :] / d[:, None], g.B / d[:, None], g.C * d[None, :])
    np.testing.assert_allclose(ssmred.hankel_singular_values(gs), ssmred.hankel_singular_values(g), rtol=1e-8)
    assert ssmred.hinf_norm(gs) == pytest.approx(ssmred.hinf_norm(g), rel=1e-9)


def test_unstable_after_scaling_is_still_unstable():
    """The relative stability slack does not make a pole at 0 stable, at any scale."""
    for s in (1e-150, 1.0, 1e150):
        sys = StateSpace(np.array([[0.0, s], [0.0, -s]]), [[1.0], [1.0]], [[1.0, 0.0]])
        with pytest.raises(NotStableError):
            ssmred.hankel_singular_values(sys)
        with pytest.raises(NotStableError):
            ssmred.hinf_norm(sys)


def test_overflowing_hsvs_are_a_typed_error():
    """HSVs beyond float64 (1e200 * 1e200): NotStableError naming the overflow, not inf or a raw error."""
    sys = StateSpace([[-1.0]], [[1e200]], [[1e200]])
    with pytest.raises(NotStableError, match="overflow"):
        ssmred.hankel_singular_values(sys)
