"""The S5 layer (lindermanlab/S5's layout): forward, conversions, reduction = core BT, optax rebuild, torch interop.

One layer shape (H = 3, 8 stored states) and one model shape (two layers) throughout: every new shape
compiles the forward pass and the reduction programs again.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg as spla

jax = pytest.importorskip("jax")
import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402
import ssmred_jax  # noqa: E402
from ssmred_jax import S5, S5_FIELDS, adapter_for, from_statespace, reduce_model, to_statespace  # noqa: E402

import ssmred  # noqa: E402
from ssmred.errors import DimensionError, NotStableError  # noqa: E402
from ssmred.selection import rank, tolerance  # noqa: E402

pytestmark = pytest.mark.jax
STRICT_PROMOTION = False  # optax inside

H, N = 3, 8
_W = np.linspace(-np.pi, np.pi, 129)


def reference_forward(layer: S5, u: np.ndarray) -> np.ndarray:
    """lindermanlab/S5's apply_ssm, step by step in numpy."""
    p = {k: np.asarray(getattr(layer, k), dtype=np.float64) for k in S5_FIELDS}
    a = p["Lambda_re"] + 1j * p["Lambda_im"]
    step = np.exp(p["log_step"][:, 0])
    Bt = p["B"][..., 0] + 1j * p["B"][..., 1]
    Ct = p["C"][..., 0] + 1j * p["C"][..., 1]
    if layer.discretization == "zoh":
        lam = np.exp(a * step)
        Bbar = ((lam - 1.0) / a)[:, None] * Bt
    else:
        bl = 1.0 / (1.0 - step / 2.0 * a)
        lam = bl * (1.0 + step / 2.0 * a)
        Bbar = (bl * step)[:, None] * Bt
    x = np.zeros(lam.size, dtype=np.complex128)
    ys = []
    for uk in u:
        x = lam * x + Bbar @ uk
        y = (Ct @ x).real
        ys.append((2.0 * y if layer.conj_sym else y) + p["D"] * uk)
    return np.stack(ys)


def _markov(sys: ssmred.StateSpace, length: int) -> np.ndarray:
    A, B, C, D = (np.asarray(x) for x in (sys.A, sys.B, sys.C, sys.D))
    out, x = [D], B
    for _ in range(length - 1):
        out.append(C @ x)
        x = A @ x
    return np.stack(out)


@pytest.mark.parametrize(
    ("discretization", "conj_sym"), [("zoh", True), ("bilinear", True), ("zoh", False)], ids=["zoh", "bil", "full"]
)
def test_forward_is_the_published_recurrence_and_exact_statespace(make_s5, rng, x64, discretization, conj_sym):
    layer = make_s5(rng, discretization=discretization, conj_sym=conj_sym)
    u = rng.normal(size=(30, H))
    y = np.asarray(layer(jnp.asarray(u)))
    np.testing.assert_allclose(y, reference_forward(layer, u), rtol=0, atol=1e-12 * np.abs(y).max())
    # the exact real system's impulse response is the forward pass
    exact = to_statespace(layer, exact=True)
    assert not exact.is_complex
    assert exact.n_states == 2 * N
    impulses = np.stack([np.asarray(layer(jnp.zeros((20, H)).at[0, j].set(1.0))) for j in range(H)], axis=-1)
    np.testing.assert_allclose(_markov(exact, 20), impulses, rtol=0, atol=1e-12)


def test_fields_layout_init_and_errors(rng, tmp_path):
    layer = S5(4, 16, blocks=2, key=jax.random.key(0))
    assert S5_FIELDS == ("Lambda_re", "Lambda_im", "B", "C", "D", "log_step")
    assert [jnp.shape(x) for x in jax.tree_util.tree_leaves(layer)] == [(8,), (8,), (8, 4, 2), (4, 8, 2), (4,), (8, 1)]
    assert layer.n_states == 8
    assert layer.d_state == 16
    assert layer.d_model == 4
    np.testing.assert_allclose(np.asarray(layer.Lambda_re), -0.5)
    steps = np.exp(np.asarray(layer.log_step))
    assert np.all((steps >= 1e-3 * (1 - 1e-6)) & (steps <= 1e-1 * (1 + 1e-6)))
    with pytest.raises(ValueError, match="blocks must divide d_state"):
        S5(4, 10, blocks=2, key=jax.random.key(0))
    with pytest.raises(ValueError, match="discretization must be one of 'zoh', 'bilinear'"):
        S5(4, 8, discretization="euler", key=jax.random.key(0))
    with pytest.raises(TypeError, match="conj_sym must be a bool"):
        S5(4, 8, conj_sym=1, key=jax.random.key(0))
    with pytest.raises(ValueError, match="dt_min <= dt_max"):
        S5(4, 8, dt_min=0.1, dt_max=0.01, key=jax.random.key(0))
    good = {k: np.asarray(getattr(layer, k)) for k in S5_FIELDS}
    with pytest.raises(DimensionError, match=r"B must have shape \(8, 4, 2\)"):
        S5.from_parameters(**{**good, "B": good["B"][..., 0]})
    with pytest.raises(TypeError, match="share one float dtype"):
        S5.from_parameters(**{**good, "D": good["D"].astype(np.float16)})
    with pytest.raises(ValueError, match="step_rescale"):
        S5.from_parameters(**good, step_rescale=0.0)
    with pytest.raises(DimensionError, match="d_model=4"):
        layer(jnp.ones((5, 3)))
    # checkpoints: the leaves deserialise into a layer of the same sizes and settings
    eqx.tree_serialise_leaves(tmp_path / "s5.eqx", layer)
    like = S5(4, 16, blocks=2, key=jax.random.key(1))
    loaded = eqx.tree_deserialise_leaves(tmp_path / "s5.eqx", like)
    for k in S5_FIELDS:
        np.testing.assert_array_equal(np.asarray(getattr(loaded, k)), np.asarray(getattr(layer, k)))
    # S5's (P,) log_step and step_rescale are accepted and folded in
    half = S5.from_parameters(**{**good, "log_step": good["log_step"][:, 0]}, step_rescale=0.5)
    np.testing.assert_allclose(np.asarray(half.log_step), good["log_step"] + math.log(0.5), rtol=1e-6)


