r"""Conversion between :class:`~ssmred_torch.LRU` layers and :class:`ssmred.StateSpace`.

The state-space system of a layer (SPEC §1) is the complex diagonal discrete-time system (``dt = 1``)

.. math::

    \Sigma = \big(\mathrm{diag}(\lambda),\ \tilde B = \mathrm{diag}(\gamma)(B_{re}+iB_{im}),\
    C = C_{re}+iC_{im},\ \mathrm{diag}(D)\big).

**One-step convention.** The layer computes :math:`x_k = \Lambda x_{k-1} + \tilde B u_k`,
:math:`y_k = \mathrm{Re}(C x_k) + D\odot u_k` (the input enters the state it is read from, as in
Orvieto et al.), whereas a :class:`~ssmred.StateSpace` means :math:`x_{k+1} = A x_k + B u_k`,
:math:`y_k = C x_k + D u_k`. Hence the layer's state is :math:`\Sigma`'s state one step ahead and

.. math::

    G_{\text{layer}}(z) = z\,\big(G_\Sigma(z) - D\big) + D,\qquad
    h^{\text{layer}}_k = \mathrm{Re}\,h^{\Sigma}_{k+1} + D\,\delta_k .

:math:`\Sigma` is what CompreSSM analyses and truncates (its HSVs are the published ones), and it keeps
the layer structure (diagonal real ``D``) under balanced truncation; since :math:`|z| = 1` on the unit
circle, :math:`\|G_{\text{layer}} - G_{\text{layer},r}\|_\infty = \|G_\Sigma - G_{\Sigma,r}\|_\infty`,
so every bound on :math:`\Sigma` holds verbatim for the layer. ``to_statespace(layer, exact=True)``
returns instead the realization :math:`(\Lambda, \Lambda\tilde B, C, \mathrm{diag}(D) + C\tilde B)` whose
transfer function *is* the layer's; its :meth:`~ssmred.StateSpace.to_real` is the layer's exact real
input/output system (``2n`` states), since the output :math:`\mathrm{Re}(Cx) + Du = \mathrm{Re}(Cx + Du)`
for real ``D``. The real output's error is bounded by the complex system's, :math:`|\mathrm{Re}\,v| \le |v|`.
"""

from __future__ import annotations

from ssmred._require import require

require("torch")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from ssmred.errors import DimensionError, NotStableError  # noqa: E402
from ssmred.statespace import StateSpace  # noqa: E402
from ssmred_torch.batched import diagonalize, lru_parameters_from_diagonal  # noqa: E402
from ssmred_torch.errors import DiagonalizationError  # noqa: E402
from ssmred_torch.lru import LRU  # noqa: E402

__all__ = ["from_statespace", "layer_matrices", "to_statespace"]


