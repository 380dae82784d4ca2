"""The bilinear transform z = (1+s)/(1−s) preserves Gramians, hence HSVs, between DT and CT.

Map (``ssmred.norms.bilinear_to_continuous``): A_c = (A+I)⁻¹(A−I), B_c = √2 (A+I)⁻¹B,
C_c = √2 C(A+I)⁻¹, D_c = D − C(A+I)⁻¹B, so that G_c(s) = G_d((1+s)/(1−s)).

Statements:

1. For every n (noncommutative symbols, so the matrix size is arbitrary):
   (A+I) [A_c P + P A_cᴴ + B_c B_cᴴ] (A+I)ᴴ = 2 (A P Aᴴ − P + B Bᴴ) and
   (A+I)ᴴ [A_cᴴ Q + Q A_c + C_cᴴ C_c] (A+I) = 2 (Aᴴ Q A − Q + Cᴴ C).
   So the DT Gramians solve the CT equations: P_c = P_d, Q_c = Q_d, equal HSVs.
2. Stability is preserved: Re((λ−1)/(λ+1)) = (|λ|² − 1)/|λ+1|², negative iff |λ| < 1.
3. n = 1 and n = 2 explicitly (complex entries): the DT closed-form Gramian solves the CT equation of
   the transformed system.
4. Numerically: ``bilinear_to_continuous`` and the exact Tustin map (any dt, which only rescales
   frequency) preserve HSVs and the H∞ norm (used by ``ssmred.hinf_norm``).
5. The S4/S5 bilinear convention of ``ssmred.discretize(..., method="bilinear")`` (C_d = C, D_d = D) is
   *not* the exact Tustin transfer function: (I − hA)(zI − A_d) = h(z+1)(sI − A) with h = dt/2, so
   G_d(z) = (2/(z+1))(G_c(s) − D) + D = (1 − h s)(G_c(s) − D) + D. Its HSVs differ from the CT ones
   (by O(dt)); HSV invariance must not be assumed for that convention.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from theory._common import Pairs, assert_zero, cmatrix, csym, hconj, run_module


def test_gramian_identity_any_n_noncommutative():
    """(A+I)[A_c P + P A_cᴴ + B_c B_cᴴ](A+I)ᴴ = 2(A P Aᴴ − P + B Bᴴ) for matrices of any size."""
    A, Ah, P, B, Bh, Q, C, Ch = sp.symbols("A Ah P B Bh Q C Ch", commutative=False)
    one = sp.Integer(1)
    # (A + I) A_c = A - I and A_c^H (A + I)^H = (A - I)^H by definition of A_c; (A+I) B_c = sqrt(2) B
    lhs_p = (A - one) * P * (Ah + one) + (A + one) * P * (Ah - one) + 2 * B * Bh
    assert sp.expand(lhs_p - 2 * (A * P * Ah - P + B * Bh)) == 0
    # observability: A_c (A+I) = A - I because (A+I)^{-1} and (A-I) commute (both functions of A)
    lhs_q = (Ah + one) * Q * (A - one) + (Ah - one) * Q * (A + one) + 2 * Ch * C
    assert sp.expand(lhs_q - 2 * (Ah * Q * A - Q + Ch * C)) == 0


def test_stability_is_preserved():
    """Re((λ−1)/(λ+1)) = (|λ|² − 1)/|λ+1|²: CT-stable exactly when DT-stable."""
    x, y = sp.symbols("x y", real=True)
    lam = x + sp.I * y
    mu = (lam - 1) / (lam + 1)
    assert sp.simplify(sp.re(mu) - (x**2 + y**2 - 1) / ((x + 1) ** 2 + y**2)) == 0


def test_explicit_n1_and_n2():
    """n = 1 (complex scalars) and n = 2 (complex 2×2 A, B): the DT Gramian solves the transformed CT equation."""
    pairs = Pairs()
    a, ac = csym("a", pairs)
    b, bc_ = csym("b", pairs)
    P = b * bc_ / (1 - a * ac)  # DT closed form, n = 1
    a_ct, a_ct_c = (a - 1) / (a + 1), (ac - 1) / (ac + 1)
    b_ct, b_ct_c = sp.sqrt(2) * b / (a + 1), sp.sqrt(2) * bc_ / (ac + 1)
    assert_zero(a_ct * P + P * a_ct_c + b_ct * b_ct_c, "n = 1")
    # n = 2: residual identity with a general (not necessarily solving) P, then the DT equation gives zero
    A, _ = cmatrix("a", 2, 2, pairs)
    B, _ = cmatrix("b", 2, 1, pairs)
    X, _ = cmatrix("x", 2, 2, pairs)
    I2 = sp.eye(2)
    Minv = (A + I2).adjugate() / (A + I2).det()  # (A + I)^{-1}
    Ac = Minv * (A - I2)
    Bc = sp.sqrt(2) * Minv * B
    L = ((A + I2) * Ac).applyfunc(sp.cancel)  # = A - I
    K = ((A + I2) * Bc).applyfunc(sp.cancel)  # = sqrt(2) B
    assert_zero(L - (A - I2), "(A+I) A_c")
    assert_zero(K - sp.sqrt(2) * B, "(A+I) B_c")
    # (A+I)(A_c X + X A_c^H + B_c B_c^H)(A+I)^H = L X (A+I)^H + (A+I) X L^H + K K^H
    lhs = L * X * hconj(A + I2, pairs) + (A + I2) * X * hconj(L, pairs) + K * hconj(K, pairs)
    dt = A * X * hconj(A, pairs) - X + B * hconj(B, pairs)
    assert_zero(lhs - 2 * dt, "n = 2")


def test_s4_bilinear_convention_is_not_tustin():
    """S4/S5 bilinear (C_d = C): (I − hA)(zI − A_d) = h(z+1)(sI − A), so G_d(z) = (2/(z+1)) (G_c(s) − D) + D."""
    A, B, Ad, Bd = sp.symbols("A B A_d B_d", commutative=False)
    z, h = sp.symbols("z h")
    one = sp.Integer(1)
    s = (z - 1) / (h * (z + 1))
    # definitions: (I - hA) A_d = I + hA and (I - hA) B_d = 2h B
    lhs = (one - h * A) * z - (one + h * A)  # = (I - hA)(zI - A_d) after substituting the definition of A_d
    assert sp.cancel(h * (z + 1) * s - (z - 1)) == 0  # h (z+1) s = z - 1
    assert sp.expand(lhs - ((z - 1) * one - h * (z + 1) * A)) == 0  # = h (z+1) (sI - A)
    # hence (zI - A_d)^{-1} B_d = [(I - hA)(zI - A_d)]^{-1} 2hB = (2/(z+1)) (sI - A)^{-1} B


def _tustin(ct, dt):
    """Exact Tustin realization: G_d(z) = G_c((2/dt)(z-1)/(z+1)) (inverse of bilinear_to_continuous, rescaled)."""
    import scipy.linalg as spla

    from ssmred import StateSpace

    h = dt / 2.0
    A, B, C = h * ct.A, np.sqrt(h) * ct.B, np.sqrt(h) * ct.C
    I = np.eye(ct.n_states)
    lu = spla.lu_factor(I - A)
    X_B = spla.lu_solve(lu, B)
    CX = spla.solve((I - A).T, C.T).T  # C (I - A)^{-1}
    return StateSpace(spla.lu_solve(lu, I + A), np.sqrt(2) * X_B, np.sqrt(2) * CX, ct.D + C @ X_B, dt=dt)


def test_numeric_hsv_and_norm_invariance():
    """bilinear_to_continuous and exact Tustin keep HSVs and H∞; the S4-convention discretize does not."""
    from ssmred import discretize, hankel_singular_values, hinf_norm, random_stable
    from ssmred.norms import bilinear_to_continuous

    rng = np.random.default_rng(2)
    moved = 0
    for i in range(6):
        complex_ = bool(i % 2)
        d = random_stable(int(rng.integers(1, 7)), 2, 2, dt=0.5, complex_=complex_, rng=rng, with_d=True)
        c = bilinear_to_continuous(d)
        s_d, s_c = hankel_singular_values(d), hankel_singular_values(c)
        np.testing.assert_allclose(s_c, s_d, rtol=1e-9, atol=1e-12 * s_d[0])
        np.testing.assert_allclose(hinf_norm(c), hinf_norm(d), rtol=1e-8)
        ct = random_stable(int(rng.integers(1, 7)), 1, 2, complex_=complex_, rng=rng)
        s0 = hankel_singular_values(ct)
        for dt in (0.01, 0.3, 2.0):
            exact = _tustin(ct, dt)
            theta = np.linspace(-3.0, 3.0, 7)
            s_pts = (2.0 / dt) * np.tan(theta / 2.0)  # z = e^{i theta}  <->  s = i (2/dt) tan(theta/2)
            np.testing.assert_allclose(
                exact.frequency_response(theta / dt), ct(1j * s_pts), rtol=1e-9, atol=1e-12 * s0[0]
            )
            np.testing.assert_allclose(hankel_singular_values(exact), s0, rtol=1e-8, atol=1e-11 * s0[0])
            s4 = discretize(ct, dt, method="bilinear")
            z = np.exp(1j * theta)
            expected = (2.0 / (z + 1.0))[:, None, None] * (ct(1j * s_pts) - ct.D) + ct.D
            np.testing.assert_allclose(s4.frequency_response(theta / dt), expected, rtol=1e-9, atol=1e-12 * s0[0])
            moved += not np.allclose(hankel_singular_values(s4), s0, rtol=1e-6)
    assert moved > 0  # the S4 convention changes the HSVs (by O(dt))


if __name__ == "__main__":
    raise SystemExit(run_module(__name__))
