"""The functional CompreSSM controller: exact schedule, optax state rebuilt, pragmatic rollback, history.

All tests use one model shape (two float32 LRU layers, H = 3, n = 16), so the reduction programs are
compiled once per state size reached (16, 12, 9, 6) and shared by the tests.
"""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
eqx = pytest.importorskip("equinox")
optax = pytest.importorskip("optax")
import jax.numpy as jnp  # noqa: E402
from ssmred_jax import CompreSSM, StepOutput, ssm_layers  # noqa: E402

from ssmred.selection import fraction, pragmatic, rank, tolerance  # noqa: E402

pytestmark = pytest.mark.jax
STRICT_PROMOTION = False  # optax


@pytest.fixture
def setup(make_lru, rng):
    model = {"blocks": [make_lru(rng, 3, 16, dtype=np.float32), make_lru(rng, 3, 16, dtype=np.float32)]}
    opt = optax.adam(1e-3)
    state = opt.init(eqx.filter(model, eqx.is_array))
    # non-zero moments, as after training
    state = jax.tree_util.tree_map(lambda x: x + 0.5 if x.ndim else x, state)
    return model, opt, state


def _sizes(model):
    return [s.layer.d_state for s in ssm_layers(model)]


def _check_state(model, opt, state):
    template = opt.init(eqx.filter(model, eqx.is_array))
    assert jax.tree_util.tree_structure(state) == jax.tree_util.tree_structure(template)
    assert [x.shape for x in jax.tree_util.tree_leaves(state)] == [x.shape for x in jax.tree_util.tree_leaves(template)]


def test_controller_hits_exactly_the_scheduled_steps(setup):
    model, opt, state = setup
    ctl = CompreSSM(200, mode=fraction(0.25))
    assert ctl.attempt_steps == (5, 10, 15, 20)
    changed_at = []
    for step in range(1, 31):
        out = ctl.step(step, model, state, opt)
        assert isinstance(out, StepOutput)
        model, state, changed = out
        if changed:
            changed_at.append(step)
            _check_state(model, opt, state)
    assert changed_at == [5, 10, 15, 20]
    assert [(r.kind, r.step, r.scheduled_step) for r in ctl.history] == [("reduce", s, s) for s in (5, 10, 15, 20)]
    assert [r.sizes_after for r in ctl.history] == [(12, 12), (9, 9), (6, 6), (4, 4)]
    assert _sizes(model) == [4, 4]
    assert ctl.finished
    record = ctl.history[0]
    assert record.seconds > 0
    assert record.layers[0].hsv.shape == (16,)
    assert record.layers[0].name == "['blocks'][0]"
    assert record.to_dict()["layers"][0]["n_after"] == 12
    with pytest.raises(ValueError, match="step"):
        ctl.step(-1, model, state, opt)
    with pytest.raises(TypeError, match="GradientTransformation"):
        ctl.step(30, model, state, None)


def test_late_calls_serve_missed_attempts_once(setup):
    model, _, _ = setup
    ctl = CompreSSM(200, mode=rank(12), schedule=[5, 6, 30])
    for step in range(0, 50, 7):
        model, none, _ = ctl.step(step, model)
        assert none is None
    assert [(r.step, r.scheduled_step) for r in ctl.history] == [(7, 5), (35, 30)]
    assert "late" in " ".join(ctl.history[0].warnings)
    assert "all due" in " ".join(ctl.history[0].warnings)
    assert [lr.status for lr in ctl.history[1].layers] == ["gated", "gated"]  # 12 >= 0.95 * 12


def test_gate_skips_layers_that_would_barely_shrink(setup):
    model, opt, state = setup
    ctl = CompreSSM(100, mode=tolerance(0.0), schedule=[1])
    new_model, new_state, changed = ctl.step(1, model, state, opt)
    assert not changed
    assert new_model is model
    assert new_state is state
    assert all(lr.status == "gated" for lr in ctl.history[0].layers)


