"""The balanced-truncation bound ‖G − G_r‖∞ ≤ 2 Σ_{i>r} σ_i for 1- and 2-state systems, symbolically.

Statements:

1. n = 1, r = 0 (CT, complex a = −α + iβ, b, c): σ = |b||c|/(2α) and ‖G‖∞ = |b||c|/α = 2σ — the bound
   is attained.
2. n = 1, r = 0 (DT, complex a = ρ e^{iφ}): σ = |b||c|/(1 − ρ²), ‖G‖∞ = |b||c|/(1 − ρ) and
   ‖G‖∞ / (2σ) = (1 + ρ)/2 ≤ 1.
3. n = 2, r = 1, CT, every real SISO system with distinct HSVs σ_1 > σ_2 > 0: by Ober's balanced
   canonical form it is (up to state signs, which commute with truncation) b_i > 0, c_i = s_i b_i,
   a_ij = −b_i b_j / (s_i s_j σ_i + σ_j) with signs s = (1, 1) or (1, −1) (the others are −G). For both
   sign patterns 4σ_2²|den(iω)|² − |num(iω)|² = 16 ω² σ_2⁴ (…)² ≥ 0: the bound holds, with equality at
   ω = 0 (the truncation error at DC is exactly ±2σ_2).
4. n = 2, r = 1, DT: the bilinear image z = (1+s)/(1−s) of the canonical form is a DT balanced
   realization with the same σ (Gramians are preserved, see test_bilinear) and covers every real SISO
   2-state DT system with σ_1 > σ_2. Sign pattern (1, 1): with σ_1 = σ_2 + d the polynomial
   4σ_2²|den|² − |num|² in x = tan²(ω/2) has only non-negative coefficients (182 monomials) — proven.
   Sign pattern (1, −1): the coefficients have mixed signs; the bound is certified exactly (Sturm
   root counting in rational arithmetic) on a grid of 18 rational parameter points and numerically by
   ``python -m theory.campaign`` — a general symbolic proof of this case is left open.

Justifies ``ssmred.bt_error_bounds`` / ``BTResult.error_bound`` (checked against ``balanced_truncation``
on instances of the canonical form).
"""

from __future__ import annotations

import itertools

import numpy as np
import sympy as sp

from theory._common import assert_nonnegative_factorization, assert_zero, run_module

S1, S2, B1, B2 = sp.symbols("sigma1 sigma2 b1 b2", positive=True)
OMEGA = sp.Symbol("omega", real=True)


def test_one_state_ct_complex():
    """CT, n = 1: σ = |b||c|/(2α) and sup_ω |G(iω)| = |b||c|/α = 2σ (bound attained at ω = β)."""
    alpha, bb, cc = sp.symbols("alpha bb cc", positive=True)  # bb = |b|, cc = |c|
    beta, w = sp.symbols("beta omega", real=True)
    a = -alpha + sp.I * beta
    P, Q = sp.symbols("P Q")
    P_sol = sp.solve(a * P + P * sp.conjugate(a) + bb**2, P)[0]
    Q_sol = sp.solve(sp.conjugate(a) * Q + Q * a + cc**2, Q)[0]
    sigma = sp.sqrt(P_sol * Q_sol)
    assert_zero(sigma - bb * cc / (2 * alpha), "sigma")
    den2 = sp.expand((sp.I * w - a) * sp.conjugate(sp.I * w - a))  # |iω - a|^2
    gap = (2 * sigma) ** 2 - bb**2 * cc**2 / den2  # (2σ)^2 - |G(iω)|^2
    num, den = sp.fraction(sp.factor(sp.together(gap)))
    v = sp.Symbol("v", real=True)  # v = ω - β
    num_v = sp.expand(num.subs(w, v + beta))
    assert_nonnegative_factorization(num_v, {alpha, bb, cc}, "CT n=1 numerator")
    assert_nonnegative_factorization(sp.expand(den.subs(w, v + beta)), {alpha, bb, cc, v}, "CT n=1 denominator")
    assert num_v.subs(v, 0) == 0  # equality at ω = β


