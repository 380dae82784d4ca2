r"""Rebuilding an optax state for a reduced model (the JAX side of the torch adapter's optimizer surgery).

A reduction returns a new model whose state parameters (LRU: ``nu_log``, ``theta_log``, ``gamma_log``,
``B_re``, ``B_im``, ``C_re``, ``C_im``; S5: ``Lambda_re``, ``Lambda_im``, ``log_step``, ``B``, ``C``) have
fewer states; every leaf of the optax state that mirrors
one of them must get the new shape. The state's pytree structure does not change (only leaf shapes),
so every other leaf — step counts, schedules' state, moments of other parameters — is kept as it is.
A leaf belongs to a parameter when its key path ends with that parameter's path in the model
(``mu.blocks[0].lru.B_re`` in an Adam state); the key just before the parameter path names the
moment. Three policies, as in ``ssmred_torch``:

``"reset"``
    The leaves of the changed parameters are set to their initial value (``optimizer.init`` of the new
    parameters: zeros for Adam's moments). Works for any optax optimizer. Unlike torch, optax keeps
    one step count per transformation, not per parameter, so Adam's bias correction is *not*
    restarted for the reset moments; their first updates are therefore larger than Adam's usual
    unit-size steps (about :math:`(1-\beta_1)/\sqrt{1-\beta_2} \approx 3` times for the defaults) until
    the moments have filled up.
``"slice"``
    The published heuristic: keep the first ``r`` entries along the state axis (rows of
    ``nu, theta, gamma, B``; columns of ``C``), in the *old* coordinates. Any leaf with the parameter's
    shape is sliced.
``"project"``
    Map the moments through the truncation. With :math:`x_{new} = Nx_{old}`, :math:`x_{old} \approx Mx_{new}`
    (:class:`~ssmred_jax.TruncationMap`), first moments (optax ``mu``, ``trace``) are mapped by the
    pull-back of the gradient, :math:`g_B^{new} = (K^+)^Hg_B^{old}` with
    :math:`K^+ = \mathrm{diag}(1/\gamma_{old})M\mathrm{diag}(\gamma_{new})` and :math:`g_C^{new} = g_C^{old}N^H`
    (:math:`g = g_{re} + ig_{im}`); second moments (``nu``, ``nu_max``) by the entrywise squares of the
    same real-linear maps (non-negative); the per-state :math:`\nu, \theta, \gamma` moments by convex
    combinations with weights :math:`w_{kj} = |N_{kj}M_{jk}|/\sum_j|N_{kj}M_{jk}|`. For an S5 layer the
    input gains are :math:`\varphi` (``ssmred_torch.S5Adapter``), the per-state moments those of
    ``Lambda_re``, ``Lambda_im``, ``log_step``, and ``B``, ``C`` hold their real and imaginary parts on
    a trailing axis (``adapter.moment_layout``). Other moments raise ``TypeError`` (use ``"slice"`` or
    ``"reset"``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Literal

from ssmred._require import require

require("jax")
require("optax")

import equinox as eqx  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402
from jax.tree_util import GetAttrKey  # noqa: E402

from ssmred_jax._adapter import MomentLayout, ssm_layers  # noqa: E402
from ssmred_jax.layers.lru import LRU  # noqa: E402, F401 (used by the doctests)
from ssmred_jax.reduce import ReductionPlan, TruncationMap  # noqa: E402

__all__ = ["OPTIMIZER_POLICIES", "OptimizerPolicy", "check_policy", "rebuild_opt_state"]

OptimizerPolicy = Literal["reset", "slice", "project"]
OPTIMIZER_POLICIES: tuple[str, ...] = ("reset", "slice", "project")

_FIRST_MOMENTS = ("mu", "trace")
_SECOND_MOMENTS = ("nu", "nu_max")


def check_policy(policy: object) -> str:
    """Validate an optimizer policy.

    Parameters
    ----------
    policy
        ``"reset"``, ``"slice"`` or ``"project"``.

    Returns
    -------
    str
        The policy.

    Raises
    ------
    ValueError
        For anything else.

    Examples
    --------
    >>> check_policy("project")
    'project'
    """
    if not isinstance(policy, str) or policy not in OPTIMIZER_POLICIES:
        raise ValueError(
            f"optimizer_policy must be one of {', '.join(repr(p) for p in OPTIMIZER_POLICIES)}; got {policy!r}"
        )
    return policy


def check_optimizer(optimizer: object) -> None:
    """Raise ``TypeError`` unless ``optimizer`` is an optax ``GradientTransformation``."""
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(f"optimizer must be an optax.GradientTransformation; got {type(optimizer).__name__}")


def _template(optimizer: optax.GradientTransformation, opt_state: Any, new_model: Any, *, shapes_only: bool) -> Any:
    """``optimizer.init`` of the new model's parameters, with the pytree structure of ``opt_state``."""
    want = jax.tree_util.tree_structure(opt_state)
    init = (lambda p: jax.eval_shape(optimizer.init, p)) if shapes_only else optimizer.init
    for flt in (eqx.is_array, eqx.is_inexact_array):
        params = eqx.filter(new_model, flt)
        template = init(params)
        if jax.tree_util.tree_structure(template) == want:
            return template
    raise TypeError(
        "opt_state does not have the structure of optimizer.init(eqx.filter(model, eqx.is_array)) (nor of "
        "eqx.is_inexact_array): initialise the optimizer on the model's parameters filtered that way"
    )


