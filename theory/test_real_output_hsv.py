"""How the HSVs of the real output Re(C x) relate to the HSVs of the complex system (A, B, C).

Let σ_1 ≥ … ≥ σ_n be the complex system's HSVs (what CompreSSM ranks states by) and s_1 ≥ … ≥ s_2n
those of the real-output system (exact I/O map, 2n states; see test_conj_augmentation). Proven here:

1. Block structure (symbolic, dense 2×2 A, CT and DT): the Gramians of the augmented system are
   P_aug = [[P, P̃], [conj P̃, conj P]] and Q_aug = ¼[[Q, Q̃], [conj Q̃, conj Q]], where P, Q are the complex
   system's Gramians and the *complementary* Gramians P̃ = P̃ᵀ, Q̃ = Q̃ᵀ solve
   A P̃ Aᵀ − P̃ + B Bᵀ = 0 and Aᴴ Q̃ Ā − Q̃ + Cᴴ C̄ = 0 (DT; CT analogues). So s² = eig(P_aug Q_aug)
   mixes σ with the complementary terms.
2. Exact halving: if P̃ = 0 and Q̃ = 0 — e.g. B Bᵀ = 0 and Cᵀ C = 0, as for B = [b, i b]/√2 and
   C = [c; i c]/√2 (real and imaginary parts as separate real channels) — then s = {σ_i/2, σ_i/2}
   (each complex HSV halved and doubled). One vanishing complementary Gramian is not enough.
3. Upper bounds that always hold: s_k ≤ σ_⌈k/2⌉ and Σ_k s_k ≤ Σ_i σ_i. Argument: the real Hankel
   matrix is Re(Γ), the (1,1) block of the realification [[Re Γ, −Im Γ], [Im Γ, Re Γ]], which is
   unitarily similar to diag(Γ, Γ̄) (singular values σ_i, each twice; checked symbolically) — and a
   submatrix has singular values ≤ those of the whole matrix. For the sum, Re Γ = ½(Γ + Γ̄) and the
   nuclear norm is a norm. Checked numerically on random systems.
4. No lower bound and no order preservation (exact counter-examples): a real pole with C = i gives
   an identically zero real output (s = 0 while σ > 0); a real pole keeps its full σ (s = {σ, 0}, not
   halved); a pole iρ gives s = {1/(1−ρ⁴), ρ²/(1−ρ⁴)} with σ = 1/(1−ρ²); and a two-mode system whose
   complex ranking is the reverse of its real-output ranking, where truncating by complex HSVs gives a
   larger real-output error than the other choice.

Justifies: ``StateSpace.to_real`` / ``transforms.conj_augment`` as the exact route to real-output
HSVs, and the warning in SPEC §3/§9 that complex HSVs are a proxy.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from theory._common import Pairs, assert_zero, cmatrix, conj, run_module


def _bd(X, Y):
    n = X.shape[0]
    Z = sp.zeros(2 * n, 2 * n)
    Z[:n, :n] = X
    Z[n:, n:] = Y
    return Z


def _blocks(M, n):
    return M[:n, :n], M[:n, n:], M[n:, :n], M[n:, n:]


def test_augmented_gramian_block_structure():
    """Residuals of the 2n Lyapunov equations split into the P, P̃, conj P̃, conj P equations (CT and DT)."""
    pairs = Pairs()
    A, Ac = cmatrix("a", 2, 2, pairs)
    B, Bc = cmatrix("b", 2, 1, pairs)
    C, Cc = cmatrix("c", 1, 2, pairs)
    X, _ = cmatrix("x", 4, 4, pairs)  # arbitrary unknown, no structure assumed
    Aa, Ba, Ca = _bd(A, Ac), B.col_join(Bc), (C / 2).row_join(Cc / 2)
    Aah, Bah, Cah = conj(Aa, pairs).T, conj(Ba, pairs).T, conj(Ca, pairs).T
    X11, X12, X21, X22 = _blocks(X, 2)
    for discrete in (True, False):
        if discrete:
            R = Aa * X * Aah - X + Ba * Bah
            parts = [
                A * X11 * conj(A, pairs).T - X11 + B * conj(B, pairs).T,
                A * X12 * A.T - X12 + B * B.T,
                Ac * X21 * conj(A, pairs).T - X21 + Bc * conj(B, pairs).T,
                Ac * X22 * A.T - X22 + Bc * B.T,
            ]
            Ro = Aah * X * Aa - X + Cah * Ca
            oparts = [
                conj(A, pairs).T * X11 * A - X11 + conj(C, pairs).T * C / 4,
                conj(A, pairs).T * X12 * Ac - X12 + conj(C, pairs).T * Cc / 4,
                A.T * X21 * A - X21 + C.T * C / 4,
                A.T * X22 * Ac - X22 + C.T * Cc / 4,
            ]
        else:
            R = Aa * X + X * Aah + Ba * Bah
            parts = [
                A * X11 + X11 * conj(A, pairs).T + B * conj(B, pairs).T,
                A * X12 + X12 * A.T + B * B.T,
                Ac * X21 + X21 * conj(A, pairs).T + Bc * conj(B, pairs).T,
                Ac * X22 + X22 * A.T + Bc * B.T,
            ]
            Ro = Aah * X + X * Aa + Cah * Ca
            oparts = [
                conj(A, pairs).T * X11 + X11 * A + conj(C, pairs).T * C / 4,
                conj(A, pairs).T * X12 + X12 * Ac + conj(C, pairs).T * Cc / 4,
                A.T * X21 + X21 * A + C.T * C / 4,
                A.T * X22 + X22 * Ac + C.T * Cc / 4,
            ]
        for got, want in zip(_blocks(R, 2), parts, strict=True):
            assert_zero(got - want, "controllability block")
        for got, want in zip(_blocks(Ro, 2), oparts, strict=True):
            assert_zero(got - want, "observability block")
        # the (2,2) equation is the conjugate of the (1,1) one and the (2,1) the conjugate of the (1,2):
        # by uniqueness X22 = conj(P), X21 = conj(P~); and the (1,2) equation is invariant under transpose,
        # so P~ = P~^T.
        to_conj_p = dict(zip(X22, conj(X11, pairs), strict=True))
        to_conj_pt = dict(zip(X21, conj(X12, pairs), strict=True))
        assert_zero(conj(parts[0], pairs) - parts[3].subs(to_conj_p), "conj P block")
        assert_zero(conj(parts[1], pairs) - parts[2].subs(to_conj_pt), "conj P~ block")
        assert_zero(parts[1].T - parts[1].subs(dict(zip(X12, X12.T, strict=True)), simultaneous=True), "P~ symmetric")


def test_exact_halving_when_complementary_gramians_vanish():
    """B = [b, i b]/√2 and C = [c; i c]/√2 make P̃ = Q̃ = 0; then the real-output HSVs are σ_i/2, each twice."""
    pairs = Pairs()
    b, _ = cmatrix("b", 2, 1, pairs)
    c, _ = cmatrix("c", 1, 2, pairs)
    B = b.row_join(sp.I * b) / sp.sqrt(2)
    C = c.col_join(sp.I * c) / sp.sqrt(2)
    assert_zero(B * B.T, "B B^T")  # so P~ = 0 (unique solution of its equation with zero right-hand side)
    assert_zero(C.T * C, "C^T C")  # so Q~ = 0
    # with P~ = Q~ = 0: P_aug Q_aug = 1/4 diag(P Q, conj(P Q)), whose eigenvalues are sigma^2/4, twice
    P, Pc = cmatrix("p", 2, 2, pairs)
    Q, Qc = cmatrix("q", 2, 2, pairs)
    assert_zero(_bd(P, Pc) * (_bd(Q, Qc) / 4) - _bd(P * Q, conj(P * Q, pairs)) / 4, "block product")
    # one vanishing complementary Gramian is not enough: checked numerically below
    from ssmred import from_diagonal, hankel_singular_values

    rng = np.random.default_rng(3)
    n = 5
    for dt in (1.0, None):
        lam = (
            0.9 * np.sqrt(rng.uniform(0, 1, n)) * np.exp(2j * np.pi * rng.uniform(size=n))
            if dt
            else -rng.uniform(0.1, 2, n) + 1j * rng.uniform(-3, 3, n)
        )
        bb = rng.standard_normal((n, 1)) + 1j * rng.standard_normal((n, 1))
        cc = rng.standard_normal((1, n)) + 1j * rng.standard_normal((1, n))
        Bn, Cn = np.hstack([bb, 1j * bb]) / np.sqrt(2), np.vstack([cc, 1j * cc]) / np.sqrt(2)
        sys = from_diagonal(lam, Bn, Cn, dt=dt)
        sigma = hankel_singular_values(sys)
        s_real = hankel_singular_values(sys.to_real())
        np.testing.assert_allclose(s_real, np.repeat(sigma / 2, 2), rtol=1e-8, atol=1e-12 * sigma[0])
        one_sided = from_diagonal(lam, Bn, rng.standard_normal((2, n)) + 0j, dt=dt)
        s1 = hankel_singular_values(one_sided)
        assert not np.allclose(hankel_singular_values(one_sided.to_real()), np.repeat(s1 / 2, 2), rtol=1e-3)


def test_realification_doubles_singular_values():
    """[[Re M, −Im M], [Im M, Re M]] = U diag(M, M̄) Uᴴ with U unitary (symbolic 2×2): σ's doubled."""
    pairs = Pairs()
    M, Mc = cmatrix("m", 2, 2, pairs)
    I2 = sp.eye(2)
    U = sp.Matrix(sp.BlockMatrix([[I2, I2], [-sp.I * I2, sp.I * I2]])) / sp.sqrt(2)
    Uh = sp.Matrix(sp.BlockMatrix([[I2, sp.I * I2], [I2, -sp.I * I2]])) / sp.sqrt(2)
    assert_zero(U * Uh - sp.eye(4), "U unitary")
    re, im = (M + Mc) / 2, (M - Mc) / (2 * sp.I)
    R = sp.Matrix(sp.BlockMatrix([[re, -im], [im, re]]))
    assert_zero(U * _bd(M, Mc) * Uh - R, "realification")