def layer_matrices(layer: LRU) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""The layer's complex128 system data on its device: :math:`(\lambda, \log\lambda, \tilde B, C)`.

    Differentiable (call under ``torch.no_grad()`` when not needed). Computed from the float64-cast
    parameters: :math:`\log\lambda = -e^{\nu} + i e^{\theta}`,
    :math:`\tilde B = \mathrm{diag}(e^{\gamma^{log}})(B_{re} + iB_{im})`.

    Parameters
    ----------
    layer
        An LRU layer.

    Returns
    -------
    tuple of torch.Tensor
        ``(lam, log_lam, B, C)`` with shapes ``(n,)``, ``(n,)``, ``(n, H)``, ``(H, n)``.

    Examples
    --------
    >>> lam, log_lam, B, C = layer_matrices(LRU(2, 3))
    >>> lam.dtype, B.shape
    (torch.complex128, torch.Size([3, 2]))
    """
    if not isinstance(layer, LRU):
        raise TypeError(f"layer must be an ssmred_torch.LRU; got {type(layer).__name__}")
    f64 = torch.float64
    log_lam = torch.complex(-torch.exp(layer.nu_log.to(f64)), torch.exp(layer.theta_log.to(f64)))
    lam = torch.exp(log_lam)
    gamma = torch.exp(layer.gamma_log.to(f64))
    B = gamma[:, None] * torch.complex(layer.B_re.to(f64), layer.B_im.to(f64))
    C = torch.complex(layer.C_re.to(f64), layer.C_im.to(f64))
    return lam, log_lam, B, C


def to_statespace(layer: LRU, *, exact: bool = False) -> StateSpace:
    r"""The complex :class:`ssmred.StateSpace` (``dt = 1``) of an LRU layer.

    Parameters
    ----------
    layer
        An LRU layer (any dtype/device; the matrices are copied to the host in float64/complex128).
    exact
        ``False`` (default): the system :math:`\Sigma = (\mathrm{diag}\lambda, \tilde B, C, \mathrm{diag} D)`
        of SPEC §1, the one CompreSSM analyses and truncates and :func:`from_statespace` inverts; its
        transfer function is the layer's up to the one-step advance
        :math:`G_{\text{layer}}(z) = z(G_\Sigma(z) - D) + D` (see the module docstring).
        ``True``: :math:`(\mathrm{diag}\lambda, \mathrm{diag}(\lambda)\tilde B, C, \mathrm{diag}D + C\tilde B)`,
        whose transfer function equals the layer's and whose ``.to_real()`` is the layer's exact real
        input/output system.

    Returns
    -------
    StateSpace
        A complex discrete-time system with ``layer.d_state`` states and ``layer.d_model`` inputs/outputs.

    Raises
    ------
    TypeError
        If ``layer`` is not an :class:`~ssmred_torch.LRU`.

    Examples
    --------
    >>> layer = LRU(4, 8, dtype=torch.float64)
    >>> sys = to_statespace(layer)
    >>> sys.n_states, sys.n_inputs, sys.dt, sys.is_stable()
    (8, 4, 1.0, True)
    >>> u = torch.zeros(1, 3, 4, dtype=torch.float64); u[0, 0, 1] = 1.0   # impulse on channel 1
    >>> h = to_statespace(layer, exact=True).to_real()
    >>> markov = [h.D[:, 1], (h.C @ h.B)[:, 1], (h.C @ h.A @ h.B)[:, 1]]
    >>> bool(np.allclose(layer(u)[0].detach().numpy(), np.stack(markov), rtol=1e-10, atol=1e-12))
    True
    """
    with torch.no_grad():
        lam, _, B, C = layer_matrices(layer)
        D = torch.diag(layer.D.detach().to(torch.float64)).to(torch.complex128)
        if exact:
            D = D + C @ B
            B = lam[:, None] * B
    return StateSpace(np.diag(lam.cpu().numpy()), B.cpu().numpy(), C.cpu().numpy(), D.cpu().numpy(), dt=1.0)


def _is_diagonal(M: np.ndarray) -> bool:
    return bool(np.count_nonzero(M - np.diag(np.diag(M))) == 0)


def from_statespace(sys: StateSpace, *, like: LRU, max_condition: float = 1e8) -> LRU:
    r"""A new LRU layer (``sys.n_states`` states) whose system :math:`\Sigma` (see :func:`to_statespace`) is ``sys``.

    A diagonal ``A`` is used as it is (order kept). Otherwise ``A`` is re-diagonalised,
    :math:`A = V\mathrm{diag}(\mu)V^{-1}`, :math:`B' = V^{-1}B`, :math:`C' = CV` (same transfer function),
    with each mode's input row and output column scaled to equal norms and the modes ordered by their
    own Hankel singular value (see :func:`ssmred_torch.batched.diagonalize`). Then (SPEC §4)
    :math:`\nu = \log(-\log|\mu|)`, :math:`\theta = \log(\arg\mu \bmod 2\pi)`,
    :math:`\gamma = \sqrt{1-|\mu|^2}`, stored :math:`B = B'/\gamma`, :math:`C = C'`,
    :math:`D = \mathrm{Re}\,\mathrm{diag}(D)`; the edge cases (phase 0, :math:`|\mu| \ge 1` from
    round-off, :math:`\mu = 0`) are those of :func:`ssmred_torch.batched.lru_parameters_from_diagonal`.

    The layer's output is :math:`y = \mathrm{Re}(\cdot)` of ``sys`` with the one-step convention of the
    module docstring, and ``to_statespace(from_statespace(sys, like=...))`` has the transfer function
    of ``sys`` (for a real ``sys`` the real part is the output itself).

    Parameters
    ----------
    sys
        A stable discrete-time system with ``n_inputs = n_outputs = like.d_model`` and a diagonal
        feedthrough (real or complex; only the real part of ``D`` acts on real inputs).
    like
        Template layer: the new layer takes its ``d_model``, dtype, device and initialisation ring.
    max_condition
        Largest accepted 2-norm condition number of the eigenvector matrix ``V``.

    Returns
    -------
    LRU
        A new layer; ``like`` is not modified.

    Raises
    ------
    TypeError
        If ``sys`` is not a StateSpace or ``like`` not an LRU.
    ValueError
        For a continuous-time system.
    DimensionError
        If the sizes do not match ``like`` or ``D`` is not diagonal.
    NotStableError
        If an eigenvalue lies outside the unit disc by more than round-off (``|mu| > 1 + 1e-8``).
    DiagonalizationError
        If ``A`` is defective or its eigenvectors are too ill-conditioned (``cond(V) > max_condition``).

    Examples
    --------
    >>> layer = LRU(4, 8, dtype=torch.float64)
    >>> back = from_statespace(to_statespace(layer), like=layer)
    >>> u = torch.randn(1, 16, 4, dtype=torch.float64)
    >>> torch.allclose(back(u), layer(u), rtol=1e-10, atol=1e-10)
    True
    """
    if not isinstance(sys, StateSpace):
        raise TypeError(f"sys must be a ssmred.StateSpace; got {type(sys).__name__}")
    if not isinstance(like, LRU):
        raise TypeError(f"like must be an ssmred_torch.LRU; got {type(like).__name__}")
    if not sys.is_discrete:
        raise ValueError("sys must be a discrete-time system (dt > 0): an LRU layer is a discrete recurrence")
    H = like.d_model
    if sys.n_inputs != H or sys.n_outputs != H:
        raise DimensionError(
            f"sys must have n_inputs = n_outputs = like.d_model = {H}; got n_inputs={sys.n_inputs}, "
            f"n_outputs={sys.n_outputs}"
        )
    D_real = np.real(sys.D)
    if not _is_diagonal(D_real):
        raise DimensionError("sys.D must be diagonal: an LRU layer has an elementwise feedthrough D * u")
    A = torch.from_numpy(np.array(sys.A, dtype=np.complex128))
    B = torch.from_numpy(np.array(sys.B, dtype=np.complex128))
    C = torch.from_numpy(np.array(sys.C, dtype=np.complex128))
    if _is_diagonal(sys.A):
        mu, Bd, Cd = torch.diagonal(A)[None], B[None], C[None]
    else:
        form = diagonalize(A[None], B[None], C[None])
        cond = float(form.cond[0])
        if not np.isfinite(cond) or cond > max_condition:
            raise DiagonalizationError(
                f"the state matrix is defective or nearly so: cond(V) = {cond:.3g} > max_condition = "
                f"{max_condition:.3g}; its diagonal realization would not reproduce the transfer function"
            )
        mu, Bd, Cd = form.mu, form.B, form.C
    dtype = like.D.dtype
    params, unstable = lru_parameters_from_diagonal(mu, Bd, Cd, dtype=dtype)
    if bool(unstable[0]):
        raise NotStableError(
            f"sys has an eigenvalue with |mu| = {float(mu.abs().max()):.12g} > 1: an LRU layer must be stable"
        )
    n = sys.n_states
    layer = LRU(
        H,
        n,
        r_min=like.r_min,
        r_max=like.r_max,
        max_phase=like.max_phase,
        dtype=dtype,
        device=like.D.device,
        generator=torch.Generator().manual_seed(0),  # values are overwritten; keep the global RNG untouched
    )
    values = {k: v[0] for k, v in params.items()}
    values["D"] = torch.as_tensor(np.diag(D_real).copy())
    layer.replace_parameters_(**values)
    return layer