def _match(path: tuple[Any, ...], maps: Sequence[TruncationMap], fields: Sequence[str]) -> tuple[int, str, Any] | None:
    """(map position, field, moment key) when ``path`` ends with a reduced layer's state parameter."""
    for pos, tmap in maps:  # longest layer paths first
        for name in fields:
            pattern = (*tmap.path, GetAttrKey(name))
            if len(path) >= len(pattern) and tuple(path[len(path) - len(pattern) :]) == pattern:
                kind = path[len(path) - len(pattern) - 1] if len(path) > len(pattern) else None
                return pos, name, kind
    return None


def _realify(K: jax.Array, re: jax.Array, im: jax.Array, *, left: bool, second: bool) -> tuple[jax.Array, jax.Array]:
    Kr, Ki = jnp.real(K), jnp.imag(K)
    if second:
        Kr, Ki = Kr**2, Ki**2
        if left:
            return Kr @ re + Ki @ im, Ki @ re + Kr @ im
        return re @ Kr + im @ Ki, re @ Ki + im @ Kr
    if left:
        return Kr @ re - Ki @ im, Ki @ re + Kr @ im
    return re @ Kr - im @ Ki, re @ Ki + im @ Kr


def _project(
    tmap: TruncationMap, moments: list[tuple[dict[str, jax.Array], bool]], layout: MomentLayout
) -> list[dict[str, jax.Array]]:
    """Project every moment of one layer in one compiled call (one program per layer shape)."""
    backend = jax.default_backend()
    leaves = tuple(m for m, _ in moments)
    seconds = tuple(second for _, second in moments)
    return list(
        _project_jitted(backend)(tmap.N, tmap.M, tmap.gamma_old, tmap.gamma_new, leaves, seconds=seconds, layout=layout)
    )


@functools.cache
def _project_jitted(backend: str) -> Any:
    from ssmred_jax.reduce import CPU_COMPILER_OPTIONS

    options = CPU_COMPILER_OPTIONS if backend == "cpu" else None
    return jax.jit(_project_all, static_argnames=("seconds", "layout"), compiler_options=options)


def _project_all(
    N: jax.Array,
    M: jax.Array,
    gamma_old: jax.Array,
    gamma_new: jax.Array,
    leaves: tuple[dict[str, jax.Array], ...],
    seconds: tuple[bool, ...],
    layout: MomentLayout,
) -> tuple[dict[str, jax.Array], ...]:
    return tuple(
        _project_one(N, M, gamma_old, gamma_new, m, second, layout) for m, second in zip(leaves, seconds, strict=True)
    )


