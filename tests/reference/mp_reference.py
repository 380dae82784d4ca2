"""mpmath reference (40 digits) for norms of small systems: the exact transfer function of the float64 data.

Each system is diagonalised once in mp arithmetic, so a frequency costs O(n m p):
``G(z) = C V diag(1/(z - lambda)) V^{-1} B + D`` (the float64 matrices are taken as exact; 40 digits
resolve eigenvector conditioning far beyond the systems used here).

* :func:`hinf_error` — ``sup_w sigma_max(G(z) - G_r(z))`` over the imaginary axis / unit circle: candidates at
  every pole frequency and at offsets of multiples of its distance to the boundary (where near-boundary
  peaks live, widths down to 1e-13), a uniform/log grid, then golden-section refinement of the best four,
  all in mp arithmetic.
* :func:`peak` — the frequency of a local maximum of ``sigma_max(G)`` (golden section in mp).
"""

from __future__ import annotations

from collections.abc import Callable

import mpmath as mp
import numpy as np


def _mpmat(M: np.ndarray) -> mp.matrix:
    return mp.matrix([[mp.mpc(complex(x).real, complex(x).imag) for x in row] for row in np.asarray(M)])


class Modal:
    """``G(z)`` of a float64 system, evaluated in mp arithmetic through its eigendecomposition."""

    def __init__(self, sys) -> None:
        ev, V = mp.eig(_mpmat(sys.A))
        self.lam = ev
        self.Cv = _mpmat(sys.C) * V
        self.Bv = mp.inverse(V) * _mpmat(sys.B)
        self.D = _mpmat(sys.D)
        self.n = sys.n_states

    def __call__(self, z: mp.mpc) -> mp.matrix:
        G = self.D.copy()
        w = [1 / (z - lam) for lam in self.lam]
        for i in range(G.rows):
            for j in range(G.cols):
                G[i, j] += mp.fsum(self.Cv[i, k] * w[k] * self.Bv[k, j] for k in range(self.n))
        return G


def _point(discrete: bool, w) -> mp.mpc:
    return mp.expj(w) if discrete else mp.mpc(0, w)


def smax(E: mp.matrix) -> mp.mpf:
    """Largest singular value of a small mp matrix."""
    if E.rows == 1 and E.cols == 1:
        return abs(E[0, 0])
    EH = E.H * E if E.cols <= E.rows else E * E.H
    if EH.rows == 1:
        return mp.sqrt(abs(EH[0, 0]))
    if EH.rows == 2:
        a, b, d = EH[0, 0].real, EH[0, 1], EH[1, 1].real
        return mp.sqrt((a + d) / 2 + mp.sqrt(((a - d) / 2) ** 2 + abs(b) ** 2))
    return mp.sqrt(max(abs(x) for x in mp.eig(EH, left=False, right=False)))


def _golden(f: Callable[[mp.mpf], mp.mpf], a, b, iters: int) -> tuple[mp.mpf, mp.mpf]:
    """Maximise ``f`` on ``[a, b]``; returns ``(argmax, max)``."""
    gr = (mp.sqrt(5) - 1) / 2
    a, b = mp.mpf(a), mp.mpf(b)
    x1, x2 = b - gr * (b - a), a + gr * (b - a)
    f1, f2 = f(x1), f(x2)
    for _ in range(iters):
        if f1 > f2:
            b, x2, f2 = x2, x1, f1
            x1 = b - gr * (b - a)
            f1 = f(x1)
        else:
            a, x1, f1 = x1, x2, f2
            x2 = a + gr * (b - a)
            f2 = f(x2)
    return (a + b) / 2, max(f1, f2)


def hinf_error(sys, red, *, dps: int = 40) -> float:
    """``sup_w sigma_max(G - G_r)`` in mp arithmetic (structured candidate search + golden refinement)."""
    with mp.workdps(dps):
        f, g = Modal(sys), Modal(red)
        disc = sys.is_discrete

        def gain(w) -> mp.mpf:
            z = _point(disc, w)
            return smax(f(z) - g(z))

        poles = [complex(x) for x in list(f.lam) + list(g.lam)]

        def loc(lam: complex) -> tuple[float, float]:
            return (float(np.angle(lam)), abs(1 - abs(lam))) if disc else (lam.imag, abs(lam.real))

        cands: set[float] = set()
        for lam in poles:
            th, dl = loc(lam)
            for k in (0, 0.3, -0.3, 1, -1, 3, -3, 10, -10, 100, -100):
                cands.add(float(th + k * max(dl, 1e-17)))
        if disc:
            cands.update(np.linspace(-np.pi, np.pi, 121).tolist())
        else:
            mags = np.abs(np.array(poles))
            mags = mags[mags > 0]
            lo, hi = (mags.min() / 1e3, mags.max() * 1e3) if mags.size else (1e-3, 1e3)
            grid = np.logspace(np.log10(lo), np.log10(hi), 120)
            cands.update(grid.tolist())
            cands.update((-grid).tolist())
            cands.add(0.0)
        vals = sorted(((gain(w), w) for w in cands), key=lambda t: -t[0])
        best = vals[0][0]
        for v, w in vals[:4]:
            span = 1e-3 * max(1.0, abs(w))
            for lam in poles:
                th, dl = loc(lam)
                if abs(th - w) < 20 * dl + 1e-12:
                    span = min(span, max(10 * dl, 1e-15))
            _, top = _golden(gain, w - span, w + span, 50)
            best = max(best, top, v)
        return float(best)


def peak(sys, w0: float, *, span: float, dps: int = 40, iters: int = 90) -> tuple[float, float]:
    """Frequency and gain of the local maximum of ``sigma_max(G)`` in ``[w0 - span, w0 + span]``."""
    with mp.workdps(dps):
        f = Modal(sys)
        w, g = _golden(lambda w: smax(f(_point(sys.is_discrete, w))), w0 - span, w0 + span, iters)
        return float(w), float(g)
