r"""In-training compression of equinox SSM models (CompreSSM, SPEC §6): the batched, jitted reduction.

For every SSM layer of a model (any pytree; layers found by :func:`ssmred_jax.ssm_layers`):
Gramians in closed form, Hankel singular values :math:`\sigma_1 \ge \dots \ge \sigma_n` by the square-root
method, an order ``r`` from the selection mode, the gate (reduce only if :math:`r < \text{gate}\cdot n`),
balanced truncation to ``r`` and the re-diagonalised reduced system written back into a *new* layer
(SPEC §4). The model is never modified: :func:`reduce_model` returns a new model.

How it runs
-----------
1. **Analysis** — one ``jax.jit`` call for *all* layers (stacked per ``(n, H, dtype)`` group inside the
   call): Gramians, factors, SVD of :math:`L_o^HL_c`, on the default device, with 64-bit types enabled
   for the call (``jax.enable_x64``), whatever the model's dtype. Only the HSVs (and a finiteness
   flag per layer) come back to the host.
2. **Orders** on the host by :func:`ssmred.selection.select_orders` — the rules every ssmred adapter
   shares (:class:`~ssmred.selection.Tolerance`, :class:`~ssmred.selection.Fraction`,
   :class:`~ssmred.selection.Rank`, :class:`~ssmred.selection.Pragmatic`), each order capped at the
   numerical Hankel rank; then the gate.
3. **Truncation** — one ``jax.jit`` call for all layers to be reduced: SR projections,
   re-diagonalisation, the family's new parameters (``adapter.parameters_from_modes``: LRU, S5) in
   the layer's dtype, the checks (finite, stable,
   conditioned) and the maps the optimizer surgery needs. The orders are *traced* arguments: each
   member is truncated in arrays of its static size ``n`` (the reduced system in the leading block,
   decoupled padding elsewhere, :func:`ssmred_jax.kernels.truncate_masked` and
   :func:`~ssmred_jax.kernels.diagonalize` with orders), so all layers of a group share one batched
   eigendecomposition and one compiled program serves every set of orders; the leading ``r`` states
   of each layer are then cut out by a small jitted slice.

Both calls are traced once per set of layer shapes: the first reduction of a model pays the
compilation, any later one with the same shapes (whatever the orders) does not. In training every
reduction changes the shapes, so each attempt compiles the two programs once.

Error bound: each reduced layer's complex transfer function satisfies
:math:`\|G - G_r\|_\infty \le 2\sum_{i>r}\sigma_i`, and so does its real output map for the LRU
(:math:`|\mathrm{Re}\,v| \le |v|`); a ``conj_sym`` S5 layer reads :math:`2\,\mathrm{Re}(\tilde Cx)`, so its
reported bound is twice that (``adapter.output_factor``), as in ``ssmred_torch``.

The typed results (:class:`LayerReport`, :class:`ReductionReport`, :class:`TruncationMap`,
:class:`ReductionPlan`) are :mod:`ssmred_jax.reports`'s, re-exported here.
"""

from __future__ import annotations

import functools
import math
import time
import warnings
from typing import Any

from ssmred._require import require

