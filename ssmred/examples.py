r"""Shipped benchmark systems, built from their published definitions (no data files, no download).

* :func:`slicot_ab09ad` — the 7-state, 2-input, 3-output continuous system of the SLICOT AB09AD /
  AB13AD documentation example (published HSVs ``[2.5139, 2.0846, 1.9178, 0.7666, 0.5473, 0.0253,
  0.0246]``).
* :func:`mass_spring_damper` — a chain of masses, springs and dampers (a classical model-reduction
  benchmark; SISO force-in / velocity-out), continuous time.
* :func:`lru_layer` — a randomly initialised LRU layer (Orvieto et al. 2023, SPEC §1): complex
  diagonal discrete system, MIMO.
"""

from __future__ import annotations

import numpy as np

from ssmred.statespace import StateSpace

__all__ = ["lru_layer", "mass_spring_damper", "slicot_ab09ad"]


def slicot_ab09ad() -> StateSpace:
    """The SLICOT AB09AD documentation example (n=7, m=2, p=3, continuous time).

    Returns
    -------
    StateSpace
        The system; its Hankel singular values are
        ``[2.5139, 2.0846, 1.9178, 0.7666, 0.5473, 0.0253, 0.0246]``.

    Examples
    --------
    >>> from ssmred import hankel_singular_values
    >>> hankel_singular_values(slicot_ab09ad()).round(4)
    array([2.5139, 2.0846, 1.9178, 0.7666, 0.5473, 0.0253, 0.0246])
    """
    A = np.array(
        [
            [-0.04165, 0.0, 4.92, -4.92, 0.0, 0.0, 0.0],
            [-5.21, -12.5, 0.0, 0.0, 0.0, 0.0, 0.0],
            [0.0, 3.33, -3.33, 0.0, 0.0, 0.0, 0.0],
            [0.545, 0.0, 0.0, 0.0, -0.545, 0.0, 0.0],
            [0.0, 0.0, 0.0, 4.92, -0.04165, 0.0, 4.92],
            [0.0, 0.0, 0.0, 0.0, -5.21, -12.5, 0.0],
            [0.0, 0.0, 0.0, 0.0, 0.0, 3.33, -3.33],
        ]
    )
    B = np.zeros((7, 2))
    B[1, 0] = B[5, 1] = 12.5
    C = np.zeros((3, 7))
    C[0, 0] = C[1, 3] = C[2, 4] = 1.0
    return StateSpace(A, B, C)


def mass_spring_damper(
    n_masses: int = 50, *, mass: float = 1.0, stiffness: float = 1.0, damping: float = 0.1
) -> StateSpace:
    r"""A chain of ``n_masses`` equal masses connected by springs and dampers (``2 n_masses`` states).

    :math:`M \ddot q + E \dot q + K q = b\,u`, :math:`y = b^T \dot q`, with :math:`K` and :math:`E`
    the tridiagonal chain matrices (the first mass attached to a wall) and the force acting on the
    first mass. State :math:`x = [q; \dot q]`.

    Parameters
    ----------
    n_masses
        Number of masses (``>= 1``).
    mass, stiffness, damping
        Positive physical constants.

    Returns
    -------
    StateSpace
        A stable, passive continuous-time SISO system.

    Examples
    --------
    >>> mass_spring_damper(10).is_stable()
    True
    """
    if int(n_masses) < 1:
        raise ValueError(f"n_masses must be >= 1; got {n_masses}")
    k = int(n_masses)
    lap = 2.0 * np.eye(k) - np.eye(k, k=1) - np.eye(k, k=-1)
    lap[-1, -1] = 1.0
    K = stiffness * lap
    E = damping * lap
    Minv = np.eye(k) / mass
    A = np.block([[np.zeros((k, k)), np.eye(k)], [-Minv @ K, -Minv @ E]])
    b = np.zeros((k, 1))
    b[0, 0] = 1.0
    B = np.vstack([np.zeros((k, 1)), Minv @ b])
    C = np.hstack([np.zeros((1, k)), b.T])
    return StateSpace(A, B, C)


def lru_layer(
    n_states: int = 64,
    n_channels: int = 16,
    *,
    r_min: float = 0.9,
    r_max: float = 0.999,
    max_phase: float = 2 * np.pi,
    rng: np.random.Generator | int | None = 0,
) -> StateSpace:
    r"""A freshly initialised LRU layer as a complex diagonal discrete system (dt = 1).

    :math:`\lambda_j = r_j e^{i\phi_j}` with :math:`r_j^2` uniform on :math:`[r_{min}^2, r_{max}^2]`,
    :math:`\phi_j` uniform on ``[0, max_phase]``; :math:`B = \mathrm{diag}(\gamma)(B_{re} + i B_{im})`,
    :math:`\gamma_j = \sqrt{1-|\lambda_j|^2}`, :math:`B_{re}, B_{im} \sim N(0, 1/(2H))`;
    :math:`C = C_{re} + i C_{im}`, entries :math:`N(0, 1/n)`; :math:`D \sim N(0, 1)` diagonal.
    The layer's real output is ``Re(C x) + D u``: use :meth:`StateSpace.to_real` for that system.

    Parameters
    ----------
    n_states
        State size ``n``.
    n_channels
        Model width ``H`` (inputs = outputs = ``H``).
    r_min, r_max
        Ring of eigenvalue moduli, ``0 <= r_min < r_max < 1``.
    max_phase
        Largest eigenvalue phase.
    rng
        Generator or seed.

    Returns
    -------
    StateSpace
        Complex diagonal system with ``n_states`` states and ``n_channels`` inputs/outputs.

    Examples
    --------
    >>> sys = lru_layer(8, 4, rng=0)
    >>> sys.is_complex, sys.is_discrete, sys.n_inputs
    (True, True, 4)
    """
    if not 0.0 <= r_min < r_max < 1.0:
        raise ValueError(f"need 0 <= r_min < r_max < 1; got r_min={r_min}, r_max={r_max}")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    n, H = int(n_states), int(n_channels)
    u1, u2 = gen.uniform(size=n), gen.uniform(size=n)
    radius = np.sqrt(u1 * (r_max**2 - r_min**2) + r_min**2)
    lam = radius * np.exp(1j * max_phase * u2)
    gamma = np.sqrt(1.0 - np.abs(lam) ** 2)
    B = (gen.normal(size=(n, H)) + 1j * gen.normal(size=(n, H))) / np.sqrt(2 * H)
    C = (gen.normal(size=(H, n)) + 1j * gen.normal(size=(H, n))) / np.sqrt(n)
    D = np.diag(gen.normal(size=H))
    return StateSpace(np.diag(lam), gamma[:, None] * B, C, D, dt=1.0)
