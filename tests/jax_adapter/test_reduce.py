"""Batched jitted reduction = numpy core; modes, gate, grouping, dtypes, refusals, one analysis call.

Every new set of layer shapes costs a compilation of the two reduction programs (about a second of
CPU time), so the tests share a few model shapes; orders may change freely (they are traced).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg as spla

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402
import ssmred_jax  # noqa: E402
from ssmred_jax import (  # noqa: E402
    LRU_FIELDS,
    ReductionWarning,
    adapter_for,
    apply_reduction,
    kernels,
    plan_reduction,
    reduce_model,
    to_statespace,
)
from ssmred_jax import reduce as reduce_module  # noqa: E402

import ssmred  # noqa: E402
from ssmred.selection import fraction, pragmatic, rank, tolerance  # noqa: E402

pytestmark = pytest.mark.jax

# (n_states, channels, r_min, r_max) of two-layer float64 models: an LRU ring and fast-decaying,
# numerically semidefinite cases (H << n)
CASES = [(16, 8, 0.9, 0.999), (32, 2, 0.3, 0.8), (24, 1, 0.0, 0.9)]


def _pair(make_lru, rng, n, H, r_min=0.9, r_max=0.999):
    return [make_lru(rng, H, n, r_min=r_min, r_max=r_max) for _ in range(2)]


def _systems(layers):
    adapter = adapter_for(layers[0])
    out = [adapter.systems(layer) for layer in layers]
    log_lam, B, C = (jnp.stack([o[i] for o in out]) for i in range(3))
    return jnp.exp(log_lam), log_lam, B, C


@pytest.mark.parametrize(("n", "H", "r_min", "r_max"), CASES)
def test_reduction_equals_core_balanced_truncation(make_lru, rng, x64, n, H, r_min, r_max):
    layers = _pair(make_lru, rng, n, H, r_min, r_max)
    new, report = reduce_model(layers, tolerance(0.05))
    lam, _, B, C = _systems(layers)
    s_core = ssmred.hsv_diagonal(np.asarray(lam), np.asarray(B), np.asarray(C), dt=1.0)
    w = np.linspace(-np.pi, np.pi, 181)
    for k, (old, layer, rep) in enumerate(zip(layers, new, report.layers, strict=True)):
        sys = to_statespace(old)
        core = ssmred.balanced_truncation(sys, energy=0.05)
        np.testing.assert_allclose(rep.hsv, s_core[k], rtol=0, atol=1e-10 * s_core[k, 0])
        np.testing.assert_allclose(rep.hsv, core.hsv, rtol=0, atol=1e-10 * core.hsv[0])
        assert rep.r == core.r == ssmred.order_from_energy(core.hsv, 0.05)
        assert rep.error_bound == pytest.approx(core.error_bound, rel=1e-10)
        assert rep.status == "reduced"
        assert layer.d_state == core.r
        G_core = core.reduced.frequency_response(w)
        G_jax = to_statespace(layer).frequency_response(w)
        scale = np.abs(sys.frequency_response(w)).max()
        np.testing.assert_allclose(G_jax, G_core, rtol=0, atol=1e-10 * scale)


def test_semidefinite_gramians_use_the_spectral_fallback(make_lru, rng, x64):
    layers = _pair(make_lru, rng, 24, 1, 0.0, 0.5)  # the shapes of CASES[2]: no new compilation
    lam, log_lam, B, C = _systems(layers)
    P, _ = kernels.diagonal_gramians(lam, B, C, log_lam=log_lam)
    assert not bool(jnp.isfinite(jnp.linalg.cholesky(P)).all())  # plain Cholesky fails: semidefinite
    L = np.asarray(jax.jit(kernels.psd_factor)(P))
    assert np.isfinite(L).all()
    P = np.asarray(P)
    np.testing.assert_allclose(L @ L.conj().transpose(0, 2, 1), P, rtol=0, atol=1e-14 * np.abs(P).max())
    # the HSVs through the fallback equal the core's (Hammarling factors) to the rounding level of sigma_1
    s_core = ssmred.hsv_diagonal(np.asarray(lam), np.asarray(B), np.asarray(C), dt=1.0)
    plan = plan_reduction(layers, rank(3))
    for k in range(2):
        np.testing.assert_allclose(plan.report.layers[k].hsv, s_core[k], rtol=0, atol=1e-12 * s_core[k, 0])


def _hinf_sampled(a, b, n_freq=2048):
    w = np.linspace(-np.pi, np.pi, n_freq)
    E = a.frequency_response(w) - b.frequency_response(w)
    return max(spla.svdvals(Ek)[0] for Ek in E)


def test_measured_output_error_is_below_the_bound(make_lru, rng, x64):
    layers = _pair(make_lru, rng, 16, 8)
    new, report = reduce_model(layers, rank(5), gate=1.0)
    u = jnp.asarray(rng.normal(size=(2, 500, 8)))
    for old, layer, rep in zip(layers, new, report.layers, strict=True):
        assert rep.applied
        assert _hinf_sampled(to_statespace(old), to_statespace(layer)) <= rep.error_bound
        err = float(jnp.linalg.norm(old(u) - layer(u)))
        assert 0 < err <= rep.error_bound * float(jnp.linalg.norm(u))


def test_selection_modes_and_total_budget(make_lru, rng, x64):
    model = {"a": make_lru(rng, 3, 20), "b": [make_lru(rng, 3, 12), make_lru(rng, 3, 9)]}
    assert reduce_model(model, fraction(0.25))[1].sizes_after == (15, 9, 6)  # floor(n * 0.75)
    assert reduce_model(model, pragmatic(0.25))[1].sizes_after == (15, 9, 6)  # a fraction outside a controller
    assert reduce_model(model, rank([10, 4, 2]))[1].sizes_after == (10, 4, 2)
    _, rep = reduce_model(model, rank(total=15))
    assert sum(rep.sizes_after) == 15
    hsv = [lr.hsv for lr in rep.layers]
    kept = np.concatenate([h[1:r] / h.sum() for h, r in zip(hsv, rep.sizes_after, strict=True)])
    dropped = np.concatenate([h[r:] / h.sum() for h, r in zip(hsv, rep.sizes_after, strict=True)])
    assert kept.min() >= dropped.max()
    with pytest.raises(ValueError, match="number of SSM layers"):
        reduce_model(model, rank(total=2))
    with pytest.raises(ValueError, match="entries"):
        reduce_model(model, rank([2]))


def test_gate_and_numerical_rank(make_lru, rng, x64):
    layers = _pair(make_lru, rng, 24, 1, 0.0, 0.3)  # the shapes of CASES[2]
    s = ssmred.hankel_singular_values(to_statespace(layers[0]))
    numerical_rank = int(np.count_nonzero(s > 24 * np.finfo(float).eps * s[0]))
    assert numerical_rank < 20
    _, rep = reduce_model(layers, rank(20), gate=1.0)
    assert rep.layers[0].r == numerical_rank
    assert rep.layers[0].applied
    model = _pair(make_lru, rng, 16, 8)  # the shapes of CASES[0]
    new, rep = reduce_model(model, rank(16))  # 16 >= 0.95 * 16
    assert [lr.status for lr in rep.layers] == ["gated", "gated"]
    assert new is model


@pytest.fixture
def float32_model(make_lru, rng):
    import equinox as eqx

    return {
        "layers": [make_lru(rng, 3, 16, dtype=np.float32), make_lru(rng, 3, 16, dtype=np.float32)],
        "last": make_lru(rng, 3, 10, dtype=np.float32),
        "head": eqx.nn.Linear(3, 2, key=jax.random.key(0)),
        "act": jax.nn.gelu,
    }


def test_float32_model_mixed_sizes_and_other_leaves(float32_model):
    model = float32_model
    assert not jax.config.x64_enabled
    new, rep = reduce_model(model, tolerance(0.2))
    assert all(lr.applied for lr in rep.layers)
    assert not jax.config.x64_enabled  # enabled only inside the call
    for layer in (*new["layers"], new["last"]):
        assert {leaf.dtype for leaf in jax.tree_util.tree_leaves(layer)} == {jnp.dtype(jnp.float32)}
    assert new["head"].weight is model["head"].weight
    assert new["act"] is jax.nn.gelu
    assert new["layers"][0].D is model["layers"][0].D  # D is not a state parameter: the same array
    y = new["layers"][0](jnp.ones((30, 3), dtype=jnp.float32))
    assert bool(jnp.isfinite(y).all())
    _, rep2 = reduce_model(new, tolerance(0.2))  # second reduction: new Gramians of the reduced layers
    assert all(b <= a for a, b in zip(rep.sizes_after, rep2.sizes_after, strict=True))


def test_one_analysis_call_for_all_layers_and_cached_traces(float32_model, monkeypatch):
    calls = []
    real = reduce_module._analyse

    def counting(groups, adapters):
        calls.append(tuple(len(g) for g in groups))
        return real(groups, adapters)

    monkeypatch.setattr(reduce_module, "_analyse", counting)
    reduce_model(float32_model, rank(4))
    assert len(calls) == 1  # one call for all layers: two groups (the two n = 16 layers stacked, the n = 10 one)
    assert sorted(calls[0]) == [1, 2]
    analyse = reduce_module._jitted("analyse", jax.default_backend())
    truncate = reduce_module._jitted("truncate", jax.default_backend())
    sizes = analyse._cache_size(), truncate._cache_size()
    reduce_model(float32_model, rank(3))
    reduce_model(float32_model, fraction(0.5))
    assert (analyse._cache_size(), truncate._cache_size()) == sizes  # same shapes, other orders: no new trace


def test_no_warnings_in_a_normal_reduction(float32_model):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reduce_model(float32_model, tolerance(0.1))


def _poisoned(layer):
    values = {f: getattr(layer, f) for f in LRU_FIELDS}
    values["B_re"] = values["B_re"].at[0, 0].set(jnp.nan)
    return ssmred_jax.LRU.from_parameters(**values)


def test_nonfinite_layer_is_refused_and_kept(make_lru, rng, x64):
    good, bad = _pair(make_lru, rng, 16, 8)
    model = [good, _poisoned(bad)]
    with pytest.warns(ReductionWarning, match="refused"):
        new, rep = reduce_model(model, rank(4))
    assert [r.status for r in rep.layers] == ["reduced", "refused"]
    assert "non-finite" in rep.layers[1].message
    assert new[1] is model[1]
    assert new[0].d_state == 4
    assert rep.warnings


def test_nonfinite_or_ill_conditioned_results_are_refused(make_lru, rng, x64, monkeypatch):
    layers = _pair(make_lru, rng, 16, 8)
    with pytest.warns(ReductionWarning, match="cond"):
        new, rep = reduce_model(layers, rank(4), max_condition=1.0 + 1e-12)
    assert [lr.status for lr in rep.layers] == ["refused", "refused"]
    assert new is layers
    real = kernels.lru_parameters_from_diagonal

    def poisoned(*args, **kwargs):
        params, unstable = real(*args, **kwargs)
        params["B_re"] = params["B_re"] * jnp.inf
        return params, unstable

    monkeypatch.setattr(kernels, "lru_parameters_from_diagonal", poisoned)
    # shapes of this test only (the program is traced with the poisoned kernel and stays cached)
    with pytest.warns(ReductionWarning, match="not finite"):
        _, rep = reduce_model([make_lru(rng, 3, 7)], rank(4))
    assert rep.layers[0].status == "refused"


def test_plan_and_apply(make_lru, rng, x64):
    model = _pair(make_lru, rng, 16, 8)
    plan = plan_reduction(model, rank(3))
    assert plan.report.sizes_after == (3, 3)
    assert [m.r for m in plan.maps] == [3, 3]
    N, M = np.asarray(plan.maps[0].N), np.asarray(plan.maps[0].M)
    np.testing.assert_allclose(N @ M, np.eye(3), rtol=0, atol=1e-10)
    new = apply_reduction(model, plan)
    assert new[0].d_state == 3
    assert model[0].d_state == 16
    with pytest.raises(ValueError, match="sizes"):
        apply_reduction(new, plan)
    with pytest.raises(TypeError, match="ReductionPlan"):
        apply_reduction(model, plan.report)  # type: ignore[arg-type]


def test_typed_errors_and_empty_models(make_lru, rng):
    layer = make_lru(rng, 2, 4, dtype=np.float32)
    with pytest.raises(TypeError, match="selection mode"):
        reduce_model(layer, 0.1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="gate"):
        reduce_model(layer, rank(2), gate=0.0)
    with pytest.raises(ValueError, match="max_condition"):
        reduce_model(layer, rank(2), max_condition=0.5)
    model = {"w": jnp.ones(3)}
    new, rep = reduce_model(model, rank(2))
    assert new is model
    assert rep.layers == ()

    def inside_jit(layer):
        reduce_model(layer, rank(2))
        return layer.D

    with pytest.raises(TypeError, match="outside jax.jit"):
        jax.jit(inside_jit)(layer)


def test_kernels_need_x64():
    with pytest.raises(RuntimeError, match="enable_x64"):
        kernels.diagonal_gramians(jnp.ones((1, 1)), jnp.ones((1, 1, 1)), jnp.ones((1, 1, 1)))


def test_padded_truncation_equals_the_static_one(make_lru, rng, x64):
    layers = _pair(make_lru, rng, 16, 8)
    lam, log_lam, B, C = _systems(layers)

    @jax.jit
    def both(lam, log_lam, B, C):
        svd = kernels.hankel_svd_diagonal(lam, B, C, log_lam=log_lam)
        static = kernels.truncate_diagonal(lam, B, C, svd, 5)
        r = jnp.array([5, 9], dtype=jnp.int32)
        padded = kernels.truncate_masked(lam, B, C, svd, r)
        return static, padded, kernels.diagonalize(*static[:3]), kernels.diagonalize(*padded[:3], r=r)

    (A_r, *_), (A, *_), ref, form = both(lam, log_lam, B, C)
    np.testing.assert_allclose(np.asarray(A[0, :5, :5]), np.asarray(A_r[0]), rtol=0, atol=1e-14)
    assert float(jnp.abs(A[0, 5:]).max()) == 0.0
    np.testing.assert_allclose(np.asarray(form.mu[0, :5]), np.asarray(ref.mu[0]), rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.abs(np.asarray(form.mu[0, 5:])), kernels.PADDING_EIGENVALUE, rtol=1e-12)
    assert float(form.cond[0]) == pytest.approx(float(ref.cond[0]), rel=1e-6)


def test_gramians_from_log_eigenvalues_stay_accurate_near_the_unit_circle(x64):
    decay = np.array([1e-9, 2e-9])
    log_lam = jnp.asarray([[-1e-9 + 0.3j, -2e-9 + (0.3 + 1e-9) * 1j]])
    B = jnp.ones((1, 2, 1), dtype=jnp.complex128)
    C = jnp.ones((1, 1, 2), dtype=jnp.complex128)
    exact = 1.0 / -np.expm1(-2.0 * decay)  # P_ii = 1 / (1 - |lam_i|^2)
    gramians = jax.jit(
        lambda ll, use_log: kernels.diagonal_gramians(jnp.exp(ll), B, C, log_lam=ll if use_log else None)[0],
        static_argnums=1,
    )
    P = gramians(log_lam, True)
    np.testing.assert_allclose(np.asarray(P)[0].diagonal().real, exact, rtol=1e-12)
    naive = gramians(log_lam, False)  # 1 - lam conj(lam): cancellation
    assert np.abs(np.asarray(naive)[0].diagonal().real / exact - 1).max() > 1e-9
