"""optax state rebuilt for a reduced model: reset / slice / project, structure and shapes, training goes on."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
eqx = pytest.importorskip("equinox")
optax = pytest.importorskip("optax")
import jax.numpy as jnp  # noqa: E402
from ssmred_jax import apply_reduction, plan_reduction, rebuild_opt_state  # noqa: E402

from ssmred.selection import rank, tolerance  # noqa: E402

pytestmark = pytest.mark.jax
STRICT_PROMOTION = False  # optax itself is not written for strict dtype promotion

STATE_PARAMS = ("nu_log", "theta_log", "gamma_log", "B_re", "B_im", "C_re", "C_im")


def _model(make_lru, rng, dtype=np.float64):
    return {
        "lrus": [make_lru(rng, 3, 12, dtype=dtype), make_lru(rng, 3, 12, dtype=dtype)],
        "head": jnp.asarray(rng.normal(size=(3,)), dtype=dtype),
    }


def _loss(model, u):
    z = u
    for layer in model["lrus"]:
        z = jnp.tanh(layer(z))
    return jnp.mean((z @ model["head"]) ** 2)


@eqx.filter_jit
def _value_and_grad(model, u):
    return eqx.filter_value_and_grad(_loss)(model, u)


def _train(model, opt, state, u, steps=2, *, step=None):
    """Plain optax steps (the gradient is jitted once per model shape and shared by the tests)."""
    loss = None
    for _ in range(steps):
        if step is not None:
            model, state, loss = step(model, state, u)
            continue
        loss, grads = _value_and_grad(model, u)
        updates, state = opt.update(grads, state, eqx.filter(model, eqx.is_array))
        model = eqx.apply_updates(model, updates)
    return model, state, float(loss)


def _jitted_step(opt):
    @eqx.filter_jit
    def step(model, state, u):
        loss, grads = _value_and_grad(model, u)
        updates, state = opt.update(grads, state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), state, loss

    return step


def _linear_loss(layer, Wb, Wc):
    """A loss linear in (B~, C): its gradient does not depend on the point."""
    Bt = jnp.exp(layer.gamma_log)[:, None] * (layer.B_re + 1j * layer.B_im)
    C = layer.C_re + 1j * layer.C_im
    return jnp.sum(jnp.real(jnp.conj(Wb) * Bt)) + jnp.sum(jnp.real(jnp.conj(Wc) * C))


def test_project_maps_first_moments_by_the_pullback_of_the_truncation(make_lru, rng, x64):
    model = [make_lru(rng, 3, 12)]
    Wb = jnp.asarray(rng.normal(size=(12, 3)) + 1j * rng.normal(size=(12, 3)))
    Wc = jnp.asarray(rng.normal(size=(3, 12)) + 1j * rng.normal(size=(3, 12)))
    opt = optax.sgd(0.0, momentum=0.9)
    params = eqx.filter(model, eqx.is_array)
    state = opt.init(params)
    grads = eqx.filter_jit(eqx.filter_grad(lambda m: _linear_loss(m[0], Wb, Wc)))(model)
    _, state = opt.update(grads, state, params)  # trace = gradient
    plan = plan_reduction(model, rank(6))
    new_model = apply_reduction(model, plan)
    new_state = rebuild_opt_state(opt, state, new_model, plan, policy="project")
    (tmap,) = plan.maps
    layer = new_model[0]

    def lifted(B_re, B_im, C_re, C_im):  # the loss through the lifting B~_old = M B~_new, C_old = C_new N
        Bt_new = tmap.gamma_new[:, None] * (B_re + 1j * B_im)
        Bt_old = tmap.M @ Bt_new
        C_old = (C_re + 1j * C_im) @ tmap.N
        return jnp.sum(jnp.real(jnp.conj(Wb) * Bt_old)) + jnp.sum(jnp.real(jnp.conj(Wc) * C_old))

    expected = jax.jit(jax.grad(lifted, argnums=(0, 1, 2, 3)))(layer.B_re, layer.B_im, layer.C_re, layer.C_im)
    trace = new_state[0].trace[0]
    for name, g in zip(("B_re", "B_im", "C_re", "C_im"), expected, strict=True):
        np.testing.assert_allclose(np.asarray(getattr(trace, name)), np.asarray(g), rtol=1e-9, atol=1e-12)


def test_project_keeps_second_moments_nonnegative_and_per_state_moments_convex(make_lru, rng, x64):
    model = _model(make_lru, rng)
    opt = optax.amsgrad(1e-3)
    state = opt.init(eqx.filter(model, eqx.is_array))
    u = jnp.asarray(rng.normal(size=(16, 3)))
    model, state, _ = _train(model, opt, state, u, steps=1)
    inner = state[0]
    mu = eqx.tree_at(
        lambda m: [layer.nu_log for layer in m["lrus"]], inner.mu, replace_fn=lambda x: jnp.full_like(x, 0.25)
    )
    state = (inner._replace(mu=mu), *state[1:])
    plan = plan_reduction(model, rank(5))
    new_model = apply_reduction(model, plan)
    new = rebuild_opt_state(opt, state, new_model, plan, policy="project")
    assert jax.tree_util.tree_structure(new) == jax.tree_util.tree_structure(state)
    assert int(new[0].count) == int(state[0].count)  # step counts are kept
    np.testing.assert_array_equal(np.asarray(new[0].mu["head"]), np.asarray(state[0].mu["head"]))
    for k, layer in enumerate(new_model["lrus"]):
        np.testing.assert_allclose(np.asarray(new[0].mu["lrus"][k].nu_log), 0.25, rtol=1e-12, atol=0)
        for name in STATE_PARAMS:
            shape = getattr(layer, name).shape
            for moment in ("mu", "nu", "nu_max"):
                leaf = getattr(getattr(new[0], moment)["lrus"][k], name)
                assert leaf.shape == shape
            assert bool((getattr(new[0].nu["lrus"][k], name) >= 0).all())
            assert bool((getattr(new[0].nu_max["lrus"][k], name) >= 0).all())


def test_slice_keeps_the_first_entries_in_old_coordinates(make_lru, rng, x64):
    model = _model(make_lru, rng)
    opt = optax.adamw(1e-3)
    state = opt.init(eqx.filter(model, eqx.is_array))
    model, state, _ = _train(model, opt, state, jnp.asarray(rng.normal(size=(16, 3))), steps=1)
    plan = plan_reduction(model, rank(4))
    new = rebuild_opt_state(opt, state, apply_reduction(model, plan), plan, policy="slice")
    for k in range(2):
        for name in STATE_PARAMS:
            old = np.asarray(getattr(state[0].mu["lrus"][k], name))
            expected = old[..., :4] if name.startswith("C") else old[:4]
            np.testing.assert_array_equal(np.asarray(getattr(new[0].mu["lrus"][k], name)), expected)


def test_reset_sets_the_initial_value(make_lru, rng, x64):
    model = _model(make_lru, rng)
    opt = optax.adam(1e-3)
    state = opt.init(eqx.filter(model, eqx.is_array))
    model, state, _ = _train(model, opt, state, jnp.asarray(rng.normal(size=(16, 3))), steps=1)
    plan = plan_reduction(model, rank(4))
    new = rebuild_opt_state(opt, state, apply_reduction(model, plan), plan, policy="reset")
    for name in STATE_PARAMS:
        assert float(jnp.abs(getattr(new[0].mu["lrus"][0], name)).max()) == 0.0
    np.testing.assert_array_equal(np.asarray(new[0].mu["lrus"][0].D), np.asarray(state[0].mu["lrus"][0].D))
    assert int(new[0].count) == 1


def test_training_continues_with_chained_and_scheduled_optimizers(make_lru, rng):
    model = _model(make_lru, rng, dtype=np.float32)
    schedule = optax.warmup_cosine_decay_schedule(0.0, 1e-2, 5, 50)
    opt = optax.chain(optax.clip_by_global_norm(1.0), optax.inject_hyperparams(optax.adamw)(learning_rate=schedule))
    state = opt.init(eqx.filter(model, eqx.is_array))
    u = jnp.asarray(rng.normal(size=(16, 3)).astype(np.float32))
    step = _jitted_step(opt)  # one compiled train step per model shape (a complex optax chain)
    model, state, _ = _train(model, opt, state, u, step=step)
    plan = plan_reduction(model, tolerance(0.3))
    assert plan.report.changed
    new_model = apply_reduction(model, plan)
    template = opt.init(eqx.filter(new_model, eqx.is_array))
    for policy in ("reset", "slice", "project"):
        new_state = rebuild_opt_state(opt, state, new_model, plan, policy=policy)
        assert jax.tree_util.tree_structure(new_state) == jax.tree_util.tree_structure(template)
        for a, b in zip(jax.tree_util.tree_leaves(new_state), jax.tree_util.tree_leaves(template), strict=True):
            assert a.shape == b.shape
            assert a.dtype == b.dtype
        _, after, loss = _train(new_model, opt, new_state, u, step=step)
        assert np.isfinite(loss)
        assert int(after[1].count) == int(state[1].count) + 2  # the schedule keeps counting


def test_policy_optimizer_and_moments_are_checked(make_lru, rng, x64):
    model = [make_lru(rng, 3, 12)]
    plan = plan_reduction(model, rank(4))
    new_model = apply_reduction(model, plan)
    opt = optax.adagrad(1e-2)  # its accumulator is neither a first nor a second moment of Adam's kind
    state = opt.init(eqx.filter(model, eqx.is_array))
    with pytest.raises(TypeError, match="'project' maps"):
        rebuild_opt_state(opt, state, new_model, plan, policy="project")
    new = rebuild_opt_state(opt, state, new_model, plan, policy="reset")
    assert jax.tree_util.tree_leaves(new)[0].shape == (4,)
    with pytest.raises(ValueError, match="optimizer_policy"):
        rebuild_opt_state(opt, state, new_model, plan, policy="keep")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="GradientTransformation"):
        rebuild_opt_state("adam", state, new_model, plan)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not the model produced"):
        rebuild_opt_state(opt, state, model, plan)
    with pytest.raises(TypeError, match="structure"):
        rebuild_opt_state(optax.adam(1e-3), state, new_model, plan)


def test_parameter_groups_by_multi_transform(make_lru, rng, x64):
    """SPEC §6's SSM parameter group (its own learning rate, no weight decay) as optax.multi_transform."""
    model = _model(make_lru, rng)

    def labels(params):
        ssm = {"nu_log", "theta_log", "gamma_log", "B_re", "B_im"}
        return jax.tree_util.tree_map_with_path(
            lambda path, _: "ssm" if getattr(path[-1], "name", None) in ssm else "other", params
        )

    opt = optax.multi_transform({"ssm": optax.adam(5e-4), "other": optax.adamw(1e-3, weight_decay=0.01)}, labels)
    state = opt.init(eqx.filter(model, eqx.is_array))
    plan = plan_reduction(model, rank(5))
    new_model = apply_reduction(model, plan)
    template = opt.init(eqx.filter(new_model, eqx.is_array))
    for policy in ("project", "slice", "reset"):
        new = rebuild_opt_state(opt, state, new_model, plan, policy=policy)
        assert jax.tree_util.tree_structure(new) == jax.tree_util.tree_structure(template)
        assert [x.shape for x in jax.tree_util.tree_leaves(new)] == [
            x.shape for x in jax.tree_util.tree_leaves(template)
        ]