require("jax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax import lax  # noqa: E402

from ssmred.bounds import bt_error_bounds  # noqa: E402
from ssmred.selection import Rank, SelectionMode, check_gate, check_mode, select_orders  # noqa: E402
from ssmred_jax import kernels  # noqa: E402
from ssmred_jax._adapter import AbstractAdapter, SSMLayer, replace_layers, ssm_layers  # noqa: E402
from ssmred_jax.errors import ReductionWarning  # noqa: E402
from ssmred_jax.layers.lru import LRU  # noqa: E402, F401 (used by the doctests)
from ssmred_jax.reports import LayerReport as LayerReport  # noqa: E402
from ssmred_jax.reports import ReductionPlan as ReductionPlan  # noqa: E402
from ssmred_jax.reports import ReductionReport as ReductionReport  # noqa: E402
from ssmred_jax.reports import TruncationMap as TruncationMap  # noqa: E402

__all__ = [
    "LayerReport",
    "ReductionPlan",
    "ReductionReport",
    "TruncationMap",
    "apply_reduction",
    "plan_reduction",
    "reduce_model",
]


# ---------------------------------------------------------------------------------------------- jitted calls
def _finite(x: jax.Array, axes: tuple[int, ...]) -> jax.Array:
    return jnp.all(jnp.isfinite(x), axis=axes)


#: XLA options for the two reduction programs on the CPU backend. They are compiled again for every
#: reduction during training (the shapes change), their run time is spent in LAPACK/BLAS calls, and
#: without LLVM's optimisation of the glue code they compiled ~40 % faster (CPU time, small shapes)
#: with no measurable change in run time at n = 384 (benchmarks/jax_reduction.py).
CPU_COMPILER_OPTIONS: dict[str, Any] = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


@functools.cache
def _jitted(name: str, backend: str) -> Any:
    fn, static = {
        "analyse": (_analyse_impl, ("adapters",)),
        "truncate": (_truncate_impl, ("groups", "dtype_names", "adapters")),
    }[name]
    options = CPU_COMPILER_OPTIONS if backend == "cpu" else None
    return jax.jit(fn, static_argnames=static, compiler_options=options)


def _analyse(groups: tuple[tuple[Any, ...], ...], adapters: tuple[AbstractAdapter[Any], ...]) -> list[Any]:
    return _jitted("analyse", jax.default_backend())(groups, adapters=adapters)


def _truncate(
    analysis: list[Any],
    orders: tuple[jax.Array, ...],
    layers: tuple[tuple[Any, ...], ...],
    groups: tuple[int, ...],
    dtype_names: tuple[str, ...],
    adapters: tuple[AbstractAdapter[Any], ...],
) -> list[Any]:
    return _jitted("truncate", jax.default_backend())(
        analysis, orders, layers, groups=groups, dtype_names=dtype_names, adapters=adapters
    )


def _analyse_impl(groups: tuple[tuple[Any, ...], ...], adapters: tuple[AbstractAdapter[Any], ...]) -> list[Any]:
    """All groups of layers in one call: stacked systems, Hankel SVDs and finiteness flags."""
    out = []
    for layers, adapter in zip(groups, adapters, strict=True):
        stacked = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *layers)
        log_lam, B, C = jax.vmap(adapter.systems)(stacked)
        n, m, p = log_lam.shape[-1], B.shape[-1], C.shape[-2]
        lam = jnp.exp(log_lam)
        finite = _finite(B, (1, 2)) & _finite(C, (1, 2)) & _finite(log_lam, (1,)) & jnp.all(jnp.abs(lam) < 1, axis=-1)
        # keep bad members out of the factorisations (they are refused on the host): a harmless system
        log_lam_s = jnp.where(finite[:, None], log_lam, -1.0 + 0.0j)
        lam_s = jnp.exp(log_lam_s)
        B_s = jnp.where(finite[:, None, None], B, jnp.eye(n, m, dtype=B.dtype)[None])
        C_s = jnp.where(finite[:, None, None], C, jnp.eye(p, n, dtype=C.dtype)[None])
        svd = kernels.hankel_svd_diagonal(lam_s, B_s, C_s, log_lam=log_lam_s)
        finite = finite & _finite(svd.hsv, (1,))
        out.append((lam_s, B_s, C_s, svd, finite))
    return out


def _state_mask(keep: jax.Array, ndim: int, axis: int) -> jax.Array:
    """``keep`` ``(G, n)`` broadcastable to a batched parameter whose state axis is ``axis`` (without the batch)."""
    shape = [keep.shape[0]] + [1] * (ndim - 1)
    shape[axis + 1] = keep.shape[1]
    return keep.reshape(shape)