def test_round_trips_through_statespace(make_s5, rng, x64):
    layer = make_s5(rng, fast=True)
    u = jnp.asarray(rng.normal(size=(40, H)))
    y = np.asarray(layer(u))
    back = from_statespace(to_statespace(layer), like=layer)
    np.testing.assert_allclose(np.asarray(back(u)), y, rtol=0, atol=1e-11 * np.abs(y).max())
    # the steps and frequencies are kept (ZOH aliasing guard: Im(step * a) beyond pi here)
    assert np.abs(np.asarray(layer.Lambda_im) * np.exp(np.asarray(layer.log_step[:, 0]))).max() > math.pi
    np.testing.assert_allclose(np.asarray(back.Lambda_im), np.asarray(layer.Lambda_im), rtol=1e-9)
    np.testing.assert_allclose(np.asarray(back.log_step), np.asarray(layer.log_step), rtol=0, atol=1e-14)
    exact_back = adapter_for(layer).from_statespace(to_statespace(layer, exact=True), like=layer, exact=True)
    np.testing.assert_allclose(np.asarray(exact_back(u)), y, rtol=0, atol=1e-9 * np.abs(y).max())
    # a reduced, non-diagonal system: the same transfer function
    red = ssmred.balanced_truncation(to_statespace(layer), 5).reduced
    G = to_statespace(from_statespace(red, like=layer)).frequency_response(_W)
    np.testing.assert_allclose(G, red.frequency_response(_W), rtol=0, atol=1e-9 * np.abs(G).max())
    unstable = to_statespace(layer).with_(A=np.diag(np.r_[1.1, np.diag(to_statespace(layer).A)[1:]]))
    with pytest.raises(NotStableError):
        from_statespace(unstable, like=layer)
    with pytest.raises(ValueError, match="needs a conj_sym layer"):
        adapter_for(layer).from_statespace(
            to_statespace(layer, exact=True), like=make_s5(rng, conj_sym=False), exact=True
        )


def test_reduction_equals_core_balanced_truncation_and_the_bound_doubles(make_s5, rng, x64):
    layers = [make_s5(rng, fast=True), make_s5(rng, discretization="bilinear")]
    new, report = reduce_model(layers, tolerance(0.05))
    for old, layer, rep in zip(layers, new, report.layers, strict=True):
        sys = to_statespace(old)
        core = ssmred.balanced_truncation(sys, energy=0.05)
        np.testing.assert_allclose(rep.hsv, core.hsv, rtol=0, atol=1e-10 * core.hsv[0])
        assert rep.status == "reduced"
        assert rep.r == core.r == layer.n_states
        assert rep.error_bound == pytest.approx(2.0 * core.error_bound, rel=1e-10)  # y = 2 Re(C x)
        G = to_statespace(layer).frequency_response(_W)
        np.testing.assert_allclose(G, core.reduced.frequency_response(_W), rtol=0, atol=1e-9 * np.abs(G).max())
        # the measured error of the layer's real map obeys the reported bound
        err = to_statespace(layer, exact=True).frequency_response(_W) - to_statespace(
            old, exact=True
        ).frequency_response(_W)
        assert max(spla.norm(e, 2) for e in err) <= rep.error_bound * (1 + 1e-8)
        assert layer.discretization == old.discretization
        assert layer.conj_sym
        np.testing.assert_array_equal(np.asarray(layer.D), np.asarray(old.D))


def test_opt_state_rebuild_and_training_continue(make_s5, rng):
    layers = [make_s5(rng, fast=True, dtype=np.float32) for _ in range(2)]
    x = jnp.asarray(rng.normal(size=(20, H)).astype(np.float32))
    optimizer = optax.adam(1e-3)

    def loss(model):
        return sum(jnp.mean(layer(x) ** 2) for layer in model)

    state = optimizer.init(eqx.filter(layers, eqx.is_array))
    grads = eqx.filter_grad(loss)(layers)
    _, state = optimizer.update(grads, state, eqx.filter(layers, eqx.is_array))
    plan = ssmred_jax.plan_reduction(layers, rank(5))
    new = ssmred_jax.apply_reduction(layers, plan)
    for policy in ("project", "slice", "reset"):
        new_state = ssmred_jax.rebuild_opt_state(optimizer, state, new, plan, policy=policy)
        assert new_state[0].mu[0].B.shape == (5, H, 2)
        assert new_state[0].nu[1].C.shape == (H, 5, 2)
        assert new_state[0].mu[0].log_step.shape == (5, 1)
        assert bool(jnp.all(new_state[0].nu[0].B >= 0))
        grads = eqx.filter_grad(loss)(new)
        updates, _ = optimizer.update(grads, new_state, eqx.filter(new, eqx.is_array))
        assert all(bool(jnp.all(jnp.isfinite(u))) for u in jax.tree_util.tree_leaves(updates))
    # a reduced S5 model in the functional controller
    ctl = ssmred_jax.CompreSSM(100, mode=rank(4), schedule=[1])
    model, _, changed = ctl.step(1, layers, state, optimizer)
    assert changed
    assert [layer.n_states for layer in model] == [4, 4]
