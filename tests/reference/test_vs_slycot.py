"""ssmred's own solvers against SLICOT (slycot) on hundreds of random real systems, and complex systems
against scipy's (complex-correct) Lyapunov solvers, the closed form and the real 2n realization.

Accuracy targets (issue 2): |σ_i − σ_i^ref| ≤ 2e-9·σ_1 for every i, and relative 1e-7 for
σ_i ≥ 1e-3·σ_1 — the accuracy of SLICOT itself — on plain, near-unstable (spectral radius 0.999 /
abscissa −1e-3), strongly non-normal and badly scaled (state scalings spanning 1e4) systems.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg as spla

from ssmred import (
    StateSpace,
    balanced_truncation,
    conj_augment,
    controllability_gramian,
    hankel_singular_values,
    hinf_norm,
    hsv_diagonal,
    observability_gramian,
    peak_gain,
    singular_perturbation,
)
from ssmred.backends import slycot as slycot_backend

pytestmark = pytest.mark.slycot

KINDS = ("plain", "edge", "nonnormal", "scaled")
SYSTEMS_PER_CASE = 30  # 4 kinds x 2 time bases x 30 = 240 systems


def make_system(kind: str, discrete: bool, rng: np.random.Generator) -> StateSpace:
    """Random stable real system of a given difficulty."""
    n = int(rng.integers(2, 31))
    m, p = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    if kind == "nonnormal":
        A = np.triu(rng.standard_normal((n, n))) * (0.5 if discrete else 3.0)
        np.fill_diagonal(A, rng.uniform(-0.9, 0.9, n) if discrete else -rng.uniform(0.1, 2.0, n))
    else:
        A = rng.standard_normal((n, n)) / np.sqrt(n)
        ev = spla.eigvals(A)
        if discrete:
            A = A * ((0.999 if kind == "edge" else 0.9) / np.max(np.abs(ev)))
        else:
            A = A - (np.max(ev.real) + (1e-3 if kind == "edge" else 0.1)) * np.eye(n)
    B = rng.standard_normal((n, m))
    C = rng.standard_normal((p, n))
    if kind == "scaled":
        d = 10.0 ** rng.uniform(-2.0, 2.0, n)
        A = A * d[None, :] / d[:, None]
        B = B / d[:, None]
        C = C * d[None, :]
    return StateSpace(A, B, C, dt=1.0 if discrete else None)


def slycot_hsv(sys: StateSpace) -> np.ndarray:
    with warnings.catch_warnings():  # ab09ad warns when it lowers the order of a non-minimal system
        warnings.simplefilter("ignore")
        *_, hsv = slycot_backend.ab09ad(sys.A, sys.B, sys.C, discrete=sys.is_discrete, r=sys.n_states)
    return np.sort(np.asarray(hsv))[::-1]


def assert_hsv_close(ours: np.ndarray, ref: np.ndarray) -> None:
    k = min(ours.size, ref.size)
    ours, ref = ours[:k], ref[:k]
    np.testing.assert_allclose(ours, ref, rtol=0, atol=2e-9 * ref[0])
    big = ref >= 1e-3 * ref[0]
    np.testing.assert_allclose(ours[big], ref[big], rtol=1e-7, atol=0)


@pytest.mark.parametrize("discrete", [False, True], ids=["ct", "dt"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", ["scipy", "slycot"])
def test_hsv_match_slicot(kind, discrete, method):
    rng = np.random.default_rng(1000 * KINDS.index(kind) + 10 * discrete + (method == "slycot"))
    for _ in range(SYSTEMS_PER_CASE if method == "scipy" else SYSTEMS_PER_CASE // 3):
        sys = make_system(kind, discrete, rng)
        assert_hsv_close(hankel_singular_values(sys, method=method), slycot_hsv(sys))


@pytest.mark.parametrize("discrete", [False, True], ids=["ct", "dt"])
@pytest.mark.parametrize("kind", KINDS)
def test_bt_transfer_function_and_error_bound_vs_slicot(kind, discrete):
    rng = np.random.default_rng(7 + 100 * KINDS.index(kind) + discrete)
    for _ in range(6):
        sys = make_system(kind, discrete, rng)
        hsv = hankel_singular_values(sys)
        n = sys.n_states
        # a cut with a clear gap so that both libraries truncate the same subspace
        gaps = hsv[:-1] / np.maximum(hsv[1:], 1e-300)
        r = int(np.argmax(gaps[: max(1, n - 1)])) + 1
        if hsv[r - 1] < 1e-6 * hsv[0]:
            r = 1
        ours = balanced_truncation(sys, r)
        nr, Ar, Br, Cr, _ = slycot_backend.ab09ad(sys.A, sys.B, sys.C, discrete=discrete, r=r)
        ref = StateSpace(Ar[:nr, :nr], Br[:nr], Cr[:, :nr], sys.D, dt=sys.dt)
        assert nr == r
        # transfer functions agree relative to the size of the discarded part
        diff = hinf_norm(ours.reduced - ref) if r < n else 0.0
        assert diff <= 1e-6 * max(hsv[0], 1e-300) + 1e-3 * ours.error_bound
        # measured H-infinity error (SLICOT AB13DD) between sigma_{r+1} and the bound. Evaluating an
        # error system that is ~1e-8 of ||G|| has a rounding floor ~ n eps sigma_1: allow 1e-10 sigma_1.
        floor = 1e-10 * hsv[0]
        e = sys - ours.reduced
        measured, _ = slycot_backend.ab13dd(e.A, e.B, e.C, e.D, discrete=discrete)
        assert measured <= ours.error_bound * (1 + 1e-7) + floor
        assert measured >= ours.lower_bound * (1 - 1e-6) - floor
        # ssmred's H-infinity norm is never below AB13DD's (AB13DD sometimes stops at a lower local
        # peak; ssmred returns a gain it actually attains, so it cannot overshoot the true norm)
        ours_norm = peak_gain(e)
        assert ours_norm.gain >= measured * (1 - 1e-7) - floor
        assert ours_norm.gain <= ours.error_bound * (1 + 1e-7) + floor
        assert ours.reduced.is_stable()


@pytest.mark.parametrize("discrete", [False, True], ids=["ct", "dt"])
def test_singular_perturbation_vs_slicot_ab09nd(discrete):
    rng = np.random.default_rng(55 + discrete)
    for _ in range(8):
        sys = make_system("plain", discrete, rng)
        sys = sys.with_(D=rng.standard_normal((sys.n_outputs, sys.n_inputs)))
        r = max(1, sys.n_states // 3)
        ours = singular_perturbation(sys, r)
        nr, Ar, Br, Cr, Dr, _ = slycot_backend.ab09nd(sys.A, sys.B, sys.C, sys.D, discrete=discrete, r=r)
        assert nr == r
        ref = StateSpace(Ar, Br, Cr, Dr, dt=sys.dt)
        point = 1.0 if discrete else 0.0
        np.testing.assert_allclose(ours.reduced(point), sys(point), rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(ref(point), sys(point), rtol=1e-8, atol=1e-10)
        w = np.linspace(0.01, 3.0, 15)
        np.testing.assert_allclose(
            ours.reduced.frequency_response(w), ref.frequency_response(w), rtol=0, atol=1e-6 * ours.hsv[0]
        )
        assert hinf_norm(sys - ours.reduced) <= ours.error_bound * (1 + 1e-7)


# ----------------------------------------------------------------------------- complex systems


def random_complex(n: int, m: int, p: int, discrete: bool, rng: np.random.Generator) -> StateSpace:
    A = (rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))) / np.sqrt(2 * n)
    ev = spla.eigvals(A)
    A = A * (0.95 / np.max(np.abs(ev))) if discrete else A - (np.max(ev.real) + 0.2) * np.eye(n)
    B = rng.standard_normal((n, m)) + 1j * rng.standard_normal((n, m))
    C = rng.standard_normal((p, n)) + 1j * rng.standard_normal((p, n))
    return StateSpace(A, B, C, dt=1.0 if discrete else None)


@pytest.mark.parametrize("discrete", [False, True], ids=["ct", "dt"])
def test_complex_gramians_vs_scipy_lyapunov(discrete):
    rng = np.random.default_rng(3 + discrete)
    for _ in range(10):
        sys = random_complex(int(rng.integers(2, 25)), 2, 3, discrete, rng)
        A, B, C = sys.A, sys.B, sys.C
        if discrete:
            P_ref = spla.solve_discrete_lyapunov(A, B @ B.conj().T)
            Q_ref = spla.solve_discrete_lyapunov(A.conj().T, C.conj().T @ C)
        else:
            P_ref = spla.solve_continuous_lyapunov(A, -B @ B.conj().T)
            Q_ref = spla.solve_continuous_lyapunov(A.conj().T, -C.conj().T @ C)
        P, Q = controllability_gramian(sys), observability_gramian(sys)
        np.testing.assert_allclose(P, P_ref, rtol=0, atol=1e-10 * np.abs(P_ref).max())
        np.testing.assert_allclose(Q, Q_ref, rtol=0, atol=1e-10 * np.abs(Q_ref).max())
        # the test can tell conjugate from plain transposes: pyMOR's slip (A^T instead of A^H) differs
        Q_slip = (
            spla.solve_discrete_lyapunov(A.T, C.conj().T @ C)
            if discrete
            else spla.solve_continuous_lyapunov(A.T, -C.conj().T @ C)
        )
        assert not np.allclose(Q, Q_slip, rtol=1e-3, atol=0)


@pytest.mark.parametrize("discrete", [False, True], ids=["ct", "dt"])
def test_complex_hsv_equal_realified_slycot(discrete):
    """The complex system as a real system of dimension 2n: y = C x with x complex equals
    [Re y; Im y] = [[Re C, -Im C], [Im C, Re C]] [Re x; Im x], whose HSVs are those of the complex system
    (each repeated twice). SLICOT handles that real system correctly."""
    rng = np.random.default_rng(11 + discrete)
    for _ in range(10):
        sys = random_complex(int(rng.integers(2, 20)), 2, 2, discrete, rng)
        A, B, C = sys.A, sys.B, sys.C
        Ar = np.block([[A.real, -A.imag], [A.imag, A.real]])
        Br = np.block([[B.real, -B.imag], [B.imag, B.real]])
        Cr = np.block([[C.real, -C.imag], [C.imag, C.real]])
        ref = slycot_hsv(StateSpace(Ar, Br, Cr, dt=sys.dt))
        ours = hankel_singular_values(sys)
        np.testing.assert_allclose(np.repeat(ours, 2), ref, rtol=0, atol=1e-9 * ref[0])


@pytest.mark.parametrize("discrete", [False, True], ids=["ct", "dt"])
def test_real_output_system_hsv_vs_slycot(discrete):
    """y = Re(C x): ``to_real()`` (and the conjugate-augmented form) against SLICOT on the same 2n system."""
    rng = np.random.default_rng(21 + discrete)
    for _ in range(10):
        sys = random_complex(int(rng.integers(2, 20)), 3, 2, discrete, rng)
        real = sys.to_real()
        ref = slycot_hsv(real)
        assert_hsv_close(hankel_singular_values(real), ref)
        assert_hsv_close(hankel_singular_values(conj_augment(sys)), ref)


@pytest.mark.parametrize("discrete", [False, True], ids=["ct", "dt"])
def test_diagonal_closed_form_vs_dense_and_slycot(discrete):
    """LRU-like complex diagonal systems: closed form vs dense ssmred vs SLICOT on the real output system."""
    rng = np.random.default_rng(31 + discrete)
    batch, n, H = 3, 24, 6
    radius = np.sqrt(rng.uniform(0.9**2, 0.999**2, (batch, n)))
    phase = rng.uniform(0, 2 * np.pi, (batch, n))
    lam = (
        radius * np.exp(1j * phase)
        if discrete
        else -rng.uniform(0.01, 1, (batch, n)) + 1j * rng.normal(size=(batch, n))
    )
    B = (rng.standard_normal((batch, n, H)) + 1j * rng.standard_normal((batch, n, H))) / np.sqrt(2 * H)
    C = (rng.standard_normal((batch, H, n)) + 1j * rng.standard_normal((batch, H, n))) / np.sqrt(n)
    closed = hsv_diagonal(lam, B, C, dt=1.0 if discrete else None)
    for i in range(batch):
        sys = StateSpace(np.diag(lam[i]), B[i], C[i], dt=1.0 if discrete else None)
        dense = hankel_singular_values(sys, method="scipy")
        np.testing.assert_allclose(closed[i], dense, rtol=0, atol=1e-10 * dense[0])
        aug = conj_augment(sys)
        np.testing.assert_allclose(
            hankel_singular_values(aug, method="diagonal"), slycot_hsv(sys.to_real()), rtol=0, atol=1e-9 * dense[0]
        )
