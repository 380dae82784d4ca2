"""Hypothesis properties of Gramians, HSVs, balanced truncation and SPA (real/complex, CT/DT, MIMO).

Systems come from :mod:`strategies` (derandomized ``ci`` profile); a falsifying example prints the
exact ``make_system(...)`` call that rebuilds it. Tolerances are relative to the natural scale of each
quantity: ``σ₁`` for HSVs, and for transfer-function values ``σ₁ + ‖D‖₂``, a cheap measure of the
size of G that does not depend on the H∞ code under test (``σ₁ ≤ ‖G‖∞ ≤ ‖D‖₂ + 2nσ₁``).

The BT/SPA bound properties use orders ``r < n`` with a clear gap ``σ_r − σ_{r+1} > 1e-6 σ_r`` (no
AccuracyWarning, stability guaranteed) and ``σ_{r+1} > 1e-7 σ₁`` (the error is far above the rounding
floor of the realization ``G − G_r``); ``r = n`` is tested separately on the transfer function.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as spla
from hypothesis import assume, given, note
from hypothesis import strategies as st
from strategies import diagonal_systems, make_system, seeds, systems, well_conditioned

import ssmred
from ssmred import StateSpace

TIME_AND_FIELD = pytest.mark.parametrize(
    ("discrete", "complex_"),
    [(False, False), (False, True), (True, False), (True, True)],
    ids=["ct-real", "ct-complex", "dt-real", "dt-complex"],
)

# relative gap below which BT warns (σ_r ≈ σ_{r+1}); we stay well clear of it
_GAP = 1e-6
# smallest σ_{r+1}/σ_1 for which the measured H∞ error is far above the rounding floor of ‖G - G_r‖
_FLOOR = 1e-7


def _scale(sys: StateSpace, hsv: np.ndarray) -> float:
    """σ₁ + ‖D‖₂, the size of G: σ₁ ≤ ‖G‖∞ ≤ ‖D‖₂ + 2 Σσ ≤ ‖D‖₂ + 2nσ₁."""
    return float(hsv[0] + spla.svdvals(sys.D)[0])


def _orders(hsv: np.ndarray, rank: int) -> list[int]:
    """Orders r < n where truncation is well defined and the error is measurable."""
    s = hsv
    return [
        r for r in range(1, min(rank, s.size - 1) + 1) if s[r - 1] - s[r] > _GAP * s[r - 1] and s[r] > _FLOOR * s[0]
    ]


def _frequencies(sys: StateSpace) -> np.ndarray:
    theta = np.array([-3.0, -1.0, -0.3, 0.0, 0.2, 0.9, 2.5])
    return theta / sys.dt if sys.is_discrete else theta


def _dc_point(sys: StateSpace) -> float:
    return 1.0 if sys.is_discrete else 0.0


# ---------------------------------------------------------------------------------------- BT bounds
@TIME_AND_FIELD
@given(data=st.data())
def test_bt_error_within_bounds(discrete, complex_, data):
    sys = data.draw(systems(n=(2, 8), discrete=discrete, complex_=complex_))
    bt = ssmred.BalancedTruncation(sys)
    s = np.asarray(bt.hsv)
    orders = _orders(s, bt.numerical_rank())
    assume(orders)
    r = data.draw(st.sampled_from(orders), label="r")
    for method in ("sr", "bfsr"):
        res = bt.reduce(r, method=method)
        note(f"method={method}, r={r}, hsv={s!r}")
        assert res.r == r
        assert res.reduced.n_states == r
        assert res.reduced.dt == sys.dt
        assert res.reduced.is_complex == sys.is_complex
        np.testing.assert_allclose(res.error_bound, 2.0 * np.sum(s[r:]), rtol=1e-13, atol=0)
        np.testing.assert_allclose(res.hsv, s, rtol=0, atol=0)
        np.testing.assert_allclose(res.reduced.D, sys.D, rtol=0, atol=0)
        # oblique projection: Ti T = I_r (rounding grows like σ_1/σ_r for the SR scaling)
        np.testing.assert_allclose(res.Ti @ res.T, np.eye(r), rtol=0, atol=1e-11 * s[0] / s[r - 1])
        assert res.reduced.is_stable(), f"reduced poles {res.reduced.poles()}"
        err = ssmred.hinf_norm(sys - res.reduced)
        note(f"measured H-inf error {err!r}, bound {res.error_bound!r}, sigma_(r+1) {s[r]!r}")
        assert err <= res.error_bound * (1.0 + 1e-8) + 1e-12 * _scale(sys, s)
        assert err >= s[r] * (1.0 - 1e-6)


@TIME_AND_FIELD
@given(data=st.data())
def test_spa_preserves_dc_gain_and_bound(discrete, complex_, data):
    sys = data.draw(systems(n=(2, 8), discrete=discrete, complex_=complex_))
    bt = ssmred.BalancedTruncation(sys)
    s = np.asarray(bt.hsv)
    orders = _orders(s, bt.numerical_rank())
    assume(orders)
    r = data.draw(st.sampled_from(orders), label="r")
    res = ssmred.singular_perturbation(sys, r)
    note(f"r={r}, hsv={s!r}")
    assert res.r == r
    assert res.reduced.n_states == r
    assert res.reduced.dt == sys.dt
    np.testing.assert_allclose(res.error_bound, 2.0 * np.sum(s[r:]), rtol=1e-13, atol=0)
    assert res.reduced.is_stable(), f"reduced poles {res.reduced.poles()}"
    z = _dc_point(sys)
    np.testing.assert_allclose(res.reduced(z), sys(z), rtol=1e-8, atol=1e-9 * _scale(sys, s))
    err = ssmred.hinf_norm(sys - res.reduced)
    note(f"measured H-inf error {err!r}, bound {res.error_bound!r}")
    assert err <= res.error_bound * (1.0 + 1e-8) + 1e-12 * _scale(sys, s)
    assert err >= s[r] * (1.0 - 1e-6)


@TIME_AND_FIELD
@given(data=st.data())
def test_full_order_reproduces_transfer_function(discrete, complex_, data):
    sys = data.draw(systems(discrete=discrete, complex_=complex_))
    bt = ssmred.BalancedTruncation(sys)
    s = np.asarray(bt.hsv)
    n = sys.n_states
    omega = _frequencies(sys)
    G = sys.frequency_response(omega)
    for method in ("sr", "bfsr"):
        if bt.numerical_rank() < n:
            # a numerically non-minimal system cannot be balanced at full order: a clear error instead
            with pytest.raises(ValueError, match=r"r=\d+ exceeds the numerical rank"):
                bt.reduce(n, method=method)
            continue
        res = bt.reduce(n, method=method)
        assert res.reduced.n_states == n
        assert res.error_bound == 0.0
        np.testing.assert_allclose(res.reduced.frequency_response(omega), G, rtol=1e-8, atol=1e-9 * _scale(sys, s))


# ---------------------------------------------------------------------------------------- HSV invariances
@TIME_AND_FIELD
@given(data=st.data(), t_seed=seeds)
def test_hsv_invariant_under_similarity(discrete, complex_, data, t_seed):
    sys = data.draw(systems(discrete=discrete, complex_=complex_))
    s = ssmred.hankel_singular_values(sys)
    assert s.dtype == np.float64
    assert np.all(np.isfinite(s))
    assert np.all(s >= 0.0)
    assert np.all(np.diff(s) <= 0.0)
    complex_T = complex_ or bool(t_seed % 2)  # complex coordinates for real systems too
    T = well_conditioned(np.random.default_rng(t_seed), sys.n_states, complex_T, cond=10.0)
    s_T = ssmred.hankel_singular_values(sys.similarity(T))
    np.testing.assert_allclose(s_T, s, rtol=1e-7, atol=1e-8 * s[0])


@TIME_AND_FIELD
@given(data=st.data())
def test_dual_has_same_hsv(discrete, complex_, data):
    sys = data.draw(systems(discrete=discrete, complex_=complex_))
    s = ssmred.hankel_singular_values(sys)
    s_d = ssmred.hankel_singular_values(sys.dual())
    np.testing.assert_allclose(s_d, s, rtol=1e-7, atol=1e-8 * s[0])
    # conjugating every matrix does not change the HSVs either
    conj = StateSpace(sys.A.conj(), sys.B.conj(), sys.C.conj(), sys.D.conj(), dt=sys.dt)
    np.testing.assert_allclose(ssmred.hankel_singular_values(conj), s, rtol=1e-7, atol=1e-8 * s[0])


# ---------------------------------------------------------------------------------------- real output
def _simulate(sys: StateSpace, u: np.ndarray) -> np.ndarray:
    """Discrete-time simulation from x_0 = 0: y_k = C x_k + D u_k (complex arithmetic kept)."""
    x = np.zeros(sys.n_states, dtype=np.result_type(sys.A, u))
    ys = []
    for uk in u:
        ys.append(sys.C @ x + sys.D @ uk)
        x = sys.A @ x + sys.B @ uk
    return np.array(ys)


@given(sys=systems(discrete=True, complex_=True), u_seed=seeds)
def test_to_real_matches_real_output_simulation(sys, u_seed):
    real = sys.to_real()
    assert real.n_states == 2 * sys.n_states
    assert not real.is_complex
    u = np.random.default_rng(u_seed).standard_normal((40, sys.n_inputs))  # a real input sequence
    y_complex = _simulate(sys, u)
    y_real = _simulate(real, u)
    assert not np.iscomplexobj(y_real)
    s = ssmred.hankel_singular_values(sys)
    scale = _scale(sys, s) * np.max(np.abs(u)) * sys.n_inputs
    np.testing.assert_allclose(y_real, y_complex.real, rtol=1e-10, atol=1e-11 * scale)
    # impulse responses (Markov parameters) of the real realization are Re of the complex ones
    np.testing.assert_allclose(
        real.impulse_response(25), sys.impulse_response(25).real, rtol=1e-10, atol=1e-11 * _scale(sys, s)
    )


@given(sys=systems(complex_=True))
def test_to_real_transfer_function(sys):
    """Re-output transfer function: G_re(s) = (G(s) + conj(G(conj s))) / 2, also off the axis."""
    real = sys.to_real()
    s = ssmred.hankel_singular_values(sys)
    points = 1j * _frequencies(sys) + (0.05 if not sys.is_discrete else 0.0)
    if sys.is_discrete:
        points = np.exp(points * sys.dt) * 1.05  # outside the unit disc, off the circle
    expected = 0.5 * (sys(points) + np.conj(sys(np.conj(points))))
    np.testing.assert_allclose(real(points), expected, rtol=1e-9, atol=1e-10 * _scale(sys, s))


@given(sys=systems(discrete=False, complex_=True), u_seed=seeds)
def test_to_real_continuous_via_exact_sampling(sys, u_seed):
    """CT: exact ZOH sampling commutes with realification, so sampled simulations agree."""
    h = 0.05

    def zoh(g: StateSpace) -> StateSpace:
        n, m = g.n_states, g.n_inputs
        M = np.zeros((n + m, n + m), dtype=g.dtype)
        M[:n, :n], M[:n, n:] = g.A, g.B
        E = spla.expm(M * h)
        return StateSpace(E[:n, :n], E[:n, n:], g.C, g.D, dt=h)

    u = np.random.default_rng(u_seed).standard_normal((30, sys.n_inputs))
    y_complex = _simulate(zoh(sys), u)
    y_real = _simulate(zoh(sys.to_real()), u)
    s = ssmred.hankel_singular_values(sys)
    scale = _scale(sys, s) * sys.n_inputs
    np.testing.assert_allclose(y_real, y_complex.real, rtol=1e-9, atol=1e-10 * scale)


# ---------------------------------------------------------------------------------------- Gramians
def _residuals(sys: StateSpace, P: np.ndarray, Q: np.ndarray) -> tuple[float, float]:
    A, B, C = sys.A, sys.B, sys.C
    Ah = A.conj().T
    nA, nP, nQ = spla.norm(A), spla.norm(P), spla.norm(Q)
    nB2, nC2 = spla.norm(B) ** 2, spla.norm(C) ** 2
    if sys.is_discrete:
        RP = A @ P @ Ah - P + B @ B.conj().T
        RQ = Ah @ Q @ A - Q + C.conj().T @ C
        return spla.norm(RP) / (nA**2 * nP + nP + nB2), spla.norm(RQ) / (nA**2 * nQ + nQ + nC2)
    RP = A @ P + P @ Ah + B @ B.conj().T
    RQ = Ah @ Q + Q @ A + C.conj().T @ C
    return spla.norm(RP) / (2 * nA * nP + nB2), spla.norm(RQ) / (2 * nA * nQ + nC2)


@TIME_AND_FIELD
@given(data=st.data())
def test_gramian_residuals(discrete, complex_, data):
    sys = data.draw(systems(discrete=discrete, complex_=complex_))
    methods = ["auto", "scipy"] + (["diagonal"] if np.count_nonzero(sys.A - np.diag(np.diag(sys.A))) == 0 else [])
    for method in methods:
        P = ssmred.controllability_gramian(sys, method=method)
        Q = ssmred.observability_gramian(sys, method=method)
        assert P.shape == Q.shape == (sys.n_states, sys.n_states)
        assert np.iscomplexobj(P) == sys.is_complex
        np.testing.assert_allclose(P, P.conj().T, rtol=0, atol=1e-14 * spla.norm(P))
        np.testing.assert_allclose(Q, Q.conj().T, rtol=0, atol=1e-14 * spla.norm(Q))
        assert spla.eigvalsh(P)[0] >= -1e-12 * spla.norm(P)
        assert spla.eigvalsh(Q)[0] >= -1e-12 * spla.norm(Q)
        res_P, res_Q = _residuals(sys, P, Q)
        note(f"method={method}: relative residuals {res_P:.3e}, {res_Q:.3e}")
        assert res_P < 1e-10
        assert res_Q < 1e-10
        Lc, Lo = ssmred.gramian_factors(sys, method=method)
        np.testing.assert_allclose(Lc @ Lc.conj().T, P, rtol=0, atol=1e-12 * spla.norm(P))
        np.testing.assert_allclose(Lo @ Lo.conj().T, Q, rtol=0, atol=1e-12 * spla.norm(Q))


@pytest.mark.parametrize("discrete", [False, True], ids=["ct", "dt"])
@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
@given(data=st.data())
def test_gramians_match_scipy_solvers(discrete, complex_, data):
    """Against scipy's (complex-correct) Lyapunov/Stein solvers on moderately conditioned systems."""
    sys = data.draw(systems(discrete=discrete, complex_=complex_, kinds=("dense", "diagonal")))
    A, B, C = sys.A, sys.B, sys.C
    if discrete:
        P_ref = spla.solve_discrete_lyapunov(A, B @ B.conj().T)
        Q_ref = spla.solve_discrete_lyapunov(A.conj().T, C.conj().T @ C)
    else:
        P_ref = spla.solve_continuous_lyapunov(A, -B @ B.conj().T)
        Q_ref = spla.solve_continuous_lyapunov(A.conj().T, -C.conj().T @ C)
    P = ssmred.controllability_gramian(sys)
    Q = ssmred.observability_gramian(sys)
    np.testing.assert_allclose(P, P_ref, rtol=0, atol=1e-9 * spla.norm(P_ref))
    np.testing.assert_allclose(Q, Q_ref, rtol=0, atol=1e-9 * spla.norm(Q_ref))