def test_one_state_dt_complex():
    """DT, n = 1: σ = |b||c|/(1−ρ²), ‖G‖∞ = |b||c|/(1−ρ) = 2σ·(1+ρ)/2 ≤ 2σ."""
    rho, bb, cc, w = sp.symbols("rho bb cc w", positive=True)
    t = sp.Symbol("t", real=True)  # t = cos(ω − φ) in [-1, 1]
    P = bb**2 / (1 - rho**2)  # solves ρ² P − P + |b|² = 0
    assert_zero(rho**2 * P - P + bb**2, "Stein")
    sigma = bb * cc / (1 - rho**2)
    dist2 = 1 - 2 * rho * t + rho**2  # |e^{iω} − ρ e^{iφ}|^2
    # (2σ)^2 - |G|^2 >= 0  <=>  g(t) = 4 dist2 - (1 - ρ^2)^2 >= 0; g is decreasing in t, so t = 1 is worst
    g = sp.expand(4 * dist2 - (1 - rho**2) ** 2)
    assert sp.diff(g, t) == -8 * rho
    worst = sp.factor(g.subs(t, 1))
    assert_zero(worst - (1 - rho) ** 3 * (3 + rho), "worst case")
    # rho = 1/(1 + w), w > 0, covers 0 < rho < 1: the worst case is a positive rational function of w
    num, den = sp.fraction(sp.factor(sp.together(worst.subs(rho, 1 / (1 + w)))))
    assert_nonnegative_factorization(num, {w}, "DT n=1 numerator")
    assert_nonnegative_factorization(den, {w}, "DT n=1 denominator")
    # the peak |b||c|/(1 - rho) relative to 2 sigma
    assert_zero((bb * cc / (1 - rho)) / (2 * sigma) - (1 + rho) / 2, "ratio")


def ober_ct(signs):
    """Ober's balanced canonical form of a real SISO 2-state CT system with HSVs σ1, σ2."""
    sig, b = (S1, S2), (B1, B2)
    A = sp.Matrix(2, 2, lambda i, j: -b[i] * b[j] / (signs[i] * signs[j] * sig[i] + sig[j]))
    return A, sp.Matrix([B1, B2]), sp.Matrix([[signs[0] * B1, signs[1] * B2]])


def _gap_poly(num, den, var):
    """4σ2²|den(i var)|² − |num(i var)|² for real-coefficient polynomials num, den in s."""
    s = sp.Symbol("s")
    nw = sp.expand(num.subs(s, sp.I * var))
    dw = sp.expand(den.subs(s, sp.I * var))
    n2 = sp.expand(sp.re(nw) ** 2 + sp.im(nw) ** 2)
    d2 = sp.expand(sp.re(dw) ** 2 + sp.im(dw) ** 2)
    return sp.expand(4 * S2**2 * d2 - n2)


def test_two_state_ct_general():
    """CT, n = 2, r = 1, all real SISO systems (σ1 ≠ σ2): 4σ2²|den|² − |num|² = 16ω²σ2⁴(…)², equality at DC."""
    s = sp.Symbol("s")
    Sig = sp.diag(S1, S2)
    for signs in ((1, 1), (1, -1)):
        A, B, C = ober_ct(signs)
        assert_zero(A * Sig + Sig * A.T + B * B.T, "balanced (P)")
        assert_zero(A.T * Sig + Sig * A + C.T * C, "balanced (Q)")
        # stability: trace < 0 and det > 0
        assert_nonnegative_factorization(-A.trace(), {S1, S2, B1, B2}, "trace")
        assert_nonnegative_factorization(sp.factor(A.det()), {S1, S2, B1, B2}, "det")
        G = (C * (s * sp.eye(2) - A).adjugate() * B)[0] / (s * sp.eye(2) - A).det()
        G1 = C[0] * B[0] / (s - A[0, 0])
        num, den = sp.fraction(sp.factor(sp.together(G - G1)))
        gap = _gap_poly(num, den, OMEGA)
        assert_nonnegative_factorization(gap, {S1, S2, B1, B2}, f"CT n=2 signs {signs}")
        assert gap.subs(OMEGA, 0) == 0  # the bound is attained at ω = 0
        assert_zero((num / den).subs(s, 0) ** 2 - 4 * S2**2, "DC error = 2 sigma2")


