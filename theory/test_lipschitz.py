"""HSVs are locally Lipschitz in (A, B, C) on the stable set — the continuity SPEC §5 relies on.

Statement. Let K be a compact set of stable parameters θ = (A, B, C) (DT: sup_K ‖A^k‖ ≤ M ρ^k with
ρ < 1; CT: sup_K ‖e^{At}‖ ≤ M e^{−αt} with α > 0). Then there is L_K with

    |σ_i(θ') − σ_i(θ)| ≤ ‖Γ(θ') − Γ(θ)‖ ≤ L_K ‖θ' − θ‖     for all θ, θ' ∈ K and every i.

Proof sketch. (1) σ_i are the singular values of the Hankel operator Γ(θ) = 𝒪𝒞 (DT: 𝒞 = [B, AB, A²B, …],
𝒪 = [C; CA; …]), and singular values of operators are 1-Lipschitz (Weyl). (2) Γ' − Γ = (𝒪' − 𝒪)𝒞' +
𝒪(𝒞' − 𝒞), ‖𝒞‖ ≤ Σ_k Mρ^k‖B‖, and A'^k − A^k = Σ_{j<k} A'^j (A' − A) A^{k−1−j} (telescoping, checked
symbolically) gives ‖A'^k − A^k‖ ≤ k M² ρ^{k−1} ‖A' − A‖, whose sum over k converges. The Hankel
operator is linear in G, so ‖Γ' − Γ‖ = ‖G' − G‖_H (``ssmred.hankel_distance``), a computable bound.
The constant L_K blows up at the stability boundary (ρ → 1 or α → 0): HSVs are *not* globally
Lipschitz — shown exactly for n = 1. Weyl's bound on H = (P^{1/2} Q P^{1/2})^{1/2} (SPEC §5,
``ssmred.hsv_perturbation``) is a second per-step bound; its finite-difference quotients also stay
bounded in the examples below.

Checked: symbolic gradient and Lipschitz constant of σ for n = 1 (CT and DT, complex), the blow-up
limits, the telescoping identity, and numeric difference quotients of σ_i, ‖G' − G‖_H and ‖H' − H‖₂.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as spla
import sympy as sp

from theory._common import run_module


def test_scalar_dt_gradient_and_constant():
    """DT n = 1: σ = βγ/(1 − x² − y²) (a = x + iy, β = |b|, γ = |c|); explicit Lipschitz constant on K, → ∞ as ρ → 1."""
    x, y = sp.symbols("x y", real=True)
    beta, gamma, rho, M = sp.symbols("beta gamma rho M", positive=True)
    sigma = beta * gamma / (1 - x**2 - y**2)
    grad = [sp.diff(sigma, v) for v in (x, y, beta, gamma)]
    r2 = x**2 + y**2
    assert sp.simplify(grad[0] - 2 * x * beta * gamma / (1 - r2) ** 2) == 0
    assert sp.simplify(grad[2] - gamma / (1 - r2)) == 0
    # |grad_(x,y)| = 2|a| βγ/(1-|a|^2)^2 and |∂σ/∂β| = γ/(1-|a|^2): both increase in |a|, β, γ, so on the convex
    # set K = {|a| <= ρ, 0 < β, γ <= M} the sup of the gradient norm is at the corner (mean value theorem)
    assert sp.simplify(grad[0] ** 2 + grad[1] ** 2 - 4 * r2 * beta**2 * gamma**2 / (1 - r2) ** 4) == 0
    t = sp.Symbol("t", positive=True)  # t = |a|
    g_a = 2 * t * beta * gamma / (1 - t**2) ** 2
    assert sp.simplify(sp.diff(g_a, t) - 2 * beta * gamma * (3 * t**2 + 1) / (1 - t**2) ** 3) == 0
    L = sp.sqrt((2 * rho * M**2 / (1 - rho**2) ** 2) ** 2 + 2 * (M / (1 - rho**2)) ** 2)
    assert sp.limit(L.subs(M, 1), rho, 1, dir="-") == sp.oo  # not globally Lipschitz
    # numeric spot check of |σ(θ') − σ(θ)| <= L |θ' − θ| inside K (ρ = 0.9, M = 2)
    rng = np.random.default_rng(0)
    Lnum = float(L.subs({rho: 0.9, M: 2}))
    f = sp.lambdify((x, y, beta, gamma), sigma)
    for _ in range(200):
        radius, phase = 0.9 * np.sqrt(rng.uniform(size=2)), rng.uniform(0, 2 * np.pi, 2)
        p = np.column_stack([radius * np.cos(phase), radius * np.sin(phase), rng.uniform(0, 2, (2, 2))])
        assert abs(f(*p[0]) - f(*p[1])) <= Lnum * spla.norm(p[0] - p[1]) + 1e-12


def test_scalar_ct_gradient_and_blowup():
    """CT n = 1: σ = βγ/(2α) (Re a = −α); |∂σ/∂α| = βγ/(2α²) → ∞ as α → 0."""
    alpha, beta, gamma = sp.symbols("alpha beta gamma", positive=True)
    sigma = beta * gamma / (2 * alpha)
    assert sp.simplify(sp.diff(sigma, alpha) + beta * gamma / (2 * alpha**2)) == 0
    assert sp.limit(sp.Abs(sp.diff(sigma, alpha)).subs({beta: 1, gamma: 1}), alpha, 0, dir="+") == sp.oo


def test_telescoping_identity():
    """A'^k − A^k = Σ_{j<k} A'^j (A' − A) A^{k−1−j} for k = 1..5 (noncommutative symbols, any n)."""
    A, Ap = sp.symbols("A Ap", commutative=False)
    for k in range(1, 6):
        rhs = sum((Ap**j * (Ap - A) * A ** (k - 1 - j) for j in range(k)), sp.Integer(0))
        assert sp.expand(Ap**k - A**k - rhs) == 0


def _direction(sys, rng):
    def rand(M):
        E = rng.standard_normal(M.shape)
        return E + 1j * rng.standard_normal(M.shape) if np.iscomplexobj(M) else E

    dA, dB, dC = rand(sys.A), rand(sys.B), rand(sys.C)
    scale = np.sqrt(sum(np.sum(np.abs(X) ** 2) for X in (dA, dB, dC)))
    return dA / scale, dB / scale, dC / scale


def test_difference_quotients_are_bounded():
    """max_i |Δσ_i|/h ≤ ‖G(θ+hd) − G(θ)‖_H / h, and both (and ‖ΔH‖₂/h) converge as h → 0."""
    from ssmred import hankel_distance, hankel_matrix, hankel_singular_values, random_stable

    rng = np.random.default_rng(4)
    for i in range(8):
        sys = random_stable(int(rng.integers(2, 7)), 2, 2, dt=1.0 if i % 2 else None, complex_=bool(i % 3), rng=rng)
        dA, dB, dC = _direction(sys, rng)
        s0, H0 = hankel_singular_values(sys), hankel_matrix(sys)
        quotients = []
        for h in (1e-3, 1e-4, 1e-5):
            moved = sys.with_(A=sys.A + h * dA, B=sys.B + h * dB, C=sys.C + h * dC)
            ds = np.max(np.abs(hankel_singular_values(moved) - s0)) / h
            dist = hankel_distance(sys, moved) / h
            dH = float(spla.norm(hankel_matrix(moved) - H0, 2)) / h
            assert ds <= dist * (1 + 1e-6) + 1e-6 * s0[0]
            assert ds <= dH * (1 + 1e-6) + 1e-6 * s0[0]
            quotients.append((ds, dist, dH))
        q = np.array(quotients)
        np.testing.assert_allclose(q[1], q[2], rtol=2e-2, atol=1e-6 * s0[0])  # converged: a finite derivative


def test_lipschitz_constant_grows_at_the_boundary():
    """DT n = 1, a → 1: the measured dσ/da matches 2a/(1 − a²)² and grows without bound."""
    from ssmred import StateSpace, hankel_singular_values

    slopes = []
    for a in (0.5, 0.9, 0.99, 0.999):
        h = 1e-7 * (1 - a)
        s = [hankel_singular_values(StateSpace([[x]], [[1.0]], [[1.0]], dt=1.0))[0] for x in (a, a + h)]
        slope = (s[1] - s[0]) / h
        np.testing.assert_allclose(slope, 2 * a / (1 - a**2) ** 2, rtol=1e-4)
        slopes.append(slope)
    assert np.all(np.diff(slopes) > 0)
    assert slopes[-1] > 1e5


if __name__ == "__main__":
    raise SystemExit(run_module(__name__))
