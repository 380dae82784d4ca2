"""Hypothesis strategies for stable LTI systems: real/complex, continuous/discrete, MIMO.

Every system is built by the pure function :func:`make_system` from a drawn integer ``seed`` (turned
into a ``numpy.random.Generator``; no global RNG) and a handful of drawn parameters. The strategies
call :func:`hypothesis.note` with the exact ``make_system(...)`` call, so a falsifying example is
reproducible outside hypothesis by pasting that call.

Kinds of systems
----------------
``"dense"``
    Gaussian ``A``, shifted (CT) or scaled (DT) to a drawn stability margin.
``"nonnormal"``
    ``A = Q (diag(λ) + κ N) Qᴴ`` with a strictly upper-triangular Gaussian ``N`` and ``κ`` up to 10:
    strongly non-normal (large transient growth), eigenvalues known exactly.
``"scaled"``
    A dense system after the diagonal state scaling ``x = S x̃`` with ``S`` spanning up to three
    decades (``max S / min S`` up to 1e3): badly scaled matrices, same transfer function.
``"boundary"``
    Poles close to the stability boundary: DT spectral radius up to 0.99 (one pole exactly at
    modulus 0.99 half of the time); CT lightly damped poles with ``Re λ`` in ``[-0.1, -0.01]``.
    Normal ``A`` (block-diagonal or diagonal under a random orthogonal / unitary similarity).
``"diagonal"``
    Diagonal ``A`` (LRU / S4D / S5 style); complex eigenvalues for complex systems.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as spla
from hypothesis import note
from hypothesis import strategies as st

from ssmred import StateSpace

__all__ = [
    "KINDS",
    "diagonal_systems",
    "make_system",
    "random_unitary",
    "seeds",
    "systems",
    "well_conditioned",
]

KINDS: tuple[str, ...] = ("dense", "nonnormal", "scaled", "boundary", "diagonal")

seeds = st.integers(min_value=0, max_value=2**32 - 1)


def _draw(rng: np.random.Generator, shape: tuple[int, ...], complex_: bool) -> np.ndarray:
    x = rng.standard_normal(shape)
    if complex_:
        x = (x + 1j * rng.standard_normal(shape)) / np.sqrt(2.0)
    return x


def random_unitary(rng: np.random.Generator, n: int, complex_: bool) -> np.ndarray:
    """A Haar-like orthogonal (real) or unitary (complex) ``n x n`` matrix."""
    Q, R = spla.qr(_draw(rng, (n, n), complex_))
    d = np.diag(R)
    phase = np.where(d == 0, 1.0, d / np.where(d == 0, 1.0, np.abs(d)))
    return Q * phase[None, :]


def well_conditioned(rng: np.random.Generator, n: int, complex_: bool, *, cond: float = 10.0) -> np.ndarray:
    """A random invertible matrix ``U diag(s) V`` with singular values in ``[1, cond]`` (exact condition)."""
    s = np.exp(rng.uniform(0.0, np.log(cond), size=n))
    if n > 1:
        s[0], s[-1] = 1.0, cond
    return (random_unitary(rng, n, complex_) * s[None, :]) @ random_unitary(rng, n, complex_)


def _stable_eigs(rng: np.random.Generator, n: int, *, discrete: bool, complex_: bool, boundary: bool) -> np.ndarray:
    """``n`` stable eigenvalues; for real systems closed under conjugation (pairs first, then reals)."""
    if complex_:
        if discrete:
            lo, hi = (0.9, 0.99) if boundary else (0.05, 0.95)
            mod = np.sqrt(rng.uniform(lo**2, hi**2, size=n))
            if boundary and rng.random() < 0.5:
                mod[0] = 0.99
            return mod * np.exp(1j * rng.uniform(0.0, 2.0 * np.pi, size=n))
        lo, hi = (0.01, 0.1) if boundary else (0.1, 3.0)
        return -rng.uniform(lo, hi, size=n) + 1j * rng.uniform(-5.0, 5.0, size=n)
    n_pairs = rng.integers(0, n // 2 + 1)
    n_real = n - 2 * n_pairs
    if discrete:
        lo, hi = (0.9, 0.99) if boundary else (0.05, 0.95)
        mod = np.sqrt(rng.uniform(lo**2, hi**2, size=n_pairs + n_real))
        if boundary and rng.random() < 0.5:
            mod[0] = 0.99
        pairs = mod[:n_pairs] * np.exp(1j * rng.uniform(0.05, np.pi - 0.05, size=n_pairs))
        reals = mod[n_pairs:] * rng.choice([-1.0, 1.0], size=n_real)
    else:
        lo, hi = (0.01, 0.1) if boundary else (0.1, 3.0)
        pairs = -rng.uniform(lo, hi, size=n_pairs) + 1j * rng.uniform(0.3, 5.0, size=n_pairs)
        reals = -rng.uniform(lo, hi, size=n_real)
    return np.concatenate([pairs, reals.astype(np.complex128)])


def _real_block_diag(eigs: np.ndarray) -> np.ndarray:
    """Real block-diagonal matrix with the given eigenvalues (complex ones = one of each conj pair)."""
    blocks = []
    for lam in eigs:
        if lam.imag != 0.0:
            blocks.append(np.array([[lam.real, lam.imag], [-lam.imag, lam.real]]))
        else:
            blocks.append(np.array([[lam.real]]))
    return spla.block_diag(*blocks)


def make_system(
    seed: int,
    n: int,
    m: int,
    p: int,
    *,
    dt: float | None,
    complex_: bool,
    kind: str,
    with_d: bool = False,
) -> StateSpace:
    """Deterministically build a stable system from ``seed`` (see the module docstring for ``kind``).

    Parameters
    ----------
    seed
        Seed of the ``numpy.random.Generator``.
    n, m, p
        States, inputs, outputs.
    dt
        ``None`` (continuous) or the sampling time.
    complex_
        Complex matrices (``A``, ``B``, ``C`` and ``D``) instead of real ones.
    kind
        One of :data:`KINDS`.
    with_d
        Draw a nonzero feedthrough.

    Returns
    -------
    StateSpace
        An asymptotically stable system.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}; got {kind!r}")
    rng = np.random.default_rng(seed)
    discrete = dt is not None
    B = _draw(rng, (n, m), complex_)
    C = _draw(rng, (p, n), complex_)
    D = _draw(rng, (p, m), complex_) if with_d else None
    if kind in ("dense", "scaled"):
        A = _draw(rng, (n, n), complex_) / np.sqrt(n)
        ev = spla.eigvals(A)
        if discrete:
            A = A * (rng.uniform(0.3, 0.95) / np.max(np.abs(ev)))
        else:
            A = A - (np.max(ev.real) + rng.uniform(0.05, 1.0)) * np.eye(n)
        if kind == "scaled":
            s = 10.0 ** rng.uniform(-1.5, 1.5, size=n)
            A, B, C = A * s[None, :] / s[:, None], B / s[:, None], C * s[None, :]
    elif kind == "nonnormal":
        lam = _stable_eigs(rng, n, discrete=discrete, complex_=complex_, boundary=False)
        kappa = 10.0 ** rng.uniform(0.0, 1.0)
        core = _real_block_diag(lam) if not complex_ else np.diag(lam)
        # strictly upper-triangular coupling outside the (1x1 or 2x2) diagonal blocks
        upper = np.triu(np.ones((n, n), dtype=bool), k=1) & (core == 0)
        core = core + kappa * np.where(upper, _draw(rng, (n, n), complex_), 0.0)
        Q = random_unitary(rng, n, complex_)
        A = Q @ core @ Q.conj().T
    elif kind == "diagonal" and not complex_:
        A = np.diag(_real_eigs_only(rng, n, discrete=discrete))
    else:  # "boundary", or complex "diagonal"
        lam = _stable_eigs(rng, n, discrete=discrete, complex_=complex_, boundary=(kind == "boundary"))
        A = np.diag(lam) if complex_ else _real_block_diag(lam)
        if kind == "boundary" and rng.random() < 0.5:
            Q = random_unitary(rng, n, complex_)
            A = Q @ A @ Q.conj().T
    return StateSpace(A, B, C, D, dt=dt)