def ober_dt(signs, sub=None):
    """Bilinear image of :func:`ober_ct`: a balanced DT realization with the same HSVs.

    With ``sub`` (values for σ1, σ2, b1, b2) the matrices are built directly from the values.
    """
    Ac, bc, cc = ober_ct(signs)
    if sub is not None:
        Ac, bc, cc = Ac.subs(sub), bc.subs(sub), cc.subs(sub)
    I2 = sp.eye(2)
    M = (I2 - Ac).adjugate() / (I2 - Ac).det()  # (I - A_c)^{-1}
    A = ((I2 + Ac) * M).applyfunc(sp.cancel)
    B = (sp.sqrt(2) * M * bc).applyfunc(sp.cancel)
    C = (sp.sqrt(2) * cc * M).applyfunc(sp.cancel)
    return A, B, C


def _dt_error_from_ct(Ac, bc, cc):
    r"""E(z(s)) = G(z) − G_1(z), z = (1+s)/(1−s), for the DT image of (Ac, bc, cc) (2 states, SISO).

    With M = (I − A_c)⁻¹ the DT realization is A = 2M − I, B = √2 M b_c, C = √2 c_c M, so
    G(z(s)) = G_c(s) − G_c(1) and G_1(z(s)) = (c_c M)_0 (M b_c)_0 (1 − s) / (1 − M_00 (1 − s))
    (both identities are checked for generic entries in :func:`test_dt_reduction_formulas`).
    """
    s = sp.Symbol("s")
    I2 = sp.eye(2)
    a11, a12, a21, a22 = Ac
    b1, b2 = bc
    c1, c2 = cc
    delta = (I2 - Ac).det()

    def gc(x):
        return (cc * (x * I2 - Ac).adjugate() * bc)[0] / (x * I2 - Ac).det()

    g1 = (c1 * (1 - a22) + c2 * a21) * ((1 - a22) * b1 + a12 * b2) * (1 - s) / (delta * (delta - (1 - a22) * (1 - s)))
    return sp.fraction(sp.cancel(sp.together(gc(s) - gc(1) - g1)))


def test_dt_reduction_formulas():
    """For generic 2×2 (A_c, b_c, c_c): G_d(z(s)) = G_c(s) − G_c(1) and the closed form of G_1(z(s))."""
    s = sp.Symbol("s")
    Ac = sp.Matrix(2, 2, sp.symbols("a11 a12 a21 a22"))
    bc = sp.Matrix(sp.symbols("p1 p2"))
    cc = sp.Matrix([sp.symbols("q1 q2")])
    I2 = sp.eye(2)
    M = (I2 - Ac).adjugate() / (I2 - Ac).det()
    A, B, C = (I2 + Ac) * M, sp.sqrt(2) * M * bc, sp.sqrt(2) * cc * M
    assert_zero(A - (2 * M - I2), "A = 2M - I")
    z = (1 + s) / (1 - s)
    # zI - A = 2/(1-s) M (sI - A_c), hence G_d(z) = (1-s) c_c R(s) M b_c with R(s) = (sI - A_c)^{-1} (M, R commute)
    R = (s * I2 - Ac).adjugate() / (s * I2 - Ac).det()
    assert_zero((z * I2 - A) - 2 / (1 - s) * M * (s * I2 - Ac), "zI - A factorization")
    assert_zero(M * R - R * M, "M and R commute")
    # resolvent identity (1-s) R(s) M = R(s) - M, hence G_d(z(s)) = c_c R(s) b_c - c_c M b_c = G_c(s) - G_c(1)
    assert_zero((1 - s) * R * M - (R - M), "resolvent identity")
    G1 = C[0] * B[0] / (z - A[0, 0])
    delta = (I2 - Ac).det()
    claimed = (
        (cc[0] * (1 - Ac[1, 1]) + cc[1] * Ac[1, 0])
        * ((1 - Ac[1, 1]) * bc[0] + Ac[0, 1] * bc[1])
        * (1 - s)
        / (delta * (delta - (1 - Ac[1, 1]) * (1 - s)))
    )
    assert_zero(G1 - claimed, "G_1(z(s))")


def test_two_state_dt_positive_signature():
    """DT, n = 2, r = 1, sign pattern (1, 1): balanced, and the gap has only non-negative coefficients."""
    signs = (1, 1)
    A, B, C = ober_dt(signs)
    Sig = sp.diag(S1, S2)
    assert_zero(A * Sig * A.T - Sig + B * B.T, "DT balanced (P)")
    assert_zero(A.T * Sig * A - Sig + C.T * C, "DT balanced (Q)")
    num, den = _dt_error_from_ct(*ober_ct(signs))
    d, x, nu = sp.symbols("d x nu", positive=True)
    gap = _gap_poly(num, den, nu)
    poly_nu = sp.Poly(gap, nu)
    assert all(m[0] % 2 == 0 for m in poly_nu.monoms())  # a polynomial in x = nu^2
    gx = sp.Poly(sp.expand(gap.subs(nu, sp.sqrt(x)).subs(S1, S2 + d)), x, S2, d, B1, B2)
    assert all(c >= 0 for c in gx.coeffs()), "negative coefficient"


