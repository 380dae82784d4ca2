"""The StateSpace value object: normalisation, immutability, evaluation, transformations, conversions."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.linalg as spla
import scipy.signal as sig

from ssmred import StateSpace
from ssmred.errors import DimensionError


def _sys(rng: np.random.Generator, n: int = 3, m: int = 2, p: int = 2, *, dt=None, complex_=False, with_d=True):
    def draw(*shape):
        x = rng.standard_normal(shape)
        return x + 1j * rng.standard_normal(shape) if complex_ else x

    A = draw(n, n) / np.sqrt(n)
    ev = spla.eigvals(A)
    A = A * (0.8 / np.max(np.abs(ev))) if dt is not None else A - (np.max(ev.real) + 0.5) * np.eye(n)
    return StateSpace(A, draw(n, m), draw(p, n), draw(p, m) if with_d else None, dt=dt)


def _power(A: np.ndarray, k: int) -> np.ndarray:
    out = np.eye(A.shape[0], dtype=A.dtype)
    for _ in range(k):
        out = out @ A
    return out


def _tf(sys: StateSpace, s: complex) -> np.ndarray:
    """Direct formula C (sI - A)^{-1} B + D (dense solve), independent of the Schur-based evaluation."""
    n = sys.n_states
    return sys.C @ spla.solve(s * np.eye(n) - sys.A, sys.B) + sys.D


# ---------------------------------------------------------------------------------------- dtypes
@pytest.mark.parametrize(
    ("dtypes", "expected"),
    [
        ((np.int64, np.int64, np.int64, np.int64), np.float64),
        ((np.float32, np.float32, np.float32, np.float32), np.float64),
        ((np.float64, np.float16, np.int32, np.float64), np.float64),
        ((np.float64, np.float64, np.float64, np.complex64), np.complex128),
        ((np.complex64, np.float32, np.float32, np.float32), np.complex128),
        ((np.float64, np.complex128, np.float64, np.float64), np.complex128),
    ],
)
def test_dtype_promotion(dtypes, expected):
    A = np.array([[-1, 0], [1, -2]], dtype=dtypes[0])
    B = np.array([[1], [2]], dtype=dtypes[1])
    C = np.array([[3, 4]], dtype=dtypes[2])
    D = np.array([[5]], dtype=dtypes[3])
    sys = StateSpace(A, B, C, D)
    for M in (sys.A, sys.B, sys.C, sys.D):
        assert M.dtype == expected
    assert sys.dtype == expected
    assert sys.is_complex == (expected == np.complex128)
    np.testing.assert_allclose(sys.C, [[3.0, 4.0]], rtol=0, atol=0)


def test_python_lists_and_scalars():
    sys = StateSpace([[-1]], [[2]], [[3]], 4)
    assert sys.A.dtype == np.float64
    np.testing.assert_allclose(sys.D, [[4.0]], rtol=0, atol=0)
    siso = StateSpace(-1.0, 1.0, 1.0)
    assert (siso.n_states, siso.n_inputs, siso.n_outputs) == (1, 1, 1)


def test_dims_and_flags(rng):
    sys = _sys(rng, 4, 2, 3, dt=0.5)
    assert (sys.n_states, sys.n_inputs, sys.n_outputs) == (4, 2, 3)
    assert sys.is_discrete
    assert sys.dt == 0.5
    assert not _sys(rng, 2, 1, 1).is_discrete
    assert _sys(rng, 2, 1, 1, dt=1).dt == 1.0
    assert isinstance(_sys(rng, 2, 1, 1, dt=1).dt, float)


# ---------------------------------------------------------------------------------------- immutability
def test_arrays_read_only_and_copied():
    A = np.array([[-1.0, 0.5], [0.0, -2.0]])
    B = np.array([[1.0], [0.0]])
    sys = StateSpace(A, B, [[1.0, 1.0]])
    A[0, 0] = 100.0  # the caller's array is not aliased
    np.testing.assert_allclose(sys.A[0, 0], -1.0, rtol=0, atol=0)
    for M in (sys.A, sys.B, sys.C, sys.D):
        assert not M.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            M[0, 0] = 1.0


def test_frozen_dataclass():
    sys = StateSpace([[-1.0]], [[1.0]], [[1.0]])
    with pytest.raises(dataclasses.FrozenInstanceError):
        sys.A = np.array([[-2.0]])  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        sys.dt = 1.0  # type: ignore[misc]


def test_with_replaces_and_validates():
    sys = StateSpace([[-1.0]], [[1.0]], [[1.0]])
    new = sys.with_(D=[[3.0]], dt=0.5)
    np.testing.assert_allclose(new.D, [[3.0]], rtol=0, atol=0)
    assert new.dt == 0.5
    np.testing.assert_allclose(sys.D, [[0.0]], rtol=0, atol=0)  # original untouched
    assert sys.dt is None
    assert not new.D.flags.writeable
    assert sys.with_(A=[[-2.0 + 1j]]).is_complex
    with pytest.raises(DimensionError, match="B must have shape"):
        sys.with_(B=np.ones((2, 1)))
    with pytest.raises(TypeError, match="unknown field"):
        sys.with_(E=1.0)


# ---------------------------------------------------------------------------------------- D = None
def test_d_none_is_zero(rng):
    sys = _sys(rng, 3, 2, 4, with_d=False)
    assert sys.D.shape == (4, 2)
    np.testing.assert_allclose(sys.D, 0.0, rtol=0, atol=0)
    assert not sys.D.flags.writeable
    # a zero scalar D broadcasts to the right shape
    sys0 = StateSpace(sys.A, sys.B, sys.C, 0.0)
    np.testing.assert_allclose(sys0.D, np.zeros((4, 2)), rtol=0, atol=0)


# ---------------------------------------------------------------------------------------- poles
@pytest.mark.parametrize(
    ("A", "dt", "stable"),
    [
        ([[-1.0, 5.0], [0.0, -0.1]], None, True),
        ([[-1.0, 5.0], [0.0, 0.0]], None, False),  # marginal: eigenvalue on the imaginary axis
        ([[0.0, 1.0], [-1.0, 0.0]], None, False),  # undamped oscillator
        ([[-1e-3 + 2j]], None, True),
        ([[0.5, 10.0], [0.0, -0.99]], 1.0, True),
        ([[0.0, 1.0], [-1.0, 0.0]], 1.0, False),  # |λ| = 1
        ([[0.6 + 0.8j]], 0.1, False),  # |λ| = 1, complex
        ([[-1.5]], 1.0, False),
        ([[-0.5]], None, True),
        ([[-0.5]], 2.0, True),
    ],
)
def test_poles_and_stability(A, dt, stable):
    n = len(A)
    sys = StateSpace(A, np.ones((n, 1)), np.ones((1, n)), dt=dt)
    expected = spla.eigvals(np.asarray(A, dtype=complex))
    poles = sys.poles()
    # match each pole to the nearest reference eigenvalue (sorting complex numbers is fragile)
    nearest = expected[np.argmin(np.abs(poles[:, None] - expected[None, :]), axis=1)]
    np.testing.assert_allclose(poles, nearest, rtol=1e-14, atol=1e-14)
    assert sorted(np.argmin(np.abs(poles[:, None] - expected[None, :]), axis=1)) == list(range(n))
    assert sys.poles().dtype == np.complex128
    assert sys.is_stable() is stable


def test_poles_of_diagonal_exact():
    lam = np.array([-1.0 + 2.0j, -3.0, -0.5 - 1.0j])
    sys = StateSpace(np.diag(lam), np.ones((3, 1)), np.ones((1, 3)))
    np.testing.assert_allclose(sys.poles(), lam, rtol=0, atol=0)


# ---------------------------------------------------------------------------------------- evaluation
@pytest.mark.parametrize("dt", [None, 0.25])
@pytest.mark.parametrize("complex_", [False, True])
def test_frequency_response_shape_and_values(rng, dt, complex_):
    sys = _sys(rng, 4, 2, 3, dt=dt, complex_=complex_)
    omega = np.array([-2.0, -0.3, 0.0, 0.7, 5.0])
    H = sys.frequency_response(omega)
    assert H.shape == (len(omega), 3, 2)
    assert H.dtype == np.complex128
    for k, w in enumerate(omega):
        s = np.exp(1j * w * dt) if dt is not None else 1j * w
        np.testing.assert_allclose(H[k], _tf(sys, s), rtol=1e-12, atol=1e-13)
    # a scalar frequency gives a length-1 leading axis
    assert sys.frequency_response(0.5).shape == (1, 3, 2)


def test_frequency_response_diagonal_path_matches_dense(rng):
    lam = np.array([-1.0 + 1j, -0.2, -3.0 - 2j])
    B = rng.standard_normal((3, 2))
    C = rng.standard_normal((2, 3))
    diag = StateSpace(np.diag(lam), B, C)
    Q = spla.qr(rng.standard_normal((3, 3)))[0]
    dense = diag.similarity(Q)  # same transfer function, dense A
    omega = np.linspace(-4.0, 4.0, 9)
    np.testing.assert_allclose(diag.frequency_response(omega), dense.frequency_response(omega), rtol=1e-12, atol=1e-13)


def test_call_scalar_and_vector(rng):
    sys = _sys(rng, 3, 1, 2, dt=None)
    s = 0.3 + 0.4j
    np.testing.assert_allclose(sys(s), _tf(sys, s), rtol=1e-12, atol=1e-13)
    assert sys(s).shape == (2, 1)
    vals = sys(np.array([s, 2.0]))
    assert vals.shape == (2, 2, 1)
    np.testing.assert_allclose(vals[1], _tf(sys, 2.0), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("complex_", [False, True])
def test_impulse_response_markov_parameters(rng, complex_):
    sys = _sys(rng, 3, 2, 2, dt=0.1, complex_=complex_)
    h = sys.impulse_response(6)
    assert h.shape == (6, 2, 2)
    np.testing.assert_allclose(h[0], sys.D, rtol=0, atol=0)
    for k in range(1, 6):
        expected = sys.C @ _power(sys.A, k - 1) @ sys.B
        np.testing.assert_allclose(h[k], expected, rtol=1e-12, atol=1e-14)
    # Markov parameters are the Taylor coefficients of G(z) in 1/z: check G(z) for |z| large
    z = 7.0 + 1.0j
    series = sum(h[k] * z ** (-k) for k in range(6))
    np.testing.assert_allclose(series, sys(z), rtol=0, atol=1e-4 * np.max(np.abs(h)))


def test_impulse_response_continuous_not_implemented():
    sys = StateSpace([[-1.0]], [[1.0]], [[1.0]])
    with pytest.raises(NotImplementedError, match="continuous"):
        sys.impulse_response(3)


@pytest.mark.parametrize("steps", [0, -1, 2.5, True])
def test_impulse_response_steps_validated(steps):
    sys = StateSpace([[0.5]], [[1.0]], [[1.0]], dt=1.0)
    with pytest.raises(ValueError, match="steps"):
        sys.impulse_response(steps)


# ---------------------------------------------------------------------------------------- transformations
@pytest.mark.parametrize("dt", [None, 1.0])
@pytest.mark.parametrize("complex_", [False, True])
def test_similarity_preserves_transfer_function(rng, dt, complex_):
    sys = _sys(rng, 4, 2, 3, dt=dt, complex_=complex_)
    T = rng.standard_normal((4, 4)) + 3.0 * np.eye(4)
    if complex_:
        T = T + 1j * rng.standard_normal((4, 4))
    sim = sys.similarity(T)
    Ti = spla.inv(T)
    np.testing.assert_allclose(sim.A, Ti @ sys.A @ T, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sim.B, Ti @ sys.B, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sim.C, sys.C @ T, rtol=1e-12, atol=1e-13)
    omega = np.array([-1.0, 0.0, 0.5, 2.0])
    np.testing.assert_allclose(sim.frequency_response(omega), sys.frequency_response(omega), rtol=1e-10, atol=1e-12)
    assert sim.dt == sys.dt


def test_similarity_rejects_bad_T():
    sys = StateSpace(np.diag([-1.0, -2.0]), np.ones((2, 1)), np.ones((1, 2)))
    with pytest.raises(DimensionError, match="T must have shape"):
        sys.similarity(np.eye(3))
    with pytest.raises(ValueError, match="T is singular"):
        sys.similarity(np.zeros((2, 2)))


@pytest.mark.parametrize("dt", [None, 0.5])
@pytest.mark.parametrize("complex_", [False, True])
def test_dual_is_transpose_transfer_function(rng, dt, complex_):
    sys = _sys(rng, 3, 2, 4, dt=dt, complex_=complex_)
    d = sys.dual()
    assert (d.n_inputs, d.n_outputs, d.dt) == (4, 2, dt)
    omega = np.array([-1.3, 0.0, 0.4])
    G = sys.frequency_response(omega)
    Gd = d.frequency_response(omega)
    np.testing.assert_allclose(Gd, np.swapaxes(G, 1, 2), rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("dt", [None, 0.5])
def test_to_real(rng, dt):
    sys = _sys(rng, 3, 2, 2, dt=dt, complex_=True)
    r = sys.to_real()
    assert (r.n_states, r.n_inputs, r.n_outputs) == (6, 2, 2)
    assert not r.is_complex
    assert r.dt == dt
    # real-output transfer function: (G(s) + conj(G(conj s))) / 2
    for s in (0.3j, 1.7j, 0.2 + 0.9j):
        z = np.exp(s * dt) if dt is not None else s
        expected = 0.5 * (sys(z) + np.conj(sys(np.conj(z))))
        np.testing.assert_allclose(r(z), expected, rtol=1e-11, atol=1e-13)
    # conjugate-augmented form of SPEC §3 has the same transfer function
    A, B, C = sys.A, sys.B, sys.C
    aug = StateSpace(
        spla.block_diag(A, A.conj()), np.vstack([B, B.conj()]), 0.5 * np.hstack([C, C.conj()]), sys.D.real, dt=dt
    )
    omega = np.array([-2.0, 0.0, 0.5])
    np.testing.assert_allclose(r.frequency_response(omega), aug.frequency_response(omega), rtol=1e-11, atol=1e-13)


def test_to_real_of_real_system_is_identity(rng):
    sys = _sys(rng, 3, 1, 1)
    assert sys.to_real() is sys


# ---------------------------------------------------------------------------------------- arithmetic
@pytest.mark.parametrize("dt", [None, 0.2])
def test_subtraction_and_addition(rng, dt):
    a = _sys(rng, 3, 2, 2, dt=dt)
    b = _sys(rng, 2, 2, 2, dt=dt, complex_=True)
    diff = a - b
    total = a + b
    assert diff.n_states == 5
    assert diff.is_complex
    omega = np.array([-0.7, 0.0, 1.1])
    Ga, Gb = a.frequency_response(omega), b.frequency_response(omega)
    np.testing.assert_allclose(diff.frequency_response(omega), Ga - Gb, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(total.frequency_response(omega), Ga + Gb, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose((-a).frequency_response(omega), -Ga, rtol=0, atol=0)
    # G - G is zero
    np.testing.assert_allclose((a - a).frequency_response(omega), 0.0, rtol=0, atol=1e-13)


def test_subtraction_checks_compatibility(rng):
    a = _sys(rng, 2, 2, 2)
    with pytest.raises(ValueError, match="different time bases"):
        a - a.with_(dt=1.0, A=a.A * 0.0)
    with pytest.raises(DimensionError, match="different I/O sizes"):
        a - _sys(rng, 2, 1, 2)
    with pytest.raises(TypeError, match="cannot subtract"):
        a - 1.0


# ---------------------------------------------------------------------------------------- repr
def test_repr():
    ct = StateSpace(np.diag([-1.0, -2.0]), np.ones((2, 3)), np.ones((1, 2)))
    dt = StateSpace([[0.5j]], [[1.0]], [[1.0]], dt=0.1)
    assert repr(ct) == "StateSpace(n_states=2, n_inputs=3, n_outputs=1, continuous, dtype=float64)"
    assert repr(dt) == "StateSpace(n_states=1, n_inputs=1, n_outputs=1, discrete, dt=0.1, dtype=complex128)"


# ---------------------------------------------------------------------------------------- conversions
@pytest.mark.parametrize("dt", [None, 0.1])
def test_scipy_roundtrip(rng, dt):
    sys = _sys(rng, 3, 2, 2, dt=dt)
    sc = sys.to_scipy()
    assert isinstance(sc, sig.StateSpace)
    assert (sc.dt == dt) if dt is not None else (sc.dt is None)
    back = StateSpace.from_scipy(sc)
    assert back.dt == dt
    for name in "ABCD":
        np.testing.assert_allclose(getattr(back, name), getattr(sys, name), rtol=0, atol=0)


def test_from_scipy_transfer_function_and_dt_handling():
    tf = sig.TransferFunction([1.0], [1.0, 1.0])
    sys = StateSpace.from_scipy(tf)
    np.testing.assert_allclose(sys(0.0), [[1.0]], rtol=1e-14, atol=0)
    np.testing.assert_allclose(sys(1.0j), [[1.0 / (1.0 + 1.0j)]], rtol=1e-14, atol=0)
    dtf = sig.dlti([0.5], [1.0, -0.5], dt=0.2)
    dsys = StateSpace.from_scipy(dtf)
    assert dsys.dt == 0.2
    np.testing.assert_allclose(dsys(1.0), [[1.0]], rtol=1e-14, atol=0)
    with pytest.raises(ValueError, match="disagrees"):
        StateSpace.from_scipy(dtf, dt=0.3)
    with pytest.raises(TypeError, match="scipy.signal"):
        StateSpace.from_scipy("not a system")


@pytest.mark.slycot
@pytest.mark.parametrize("dt", [None, 0.1])
def test_control_roundtrip(rng, dt):
    import control

    sys = _sys(rng, 3, 2, 2, dt=dt)
    c = sys.to_control()
    assert isinstance(c, control.StateSpace)
    assert c.dt == (0 if dt is None else dt)
    back = StateSpace.from_control(c)
    assert back.dt == dt
    for name in "ABCD":
        np.testing.assert_allclose(getattr(back, name), getattr(sys, name), rtol=0, atol=0)
    omega = np.array([0.1, 1.0])
    resp = control.frequency_response(c, omega)
    np.testing.assert_allclose(
        np.moveaxis(np.asarray(resp.complex), -1, 0), sys.frequency_response(omega), rtol=1e-10, atol=1e-12
    )


@pytest.mark.slycot
def test_control_rejects_complex_and_dt_true():
    import control

    with pytest.raises(TypeError, match="to_real"):
        StateSpace([[-1.0 + 1j]], [[1.0]], [[1.0]]).to_control()
    with pytest.raises(ValueError, match="dt=True"):
        StateSpace.from_control(control.ss([[0.5]], [[1.0]], [[1.0]], [[0.0]], True))
    with pytest.raises(TypeError, match="control.StateSpace"):
        StateSpace.from_control(object())
