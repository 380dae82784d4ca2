r"""Conversion between equinox SSM layers and :class:`ssmred.StateSpace` (through the registered adapters).

The conventions are those of ``ssmred_torch`` (so a layer converted in either framework gives the same
system). For an :class:`~ssmred_jax.LRU` the analysed system is the complex diagonal discrete-time
system (``dt = 1``)

.. math::

    \Sigma = \big(\mathrm{diag}(\lambda),\ \tilde B = \mathrm{diag}(\gamma)(B_{re}+iB_{im}),\
    C = C_{re}+iC_{im},\ \mathrm{diag}(D)\big).

**One-step convention.** The layer computes :math:`x_k = \Lambda x_{k-1} + \tilde B u_k`,
:math:`y_k = \mathrm{Re}(Cx_k) + D\odot u_k` (the input enters the state it is read from), whereas a
:class:`~ssmred.StateSpace` means :math:`x_{k+1} = Ax_k + Bu_k`, :math:`y_k = Cx_k + Du_k`. Hence

.. math::

    G_{\text{layer}}(z) = z\,\big(G_\Sigma(z) - D\big) + D,\qquad
    h^{\text{layer}}_k = \mathrm{Re}\,h^{\Sigma}_{k+1} + D\,\delta_k .

:math:`\Sigma` is what CompreSSM analyses and truncates; since :math:`|z| = 1` on the unit circle,
:math:`\|G_{\text{layer}} - G_{\text{layer},r}\|_\infty = \|G_\Sigma - G_{\Sigma,r}\|_\infty`, so every bound on
:math:`\Sigma` holds for the layer. ``to_statespace(layer, exact=True)`` returns
:math:`(\Lambda, \Lambda\tilde B, C, \mathrm{diag}(D) + C\tilde B)`, whose transfer function *is* the
layer's; its :meth:`~ssmred.StateSpace.to_real` is the layer's exact real input/output system
(``2n`` states).
"""

from __future__ import annotations

from typing import Any

from ssmred._require import require

require("jax")

from ssmred.statespace import StateSpace  # noqa: E402
from ssmred_jax._adapter import adapter_for  # noqa: E402
from ssmred_jax.layers.lru import LRU  # noqa: E402, F401 (used by the doctests)

__all__ = ["from_statespace", "to_statespace"]


def _adapter(layer: object, name: str) -> Any:
    adapter = adapter_for(layer)
    if adapter is None or isinstance(layer, type):
        raise TypeError(f"{name} must be a registered SSM layer (e.g. ssmred_jax.LRU); got {type(layer).__name__}")
    return adapter


def to_statespace(layer: Any, *, exact: bool = False) -> StateSpace:
    r"""The complex :class:`ssmred.StateSpace` (``dt = 1``) of an SSM layer (host copy, complex128).

    Parameters
    ----------
    layer
        An :class:`~ssmred_jax.LRU` (or another registered layer).
    exact
        ``False`` (default): the system :math:`\Sigma` of SPEC §1 that CompreSSM analyses and
        :func:`from_statespace` inverts (transfer function :math:`G_{\text{layer}} = z(G_\Sigma - D) + D`,
        see the module docstring). ``True``: a realization of the layer's own transfer function, whose
        ``.to_real()`` is the layer's exact real input/output system.

    Returns
    -------
    StateSpace
        A complex discrete-time system with ``d_state`` states and ``d_model`` inputs/outputs.

    Raises
    ------
    TypeError
        If ``layer`` is not a registered SSM layer.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, numpy as np
    >>> layer = LRU(2, 8, key=jax.random.key(0))
    >>> sys = to_statespace(layer)
    >>> sys.n_states, sys.n_inputs, sys.dt, sys.is_stable()
    (8, 2, 1.0, True)
    >>> u = jnp.zeros((10, 2)).at[0, 1].set(1.0)   # impulse on channel 1
    >>> h = to_statespace(layer, exact=True).to_real()
    >>> markov = np.stack([h.D[:, 1], (h.C @ h.B)[:, 1], (h.C @ h.A @ h.B)[:, 1]])
    >>> bool(np.allclose(np.asarray(layer(u))[:3], markov, rtol=1e-5, atol=1e-5))
    True
    """
    return _adapter(layer, "layer").to_statespace(layer, exact=exact)


def from_statespace(sys: StateSpace, *, like: Any, max_condition: float = 1e8) -> Any:
    r"""A new layer (``sys.n_states`` states) whose analysed system :math:`\Sigma` (:func:`to_statespace`) is ``sys``.

    A diagonal ``A`` is used as it is (order kept). Otherwise ``A`` is re-diagonalised,
    :math:`A = V\mathrm{diag}(\mu)V^{-1}`, :math:`B' = V^{-1}B`, :math:`C' = CV`, each mode's input row and
    output column scaled to equal norms and the modes ordered by their own Hankel singular value
    (:func:`ssmred_jax.kernels.diagonalize`). Then (SPEC §4) :math:`\nu = \log(-\log|\mu|)`,
    :math:`\theta = \log(\arg\mu \bmod 2\pi)`, :math:`\gamma = \sqrt{1-|\mu|^2}`, stored
    :math:`B = B'/\gamma`, :math:`C = C'`, :math:`D = \mathrm{Re}\,\mathrm{diag}(D)`, with the edge cases of
    :func:`ssmred_jax.kernels.lru_parameters_from_diagonal` (phase 0, :math:`|\mu| \ge 1` from round-off,
    :math:`\mu = 0`). These are the conventions of ``ssmred_torch.from_statespace``.

    Parameters
    ----------
    sys
        A stable discrete-time system with ``n_inputs = n_outputs = like.d_model`` and a diagonal
        feedthrough.
    like
        Template layer: the new layer takes its ``d_model`` and dtype.
    max_condition
        Largest accepted 1-norm condition number of the eigenvector matrix ``V``.

    Returns
    -------
    LRU
        A new layer (``like`` is unchanged, as always in JAX).

    Raises
    ------
    TypeError
        If ``sys`` is not a StateSpace or ``like`` not a registered layer.
    ValueError
        For a continuous-time system.
    DimensionError
        If the sizes do not match ``like`` or ``D`` is not diagonal.
    NotStableError
        If an eigenvalue lies outside the unit disc by more than round-off (``|mu| > 1 + 1e-8``).
    DiagonalizationError
        If ``A`` is defective or its eigenvectors too ill-conditioned (``cond(V) > max_condition``).

    Examples
    --------
    >>> import jax, jax.numpy as jnp
    >>> with jax.enable_x64(True):
    ...     layer = LRU(2, 8, dtype=jnp.float64, key=jax.random.key(0))
    ...     back = from_statespace(to_statespace(layer), like=layer)
    ...     u = jnp.ones((10, 2), dtype=jnp.float64)
    ...     print(bool(jnp.allclose(back(u), layer(u), rtol=1e-10, atol=1e-10)))
    True
    """
    return _adapter(like, "like").from_statespace(sys, like=like, max_condition=max_condition)
