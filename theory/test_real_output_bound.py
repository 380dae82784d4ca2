"""Which H∞ bound is valid for the real output: ‖G_R − G_R,r‖∞ ≤ ‖G − G_r‖∞ ≤ 2 Σ_{i>r} σ_i.

Setting: CompreSSM truncates the complex system G = (A, B, C) by its own HSVs σ_i and uses the real
output y = Re(C x). Let G_r be the complex BT model and G_R, G_R,r the real-output systems of G, G_r.

Argument. The real output of the complex error system E = G − G_r is exactly G_R − G_R,r (the real
output map is linear: Re(C x) − Re(C_r x_r) = Re([C, −C_r][x; x_r])). In the time domain, for a real
input u, the real-output error is Re(e) with e = E u, and |Re e_k| ≤ |e_k| entrywise, so
‖Re e‖₂ ≤ ‖e‖₂ ≤ ‖E‖∞ ‖u‖₂; for a real system the induced ℓ²/L² gain over real signals is its H∞ norm.
In the frequency domain: G_R(z) = ½(G(z) + conj(G(conj z))) (test_conj_augmentation), so at each point
‖E_R(e^{iω})‖ ≤ ½‖E(e^{iω})‖ + ½‖E(e^{−iω})‖ ≤ ‖E‖∞. Hence the complex system's bound 2 Σ_{i>r} σ_i
also bounds the real-output error. (BT of the 2n real realization with its own HSVs s_k gives the
other valid bound 2 Σ_{k>q} s_k for a real model of order q.)

Checked symbolically: the scalar inequality |½(x + conj y)| ≤ ½|x| + ½|y| via the identity
(|x||y|)² − Re(x y)² = Im(x y)², and (Re v)² ≤ |v|²; numerically: the chain of inequalities on random
complex systems (CT/DT, dense and LRU-like diagonal), with ``ssmred.hinf_norm``. Justifies reporting
``BTResult.error_bound`` as a valid bound for the real output of a complex layer.
"""

from __future__ import annotations

import warnings

import numpy as np
import sympy as sp

from theory._common import assert_zero, run_module


def test_scalar_triangle_inequality_symbolic():
    """|½(x + ȳ)|² ≤ (½|x| + ½|y|)² ⟺ Re(x y) ≤ |x||y|, from (|x||y|)² − Re(xy)² = Im(xy)² ≥ 0."""
    x1, x2, y1, y2 = sp.symbols("x1 x2 y1 y2", real=True)
    x, y = x1 + sp.I * x2, y1 + sp.I * y2
    abs_x2, abs_y2 = x1**2 + x2**2, y1**2 + y2**2
    lhs = sp.expand((x + sp.conjugate(y)) * sp.conjugate(x + sp.conjugate(y)) / 4)  # |(x + ȳ)/2|^2
    re_xy = sp.expand(sp.re(x * y))
    im_xy = sp.expand(sp.im(x * y))
    # |(x+ȳ)/2|^2 = (|x|^2 + |y|^2 + 2 Re(xy)) / 4
    assert_zero(lhs - (abs_x2 + abs_y2 + 2 * re_xy) / 4, "expansion")
    # (|x||y|)^2 - Re(xy)^2 = Im(xy)^2 >= 0, hence Re(xy) <= |x||y| and the triangle inequality
    assert_zero(abs_x2 * abs_y2 - re_xy**2 - im_xy**2, "Lagrange identity")
    # time domain: |v|^2 - (Re v)^2 = (Im v)^2 >= 0
    assert_zero(sp.expand(x * sp.conjugate(x)) - sp.re(x) ** 2 - sp.im(x) ** 2, "|Re v| <= |v|")


def test_real_output_of_error_system_is_difference_of_real_outputs():
    """to_real(G − G_r) has the transfer function G_R − G_R,r (numeric, random complex system)."""
    from ssmred import balanced_truncation, random_stable

    sys = random_stable(6, 2, 2, dt=1.0, complex_=True, rng=4)
    red = balanced_truncation(sys, 3).reduced
    w = np.linspace(-np.pi, np.pi, 41)
    lhs = (sys - red).to_real().frequency_response(w)
    rhs = sys.to_real().frequency_response(w) - red.to_real().frequency_response(w)
    np.testing.assert_allclose(lhs, rhs, rtol=1e-10, atol=1e-12)


def _lru_like(rng, n, m, p, dt):
    from ssmred import from_diagonal

    if dt is None:
        lam = -rng.uniform(0.01, 1.0, n) + 1j * rng.uniform(-5, 5, n)
    else:
        lam = np.sqrt(rng.uniform(0.81, 0.998, n)) * np.exp(2j * np.pi * rng.uniform(size=n))
    gamma = np.sqrt(2 * np.abs(lam.real)) if dt is None else np.sqrt(1 - np.abs(lam) ** 2)  # LRU-style normalisation
    B = (rng.standard_normal((n, m)) + 1j * rng.standard_normal((n, m))) * gamma[:, None]
    C = (rng.standard_normal((p, n)) + 1j * rng.standard_normal((p, n))) / np.sqrt(n)
    return from_diagonal(lam, B, C, dt=dt)


def test_chain_of_bounds_numeric():
    """‖G_R − G_R,r‖∞ ≤ ‖G − G_r‖∞ ≤ 2Σ_{i>r}σ_i on 60 random complex systems; both bounds are used."""
    from ssmred import AccuracyWarning, BalancedTruncation, hankel_singular_values, hinf_norm, random_stable

    rng = np.random.default_rng(11)
    ratios_real, ratios_cplx, real_bt_tighter = [], [], 0
    for i in range(60):
        dt = None if i % 2 else 1.0
        n = int(rng.integers(2, 9))
        sys = _lru_like(rng, n, 2, 2, dt) if i % 4 < 2 else random_stable(n, 2, 2, dt=dt, complex_=True, rng=rng)
        bt = BalancedTruncation(sys)
        r = int(rng.integers(1, n))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AccuracyWarning)
            res = bt.reduce(r)
        err = sys - res.reduced
        e_c = hinf_norm(err)
        e_r = hinf_norm(err.to_real())
        assert e_r <= e_c * (1 + 1e-8), (i, e_r, e_c)
        assert e_c <= res.error_bound * (1 + 1e-8), (i, e_c, res.error_bound)
        ratios_real.append(e_r / e_c)
        ratios_cplx.append(e_c / res.error_bound)
        # the alternative bound from the real realization's own HSVs at order 2r (same real dimension)
        s = hankel_singular_values(sys.to_real())
        real_bound = 2 * s[2 * r :].sum()
        real_bt_tighter += real_bound < res.error_bound
    assert max(ratios_real) <= 1 + 1e-8
    assert max(ratios_cplx) <= 1 + 1e-8
    assert 0 < real_bt_tighter  # the real-realization bound is often (not always) tighter


if __name__ == "__main__":
    raise SystemExit(run_module(__name__))
