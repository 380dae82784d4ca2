"""The SLICOT path that ``gramian_method="auto"`` takes for real dense systems when slycot is installed.

* SB03OD is called with SLICOT's documented minimum workspace ``4n + min(m, n)`` (slycot 0.7.1's default
  ``4n`` is too small: heap corruption, seen as a crash at exit after an n = 1000 call).
* The AB09AX square-root bases and the SB03OD factors give the same HSVs and reduced models as ssmred's own
  solver and as SLICOT AB09AD (the reference).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import ssmred
from ssmred.backends import slycot as slycot_backend

pytestmark = pytest.mark.slycot


@pytest.fixture
def sb03od_calls(monkeypatch):
    import slycot

    calls = []
    wrapped = slycot._wrapper.sb03od

    def spy(dico, n, m, *args, **kwargs):
        calls.append((n, m, kwargs.get("ldwork")))
        return wrapped(dico, n, m, *args, **kwargs)

    monkeypatch.setattr(slycot._wrapper, "sb03od", spy)
    return calls


@pytest.mark.parametrize("m", [1, 3, 12])
def test_sb03od_gets_slicots_minimum_workspace(sb03od_calls, m):
    sys = ssmred.random_stable(8, m, 2, rng=m)
    ssmred.gramian_factors(sys, method="slycot")
    ssmred.hankel_singular_values(sys, method="slycot")
    assert sb03od_calls
    for n, k, ldwork in sb03od_calls:
        assert ldwork is not None
        assert ldwork >= 4 * n + min(k, n), (n, k, ldwork)


def test_auto_uses_slicot_for_real_dense_systems():
    from ssmred.gramians import _resolve

    assert _resolve(ssmred.random_stable(4, rng=0), "auto") == "slycot"
    assert _resolve(ssmred.random_stable(4, rng=0, complex_=True), "auto") == "scipy"
    assert _resolve(ssmred.from_diagonal([-1.0, -2.0], np.ones((2, 1)), np.ones((1, 2))), "auto") == "diagonal"


@pytest.mark.parametrize("discrete", [False, True], ids=["ct", "dt"])
@pytest.mark.parametrize("n", [5, 30])
def test_slicot_path_matches_own_solver_and_ab09ad(discrete, n):
    sys = ssmred.random_stable(n, 2, 3, dt=1.0 if discrete else None, rng=n)
    hsv = ssmred.hankel_singular_values(sys)
    own = ssmred.hankel_singular_values(sys, method="scipy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ab09ad warns when it lowers nr to the minimal order
        *_, ref = slycot_backend.ab09ad(sys.A, sys.B, sys.C, discrete=discrete, r=n)
    k = min(hsv.size, ref.size)
    np.testing.assert_allclose(hsv[:k], ref[:k], rtol=0, atol=1e-12 * ref[0])
    np.testing.assert_allclose(hsv, own, rtol=0, atol=1e-12 * own[0])
    z = np.exp(0.37j) if discrete else 0.37j
    for r in (1, n // 2):
        for method in ("sr", "bfsr"):
            a = ssmred.balanced_truncation(sys, r, method=method)
            b = ssmred.balanced_truncation(sys, r, method=method, gramian_method="scipy")
            np.testing.assert_allclose(a.reduced(z), b.reduced(z), rtol=1e-9, atol=1e-12 * hsv[0])
            np.testing.assert_allclose(a.Ti @ a.T, np.eye(r), rtol=0, atol=1e-10)
            assert a.error_bound == pytest.approx(b.error_bound, rel=1e-9, abs=1e-14 * hsv[0])
        if r < n and not discrete:  # SR output is balanced in continuous time
            red = ssmred.balanced_truncation(sys, r, method="sr").reduced
            P = ssmred.controllability_gramian(red, method="scipy")
            np.testing.assert_allclose(P, np.diag(hsv[:r]), rtol=0, atol=1e-9 * hsv[0])


def test_factors_from_the_slicot_path_solve_the_lyapunov_equations():
    for dt in (None, 1.0):
        sys = ssmred.random_stable(12, 2, 2, dt=dt, rng=4)
        Lc, Lo = ssmred.gramian_factors(sys)
        P, Q = Lc @ Lc.T, Lo @ Lo.T
        A, B, C = sys.A, sys.B, sys.C
        if dt is None:
            rc, ro = A @ P + P @ A.T + B @ B.T, A.T @ Q + Q @ A + C.T @ C
        else:
            rc, ro = A @ P @ A.T - P + B @ B.T, A.T @ Q @ A - Q + C.T @ C
        assert np.abs(rc).max() <= 1e-11 * np.abs(P).max() * np.abs(A).max()
        assert np.abs(ro).max() <= 1e-11 * np.abs(Q).max() * np.abs(A).max()