def _project_one(
    N: jax.Array,
    M: jax.Array,
    gamma_old: jax.Array,
    gamma_new: jax.Array,
    leaves: dict[str, jax.Array],
    second: bool,
    layout: MomentLayout,
) -> dict[str, jax.Array]:
    f64 = jnp.float64
    weights = jnp.abs(N * M.T)  # (r, n): |N_kj M_jk|
    weights = weights / jnp.maximum(jnp.sum(weights, axis=-1, keepdims=True), 1e-300)
    Kplus_H = jnp.conj(((M / gamma_old[:, None].astype(M.dtype)) * gamma_new[None, :].astype(M.dtype)).T)
    N_H = jnp.conj(N.T)
    out: dict[str, jax.Array] = {}
    for name in layout.per_state:
        if name in leaves:
            v = leaves[name]
            out[name] = (weights @ v.astype(f64)).astype(v.dtype)
    for part, left in ((layout.input, True), (layout.output, False)):
        if isinstance(part, str):  # one field, real and imaginary parts on a trailing axis (S5's layout)
            v = leaves.get(part)
            if v is None:
                continue
            w = v.astype(f64)
            new_re, new_im = _realify(Kplus_H if left else N_H, w[..., 0], w[..., 1], left=left, second=second)
            out[part] = jnp.stack([new_re, new_im], axis=-1).astype(v.dtype)
            continue
        re_name, im_name = part
        t_re, t_im = leaves.get(re_name), leaves.get(im_name)
        if t_re is None and t_im is None:
            continue
        ref = t_re if t_re is not None else t_im
        assert ref is not None
        re = t_re.astype(f64) if t_re is not None else jnp.zeros(ref.shape, f64)
        im = t_im.astype(f64) if t_im is not None else jnp.zeros(ref.shape, f64)
        new_re, new_im = _realify(Kplus_H if left else N_H, re, im, left=left, second=second)
        if t_re is not None:
            out[re_name] = new_re.astype(t_re.dtype)
        if t_im is not None:
            out[im_name] = new_im.astype(t_im.dtype)
    return out


