"""The real output y = Re(C x) of a complex system equals the 2n system (diag(A, Ā), [B; B̄], ½[C, C̄]).

Statements, for real inputs u and a complex system (A, B, C, D) with state x:

1. Time domain: ξ = [x; x̄] obeys ξ' = diag(A, Ā) ξ + [B; B̄] u (because u is real), and
   Re(C x) = ½(C x + C̄ x̄) = ½[C, C̄] ξ. Hence the augmented system has exactly the real output.
2. Transfer function: ½[C, C̄] (zI − diag(A, Ā))⁻¹ [B; B̄] = ½(G(z) + conj(G(conj z))) for every z,
   with G(z) = C (zI − A)⁻¹ B — proven for a dense 2×2 complex A with general entries.
3. Realification: with S = ½[[I, I], [−iI, iI]] (so that S ξ = [Re x; Im x]), S diag(A, Ā) S⁻¹ =
   [[Re A, −Im A], [Im A, Re A]], S [B; B̄] = [Re B; Im B], ½[C, C̄] S⁻¹ = [Re C, −Im C]: the real 2n
   realization of ``StateSpace.to_real`` is similar to ``ssmred.transforms.conj_augment``.
4. Numerically: simulated real outputs of the complex recursion, ``to_real()`` and
   ``conj_augment()`` coincide, and so do their frequency responses.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from theory._common import Pairs, assert_zero, cmatrix, conj, csym, run_module


def _block_diag(X, Y):
    n = X.shape[0]
    Z = sp.zeros(2 * n, 2 * n)
    Z[:n, :n] = X
    Z[n:, n:] = Y
    return Z


def test_time_domain_identity():
    """Re(C x) = ½[C, C̄][x; x̄] and [x; x̄] follows the augmented recursion for real u (n = 2, p = 2, m = 2)."""
    pairs = Pairs()
    A, Ac = cmatrix("a", 2, 2, pairs)
    B, Bc = cmatrix("b", 2, 2, pairs)
    C, Cc = cmatrix("c", 2, 2, pairs)
    x, xc = cmatrix("x", 2, 1, pairs)
    u = sp.Matrix(sp.symbols("u0 u1", real=True))  # real inputs: conj(u) = u (no pair)
    # output: Re(Cx) = (Cx + conj(Cx))/2
    re_Cx = (C * x + conj(C * x, pairs)) / 2
    assert_zero(re_Cx - (C / 2).row_join(Cc / 2) * x.col_join(xc), "output map")
    # state update: conj(A x + B u) = Ā x̄ + B̄ u, i.e. the second block of the augmented recursion
    nxt = A * x + B * u
    aug = _block_diag(A, Ac) * x.col_join(xc) + B.col_join(Bc) * u
    assert_zero(aug - nxt.col_join(conj(nxt, pairs)), "state recursion")


def test_transfer_function_identity_dense_2x2():
    """½[C, C̄](zI − diag(A, Ā))⁻¹[B; B̄] = ½(G(z) + conj(G(conj z))) for dense complex 2×2 A, SISO."""
    pairs = Pairs()
    A, Ac = cmatrix("a", 2, 2, pairs)
    B, Bc = cmatrix("b", 2, 1, pairs)
    C, Cc = cmatrix("c", 1, 2, pairs)
    z, zc = csym("z", pairs)
    I2 = sp.eye(2)

    def tf(Am, Bm, Cm, s):
        M = s * I2 - Am
        return (Cm * M.adjugate() * Bm)[0] / M.det()

    G = tf(A, B, C, z)
    G_conj_at_conj_z = conj(tf(A, B, C, zc), pairs)  # conj(G(conj z))
    I4 = sp.eye(4)
    M4 = z * I4 - _block_diag(A, Ac)
    # block-diagonal inverse, assembled from the two 2x2 blocks (same value as M4.inv())
    inv4 = _block_diag((z * I2 - A).adjugate() / (z * I2 - A).det(), (z * I2 - Ac).adjugate() / (z * I2 - Ac).det())
    assert_zero(M4 * inv4 - I4, "block inverse")
    G_aug = ((C / 2).row_join(Cc / 2) * inv4 * B.col_join(Bc))[0]
    assert_zero(G_aug - (G + G_conj_at_conj_z) / 2, "augmented transfer function")


def test_realification_similarity():
    """S diag(A, Ā) S⁻¹ = [[Re A, −Im A], [Im A, Re A]] etc.: to_real() ≅ conj_augment() (dense 2×2)."""
    pairs = Pairs()
    A, Ac = cmatrix("a", 2, 2, pairs)
    B, Bc = cmatrix("b", 2, 1, pairs)
    C, Cc = cmatrix("c", 1, 2, pairs)
    I2 = sp.eye(2)
    S = sp.Rational(1, 2) * sp.Matrix(sp.BlockMatrix([[I2, I2], [-sp.I * I2, sp.I * I2]]))
    S_inv = sp.Matrix(sp.BlockMatrix([[I2, sp.I * I2], [I2, -sp.I * I2]]))
    assert_zero(S * S_inv - sp.eye(4), "S inverse")

    def re(M, Mc):
        return (M + Mc) / 2

    def im(M, Mc):
        return (M - Mc) / (2 * sp.I)

    A_r = sp.Matrix(sp.BlockMatrix([[re(A, Ac), -im(A, Ac)], [im(A, Ac), re(A, Ac)]]))
    assert_zero(S * _block_diag(A, Ac) * S_inv - A_r, "A")
    assert_zero(S * B.col_join(Bc) - re(B, Bc).col_join(im(B, Bc)), "B")
    assert_zero((C / 2).row_join(Cc / 2) * S_inv - re(C, Cc).row_join(-im(C, Cc)), "C")


def _lru_like(rng, n, m, p):
    from ssmred import from_diagonal

    lam = np.sqrt(rng.uniform(0.81, 0.998, n)) * np.exp(2j * np.pi * rng.uniform(size=n))
    B = (rng.standard_normal((n, m)) + 1j * rng.standard_normal((n, m))) / np.sqrt(2 * m)
    C = (rng.standard_normal((p, n)) + 1j * rng.standard_normal((p, n))) / np.sqrt(n)
    return from_diagonal(lam, B, C, rng.standard_normal((p, m)), dt=1.0)


def _simulate(A, B, C, D, u):
    x = np.zeros(A.shape[0], dtype=np.result_type(A, B, complex))
    ys = []
    for uk in u:
        ys.append(C @ x + D @ uk)
        x = A @ x + B @ uk
    return np.array(ys)


def test_numeric_simulation_and_frequency_response():
    """Simulated Re(C x) equals the outputs of to_real() and conj_augment(); responses agree on the circle."""
    from ssmred.transforms import conj_augment

    rng = np.random.default_rng(1)
    sys = _lru_like(rng, 6, 2, 3)
    u = rng.standard_normal((200, 2))
    y_true = _simulate(sys.A, sys.B, sys.C, sys.D, u).real
    real = sys.to_real()
    aug = conj_augment(sys)
    y_real = _simulate(real.A, real.B, real.C, real.D, u)
    y_aug = _simulate(aug.A, aug.B, aug.C, aug.D, u)
    np.testing.assert_allclose(y_real.imag, 0.0, atol=0)
    np.testing.assert_allclose(y_real.real, y_true, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(y_aug.real, y_true, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(y_aug.imag, 0.0, atol=1e-10)
    w = np.linspace(-np.pi, np.pi, 33)
    G = sys.frequency_response(w)
    G_flip = sys.frequency_response(-w)
    expected = 0.5 * ((G - sys.D) + np.conj(G_flip - sys.D)) + sys.D.real
    np.testing.assert_allclose(real.frequency_response(w), expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(aug.frequency_response(w), expected, rtol=1e-10, atol=1e-10)


if __name__ == "__main__":
    raise SystemExit(run_module(__name__))
