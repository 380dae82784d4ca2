r"""Optimizer-state surgery after a layer was truncated in place.

The reduced layer keeps its :class:`torch.nn.Parameter` objects (only ``param.data`` changes shape), so
the optimizer object, its ``param_groups`` and any LR scheduler stay valid; only the per-parameter
state of the layer's state parameters (:meth:`~ssmred_torch.AbstractAdapter.state_parameters`,
e.g. the LRU's ``nu_log``, ``theta_log``, ``gamma_log``, ``B_re``, ``B_im``, ``C_re``, ``C_im``) must be
brought to the new shapes. Three policies, for Adam, AdamW and SGD with momentum:

``"reset"``
    Drop the state of the changed parameters; the optimizer re-initialises it at the next step
    (Adam restarts its bias correction for them). Works for any ``torch.optim.Optimizer``.
``"slice"``
    The published heuristic: keep the first ``r`` entries of every moment along the parameter's state
    axis, in the *old* coordinates, although the new state ``i`` is not the old state ``i``.
    A parameter whose sliced moments would not have its new shape (its state axis holds more than
    the states, e.g. Mamba's ``x_proj`` rows :math:`[\delta; B; C]`) has its state reset instead.
``"project"``
    Map the moments through the truncation (the adapter's
    :meth:`~ssmred_torch.AbstractAdapter.project_moments_`, built from the helpers here). For the LRU,
    with the lifting :math:`x_{old} \approx M x_{new}` and
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

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from ssmred._require import require

require("torch")

import torch  # noqa: E402

from ssmred_torch._adapter import StateMap, adapter_for  # noqa: E402

__all__ = [
    "OPTIMIZER_POLICIES",
    "OptimizerPolicy",
    "TruncationMap",
    "check_optimizer",
    "moment_states",
    "project_gain_scaled_",
    "project_pair_",
    "project_per_state_",
    "projections",
    "update_optimizer_state",
]

OptimizerPolicy = Literal["reset", "slice", "project"]
OPTIMIZER_POLICIES: tuple[str, ...] = ("reset", "slice", "project")
#: the map handed to the optimizer surgery (an alias kept for the name users know)
TruncationMap = StateMap

_FIRST_MOMENTS = ("exp_avg", "momentum_buffer")
_SECOND_MOMENTS = ("exp_avg_sq", "max_exp_avg_sq")
_MOMENTS = _FIRST_MOMENTS + _SECOND_MOMENTS

States = Mapping[str, "dict[str, Any] | None"]


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

    Examples
    --------
    >>> check_optimizer(None, "project")
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


# ---------------------------------------------------------------------------------------------- projection helpers
def _moment_keys(states: States) -> set[str]:
    keys: set[str] = set()
    for st in states.values():
        if st:
            keys |= {k for k, v in st.items() if isinstance(v, torch.Tensor) and k in _MOMENTS}
    return keys


def project_per_state_(states: States, names: Sequence[str], N: torch.Tensor, M: torch.Tensor) -> None:
    r"""Moments of per-state parameters (shape ``(n,)``) as convex combinations over the old states.

    Weights :math:`w_{kj} = |N_{kj}M_{jk}| / \sum_j |N_{kj}M_{jk}|`: the participation of old state ``j``
    in new state ``k`` (a truncation that only selects states gives exactly that selection).

    Parameters
    ----------
    states
        Parameter name to its optimizer state (``None`` or empty when it has none yet).
    names
        The per-state parameters to map.
    N, M
        Restriction ``(r, n)`` and lifting ``(n, r)``, complex.

    Examples
    --------
    >>> st = {"nu": {"exp_avg": torch.tensor([1.0, 2.0, 3.0])}}
    >>> N = torch.tensor([[0, 0, 1.0]], dtype=torch.complex128); M = N.mT
    >>> project_per_state_(st, ["nu"], N, M); st["nu"]["exp_avg"]
    tensor([3.])
    """
    weights = (N * M.transpose(0, 1)).abs()  # (r, n): |N_kj M_jk|
    weights = weights / weights.sum(-1, keepdim=True).clamp_min(1e-300)
    for key in _moment_keys(states):
        for name in names:
            st = states.get(name)
            if st and isinstance(st.get(key), torch.Tensor):
                v = st[key]
                st[key] = (weights.to(v.device) @ v.to(torch.float64)).to(v.dtype)


def _realify(
    K: torch.Tensor, re: torch.Tensor, im: torch.Tensor, *, left: bool, second: bool
) -> tuple[torch.Tensor, ...]:
    """``g -> K g`` (left) or ``g -> g K`` on ``g = re + i im``; second moments by the squared real maps."""
    Kr, Ki = K.real, K.imag
    if second:
        Kr, Ki = Kr**2, Ki**2
    if left:
        if second:
            return Kr @ re + Ki @ im, Ki @ re + Kr @ im
        return Kr @ re - Ki @ im, Ki @ re + Kr @ im
    if second:
        return re @ Kr + im @ Ki, re @ Ki + im @ Kr
    return re @ Kr - im @ Ki, re @ Ki + im @ Kr


def project_pair_(states: States, pair: tuple[str, str], K: torch.Tensor, *, left: bool) -> None:
    r"""Moments of a complex matrix stored as a real pair ``(re, im)``, mapped by ``g -> K g`` or ``g -> g K``.

    First moments are mapped exactly by the real-linear map; second moments by its entrywise square
    (exact for uncorrelated gradient coordinates, always non-negative).

    Parameters
    ----------
    states
        Parameter name to its optimizer state.
    pair
        Names of the real and imaginary parts.
    K
        The complex map.
    left
        ``True``: ``g -> K g`` (state axis 0); ``False``: ``g -> g K`` (state axis 1).

    Examples
    --------
    >>> st = {"re": {"exp_avg": torch.ones(2, 1)}, "im": {"exp_avg": torch.zeros(2, 1)}}
    >>> project_pair_(st, ("re", "im"), torch.tensor([[1.0, 1.0]], dtype=torch.complex128), left=True)
    >>> st["re"]["exp_avg"]
    tensor([[2.]])
    """
    s_re, s_im = states.get(pair[0]), states.get(pair[1])
    f64 = torch.float64
    for key in _moment_keys({k: v for k, v in states.items() if k in pair}):
        t_re = s_re.get(key) if s_re else None
        t_im = s_im.get(key) if s_im else None
        ref = t_re if isinstance(t_re, torch.Tensor) else t_im
        assert isinstance(ref, torch.Tensor)
        re = t_re.to(f64) if isinstance(t_re, torch.Tensor) else torch.zeros_like(ref, dtype=f64)
        im = t_im.to(f64) if isinstance(t_im, torch.Tensor) else torch.zeros_like(ref, dtype=f64)
        new_re, new_im = _realify(K.to(ref.device), re, im, left=left, second=key in _SECOND_MOMENTS)
        if isinstance(t_re, torch.Tensor):
            s_re[key] = new_re.to(t_re.dtype)  # type: ignore[index]
        if isinstance(t_im, torch.Tensor):
            s_im[key] = new_im.to(t_im.dtype)  # type: ignore[index]


def projections(state_map: StateMap) -> tuple[torch.Tensor, torch.Tensor]:
    """The restriction ``N`` and lifting ``M`` of a state map, which the moment projection needs.

    Parameters
    ----------
    state_map
        What the adapter's ``write_back_`` returned.

    Returns
    -------
    N, M : torch.Tensor
        ``state_map.N`` and ``state_map.M``.

    Raises
    ------
    ValueError
        If the map has no projections.
    """
    if state_map.N is None or state_map.M is None:
        raise ValueError("the 'project' policy needs the truncation projections N and M of every layer")
    return state_map.N, state_map.M


def moment_states(
    optimizer: torch.optim.Optimizer, layer: torch.nn.Module, names: Iterable[str]
) -> dict[str, dict[str, Any] | None]:
    """The optimizer state of each named parameter of ``layer`` (``None`` where it has none yet).

    Parameters
    ----------
    optimizer
        The optimizer.
    layer
        The layer.
    names
        Parameter names (as in ``layer.named_parameters()``).

    Returns
    -------
    dict
        Name to the (mutable) per-parameter state.
    """
    return {name: optimizer.state.get(layer.get_parameter(name)) for name in names}


def project_gain_scaled_(
    states: States,
    state_map: StateMap,
    *,
    per_state: Sequence[str],
    gains: tuple[str, str],
    B: tuple[str, str] = ("B_re", "B_im"),
    C: tuple[str, str] = ("C_re", "C_im"),
) -> None:
    r"""Project the moments of one diagonal MIMO system whose stored input matrix is scaled by input gains.

    The layer analyses :math:`\tilde B = \mathrm{diag}(g)B_s` (LRU: :math:`g = \gamma`; S5: the
    discretisation's :math:`\varphi`), so the lifting of the stored input matrix is
    :math:`B_s^{old} \approx K^+B_s^{new}`, :math:`K^+ = \mathrm{diag}(1/g_{old})M\,\mathrm{diag}(g_{new})`,
    and :math:`C_{old} \approx C_{new}N` (see the module docstring); the per-state parameters get the
    convex combinations of :func:`project_per_state_`.

    Parameters
    ----------
    states
        Parameter name to its optimizer state (:func:`moment_states`).
    state_map
        The layer's map (``G = 1``), with ``N``, ``M`` and the old and new gains in ``extra``.
    per_state
        The per-state parameters (shape ``(n,)``).
    gains
        The keys of the old and new gains in ``state_map.extra``.
    B, C
        The real and imaginary parts of the stored input ``(n, m)`` and output ``(p, n)`` matrices.

    Raises
    ------
    ValueError
        If the map has no projections.
    """
    N, M = (t[0] for t in projections(state_map))
    g_old, g_new = (state_map.extra[key].to(M.device) for key in gains)
    Kplus_H = ((M / g_old[:, None]) * g_new[None, :]).mH
    project_per_state_(states, per_state, N, M)
    project_pair_(states, B, Kplus_H, left=True)
    project_pair_(states, C, N.mH, left=False)


# ---------------------------------------------------------------------------------------------- the policies
def _state_params(smap: StateMap) -> dict[str, tuple[torch.nn.Parameter, int]]:
    adapter = adapter_for(smap.layer)
    if adapter is None:
        raise TypeError(f"{type(smap.layer).__name__} is not a registered SSM layer")
    params = dict(smap.layer.named_parameters())
    return {name: (params[name], axis) for name, axis in adapter.state_parameters(smap.layer).items()}


def _slice(optimizer: torch.optim.Optimizer, smap: StateMap) -> None:
    for param, axis in _state_params(smap).values():
        st = optimizer.state.get(param)
        new = {}
        for key, v in list((st or {}).items()):
            if key in _MOMENTS and isinstance(v, torch.Tensor):
                new[key] = v.narrow(axis, 0, smap.r).clone() if v.shape[axis] >= smap.r else v
        if any(v.shape != param.shape for v in new.values()):
            # the parameter's state axis is not a plain prefix (e.g. Mamba's x_proj rows [dt | B | C]):
            # its first r entries do not fit, so its state is reset
            optimizer.state.pop(param, None)
        elif st:
            st.update(new)


def _reset(optimizer: torch.optim.Optimizer, smap: StateMap) -> None:
    for param, _ in _state_params(smap).values():
        optimizer.state.pop(param, None)


def _project(optimizer: torch.optim.Optimizer, smap: StateMap) -> None:
    adapter = adapter_for(smap.layer)
    assert adapter is not None
    adapter.project_moments_(optimizer, smap.layer, smap)


def update_optimizer_state(
    optimizer: torch.optim.Optimizer, maps: Sequence[StateMap], policy: OptimizerPolicy = "project"
) -> None:
    """Bring the optimizer state of reduced layers to their new shapes (see the module docstring).

    Parameters
    ----------
    optimizer
        The optimizer that holds the layers' parameters (same object before and after).
    maps
        One :class:`~ssmred_torch.StateMap` per reduced layer.
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
        For an unsupported optimizer (``"slice"``/``"project"`` need Adam, AdamW or SGD) or a layer
        family without a moment projection under ``"project"``.

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
    if policy == "project":
        for smap in maps:
            adapter = adapter_for(smap.layer)
            if adapter is None or not adapter.supports_projection:
                raise TypeError(
                    f"optimizer_policy='project' is not available for {type(smap.layer).__name__} layers; "
                    "use 'reset' or 'slice'"
                )
    surgery = {"reset": _reset, "slice": _slice, "project": _project}[policy]
    with torch.no_grad():
        for smap in maps:
            surgery(optimizer, smap)