def _truncate_impl(
    analysis: list[Any],
    orders: tuple[jax.Array, ...],
    layers: tuple[tuple[Any, ...], ...],
    groups: tuple[int, ...],
    dtype_names: tuple[str, ...],
    adapters: tuple[AbstractAdapter[Any], ...],
) -> list[Any]:
    """Every member of the given groups in one call, each to its own order (traced: shapes stay static).

    Returns per group: the new parameters in the layer dtype (full size ``n``, the leading ``r`` states
    valid), finiteness / stability flags, condition numbers and the truncation maps.
    """
    out = []
    for g, r, members, dtype_name, adapter in zip(groups, orders, layers, dtype_names, adapters, strict=True):
        lam, B, C, svd, _ = analysis[g]
        n = lam.shape[-1]
        A, B_r, C_r, T, Ti = kernels.truncate_masked(lam, B, C, svd, r)
        form = kernels.diagonalize(A, B_r, C_r, r=r)
        dtype = jnp.dtype(dtype_name)
        stacked = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *members)
        data = jax.vmap(adapter.truncation_data)(stacked)
        params, unstable, gain = adapter.parameters_from_modes(
            members[0], data, form.mu, form.B, form.C, dtype=dtype, r=r
        )
        keep = jnp.arange(n, dtype=jnp.int32)[None, :] < r[:, None]
        axes = adapter.state_parameters(members[0])
        finite = []
        for name, v in params.items():
            mask = _state_mask(keep, v.ndim, axes[name])
            finite.append(jnp.all(jnp.where(mask, jnp.isfinite(v), True), axis=tuple(range(1, v.ndim))))
        ok = jnp.stack(finite).all(axis=0)
        cast = {k: v.astype(dtype) for k, v in params.items()}
        maps = (form.W @ Ti, T @ form.V, gain)
        out.append((cast, ok, unstable, form.cond, maps))
    return out


@functools.partial(jax.jit, static_argnames=("r", "axes"))
def _member(
    result: Any, k: jax.Array, r: int, axes: tuple[tuple[str, int], ...]
) -> tuple[dict[str, jax.Array], tuple[jax.Array, ...]]:
    """Member ``k``'s leading ``r`` states of a :func:`_truncate` group result (one small program per ``r``)."""
    cast, _, _, _, (N, M, gain_new) = result

    def take(x: jax.Array) -> jax.Array:
        return lax.dynamic_index_in_dim(x, k, axis=0, keepdims=False)

    where = dict(axes)
    params = {name: lax.slice_in_dim(take(v), 0, r, axis=where[name]) for name, v in cast.items()}
    return params, (take(N)[:r, :], take(M)[:, :r], take(gain_new)[:r])


# ---------------------------------------------------------------------------------------------- planning
def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64, copy=True)
    a.setflags(write=False)
    return a


def _refused(
    name: str, n: int, r: int, hsv: np.ndarray, message: str, bound: float = math.nan, cond: float = math.nan
) -> LayerReport:
    return LayerReport(name, n, r, n, "refused", hsv, bound, message, cond)


def _orders(mode: SelectionMode, hsvs: list[np.ndarray], usable: list[bool]) -> list[int]:
    """Orders for every layer by the shared host rules (refused layers are left out of the rules)."""
    keep = [i for i, ok in enumerate(usable) if ok]
    sub_mode = mode
    if isinstance(mode, Rank) and isinstance(mode.r, tuple):
        if len(mode.r) != len(hsvs):
            raise ValueError(f"rank(r) has {len(mode.r)} entries but the model has {len(hsvs)} SSM layers")
        sub_mode = Rank(r=tuple(mode.r[i] for i in keep)) if keep else mode
    if isinstance(mode, Rank) and mode.total is not None and mode.total < len(hsvs):
        raise ValueError(
            f"rank(total={mode.total}) is smaller than the number of SSM layers ({len(hsvs)}): one state each"
        )
    orders = [h.size for h in hsvs]
    if keep:
        for i, r in zip(keep, select_orders(sub_mode, [hsvs[i] for i in keep]), strict=True):
            orders[i] = r
    return orders


