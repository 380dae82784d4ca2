"""Constructors: diagonal systems and random stable systems (for tests, benchmarks and tutorials)."""

from __future__ import annotations

import numbers

import numpy as np
import scipy.linalg as spla

from ssmred._typing import ArrayLike
from ssmred.errors import DimensionError
from ssmred.statespace import StateSpace, validate_dt

__all__ = ["from_diagonal", "random_stable"]


def from_diagonal(
    eigs: ArrayLike, B: ArrayLike, C: ArrayLike, D: ArrayLike | None = None, *, dt: float | None = None
) -> StateSpace:
    r"""The system :math:`(\mathrm{diag}(\lambda), B, C, D)`.

    Parameters
    ----------
    eigs
        Eigenvalues, 1-D of length ``n``.
    B
        Input matrix ``(n, m)``.
    C
        Output matrix ``(p, n)``.
    D
        Feedthrough ``(p, m)`` or ``None``.
    dt
        Time base.

    Returns
    -------
    StateSpace
        The diagonal system.

    Raises
    ------
    DimensionError
        If ``eigs`` is not 1-D or ``B``, ``C``, ``D`` do not fit ``n = len(eigs)``.

    Examples
    --------
    >>> from_diagonal([0.5, 0.25], [[1.0], [1.0]], [[1.0, 1.0]], dt=1.0).n_states
    2
    """
    lam = np.asarray(eigs)
    if lam.ndim != 1:
        raise DimensionError(f"eigs must be 1-D (the n eigenvalues); got shape {lam.shape}")
    return StateSpace(np.diag(lam), B, C, D, dt=dt)


def random_stable(
    n_states: int,
    n_inputs: int = 1,
    n_outputs: int = 1,
    *,
    dt: float | None = None,
    complex_: bool = False,
    rng: np.random.Generator | int | None = None,
    margin: float = 0.1,
    with_d: bool = False,
) -> StateSpace:
    """A random, dense, asymptotically stable system.

    The state matrix is a Gaussian matrix shifted (CT: ``max Re λ = -margin``) or scaled (DT: spectral
    radius ``1 - margin``).

    Parameters
    ----------
    n_states, n_inputs, n_outputs
        Dimensions.
    dt
        Time base.
    complex_
        Draw complex matrices.
    rng
        A ``numpy.random.Generator`` or a seed.
    margin
        Stability margin in ``(0, 1)``.
    with_d
        Draw a random feedthrough instead of zero.

    Returns
    -------
    StateSpace
        A stable system.

    Examples
    --------
    >>> random_stable(5, 2, 3, dt=1.0, rng=0).is_stable()
    True
    """
    for name, v in (("n_states", n_states), ("n_inputs", n_inputs), ("n_outputs", n_outputs)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
            raise ValueError(f"{name} must be a positive integer; got {v!r}")
    if not 0.0 < margin < 1.0:
        raise ValueError(f"margin must be in (0, 1); got {margin}")
    dt = validate_dt(dt)
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)

    def draw(*shape: int) -> np.ndarray:
        x = gen.standard_normal(shape)
        return x + 1j * gen.standard_normal(shape) if complex_ else x

    A = draw(n_states, n_states) / np.sqrt(n_states)
    ev = spla.eigvals(A)
    if dt is None:
        A = A - (np.max(ev.real) + margin) * np.eye(n_states)
    else:
        A = A * ((1.0 - margin) / np.max(np.abs(ev)))
    D = draw(n_outputs, n_inputs) if with_d else None
    return StateSpace(A, draw(n_states, n_inputs), draw(n_outputs, n_states), D, dt=dt)