def _random_complex_system(rng, *, dt, diagonal):
    from ssmred import from_diagonal, random_stable

    n = int(rng.integers(1, 7))
    m, p = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    if not diagonal:
        return random_stable(n, m, p, dt=dt, complex_=True, rng=rng)
    lam = (
        np.sqrt(rng.uniform(0.0, 0.95, n)) * np.exp(2j * np.pi * rng.uniform(size=n))
        if dt
        else -rng.uniform(0.05, 2, n) + 1j * rng.uniform(-3, 3, n)
    )
    B = rng.standard_normal((n, m)) + 1j * rng.standard_normal((n, m))
    C = rng.standard_normal((p, n)) + 1j * rng.standard_normal((p, n))
    return from_diagonal(lam, B, C, dt=dt)


def test_upper_bounds_interlacing_and_sum():
    """s_k ≤ σ_⌈k/2⌉ and Σ s_k ≤ Σ σ_i on 200 random complex systems (CT/DT, dense/diagonal)."""
    from ssmred import hankel_singular_values

    rng = np.random.default_rng(7)
    worst_interlace, worst_sum = 0.0, 0.0
    for i in range(200):
        sys = _random_complex_system(rng, dt=1.0 if i % 2 else None, diagonal=bool(i % 4 < 2))
        sigma = hankel_singular_values(sys)
        s = hankel_singular_values(sys.to_real())
        cap = np.repeat(sigma, 2)
        tol = 1e-9 * sigma[0]
        assert np.all(s <= cap + tol), (s, cap)
        assert s.sum() <= sigma.sum() + tol
        worst_interlace = max(worst_interlace, float(np.max(s / cap)))
        worst_sum = max(worst_sum, float(s.sum() / sigma.sum()))
    assert worst_interlace <= 1 + 1e-9
    assert worst_sum <= 1 + 1e-9