def plan_reduction(model: Any, mode: SelectionMode, *, gate: float = 0.95, max_condition: float = 1e8) -> ReductionPlan:
    r"""Analyse every SSM layer of ``model`` and compute its reduction, without changing anything.

    See the module docstring for the three steps (jitted analysis of all layers, host orders by
    :func:`ssmred.selection.select_orders`, jitted truncation). A layer whose parameters or Gramians are
    not finite, whose Hankel operator is zero, or whose reduced system is not finite, unstable or
    not diagonalisable (``cond(V) > max_condition``) is refused: it stays as it is, is reported with
    ``status="refused"`` and a :class:`~ssmred_jax.ReductionWarning` is issued.

    Parameters
    ----------
    model
        Any pytree containing :class:`~ssmred_jax.LRU` / :class:`~ssmred_jax.S5` layers (or a bare layer). All
        arrays on one device.
    mode
        A selection mode of :mod:`ssmred.selection` (:func:`~ssmred.selection.tolerance`,
        :func:`~ssmred.selection.fraction`, :func:`~ssmred.selection.rank`,
        :func:`~ssmred.selection.pragmatic`, which acts as a fraction here).
    gate
        Reduce a layer only if :math:`r < \text{gate}\cdot n` (published: 0.95).
    max_condition
        Largest accepted condition number of the eigenvector matrix of a reduced state matrix.

    Returns
    -------
    ReductionPlan
        The report, the new layers and the truncation maps.

    Raises
    ------
    TypeError
        For an invalid mode, or a model of traced arrays (inside ``jax.jit``: the orders are host
        decisions and the new arrays have new shapes).
    ValueError
        For an invalid gate or ``max_condition``, or a ``rank`` mode that does not fit the model.

    Warns
    -----
    ReductionWarning
        For every refused layer.

    Examples
    --------
    >>> from ssmred.selection import rank
    >>> model = [LRU(2, 8, key=jax.random.key(0)), LRU(2, 8, key=jax.random.key(1))]
    >>> plan = plan_reduction(model, rank(3))
    >>> plan.report.sizes_after, sorted(plan.layers), model[0].d_state
    ((3, 3), [0, 1], 8)
    """
    t0 = time.perf_counter()
    check_mode(mode)
    gate = check_gate(gate)
    if isinstance(max_condition, bool) or not (float(max_condition) >= 1.0):
        raise ValueError(f"max_condition must be a float >= 1; got {max_condition!r}")
    found = ssm_layers(model)
    if not found:
        return ReductionPlan(ReductionReport((), time.perf_counter() - t0))
    if any(isinstance(leaf, jax.core.Tracer) for s in found for leaf in jax.tree_util.tree_leaves(s.layer)):
        raise TypeError(
            "the model holds traced arrays: a reduction decides the orders on the host and returns arrays of new "
            "shapes, so call plan_reduction / reduce_model outside jax.jit, jax.vmap and jax.grad"
        )
    # ---- groups: one stacked problem per (family, n, m, p, dtype, static settings such as S5's discretization)
    groups: dict[tuple[Any, ...], list[int]] = {}
    for i, s in enumerate(found):
        key = (
            type(s.adapter),
            s.adapter.state_size(s.layer),
            _shapes(s),
            str(_dtype(s)),
            jax.tree_util.tree_structure(s.layer),
        )
        groups.setdefault(key, []).append(i)
    keys = list(groups)
    with jax.enable_x64(True):
        analysis = _analyse(
            tuple(tuple(found[i].layer for i in groups[k]) for k in keys),
            tuple(found[groups[k][0]].adapter for k in keys),
        )
        host = jax.device_get([(a[3].hsv, a[4]) for a in analysis])
        hsvs: list[np.ndarray] = [np.empty(0)] * len(found)
        usable = [False] * len(found)
        where: list[tuple[int, int]] = [(0, 0)] * len(found)
        for g, k in enumerate(keys):
            for j, i in enumerate(groups[k]):
                hsvs[i] = _frozen(host[g][0][j])
                usable[i] = bool(host[g][1][j])
                where[i] = (g, j)
        orders = _orders(mode, hsvs, usable)
        reports: list[LayerReport | None] = [None] * len(found)
        todo: dict[tuple[int, int], list[int]] = {}
        for i, s in enumerate(found):
            n, r, hsv = hsvs[i].size, orders[i], hsvs[i]
            if not usable[i]:
                reports[i] = _refused(s.name, n, r, hsv, "non-finite or unstable layer parameters / Gramians")
                continue
            bound = s.adapter.output_factor(s.layer) * float(bt_error_bounds(hsv)[r])
            if hsv[0] == 0.0:
                reports[i] = _refused(s.name, n, r, hsv, "the Hankel operator is zero (B = 0 or C = 0)", bound)
            elif r >= gate * n:
                reports[i] = LayerReport(s.name, n, r, n, "gated", hsv, bound)
            else:
                todo.setdefault((where[i][0], r), []).append(i)
        new_layers: dict[int, Any] = {}
        maps: list[TruncationMap] = []
        if todo:
            todo_groups = tuple(sorted({g for g, _ in todo}))
            orders_in = []
            for g in todo_groups:
                r_g = np.ones(len(groups[keys[g]]), dtype=np.int32)  # members not reduced: a cheap dummy order
                for (gg, r), members in todo.items():
                    if gg == g:
                        r_g[[where[i][1] for i in members]] = r
                orders_in.append(jnp.asarray(r_g))
            results = _truncate(
                analysis,
                tuple(orders_in),
                tuple(tuple(found[i].layer for i in groups[keys[g]]) for g in todo_groups),
                todo_groups,
                tuple(keys[g][3] for g in todo_groups),
                tuple(found[groups[keys[g]][0]].adapter for g in todo_groups),
            )
            checks = jax.device_get([(res[1], res[2], res[3]) for res in results])
            position = {g: t for t, g in enumerate(todo_groups)}
            for (g, r), members in todo.items():
                res = results[position[g]]
                ok, unstable, cond = checks[position[g]]
                for i in members:
                    s, k = found[i], where[i][1]
                    n, hsv = hsvs[i].size, hsvs[i]
                    bound = s.adapter.output_factor(s.layer) * float(bt_error_bounds(hsv)[r])
                    c = float(cond[k])
                    problem = None
                    if not bool(ok[k]):
                        problem = "the reduced parameters are not finite"
                    elif bool(unstable[k]):
                        problem = "the reduced system is unstable (|mu| > 1 beyond round-off)"
                    elif not math.isfinite(c) or c > max_condition:
                        problem = (
                            f"the reduced state matrix is (nearly) defective: cond(V) = {c:.3g} > {max_condition:.3g}"
                        )
                    if problem is not None:
                        reports[i] = _refused(s.name, n, r, hsv, problem, bound, c)
                        continue
                    axes = tuple(sorted(s.adapter.state_parameters(s.layer).items()))
                    params, (N, M, gamma_new) = _member(res, jnp.asarray(k), r, axes)
                    new_layers[s.index] = s.adapter.write_back(s.layer, params)
                    gamma_old = s.adapter.input_gain(s.layer)
                    maps.append(TruncationMap(s.index, s.path, n, r, N, M, gamma_old, gamma_new))
                    reports[i] = LayerReport(s.name, n, r, r, "reduced", hsv, bound, None, c)
    out = tuple(rep for rep in reports if rep is not None)
    assert len(out) == len(found)
    for rep in out:
        if rep.status == "refused":
            warnings.warn(
                f"reduction of SSM layer {rep.name or '<layer>'} refused, layer kept as it is: {rep.message}",
                ReductionWarning,
                stacklevel=3,
            )
    return ReductionPlan(ReductionReport(out, time.perf_counter() - t0), new_layers, tuple(maps))


