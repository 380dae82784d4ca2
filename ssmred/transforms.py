r"""Structure-changing transformations: conjugate augmentation, conjugate half-states, spectral splitting."""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
import scipy.linalg as spla

from ssmred.errors import DiagonalizationError
from ssmred.statespace import StateSpace

__all__ = ["SpectralSplit", "conj_augment", "half_states_from_real", "spectral_split"]


def conj_augment(sys: StateSpace) -> StateSpace:
    r"""Complex realization of the real-output system :math:`y = \mathrm{Re}(Cx + Du)` of dimension ``2n``.

    .. math::

        \Big(\mathrm{diag}(A, \bar A),\; \begin{bmatrix} B \\ \bar B\end{bmatrix},\;
        \tfrac12 [C,\ \bar C],\; \mathrm{Re}\,D\Big)

    It is similar to :meth:`StateSpace.to_real` (same transfer function, same Hankel singular
    values) and keeps a diagonal ``A`` diagonal, which the closed-form Gramians exploit.

    Parameters
    ----------
    sys
        A (complex) system; real inputs are assumed.

    Returns
    -------
    StateSpace
        Complex system with ``2 n_states`` states.

    Examples
    --------
    >>> aug = conj_augment(StateSpace([[0.5j]], [[1.0]], [[1.0]], dt=1.0))
    >>> aug.n_states, bool(np.allclose(aug.frequency_response([0.3]), aug.to_real().frequency_response([0.3])))
    (2, True)
    """
    A = spla.block_diag(sys.A, np.conj(sys.A))
    B = np.vstack([sys.B, np.conj(sys.B)])
    C = 0.5 * np.hstack([sys.C, np.conj(sys.C)])
    return StateSpace(A.astype(np.complex128), B, C, sys.D.real, dt=sys.dt)


class SpectralSplit(NamedTuple):
    """Additive decomposition ``G = G_inner + G_outer`` (``G_outer`` carries ``D``)."""

    inner: StateSpace
    outer: StateSpace | None


def spectral_split(sys: StateSpace, alpha: float) -> SpectralSplit:
    r"""Split :math:`G = G_1 + G_2` with the poles of :math:`G_1` in :math:`\mathrm{Re}\,\lambda < \alpha` (CT) or
    :math:`|\lambda| < \alpha` (DT) and the others in :math:`G_2`.

    Ordered Schur form :math:`A = Z\,[[A_{11}, A_{12}], [0, A_{22}]]\,Z^H`, then the Sylvester equation
    :math:`A_{11} X - X A_{22} + A_{12} = 0` block-diagonalises. This is SLICOT's alpha-stable
    decomposition (AB09MD reduces only :math:`G_1`).

    Parameters
    ----------
    sys
        The system.
    alpha
        Boundary: real part (CT) or modulus (DT).

    Returns
    -------
    SpectralSplit
        ``(inner, outer)``; ``inner`` has no ``D``; ``outer`` is ``None`` if all poles are inside.

    Raises
    ------
    ValueError
        If no pole lies inside the region.

    Examples
    --------
    >>> sys = StateSpace(np.diag([-1.0, -0.1]), [[1.0], [1.0]], [[1.0, 1.0]])
    >>> spectral_split(sys, -0.5).inner.poles().real
    array([-1.])
    """
    A = np.asarray(sys.A)
    real = not sys.is_complex
    if sys.is_discrete:

        def inside(x: complex, y: complex | None = None) -> bool:
            z = x if y is None else complex(x, y)
            return abs(z) < alpha
    else:

        def inside(x: complex, y: complex | None = None) -> bool:
            z = x if y is None else complex(x, y)
            return z.real < alpha

    if real:
        T, Z, k = spla.schur(A, output="real", sort=inside)
    else:
        T, Z, k = spla.schur(A.astype(np.complex128), output="complex", sort=inside)
    n = A.shape[0]
    if k == 0:
        raise ValueError(f"no pole of sys lies inside the region defined by alpha={alpha}")
    B = Z.conj().T @ sys.B
    C = sys.C @ Z
    if k == n:
        return SpectralSplit(StateSpace(T, B, C, dt=sys.dt), None)
    A11, A12, A22 = T[:k, :k], T[:k, k:], T[k:, k:]
    # A11 X - X A22 = -A12  ->  W = [[I, X], [0, I]] decouples: B1' = B1 - X B2, C2' = C1 X + C2
    X = spla.solve_sylvester(A11, -A22, -A12)
    B1 = B[:k] - X @ B[k:]
    C2 = C[:, :k] @ X + C[:, k:]
    inner = StateSpace(A11, B1, C[:, :k], dt=sys.dt)
    outer = StateSpace(A22, B[k:], C2, sys.D, dt=sys.dt)
    return SpectralSplit(inner, outer)