def _real_hsv_squared_exact(Ar, Br, Cr):
    """Exact squared HSVs (eigenvalues of P Q) of a small real DT system via the Stein equations."""
    n = Ar.shape[0]
    P = sp.Matrix(n, n, lambda i, j: sp.Symbol(f"p{min(i, j)}{max(i, j)}"))
    Q = sp.Matrix(n, n, lambda i, j: sp.Symbol(f"q{min(i, j)}{max(i, j)}"))
    sol_p = sp.solve(list(Ar * P * Ar.T - P + Br * Br.T), list(P.free_symbols), dict=True)[0]
    sol_q = sp.solve(list(Ar.T * Q * Ar - Q + Cr.T * Cr), list(Q.free_symbols), dict=True)[0]
    P, Q = P.subs(sol_p), Q.subs(sol_q)
    out = []
    for lam, mult in (P * Q).eigenvals().items():
        out += [sp.factor(lam)] * mult
    return P, Q, out


def test_counterexamples_exact():
    """Exact counter-examples: zero real output, unhalved real pole, pole iρ, and a ranking reversal."""
    a, rho = sp.symbols("a rho", positive=True)
    z = sp.Symbol("z")
    # (a) real pole a, b = 1, c = i: complex sigma = 1/(1 - a^2) > 0, but Re(C x) = Re(i x) = 0 for real x
    Ar, Br, Cr = sp.diag(a, a), sp.Matrix([1, 0]), sp.Matrix([[0, -1]])  # to_real of (a, 1, i)
    assert sp.simplify((Cr * (z * sp.eye(2) - Ar).inv() * Br)[0]) == 0
    # (b) real pole, b = c = 1: real-output HSVs {sigma, 0} -- not halved
    _, _, s2 = _real_hsv_squared_exact(sp.diag(a, a), sp.Matrix([1, 0]), sp.Matrix([[1, 0]]))
    assert len(s2) == 2
    assert 0 in s2
    assert_zero(max(s2, key=lambda e: e != 0) - 1 / (1 - a**2) ** 2, "unhalved real pole")
    # (c) pole i*rho, b = c = 1: to_real gives A_r = rho * [[0, -1], [1, 0]]
    Ar = rho * sp.Matrix([[0, -1], [1, 0]])
    _, _, s2 = _real_hsv_squared_exact(Ar, sp.Matrix([1, 0]), sp.Matrix([[1, 0]]))
    expected = [1 / (1 - rho**4) ** 2, rho**4 / (1 - rho**4) ** 2]  # squares of 1/(1-rho^4), rho^2/(1-rho^4)
    assert len(s2) == 2
    assert {sp.factor(e - expected[0]) == 0 or sp.factor(e - expected[1]) == 0 for e in s2} == {True}
    assert_zero(sp.Add(*s2) - sp.Add(*expected), "sum of squared HSVs")
    sigma_c = 1 / (1 - rho**2)  # complex HSV of (i*rho, 1, 1): s_1 = sigma/(1 + rho^2), halved only as rho -> 1
    assert sp.simplify(1 / (1 - rho**4) - sigma_c / (1 + rho**2)) == 0
    # (d) two decoupled modes (B = C = I): lambda = 1/2 and 3i/5
    half, r = sp.Rational(1, 2), sp.Rational(3, 5)
    sigma_complex = [1 / (1 - half**2), 1 / (1 - r**2)]  # [4/3, 25/16]: mode 2 ranks first
    sigma_real = [1 / (1 - half**2), 0, 1 / (1 - r**4), r**2 / (1 - r**4)]  # [4/3, 0, 625/544, 225/544]
    assert sigma_complex == [sp.Rational(4, 3), sp.Rational(25, 16)]
    assert sigma_real == [sp.Rational(4, 3), 0, sp.Rational(625, 544), sp.Rational(225, 544)]
    assert sigma_complex[1] > sigma_complex[0]
    assert sigma_real[0] > sigma_real[2]
    from ssmred import from_diagonal, hankel_singular_values, hinf_norm

    sys = from_diagonal(np.array([0.5, 0.6j]), np.eye(2) + 0j, np.eye(2) + 0j, dt=1.0)
    np.testing.assert_allclose(hankel_singular_values(sys), [25 / 16, 4 / 3], rtol=1e-12)
    np.testing.assert_allclose(
        hankel_singular_values(sys.to_real()), [4 / 3, 625 / 544, 225 / 544, 0.0], rtol=1e-10, atol=1e-12
    )
    # keeping the complex top state (mode 2) leaves the real-output error of mode 1: |1/(z - 1/2)| <= 2;
    # keeping mode 1 leaves |z/(z^2 + 0.36)| <= 1/(1 - 0.36) = 1.5625 < 2
    drop_mode1 = from_diagonal(np.array([0.5 + 0j]), np.array([[1.0, 0.0]]) + 0j, np.array([[1.0], [0.0]]) + 0j, dt=1.0)
    drop_mode2 = from_diagonal(np.array([0.6j]), np.array([[0.0, 1.0]]) + 0j, np.array([[0.0], [1.0]]) + 0j, dt=1.0)
    assert np.isclose(hinf_norm(drop_mode1.to_real()), 2.0, rtol=1e-9)
    assert np.isclose(hinf_norm(drop_mode2.to_real()), 1.5625, rtol=1e-9)


if __name__ == "__main__":
    raise SystemExit(run_module(__name__))