def rebuild_opt_state(
    optimizer: optax.GradientTransformation,
    opt_state: Any,
    new_model: Any,
    plan: ReductionPlan,
    *,
    policy: OptimizerPolicy = "project",
) -> Any:
    """An optax state for ``new_model``: the old ``opt_state`` with the reduced layers' leaves rebuilt.

    See the module docstring for the policies. The result has the same pytree structure as
    ``optimizer.init(eqx.filter(new_model, eqx.is_array))`` (or ``eqx.is_inexact_array``), so the
    caller's ``optimizer.update`` keeps working.

    Parameters
    ----------
    optimizer
        The optax optimizer (used for ``"reset"`` values and to check the new shapes).
    opt_state
        Its state for the model *before* the reduction.
    new_model
        The reduced model (``apply_reduction(model, plan)``).
    plan
        The :class:`~ssmred_jax.ReductionPlan` that produced ``new_model``.
    policy
        ``"reset"``, ``"slice"`` or ``"project"`` (default).

    Returns
    -------
    object
        The new optimizer state (a new pytree; ``opt_state`` is unchanged).

    Raises
    ------
    ValueError
        For an unknown policy.
    TypeError
        If ``optimizer`` is not an optax transformation, ``opt_state`` does not fit the model, or
        ``"project"`` meets a moment it cannot map.

    Examples
    --------
    >>> import equinox as eqx, optax
    >>> from ssmred.selection import rank
    >>> from ssmred_jax import apply_reduction, plan_reduction
    >>> model = [LRU(2, 8, key=jax.random.key(0)), LRU(2, 8, key=jax.random.key(1))]
    >>> opt = optax.adam(1e-3)
    >>> state = opt.init(eqx.filter(model, eqx.is_array))
    >>> plan = plan_reduction(model, rank(3))
    >>> new_model = apply_reduction(model, plan)
    >>> new_state = rebuild_opt_state(opt, state, new_model, plan, policy="project")
    >>> new_state[0].mu[0].B_re.shape
    (3, 2)
    """
    check_policy(policy)
    check_optimizer(optimizer)
    if not isinstance(plan, ReductionPlan):
        raise TypeError(f"plan must be a ReductionPlan; got {type(plan).__name__}")
    if not plan.maps:
        return opt_state
    layers = {s.index: s for s in ssm_layers(new_model)}
    for tmap in plan.maps:
        if tmap.index not in layers or layers[tmap.index].adapter.state_size(layers[tmap.index].layer) != tmap.r:
            raise ValueError("new_model is not the model produced by this plan (apply_reduction(model, plan))")
    fields: dict[int, Any] = {
        t.index: layers[t.index].adapter.state_parameters(layers[t.index].layer) for t in plan.maps
    }
    ordered = sorted(enumerate(plan.maps), key=lambda item: -len(item[1].path))
    template = _template(optimizer, opt_state, new_model, shapes_only=policy != "reset")
    old = jax.tree_util.tree_flatten_with_path(opt_state)
    new_leaves = jax.tree_util.tree_leaves(template)
    treedef = jax.tree_util.tree_structure(opt_state)
    out: list[Any] = [leaf for _, leaf in old[0]]
    groups: dict[tuple[Any, ...], dict[str, tuple[int, jax.Array]]] = {}
    for k, (path, leaf) in enumerate(old[0]):
        hit = None
        for pos, tmap in ordered:
            hit = _match(tuple(path), [(pos, tmap)], tuple(fields[tmap.index]))
            if hit is not None:
                break
        if hit is None:
            if tuple(jnp.shape(leaf)) != tuple(jnp.shape(new_leaves[k])):
                raise TypeError(
                    f"optimizer state leaf {jax.tree_util.keystr(path)} changes shape but does not belong to a "
                    "reduced layer's state parameter"
                )
            continue
        pos, name, kind = hit
        tmap = plan.maps[pos]
        axis = fields[tmap.index][name]
        if policy == "reset":
            out[k] = new_leaves[k]
        elif policy == "slice":
            if jnp.ndim(leaf) <= axis or jnp.shape(leaf)[axis] != tmap.n:
                raise TypeError(f"optimizer state leaf {jax.tree_util.keystr(path)} has no state axis to slice")
            out[k] = jax.lax.slice_in_dim(leaf, 0, tmap.r, axis=axis)
        else:
            kind_name = kind.name if isinstance(kind, GetAttrKey) else None
            if kind_name not in _FIRST_MOMENTS + _SECOND_MOMENTS:
                raise TypeError(
                    f"optimizer_policy='project' maps first moments ({', '.join(_FIRST_MOMENTS)}) and second "
                    f"moments ({', '.join(_SECOND_MOMENTS)}) of optax states; leaf {jax.tree_util.keystr(path)} "
                    "is neither (use optimizer_policy='slice' or 'reset')"
                )
            prefix = (pos, *tuple(path[: len(path) - len(tmap.path) - 1]))
            groups.setdefault(prefix, {})[name] = (k, leaf)
    if groups:
        by_layer: dict[int, list[tuple[Any, dict[str, tuple[int, jax.Array]]]]] = {}
        for prefix, members in groups.items():
            by_layer.setdefault(prefix[0], []).append((prefix[-1], members))
        with jax.enable_x64(True):
            for pos, entries in by_layer.items():
                moments = [
                    ({name: leaf for name, (_, leaf) in members.items()}, kind.name in _SECOND_MOMENTS)
                    for kind, members in entries
                ]
                layout = layers[plan.maps[pos].index].adapter.moment_layout(layers[plan.maps[pos].index].layer)
                for (_, members), projected in zip(entries, _project(plan.maps[pos], moments, layout), strict=True):
                    for name, (k, _) in members.items():
                        out[k] = projected[name]
    for k, (path, _) in enumerate(old[0]):
        if tuple(jnp.shape(out[k])) != tuple(jnp.shape(new_leaves[k])):
            raise TypeError(
                f"optimizer state leaf {jax.tree_util.keystr(path)}: rebuilt shape {tuple(jnp.shape(out[k]))} "
                f"differs from the optimizer's {tuple(jnp.shape(new_leaves[k]))}"
            )
    return jax.tree_util.tree_unflatten(treedef, out)
