r"""Optimizer-state surgery after a layer was truncated in place.

The reduced layer keeps its :class:`torch.nn.Parameter` objects (only ``param.data`` changes shape), so
the optimizer object, its ``param_groups`` and any LR scheduler stay valid; only the per-parameter
state of the seven state-dependent LRU parameters (``nu_log``, ``theta_log``, ``gamma_log``,
``B_re``, ``B_im``, ``C_re``, ``C_im``) must be brought to the new shapes. ``D`` is unchanged.
Three policies, for Adam, AdamW and SGD with momentum:

``"reset"``
    Drop the state of the changed parameters; the optimizer re-initialises it at the next step
    (Adam restarts its bias correction for them). Works for any ``torch.optim.Optimizer``.
``"slice"``
    The published heuristic: keep the first ``r`` entries of every moment, in the *old* coordinates
    (rows of ``nu``, ``theta``, ``gamma``, ``B``; columns of ``C``), although the new state ``i`` is
    not the old state ``i``.
``"project"``
    Map the moments through the truncation. With the lifting :math:`x_{old} \approx M x_{new}` and
    restriction :math:`x_{new} = N x_{old}` (``N M = I_r``; :math:`N = W T_i`, :math:`M = T V_s` from
    the balancing projections and the re-diagonalisation), the new parameters satisfy
    :math:`\tilde B_{new} = N \tilde B_{old}` and :math:`C_{new} = C_{old} M`. The gradient of a loss
    with respect to the new parameters is the pull-back of the old one through the lifting
    :math:`B_s^{old} \approx K^+ B_s^{new}`, :math:`K^+ = \mathrm{diag}(1/\gamma_{old})\,M\,\mathrm{diag}(\gamma_{new})`
    (:math:`B_s = B_{re} + iB_{im}`, :math:`\tilde B = \mathrm{diag}(\gamma)B_s`) and
    :math:`C_{old} \approx C_{new} N`:

    .. math::

        g_B^{new} = (K^+)^H g_B^{old},\qquad g_C^{new} = g_C^{old} N^H,

    with :math:`g = g_{re} + i g_{im}` built from the gradients of the real and imaginary parts.
    First moments (Adam ``exp_avg``, SGD ``momentum_buffer``) are mapped by exactly these real-linear
    maps. Second moments (``exp_avg_sq``, ``max_exp_avg_sq``) are mapped by the entrywise squares of
    the same real-linear maps, e.g. for ``C`` with :math:`K = N^H`:
    :math:`v_{re}^{new} = v_{re}(\mathrm{Re}K)^{\circ 2} + v_{im}(\mathrm{Im}K)^{\circ 2}`,
    :math:`v_{im}^{new} = v_{re}(\mathrm{Im}K)^{\circ 2} + v_{im}(\mathrm{Re}K)^{\circ 2}` — exact if the
    gradient coordinates were uncorrelated, and always non-negative. The per-state parameters
    :math:`\nu, \theta, \gamma` have no linear map (the new eigenvalues are not functions of single old
    ones); their moments are convex combinations with weights
    :math:`w_{kj} = |N_{kj} M_{jk}| / \sum_j |N_{kj} M_{jk}|` — the participation of old mode ``j`` in new
    mode ``k`` (for a truncation that only selects modes this is exactly that selection). Adam's
    ``step`` counters are kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ssmred._require import require

require("torch")

import torch  # noqa: E402

from ssmred_torch.lru import LRU  # noqa: E402

__all__ = ["OPTIMIZER_POLICIES", "OptimizerPolicy", "TruncationMap", "update_optimizer_state"]

OptimizerPolicy = Literal["reset", "slice", "project"]
OPTIMIZER_POLICIES: tuple[str, ...] = ("reset", "slice", "project")

_FIRST_MOMENTS = ("exp_avg", "momentum_buffer")
_SECOND_MOMENTS = ("exp_avg_sq", "max_exp_avg_sq")
_PER_STATE = ("nu_log", "theta_log", "gamma_log")


@dataclass(frozen=True)
class TruncationMap:
    r"""How one layer's state was reduced: :math:`x_{new} = N x_{old}`, :math:`x_{old} \approx M x_{new}`.

    Attributes
    ----------
    layer
        The (already reduced) layer.
    n
        State size before.
    r
        State size after.
    N
        complex128 ``(r, n)`` (``None`` when not computed: only the "project" policy needs it).
    M
        complex128 ``(n, r)``, with ``N @ M = I_r`` (or ``None``).
    gamma_old
        :math:`\gamma` before the reduction, ``(n,)`` float64.
    gamma_new
        :math:`\gamma` after the reduction, ``(r,)`` float64.
    """

    layer: LRU
    n: int
    r: int
    N: torch.Tensor | None
    M: torch.Tensor | None
    gamma_old: torch.Tensor
    gamma_new: torch.Tensor


def _check_policy(policy: object) -> str:
    if not isinstance(policy, str) or policy not in OPTIMIZER_POLICIES:
        raise ValueError(
            f"optimizer_policy must be one of {', '.join(repr(p) for p in OPTIMIZER_POLICIES)}; got {policy!r}"
        )
    return policy


def check_optimizer(optimizer: torch.optim.Optimizer | None, policy: str) -> None:
    """Validate an optimizer / policy pair before any layer is touched.

    Parameters
    ----------
    optimizer
        The optimizer (or ``None``: nothing to update).
    policy
        ``"reset"``, ``"slice"`` or ``"project"``.

    Raises
    ------
    ValueError
        For an unknown policy.
    TypeError
        If ``optimizer`` is not a torch optimizer, or the policy needs Adam/AdamW/SGD and another
        optimizer is given.
    """
    _check_policy(policy)
    if optimizer is None:
        return
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch.optim.Optimizer; got {type(optimizer).__name__}")
    if policy != "reset" and not isinstance(optimizer, (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD)):
        raise TypeError(
            f"optimizer_policy={policy!r} supports torch.optim.Adam, AdamW and SGD; got {type(optimizer).__name__} "
            "(use optimizer_policy='reset' for other optimizers)"
        )


def _realify_left(K: torch.Tensor, re: torch.Tensor, im: torch.Tensor, second: bool) -> tuple[torch.Tensor, ...]:
    """``g -> K g`` on ``g = re + i im`` (first moments) or its entrywise-squared version (second)."""
    Kr, Ki = K.real, K.imag
    if second:
        Kr, Ki = Kr**2, Ki**2
        return Kr @ re + Ki @ im, Ki @ re + Kr @ im
    return Kr @ re - Ki @ im, Ki @ re + Kr @ im


def _realify_right(K: torch.Tensor, re: torch.Tensor, im: torch.Tensor, second: bool) -> tuple[torch.Tensor, ...]:
    """``g -> g K`` on ``g = re + i im`` (first moments) or its entrywise-squared version (second)."""
    Kr, Ki = K.real, K.imag
    if second:
        Kr, Ki = Kr**2, Ki**2
        return re @ Kr + im @ Ki, re @ Ki + im @ Kr
    return re @ Kr - im @ Ki, re @ Ki + im @ Kr


def _project_layer(optimizer: torch.optim.Optimizer, tmap: TruncationMap) -> None:
    if tmap.N is None or tmap.M is None:
        raise ValueError("the 'project' policy needs the truncation projections N and M of every layer")
    layer = tmap.layer
    params = {
        name: getattr(layer, name) for name in ("nu_log", "theta_log", "gamma_log", "B_re", "B_im", "C_re", "C_im")
    }
    states = {name: optimizer.state.get(p) for name, p in params.items()}
    f64 = torch.float64
    N, M = tmap.N, tmap.M
    weights = (N * M.transpose(0, 1)).abs()  # (r, n): |N_kj M_jk|
    weights = weights / weights.sum(-1, keepdim=True).clamp_min(1e-300)
    Kplus_H = ((M / tmap.gamma_old[:, None]) * tmap.gamma_new[None, :]).mH  # (r, n)
    N_H = N.mH  # (n, r)
    keys = set()
    for st in states.values():
        if st:
            keys |= {k for k, v in st.items() if isinstance(v, torch.Tensor) and k in _FIRST_MOMENTS + _SECOND_MOMENTS}
    for key in keys:
        second = key in _SECOND_MOMENTS
        for name in _PER_STATE:
            st = states[name]
            if st and isinstance(st.get(key), torch.Tensor):
                v = st[key]
                st[key] = (weights.to(v.device) @ v.to(f64)).to(v.dtype)
        for pair, left in ((("B_re", "B_im"), True), (("C_re", "C_im"), False)):
            s_re, s_im = states[pair[0]], states[pair[1]]
            t_re = s_re.get(key) if s_re else None
            t_im = s_im.get(key) if s_im else None
            if not isinstance(t_re, torch.Tensor) and not isinstance(t_im, torch.Tensor):
                continue
            ref = t_re if isinstance(t_re, torch.Tensor) else t_im
            assert ref is not None
            re = t_re.to(f64) if isinstance(t_re, torch.Tensor) else torch.zeros_like(ref, dtype=f64)
            im = t_im.to(f64) if isinstance(t_im, torch.Tensor) else torch.zeros_like(ref, dtype=f64)
            if left:
                new_re, new_im = _realify_left(Kplus_H, re, im, second)
            else:
                new_re, new_im = _realify_right(N_H, re, im, second)
            if isinstance(t_re, torch.Tensor):
                s_re[key] = new_re.to(t_re.dtype)  # type: ignore[index]
            if isinstance(t_im, torch.Tensor):
                s_im[key] = new_im.to(t_im.dtype)  # type: ignore[index]


def _slice_layer(optimizer: torch.optim.Optimizer, tmap: TruncationMap) -> None:
    layer, r = tmap.layer, tmap.r
    for name in ("nu_log", "theta_log", "gamma_log", "B_re", "B_im", "C_re", "C_im"):
        st = optimizer.state.get(getattr(layer, name))
        if not st:
            continue
        for key, v in list(st.items()):
            if key in _FIRST_MOMENTS + _SECOND_MOMENTS and isinstance(v, torch.Tensor):
                st[key] = (v[..., :r] if name.startswith("C") else v[:r]).clone()


def _reset_layer(optimizer: torch.optim.Optimizer, tmap: TruncationMap) -> None:
    for name in ("nu_log", "theta_log", "gamma_log", "B_re", "B_im", "C_re", "C_im"):
        optimizer.state.pop(getattr(tmap.layer, name), None)


def update_optimizer_state(
    optimizer: torch.optim.Optimizer, maps: list[TruncationMap], policy: OptimizerPolicy = "project"
) -> None:
    """Bring the optimizer state of truncated layers to their new shapes (see the module docstring).

    Parameters
    ----------
    optimizer
        The optimizer that holds the layers' parameters (same object before and after).
    maps
        One :class:`TruncationMap` per truncated layer.
    policy
        ``"reset"``, ``"slice"`` or ``"project"``.

    Returns
    -------
    None
        ``optimizer.state`` is updated in place.

    Raises
    ------
    ValueError
        For an unknown policy.
    TypeError
        For an unsupported optimizer (``"slice"``/``"project"`` need Adam, AdamW or SGD).

    Examples
    --------
    >>> from ssmred_torch import LRU, rank, reduce_model
    >>> layer = LRU(2, 8, dtype=torch.float64)
    >>> opt = torch.optim.Adam(layer.parameters())
    >>> layer(torch.randn(1, 4, 2, dtype=torch.float64)).sum().backward(); opt.step()
    >>> _ = reduce_model(layer, rank(3), optimizer=opt, optimizer_policy="project")
    >>> opt.state[layer.B_re]["exp_avg"].shape
    torch.Size([3, 2])
    """
    check_optimizer(optimizer, policy)
    surgery = {"reset": _reset_layer, "slice": _slice_layer, "project": _project_layer}[policy]
    with torch.no_grad():
        for tmap in maps:
            surgery(optimizer, tmap)