# ---------------------------------------------------------------------------------------- diagonal closed form
@TIME_AND_FIELD
@given(data=st.data())
def test_diagonal_closed_form_equals_dense(discrete, complex_, data):
    sys = data.draw(diagonal_systems(discrete=discrete, complex_=complex_))
    for getter in (ssmred.controllability_gramian, ssmred.observability_gramian):
        G_diag = getter(sys, method="diagonal")
        G_dense = getter(sys, method="scipy")
        assert G_diag.dtype == G_dense.dtype
        np.testing.assert_allclose(G_diag, G_dense, rtol=0, atol=1e-10 * spla.norm(G_dense))
    s_diag = ssmred.hankel_singular_values(sys, method="diagonal")
    s_dense = ssmred.hankel_singular_values(sys, method="scipy")
    np.testing.assert_allclose(s_diag, s_dense, rtol=1e-7, atol=1e-9 * s_dense[0])
    s_batch = ssmred.hsv_diagonal(np.diag(sys.A), sys.B, sys.C, dt=sys.dt)
    np.testing.assert_allclose(s_batch, s_dense, rtol=1e-7, atol=1e-9 * s_dense[0])
    P, Q = ssmred.diagonal_gramians(np.diag(sys.A), sys.B, sys.C, dt=sys.dt)
    np.testing.assert_allclose(
        P, ssmred.controllability_gramian(sys, method="scipy"), rtol=0, atol=1e-10 * spla.norm(P)
    )
    np.testing.assert_allclose(Q, ssmred.observability_gramian(sys, method="scipy"), rtol=0, atol=1e-10 * spla.norm(Q))