def _shapes(s: SSMLayer) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(leaf.shape) for leaf in jax.tree_util.tree_leaves(s.layer))


def _dtype(s: SSMLayer) -> Any:
    dtypes = {jnp.dtype(leaf.dtype) for leaf in jax.tree_util.tree_leaves(s.layer)}
    if len(dtypes) != 1:
        raise TypeError(f"SSM layer {s.name or '<layer>'} mixes dtypes {sorted(map(str, dtypes))}")
    return next(iter(dtypes))


def apply_reduction(model: Any, plan: ReductionPlan) -> Any:
    """The model with the plan's reduced layers in place of the old ones (a new pytree).

    Parameters
    ----------
    model
        The model the plan was computed for.
    plan
        A :class:`ReductionPlan` from :func:`plan_reduction`.

    Returns
    -------
    object
        The new model; ``model`` itself is unchanged.

    Raises
    ------
    TypeError
        If ``plan`` is not a ReductionPlan.
    ValueError
        If the model's SSM layers do not have the sizes the plan was computed for.

    Examples
    --------
    >>> from ssmred.selection import fraction
    >>> model = {"lrus": [LRU(2, 8, key=jax.random.key(0)), LRU(2, 8, key=jax.random.key(1))]}
    >>> new = apply_reduction(model, plan_reduction(model, fraction(0.5)))
    >>> new["lrus"][0].d_state, model["lrus"][0].d_state
    (4, 8)
    """
    if not isinstance(plan, ReductionPlan):
        raise TypeError(f"plan must be a ReductionPlan; got {type(plan).__name__}")
    sizes = tuple(s.adapter.state_size(s.layer) for s in ssm_layers(model))
    if sizes != plan.report.sizes_before:
        raise ValueError(
            f"the model's SSM layers have sizes {sizes}, the plan was computed for {plan.report.sizes_before}"
        )
    if not plan.layers:
        return model
    return replace_layers(model, plan.layers)