def _assert_identical(a, b):
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb, strict=True):
        assert x.shape == y.shape
        assert bool(jnp.array_equal(x, y))


def test_pragmatic_rollback_restores_model_and_optimizer_exactly(setup):
    model, opt, state = setup
    ctl = CompreSSM(100, mode=pragmatic(0.25, 0.02), schedule=[5, 10, 15])
    assert ctl.check_steps == (10, 15, 20)
    saved = None
    for step in range(1, 26):
        if step == 5:
            saved = (model, state)
            model, state, changed = ctl.step(step, model, state, opt, val_metric=0.80)
            assert changed
            assert _sizes(model) == [12, 12]
        elif step == 10:
            with pytest.raises(ValueError, match="val_metric"):
                ctl.step(step, model, state, opt)
            model, state, changed = ctl.step(step, model, state, opt, val_metric=0.70)  # dropped 0.10 > 0.02
            assert changed
            assert _sizes(model) == [16, 16]
            _assert_identical(model, saved[0])
            _assert_identical(state, saved[1])
            assert ctl.stopped
        else:
            model, state, changed = ctl.step(step, model, state, opt, val_metric=0.1)
            assert not changed
    assert [r.kind for r in ctl.history] == ["reduce", "rollback"]
    assert ctl.history[1].reference_metric == 0.80
    assert ctl.history[1].val_metric == 0.70
    assert ctl.history[1].sizes_after == (16, 16)


def test_pragmatic_accepts_small_drops_and_keeps_reducing(setup):
    model, opt, state = setup
    ctl = CompreSSM(100, mode=pragmatic(0.25, 0.02), schedule=[2, 4])
    for step in range(1, 8):
        model, state, _ = ctl.step(step, model, state, opt, val_metric=0.9 - 0.005 * step)
    assert [r.kind for r in ctl.history] == ["reduce", "accept", "reduce", "accept"]
    assert _sizes(model) == [9, 9]
    assert ctl.finished
    assert not ctl.stopped
    _check_state(model, opt, state)


def test_pragmatic_loss_metric_direction(setup):
    model, opt, state = setup
    ctl = CompreSSM(100, mode=pragmatic(0.25, 0.1, higher_is_better=False), schedule=[1, 2])
    model, state, _ = ctl.step(1, model, state, opt, val_metric=1.0)
    model, state, _ = ctl.step(2, model, state, opt, val_metric=1.5)  # loss up by 0.5 > 0.1: roll back
    assert [r.kind for r in ctl.history] == ["reduce", "rollback"]
    assert _sizes(model) == [16, 16]


def test_bad_arguments_and_state_dict_round_trip(setup):
    model, opt, state = setup
    with pytest.raises(ValueError, match="total_steps"):
        CompreSSM(0, mode=tolerance(0.1))
    with pytest.raises(TypeError, match="selection mode"):
        CompreSSM(100, mode="tolerance")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rounds to step 0"):
        CompreSSM(10, mode=tolerance(0.1))
    with pytest.raises(ValueError, match="duplicate"):
        CompreSSM(100, mode=tolerance(0.1), schedule=[0.5, 50])
    with pytest.raises(ValueError, match="optimizer_policy"):
        CompreSSM(100, mode=tolerance(0.1), optimizer_policy="copy")  # type: ignore[arg-type]
    ctl = CompreSSM(100, mode=rank(8), schedule=[1, 2], optimizer_policy="slice")
    model, state, changed = ctl.step(1, model, state, opt)
    assert changed
    other = CompreSSM(100, mode=rank(8), schedule=[1, 2])
    other.load_state_dict(ctl.state_dict())
    assert not other.step(1, model, state, opt).changed
    assert not other.history
    with pytest.raises(ValueError, match="schedule"):
        CompreSSM(100, mode=rank(8), schedule=[3]).load_state_dict(ctl.state_dict())
