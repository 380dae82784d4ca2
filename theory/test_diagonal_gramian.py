"""Closed-form Gramians of diagonal systems solve the Lyapunov equations (CT and DT, complex).

Statements (A = diag(λ), any n, complex λ, B, C):

* DT: P_ij = (BB^H)_ij / (1 - λ_i conj(λ_j)) solves A P A^H - P + B B^H = 0, and
  Q_ij = (C^H C)_ij / (1 - conj(λ_i) λ_j) solves A^H Q A - Q + C^H C = 0.
* CT: P_ij = -(BB^H)_ij / (λ_i + conj(λ_j)) solves A P + P A^H + B B^H = 0, and
  Q_ij = -(C^H C)_ij / (conj(λ_i) + λ_j) solves A^H Q + Q A + C^H C = 0.
* The solutions are unique (the entrywise coefficient never vanishes for a stable λ) and Hermitian.

Proof for general n: with A diagonal, (A X A^H)_ij = λ_i X_ij conj(λ_j) and (A X)_ij = λ_i X_ij, so
each equation decouples into the scalar identities checked symbolically below (for arbitrary
complex λ_i, λ_j, M_ij). The full matrix equations are also checked for n = 2 with arbitrary complex
B (2×2) and C (2×2), and numerically against scipy's Lyapunov solvers. Justifies
``ssmred.diagonal_gramians`` and the closed-form path of ``ssmred.gramian_factors``.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as spla
import sympy as sp

from theory._common import Pairs, assert_zero, cmatrix, conj, csym, hconj, run_module


def test_entrywise_identity_general_n():
    """Scalar identities behind every entry (i, j), for any n and arbitrary complex data."""
    pairs = Pairs()
    li, li_c = csym("lam_i", pairs)
    lj, lj_c = csym("lam_j", pairs)
    M, _ = csym("M", pairs)  # (BB^H)_ij or (C^H C)_ij, arbitrary
    # DT controllability: lam_i P lam_j^* - P + M = 0
    P = M / (1 - li * lj_c)
    assert_zero(li * P * lj_c - P + M, "DT P entry")
    # DT observability: lam_i^* Q lam_j - Q + M = 0
    Q = M / (1 - li_c * lj)
    assert_zero(li_c * Q * lj - Q + M, "DT Q entry")
    # CT: lam_i P + P lam_j^* + M = 0 and lam_i^* Q + Q lam_j + M = 0
    assert_zero(li * (-M / (li + lj_c)) + (-M / (li + lj_c)) * lj_c + M, "CT P entry")
    assert_zero(li_c * (-M / (li_c + lj)) + (-M / (li_c + lj)) * lj + M, "CT Q entry")
    # uniqueness: the entrywise equation is linear in P_ij with coefficient (lam_i lam_j^* - 1) != 0
    x = sp.Symbol("x")
    sols = sp.solve(li * x * lj_c - x + M, x)
    assert len(sols) == 1
    assert_zero(sols[0] - P, "DT uniqueness")


def test_diagonal_structure_of_products():
    """(diag(λ) X diag(λ)^H)_ij = λ_i X_ij conj(λ_j) for a general 3×3 X (the decoupling step)."""
    pairs = Pairs()
    lam = [csym(f"l{i}", pairs) for i in range(3)]
    A = sp.diag(*[l for l, _ in lam])
    X, _ = cmatrix("X", 3, 3, pairs)
    lhs = A * X * hconj(A, pairs)
    expected = sp.Matrix(3, 3, lambda i, j: lam[i][0] * X[i, j] * lam[j][1])
    assert_zero(lhs - expected, "decoupling")


def _closed_form(lam, lam_c, B, C, pairs, *, discrete):
    n = len(lam)
    BBh = B * hconj(B, pairs)
    ChC = hconj(C, pairs) * C
    if discrete:
        P = sp.Matrix(n, n, lambda i, j: BBh[i, j] / (1 - lam[i] * lam_c[j]))
        Q = sp.Matrix(n, n, lambda i, j: ChC[i, j] / (1 - lam_c[i] * lam[j]))
    else:
        P = sp.Matrix(n, n, lambda i, j: -BBh[i, j] / (lam[i] + lam_c[j]))
        Q = sp.Matrix(n, n, lambda i, j: -ChC[i, j] / (lam_c[i] + lam[j]))
    return P, Q, BBh, ChC


def test_matrix_equations_n2_general_complex():
    """Full Lyapunov/Stein residuals vanish for n = 2, B and C general complex 2×2 (CT and DT)."""
    pairs = Pairs()
    l0, l0c = csym("l0", pairs)
    l1, l1c = csym("l1", pairs)
    lam, lam_c = [l0, l1], [l0c, l1c]
    A = sp.diag(l0, l1)
    Ah = sp.diag(l0c, l1c)
    B, _ = cmatrix("b", 2, 2, pairs)
    C, _ = cmatrix("c", 2, 2, pairs)
    for discrete in (True, False):
        P, Q, BBh, ChC = _closed_form(lam, lam_c, B, C, pairs, discrete=discrete)
        if discrete:
            assert_zero(A * P * Ah - P + BBh, "DT controllability")
            assert_zero(Ah * Q * A - Q + ChC, "DT observability")
        else:
            assert_zero(A * P + P * Ah + BBh, "CT controllability")
            assert_zero(Ah * Q + Q * A + ChC, "CT observability")
        # Hermitian: P_ji = conj(P_ij)
        assert_zero(P.T - conj(P, pairs), "P Hermitian")
        assert_zero(Q.T - conj(Q, pairs), "Q Hermitian")


def test_transpose_instead_of_conjugate_is_wrong():
    """The published-code pitfall Q_ij = (C^T C)_ij / (1 - λ_i λ_j) (no conjugation) does not solve the equation."""
    pairs = Pairs()
    l0, l0c = csym("l0", pairs)
    l1, l1c = csym("l1", pairs)
    A, Ah = sp.diag(l0, l1), sp.diag(l0c, l1c)
    C, _ = cmatrix("c", 1, 2, pairs)
    lam = [l0, l1]
    wrong = sp.Matrix(2, 2, lambda i, j: (C.T * C)[i, j] / (1 - lam[i] * lam[j]))
    residual = Ah * wrong * A - wrong + hconj(C, pairs) * C
    try:
        assert_zero(residual, "wrong Q")
    except AssertionError:
        return
    raise AssertionError("the non-conjugated formula unexpectedly solved the Stein equation")


def test_numeric_agreement_with_scipy_and_ssmred():
    """ssmred.diagonal_gramians equals scipy's Lyapunov solutions on random complex systems."""
    from ssmred import diagonal_gramians

    rng = np.random.default_rng(0)
    for n in (1, 3, 8):
        B = rng.standard_normal((n, 2)) + 1j * rng.standard_normal((n, 2))
        C = rng.standard_normal((3, n)) + 1j * rng.standard_normal((3, n))
        lam_d = 0.95 * np.sqrt(rng.uniform(0, 1, n)) * np.exp(2j * np.pi * rng.uniform(size=n))
        P, Q = diagonal_gramians(lam_d, B, C, dt=1.0)
        A = np.diag(lam_d)
        np.testing.assert_allclose(P, spla.solve_discrete_lyapunov(A, B @ B.conj().T), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(Q, spla.solve_discrete_lyapunov(A.conj().T, C.conj().T @ C), rtol=1e-10, atol=1e-12)
        lam_c = -rng.uniform(0.1, 2, n) + 1j * rng.uniform(-3, 3, n)
        P, Q = diagonal_gramians(lam_c, B, C, dt=None)
        A = np.diag(lam_c)
        np.testing.assert_allclose(P, spla.solve_continuous_lyapunov(A, -B @ B.conj().T), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(
            Q, spla.solve_continuous_lyapunov(A.conj().T, -C.conj().T @ C), rtol=1e-10, atol=1e-12
        )


if __name__ == "__main__":
    raise SystemExit(run_module(__name__))