def _real_eigs_only(rng: np.random.Generator, n: int, *, discrete: bool) -> np.ndarray:
    if discrete:
        return rng.uniform(0.05, 0.99, size=n) * rng.choice([-1.0, 1.0], size=n)
    return -rng.uniform(0.05, 3.0, size=n)


@st.composite
def systems(
    draw: st.DrawFn,
    *,
    n: tuple[int, int] = (1, 8),
    m: tuple[int, int] = (1, 3),
    p: tuple[int, int] = (1, 3),
    discrete: bool | None = None,
    complex_: bool | None = None,
    kinds: tuple[str, ...] = KINDS,
    with_d: bool | None = None,
) -> StateSpace:
    """Stable systems; ``None`` for ``discrete`` / ``complex_`` / ``with_d`` means "draw it"."""
    seed = draw(seeds)
    n_ = draw(st.integers(*n))
    m_ = draw(st.integers(*m))
    p_ = draw(st.integers(*p))
    disc = draw(st.booleans()) if discrete is None else discrete
    dt = draw(st.sampled_from([1.0, 0.1])) if disc else None
    cplx = draw(st.booleans()) if complex_ is None else complex_
    kind = draw(st.sampled_from(kinds))
    wd = draw(st.booleans()) if with_d is None else with_d
    note(f"make_system({seed}, {n_}, {m_}, {p_}, dt={dt}, complex_={cplx}, kind={kind!r}, with_d={wd})")
    return make_system(seed, n_, m_, p_, dt=dt, complex_=cplx, kind=kind, with_d=wd)


def diagonal_systems(
    *,
    n: tuple[int, int] = (1, 8),
    m: tuple[int, int] = (1, 3),
    p: tuple[int, int] = (1, 3),
    discrete: bool | None = None,
    complex_: bool | None = None,
) -> st.SearchStrategy[StateSpace]:
    """Stable systems with an exactly diagonal ``A`` (the closed-form Gramian path)."""
    return systems(n=n, m=m, p=p, discrete=discrete, complex_=complex_, kinds=("diagonal",))