def _certify_at(signs, values):
    """Exact certificate that |E| ≤ 2σ2 on the whole unit circle for rational parameter values."""
    nu = sp.Symbol("nu", real=True)
    sub = dict(zip((S1, S2, B1, B2), values, strict=True))
    num, den = _dt_error_from_ct(*(M.subs(sub) for M in ober_ct(signs)))
    gap = _gap_poly(num, den, nu).subs(S2, sub[S2])
    poly = sp.Poly(gap, nu)
    assert all(q.is_rational for q in poly.coeffs())
    # gap >= 0 on the real line: positive leading coefficient and no real root of odd multiplicity (checked on the
    # square-free factors); nu = tan(ω/2) covers the circle except z = -1, which follows by continuity
    if poly.is_zero:
        return
    assert poly.LC() > 0
    for factor, mult in poly.sqf_list()[1]:
        if mult % 2 == 1:
            assert factor.count_roots() == 0, f"sign change at {values}"


def test_two_state_dt_mixed_signature():
    """DT, n = 2, r = 1, sign pattern (1, −1): balanced; exact certificates on 18 rational parameter points."""
    signs = (1, -1)
    A, B, C = ober_dt(signs)
    Sig = sp.diag(S1, S2)
    assert_zero(A * Sig * A.T - Sig + B * B.T, "DT balanced (P)")
    assert_zero(A.T * Sig * A - Sig + C.T * C, "DT balanced (Q)")
    grid_sigma = [
        (sp.Rational(3), sp.Integer(1)),
        (sp.Rational(11, 10), sp.Integer(1)),
        (sp.Integer(50), sp.Integer(1)),
    ]
    grid_b = [sp.Rational(1, 3), sp.Integer(2)]
    count = 0
    for (s1, s2), b1, b2 in itertools.product(grid_sigma, grid_b, grid_b + [sp.Rational(7, 2)]):
        _certify_at(signs, (s1, s2, b1, b2))
        count += 1
    assert count == 18


def test_numeric_agreement_with_balanced_truncation():
    """On canonical-form instances ssmred finds HSVs (σ1, σ2) and a BT error ≤ 2σ2 (CT: = 2σ2 at DC)."""
    from ssmred import StateSpace, balanced_truncation, hankel_singular_values, hinf_norm

    rng = np.random.default_rng(5)
    for _ in range(8):
        s2 = 1.0
        s1 = 1.0 + rng.exponential(1.0)
        b = np.exp(rng.normal(0, 0.7, 2))
        for signs in ((1, 1), (1, -1)):
            num_A = np.array(
                [[-b[i] * b[j] / (signs[i] * signs[j] * (s1, s2)[i] + (s1, s2)[j]) for j in range(2)] for i in range(2)]
            )
            ct = StateSpace(num_A, b[:, None], (np.array(signs) * b)[None, :])
            np.testing.assert_allclose(hankel_singular_values(ct), [s1, s2], rtol=1e-9)
            res = balanced_truncation(ct, 1)
            err = hinf_norm(ct - res.reduced)
            assert err <= 2 * s2 * (1 + 1e-9)
            np.testing.assert_allclose(abs((ct - res.reduced)(0.0)[0, 0]), 2 * s2, rtol=1e-8)
            M = _inv2(np.eye(2) - num_A)
            dt = StateSpace((np.eye(2) + num_A) @ M, np.sqrt(2) * M @ b[:, None], np.sqrt(2) * ct.C @ M, dt=1.0)
            np.testing.assert_allclose(hankel_singular_values(dt), [s1, s2], rtol=1e-9)
            res = balanced_truncation(dt, 1)
            assert hinf_norm(dt - res.reduced) <= 2 * s2 * (1 + 1e-8)


def _inv2(M):
    import scipy.linalg as spla

    return spla.inv(M)


if __name__ == "__main__":
    raise SystemExit(run_module(__name__))
