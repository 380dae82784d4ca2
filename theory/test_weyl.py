"""Weyl's inequality |λ_i(W + E) − λ_i(W)| ≤ ‖E‖₂ for Hermitian matrices, symbolically for 2×2.

Any 2×2 Hermitian W = [[a, b + i c], [b − i c, d]] has eigenvalues λ± = m(W) ± r(W) with the linear
part m(W) = (a + d)/2 and r(W) = ‖v(W)‖, v(W) = ((a − d)/2, b, c) ∈ ℝ³ (linear in W). Hence
‖E‖₂ = |m(E)| + r(E), and

    λ±(W + E) − λ±(W) = m(E) ± (‖v(W) + v(E)‖ − ‖v(W)‖),

whose modulus is ≤ |m(E)| + ‖v(E)‖ = ‖E‖₂ by the triangle inequality in ℝ³. The triangle inequality
itself is Cauchy–Schwarz, proven by Lagrange's identity ‖v‖²‖w‖² − (v·w)² = ‖v × w‖². All identities
below are checked with sympy for fully symbolic real a, b, c, d and perturbation entries.

Numerically: Weyl for random n×n Hermitian pairs and the ``holds`` flag of ``ssmred.hsv_perturbation``
on random system pairs (justifies ``ssmred.perturbation``).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as spla
import sympy as sp

from theory._common import run_module

a, b, c, d, e, f, g, h = sp.symbols("a b c d e f g h", real=True)


def _herm(p, q, r, s):
    return sp.Matrix([[p, q + sp.I * r], [q - sp.I * r, s]])


def _m_v(p, q, r, s):
    return (p + s) / 2, sp.Matrix([(p - s) / 2, q, r])


def test_eigenvalue_formula():
    """λ± = m ± ‖v‖ are the roots of the characteristic polynomial of a general 2×2 Hermitian matrix."""
    W = _herm(a, b, c, d)
    m, v = _m_v(a, b, c, d)
    r = sp.sqrt(v.dot(v))
    lam = sp.Symbol("lam")
    charpoly = W.charpoly(lam).as_expr()
    for root in (m + r, m - r):
        assert sp.expand(charpoly.subs(lam, root)) == 0
    # the spectral norm of a Hermitian matrix is max |λ±| = |m| + ‖v‖: with p = |m| >= 0 and r >= 0 the two
    # eigenvalues have moduli p + r and |p - r|, and (p + r)^2 - (p - r)^2 = 4 p r >= 0
    p, rr = sp.symbols("p rr", nonnegative=True)
    assert sp.expand((p + rr) ** 2 - (p - rr) ** 2) == 4 * p * rr


def test_linearity_and_lagrange_identity():
    """m and v are linear in W, and ‖v‖²‖w‖² − (v·w)² = ‖v × w‖² (Cauchy–Schwarz ⇒ triangle inequality)."""
    m1, v1 = _m_v(a, b, c, d)
    m2, v2 = _m_v(e, f, g, h)
    m12, v12 = _m_v(a + e, b + f, c + g, d + h)
    assert sp.expand(m12 - m1 - m2) == 0
    assert sp.expand(v12 - v1 - v2) == sp.zeros(3, 1)
    lagrange = v1.dot(v1) * v2.dot(v2) - v1.dot(v2) ** 2 - v1.cross(v2).dot(v1.cross(v2))
    assert sp.expand(lagrange) == 0
    # triangle inequality: (‖v1‖ + ‖v2‖)^2 - ‖v1 + v2‖^2 = 2 (‖v1‖‖v2‖ - v1·v2) >= 0 by Cauchy-Schwarz
    n1, n2 = sp.sqrt(v1.dot(v1)), sp.sqrt(v2.dot(v2))
    assert sp.expand((n1 + n2) ** 2 - v12.dot(v12) - 2 * (n1 * n2 - v1.dot(v2))) == 0


def test_weyl_bound_symbolic_consequence():
    """|λ±(W+E) − λ±(W)| ≤ ‖E‖₂: the difference is m(E) ± (‖v(W)+v(E)‖ − ‖v(W)‖), checked exactly on samples."""
    m1, v1 = _m_v(a, b, c, d)
    m2, v2 = _m_v(e, f, g, h)
    r = sp.sqrt(v1.dot(v1))
    r12 = sp.sqrt((v1 + v2).dot(v1 + v2))
    norm_E = sp.Abs(m2) + sp.sqrt(v2.dot(v2))
    diffs = [(m1 + m2 + r12) - (m1 + r), (m1 + m2 - r12) - (m1 - r)]
    rng = np.random.default_rng(0)
    for _ in range(25):  # exact rational evaluation of the symbolic expressions (no floating point)
        ints = rng.integers(-20, 21, 8)
        vals = {s: sp.Rational(int(x), 7) for s, x in zip((a, b, c, d, e, f, g, h), ints, strict=True)}
        bound = norm_E.subs(vals)
        for diff in diffs:
            assert sp.simplify(bound - sp.Abs(diff.subs(vals))) >= 0
    # with the eigenvalues computed by sympy for a fully symbolic pair the same holds at a sample point
    W, E = _herm(a, b, c, d), _herm(e, f, g, h)
    point = {a: 1, b: 2, c: -1, d: 3, e: sp.Rational(1, 3), f: -1, g: sp.Rational(1, 2), h: 2}
    ev_W = sorted(W.subs(point).eigenvals(), key=lambda x: float(x))
    ev_WE = sorted((W + E).subs(point).eigenvals(), key=lambda x: float(x))
    ev_E = list(E.subs(point).eigenvals())
    norm = max(abs(float(x)) for x in ev_E)
    assert all(abs(float(x - y)) <= norm + 1e-12 for x, y in zip(ev_WE, ev_W, strict=True))


def test_weyl_numeric_hermitian_and_hsv_reports():
    """Random n×n Hermitian pairs obey Weyl; ssmred.hsv_perturbation reports hold on random system pairs."""
    from ssmred import hsv_perturbation, random_stable

    rng = np.random.default_rng(1)
    for n in (2, 5, 9):
        W = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
        W = W + W.conj().T
        E = 1e-2 * (rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n)))
        E = E + E.conj().T
        delta = np.abs(spla.eigvalsh(W + E) - spla.eigvalsh(W))
        assert np.all(delta <= spla.norm(E, 2) * (1 + 1e-12))
    for i in range(20):
        sys = random_stable(int(rng.integers(1, 8)), 2, 2, dt=0.1 if i % 2 else None, complex_=bool(i % 3), rng=rng)
        other = sys.with_(B=sys.B * (1 + 0.05 * rng.standard_normal(sys.B.shape)))
        rep = hsv_perturbation(sys, other)
        assert rep.holds
        assert rep.slack >= -1e-12 * rep.hsv_a[0]


if __name__ == "__main__":
    raise SystemExit(run_module(__name__))