def reduce_model(
    model: Any, mode: SelectionMode, *, gate: float = 0.95, max_condition: float = 1e8
) -> tuple[Any, ReductionReport]:
    r"""Reduce every SSM layer of ``model`` in one batched pass: ``(new_model, report)``.

    :func:`plan_reduction` followed by :func:`apply_reduction`. Each layer gets its own ``r``. The new
    model has smaller arrays, so a jitted train step (``eqx.filter_jit``) re-traces once for it, and an
    optax state must be rebuilt (:func:`ssmred_jax.rebuild_opt_state`, or use
    :class:`ssmred_jax.CompreSSM`, which does both).

    Parameters
    ----------
    model
        Any pytree containing :class:`~ssmred_jax.LRU` / :class:`~ssmred_jax.S5` layers (or a bare layer).
    mode
        A selection mode of :mod:`ssmred.selection`.
    gate
        Reduce a layer only if :math:`r < \text{gate}\cdot n`.
    max_condition
        Largest accepted eigenvector condition number at re-diagonalisation.

    Returns
    -------
    tuple
        ``(new_model, report)`` with a :class:`ReductionReport`.

    Raises
    ------
    TypeError
        For an invalid mode.
    ValueError
        For an invalid gate, or a ``rank`` mode that does not fit the model.

    Warns
    -----
    ReductionWarning
        For every refused layer.

    Examples
    --------
    >>> from ssmred.selection import rank
    >>> model = [LRU(2, 8, key=jax.random.key(0)), LRU(2, 8, key=jax.random.key(1))]
    >>> new, report = reduce_model(model, rank(5))
    >>> report.sizes_before, report.sizes_after, [layer.d_state for layer in new]
    ((8, 8), (5, 5), [5, 5])
    """
    plan = plan_reduction(model, mode, gate=gate, max_condition=max_condition)
    return apply_reduction(model, plan), plan.report
