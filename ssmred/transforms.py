r"""Structure-changing transformations: conjugate augmentation and spectral (alpha-stable) splitting."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.linalg as spla

from ssmred.statespace import StateSpace

__all__ = ["SpectralSplit", "conj_augment", "spectral_split"]


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
