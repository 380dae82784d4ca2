"""Thread discipline (issue 8): ssmred limits the BLAS pools during its own kernels and restores them.

The test session runs with one BLAS thread (root conftest.py), so every test first raises the pools to 2
threads inside a threadpoolctl block: the user's "default" setting that ssmred must lower for small
kernels and must leave as it was afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import ssmred
import ssmred._threads as threads
import ssmred.backends.scipy as scipy_backend

try:  # load every BLAS up front (slycot brings its own), so that "before" and "after" list the same pools
    import slycot  # noqa: F401
except ImportError:  # the core works without it
    pass


def _blas_threads() -> list[int]:
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


@pytest.fixture
def spy(monkeypatch):
    """Record the BLAS thread counts seen inside the Schur step of the dense kernels."""
    seen: list[list[int]] = []
    real_schur, complex_schur = scipy_backend.real_schur, scipy_backend.complex_schur

    def rs(A):
        seen.append(_blas_threads())
        return real_schur(A)

    def cs(A):
        seen.append(_blas_threads())
        return complex_schur(A)

    monkeypatch.setattr(scipy_backend, "real_schur", rs)
    monkeypatch.setattr(scipy_backend, "complex_schur", cs)
    return seen


SYS = ssmred.random_stable(8, 2, 2, rng=0)
CALLS = [
    pytest.param(lambda s: ssmred.hankel_singular_values(s), id="hsv"),
    pytest.param(lambda s: ssmred.gramian_factors(s), id="gramian_factors"),
    pytest.param(lambda s: ssmred.balanced_truncation(s, 2), id="bt"),
    pytest.param(lambda s: ssmred.balanced_truncation(s, 2, gramian_method="scipy"), id="bt-scipy"),
    pytest.param(lambda s: ssmred.singular_perturbation(s, 2), id="spa"),
    pytest.param(lambda s: ssmred.minimal_realization(s), id="minreal"),
    pytest.param(lambda s: ssmred.hinf_norm(s), id="hinf"),
    pytest.param(lambda s: ssmred.h2_norm(s), id="h2"),
]


@pytest.mark.parametrize("call", CALLS)
def test_small_kernels_run_single_threaded_and_restore(call, spy):
    with threadpool_limits(2):
        before = _blas_threads()
        call(SYS)
        assert _blas_threads() == before, "the user's thread setting must be restored"
    assert spy, "the kernel did not reach the Schur step"
    assert all(t == [1] * len(t) for t in spy), spy


def test_inherit_leaves_pools_alone(spy):
    with threadpool_limits(2), ssmred.blas_threads("inherit"):
        ssmred.hankel_singular_values(SYS)
        assert _blas_threads() == [2] * len(_blas_threads())
    assert spy
    assert all(t == [2] * len(t) for t in spy)


def test_explicit_thread_count(spy):
    with threadpool_limits(2), ssmred.blas_threads(1):
        ssmred.balanced_truncation(SYS, 2)
    with threadpool_limits(1), ssmred.blas_threads(2):
        ssmred.balanced_truncation(SYS, 2)
        assert _blas_threads() == [1] * len(_blas_threads())
    assert spy[0] == [1] * len(spy[0])
    assert spy[-1] == [2] * len(spy[-1])


def test_large_problems_keep_the_users_setting(spy, monkeypatch):
    monkeypatch.setattr(threads, "AUTO_MULTITHREAD_STATES", 5)
    with threadpool_limits(2):
        ssmred.hankel_singular_values(SYS)  # 8 states >= 5: multi-threaded
    assert spy
    assert all(t == [2] * len(t) for t in spy)


def test_restored_after_an_error():
    unstable = ssmred.StateSpace([[1.0]], [[1.0]], [[1.0]])
    with threadpool_limits(2):
        with pytest.raises(ssmred.NotStableError):
            ssmred.hankel_singular_values(unstable)
        assert _blas_threads() == [2] * len(_blas_threads())
    assert threads._active == 0


def test_concurrent_calls_restore_once():
    errors: list[BaseException] = []

    def work():
        try:
            for _ in range(5):
                ssmred.balanced_truncation(SYS, 2)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    with threadpool_limits(2):
        workers = [threading.Thread(target=work) for _ in range(3)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        assert _blas_threads() == [2] * len(_blas_threads())
    assert not errors
    assert threads._active == 0


@pytest.mark.parametrize("bad", [0, -1, "two", 1.5, True])
def test_policy_validation(bad):
    with pytest.raises(ValueError, match="'auto', 'inherit' or a positive integer"):
        with ssmred.blas_threads(bad):
            pass


@pytest.mark.parametrize(("value", "expected"), [("inherit", "'inherit'"), ("3", "3"), ("", "'auto'")])
def test_environment_variable(value, expected):
    env = dict(os.environ, SSMRED_BLAS_THREADS=value)
    out = subprocess.run(
        [sys.executable, "-c", "import ssmred._threads as t; print(repr(t.current_policy()))"],
        capture_output=True, text=True, env=env, check=True, timeout=120,
    )  # fmt: skip
    assert out.stdout.strip() == expected


def test_bad_environment_variable_warns_and_uses_auto():
    env = dict(os.environ, SSMRED_BLAS_THREADS="lots")
    out = subprocess.run(
        [sys.executable, "-W", "always", "-c", "import ssmred._threads as t; print(repr(t.current_policy()))"],
        capture_output=True, text=True, env=env, check=True, timeout=120,
    )  # fmt: skip
    assert out.stdout.strip() == "'auto'"
    assert "SSMRED_BLAS_THREADS" in out.stderr


def test_results_do_not_depend_on_the_policy():
    ref = ssmred.balanced_truncation(SYS, 3)
    with ssmred.blas_threads("inherit"):
        other = ssmred.balanced_truncation(SYS, 3)
    np.testing.assert_allclose(other.hsv, ref.hsv, rtol=1e-13)
    np.testing.assert_allclose(other.reduced(0.3j), ref.reduced(0.3j), rtol=1e-10)


def test_diagonal_kernels_run_single_threaded(monkeypatch):
    """hsv_diagonal (the LRU-layer path of the issue: 13-18x vs 72-76x faster than AB09AD) is limited too."""
    seen: list[list[int]] = []
    factor = scipy_backend.diagonal_lyapunov_factor

    def spy(*args, **kwargs):
        seen.append(_blas_threads())
        return factor(*args, **kwargs)

    monkeypatch.setattr(scipy_backend, "diagonal_lyapunov_factor", spy)
    rng = np.random.default_rng(0)
    lam = 0.9 * np.exp(1j * rng.uniform(0, np.pi, 16))
    with threadpool_limits(2):
        ssmred.hsv_diagonal(lam, rng.standard_normal((16, 4)), rng.standard_normal((4, 16)), dt=1.0)
        ssmred.balanced_truncation(ssmred.from_diagonal(lam, np.ones((16, 2)), np.ones((2, 16)), dt=1.0), 3)
        assert _blas_threads() == [2] * len(_blas_threads())
    assert seen
    assert all(t == [1] * len(t) for t in seen)