def half_states_from_real(
    A: np.ndarray, B: np.ndarray, C: np.ndarray, *, max_condition: float = 1e8
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""A conjugate half-state realization of a real system: :math:`G(z) = 2\,\mathrm{Re}`-part of ``(mu, B, C)``.

    With :math:`A = V\mathrm{diag}(\mu)V^{-1}` (LAPACK's real ``geev``: complex eigenvalues come in exact
    conjugate pairs with conjugate eigenvectors), :math:`B_d = V^{-1}B`, :math:`C_d = CV`, the modes are
    kept as follows: of each pair :math:`(\mu, \bar\mu)` the member with :math:`\mathrm{Im}\,\mu > 0`
    with its :math:`(b, c)`; a real pole with its :math:`b` and **half** its :math:`c`. Then for real
    inputs

    .. math::

        C(zI - A)^{-1}B = \sum_k \frac{c_k b_k^T}{z - \mu_k} + \frac{\bar c_k \bar b_k^T}{z - \bar\mu_k},

    i.e. the real system is the output :math:`2\,\mathrm{Re}(C_h x)` of the half-state system.

    Parameters
    ----------
    A
        Real state matrix ``(n, n)``.
    B
        Real input matrix ``(n, m)``.
    C
        Real output matrix ``(p, n)``.
    max_condition
        Largest accepted 1-norm condition number of the eigenvector matrix.

    Returns
    -------
    tuple of numpy.ndarray
        ``(mu, B_h, C_h)``, complex128, shapes ``(s,)``, ``(s, m)``, ``(p, s)`` with ``s`` the number of
        pairs plus the number of real poles.

    Raises
    ------
    DiagonalizationError
        If ``A`` is defective or its eigenvector matrix too ill-conditioned.

    Examples
    --------
    >>> A = np.array([[0.5, -0.2, 0.0], [0.2, 0.5, 0.0], [0.0, 0.0, -0.3]])
    >>> mu, Bh, Ch = half_states_from_real(A, np.ones((3, 1)), np.ones((1, 3)))
    >>> np.round(mu, 6).tolist()
    [(0.5+0.2j), (-0.3+0j)]
    """
    A = np.asarray(A, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    C = np.asarray(C, dtype=np.float64)
    mu, V = spla.eig(A)
    cond = np.inf
    if np.all(np.isfinite(V)):
        try:  # a nearly singular V is the case being diagnosed: its condition number is the report
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore", spla.LinAlgWarning)
                cond = float(spla.norm(V, 1) * spla.norm(spla.inv(V), 1))
        except spla.LinAlgError:
            cond = np.inf
        cond = cond if np.isfinite(cond) else np.inf
    if not np.isfinite(cond) or cond > max_condition:
        raise DiagonalizationError(
            f"the state matrix is defective or nearly so: cond(V) = {cond:.3g} > max_condition = {max_condition:.3g}"
        )
    Bd = spla.solve(V, B.astype(np.complex128))
    Cd = C.astype(np.complex128) @ V
    upper = mu.imag > 0
    real = mu.imag == 0
    if int(upper.sum()) != int((mu.imag < 0).sum()):  # cannot happen for LAPACK's real geev
        raise DiagonalizationError("the eigenvalues of the real state matrix are not closed under conjugation")
    keep = upper | real
    Ch = Cd[:, keep] * np.where(real[keep], 0.5, 1.0)[None, :]
    return mu[keep].copy(), Bd[keep].copy(), Ch