@pytest.mark.parametrize("discrete", [False, True], ids=["ct", "dt"])
@given(
    seed_list=st.lists(seeds, min_size=1, max_size=4),
    n=st.integers(1, 6),
    m=st.integers(1, 3),
    p=st.integers(1, 3),
    complex_=st.booleans(),
    outer=st.sampled_from([(), (1,), (2,)]),
)
def test_hsv_diagonal_batched_equals_per_system(discrete, seed_list, n, m, p, complex_, outer):
    dt = 1.0 if discrete else None
    batch = [make_system(sd, n, m, p, dt=dt, complex_=complex_, kind="diagonal") for sd in seed_list]
    lam = np.stack([np.diag(g.A) for g in batch])
    B = np.stack([g.B for g in batch])
    C = np.stack([g.C for g in batch])
    if outer:  # extra leading batch dimension (repeat the stack)
        lam, B, C = (np.stack([x] * outer[0]) for x in (lam, B, C))
    s = ssmred.hsv_diagonal(lam, B, C, dt=dt)
    assert s.shape == lam.shape
    assert s.dtype == np.float64
    flat = s.reshape(-1, n)
    for i, row in enumerate(flat):
        g = batch[i % len(batch)]
        single = ssmred.hsv_diagonal(np.diag(g.A), g.B, g.C, dt=dt)
        np.testing.assert_allclose(row, single, rtol=1e-13, atol=1e-15 * single[0])
        dense = ssmred.hankel_singular_values(g, method="scipy")
        np.testing.assert_allclose(row, dense, rtol=1e-7, atol=1e-9 * dense[0])
