"""CompreSSM controller: exact schedule, pragmatic rollback (bit-identical), history."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from ssmred_torch import CompreSSM, LRUModel, fraction, pragmatic, rank, tolerance  # noqa: E402

pytestmark = pytest.mark.torch


def _setup(gen, n=16):
    model = LRUModel(2, 4, n, 2, 3, generator=gen)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    return model, opt


def _train_step(model, opt, gen):
    x = torch.randn(4, 12, 2, generator=gen)
    opt.zero_grad()
    model(x).square().mean().backward()
    opt.step()


def test_default_schedule_is_four_attempts_in_the_first_ten_percent():
    assert CompreSSM(1000, mode=tolerance(0.05)).attempt_steps == (25, 50, 75, 100)
    assert CompreSSM(400, mode=tolerance(0.05)).attempt_steps == (10, 20, 30, 40)
    assert CompreSSM(300, mode=tolerance(0.05)).attempt_steps == (8, 15, 23, 30)  # half-up rounding
    mixed = CompreSSM(1000, mode=fraction(0.1), schedule=[0.5, 10, 0.02])
    assert mixed.attempt_steps == (10, 20, 500)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"schedule": [5, 5]}, "duplicate"),
        ({"schedule": [0.5, 50]}, "duplicate"),
        ({"schedule": [200]}, r"schedule\[0\]"),
        ({"schedule": [1.5]}, r"fraction must be in \(0, 1\]"),
        ({"schedule": []}, "non-empty"),
        ({"schedule": [True]}, r"schedule\[0\]"),
        ({"gate": 1.5}, "gate"),
        ({"optimizer_policy": "copy"}, "optimizer_policy"),
    ],
)
def test_bad_controller_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CompreSSM(100, mode=tolerance(0.1), **kwargs)


def test_bad_total_steps_and_mode():
    with pytest.raises(ValueError, match="total_steps"):
        CompreSSM(0, mode=tolerance(0.1))
    with pytest.raises(TypeError, match="selection mode"):
        CompreSSM(100, mode="tolerance")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rounds to step 0"):
        CompreSSM(10, mode=tolerance(0.1))


def test_controller_hits_exactly_the_scheduled_steps(gen):
    model, opt = _setup(gen)
    ctl = CompreSSM(200, mode=fraction(0.25))
    assert ctl.attempt_steps == (5, 10, 15, 20)
    changed_at = []
    for step in range(1, 61):
        _train_step(model, opt, gen)
        if ctl.step(step, model, opt):
            changed_at.append(step)
    assert changed_at == [5, 10, 15, 20]
    assert [(r.kind, r.step, r.scheduled_step) for r in ctl.history] == [("reduce", s, s) for s in (5, 10, 15, 20)]
    assert [r.sizes_after for r in ctl.history] == [(12, 12), (9, 9), (6, 6), (4, 4)]
    assert model.state_sizes == [4, 4]
    assert ctl.finished
    record = ctl.history[0]
    assert record.seconds > 0
    assert len(record.layers) == 2
    assert record.layers[0].hsv.shape == (16,)
    assert record.layers[0].error_bound > 0
    assert record.to_dict()["layers"][0]["n_after"] == 12
    with pytest.raises(ValueError, match="step"):
        ctl.step(-1, model, opt)


def test_late_calls_serve_missed_attempts_once(gen):
    model, _ = _setup(gen)
    ctl = CompreSSM(200, mode=rank(10), schedule=[5, 6, 30])
    for step in range(0, 50, 7):
        ctl.step(step, model)
    steps = [(r.step, r.scheduled_step) for r in ctl.history]
    assert steps == [(7, 5), (35, 30)]
    assert "late" in " ".join(ctl.history[0].warnings)
    assert "all due" in " ".join(ctl.history[0].warnings)


def test_gate_skips_layers_that_would_barely_shrink(gen):
    model, opt = _setup(gen)
    ctl = CompreSSM(100, mode=tolerance(0.0), schedule=[1])
    result = ctl.step(1, model, opt)
    assert not result
    assert all(lr.status == "gated" for lr in result.records[0].layers)


def _params(model):
    return {k: v.detach().clone() for k, v in list(model.named_parameters()) + list(model.named_buffers())}


def _opt_state(opt):
    return {id(p): {k: v.clone() for k, v in opt.state[p].items()} for g in opt.param_groups for p in g["params"]}


def _assert_bit_identical_model(model, saved):
    now = _params(model)
    assert now.keys() == saved.keys()
    for k in now:
        assert now[k].shape == saved[k].shape, k
        assert torch.equal(now[k], saved[k]), k


def _assert_bit_identical_opt(opt, saved):
    now = _opt_state(opt)
    assert now.keys() == saved.keys()
    for pid in now:
        assert now[pid].keys() == saved[pid].keys()
        for k in now[pid]:
            assert torch.equal(now[pid][k], saved[pid][k])


def test_pragmatic_rollback_restores_model_and_optimizer_exactly(gen):
    model, opt = _setup(gen)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5**s)
    ctl = CompreSSM(100, mode=pragmatic(0.25, 0.02), schedule=[5, 10, 15])
    assert ctl.check_steps == (10, 15, 20)
    saved_model = saved_opt = None
    for step in range(1, 26):
        _train_step(model, opt, gen)
        sched.step()
        if step == 5:
            saved_model, saved_opt = _params(model), _opt_state(opt)
            assert ctl.step(step, model, opt, val_metric=0.80)
            assert model.state_sizes == [12, 12]
        elif step == 10:
            with pytest.raises(ValueError, match="val_metric"):
                ctl.step(step, model, opt)
            result = ctl.step(step, model, opt, val_metric=0.70)  # dropped by 0.10 > 0.02
            assert result.changed
            assert [r.kind for r in result.records] == ["rollback"]
            assert model.state_sizes == [16, 16]
            _assert_bit_identical_model(model, saved_model)
            _assert_bit_identical_opt(opt, saved_opt)
            assert opt.param_groups[0]["lr"] == pytest.approx(1e-3 * 0.5**10)  # the schedule keeps running
            assert ctl.stopped
        else:
            assert not ctl.step(step, model, opt, val_metric=0.1)
    assert model.state_sizes == [16, 16]
    assert [r.kind for r in ctl.history] == ["reduce", "rollback"]
    assert ctl.history[1].reference_metric == 0.80
    assert ctl.history[1].val_metric == 0.70


def test_pragmatic_accepts_small_drops_and_keeps_reducing(gen):
    model, opt = _setup(gen)
    ctl = CompreSSM(100, mode=pragmatic(0.25, 0.02), schedule=[2, 4])
    for step in range(1, 8):
        _train_step(model, opt, gen)
        ctl.step(step, model, opt, val_metric=0.9 - 0.005 * step)
    assert [r.kind for r in ctl.history] == ["reduce", "accept", "reduce", "accept"]
    assert model.state_sizes == [9, 9]
    assert ctl.finished
    assert not ctl.stopped


def test_pragmatic_loss_metric_direction(gen):
    model, opt = _setup(gen)
    ctl = CompreSSM(100, mode=pragmatic(0.25, 0.1, higher_is_better=False), schedule=[1, 2])
    ctl.step(1, model, opt, val_metric=1.0)
    ctl.step(2, model, opt, val_metric=1.5)  # loss went up by 0.5 > 0.1: roll back
    assert [r.kind for r in ctl.history] == ["reduce", "rollback"]
    assert model.state_sizes == [16, 16]


def test_controller_state_dict_round_trip(gen):
    model, opt = _setup(gen)
    ctl = CompreSSM(100, mode=rank(8), schedule=[1, 2])
    ctl.step(1, model, opt)
    other = CompreSSM(100, mode=rank(8), schedule=[1, 2])
    other.load_state_dict(ctl.state_dict())
    assert not other.step(1, model, opt).records
    with pytest.raises(ValueError, match="schedule"):
        CompreSSM(100, mode=rank(8), schedule=[3]).load_state_dict(ctl.state_dict())


def test_pragmatic_rollback_with_a_live_loss_graph_keeps_training(gen):
    """Issue 9 defect 1: a loop that still holds ``loss`` (Lightning style) must survive a rollback."""
    model, opt = _setup(gen)
    ctl = CompreSSM(100, mode=pragmatic(0.25, 0.02), schedule=[2])
    x = torch.randn(4, 12, 2, generator=gen)
    assert ctl.check_steps == (5,)
    for step in range(1, 8):
        opt.zero_grad()
        loss = model(x).square().mean()  # kept alive across the controller call, as in Lightning
        loss.backward()
        opt.step()
        metric = 0.9 if step < 5 else 0.1  # the check at step 5 sees a drop: roll back
        ctl.step(step, model, opt, val_metric=metric)
        if step == 2:
            assert model.state_sizes == [12, 12]
        if step == 5:
            assert model.state_sizes == [16, 16]
            assert ctl.stopped
    assert torch.isfinite(loss.detach())


def test_pragmatic_snapshot_survives_a_checkpoint_between_reduction_and_check(gen, tmp_path):
    """Issue 10 item 5: resumed between a reduction and its check, the check still runs and rolls back."""
    from ssmred_torch import load, save

    model, opt = _setup(gen)
    ctl = CompreSSM(100, mode=pragmatic(0.25, 0.02), schedule=[2, 4])
    _train_step(model, opt, gen)
    _train_step(model, opt, gen)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt_before = {i: {k: v.clone() for k, v in opt.state[p].items()} for i, p in enumerate(model.parameters())}
    assert ctl.step(2, model, opt, val_metric=0.9)
    assert model.state_sizes == [12, 12]
    _train_step(model, opt, gen)
    save(tmp_path / "mid.pt", model, optimizer=opt, controller=ctl)  # "killed" here, before the check at 4
    fresh = LRUModel(2, 4, 16, 2, 3)
    fresh_opt = torch.optim.AdamW(fresh.parameters(), lr=1e-3)
    fresh_ctl = CompreSSM(100, mode=pragmatic(0.25, 0.02), schedule=[2, 4])
    load(tmp_path / "mid.pt", fresh, optimizer=fresh_opt, controller=fresh_ctl)
    result = fresh_ctl.step(4, fresh, fresh_opt, val_metric=0.5)  # dropped: roll back, do not reduce again
    assert [r.kind for r in result.records] == ["rollback"]
    assert fresh.state_sizes == [16, 16]
    assert fresh_ctl.stopped
    for k, v in fresh.state_dict().items():
        assert torch.equal(v, before[k]), k
    for i, p in enumerate(fresh.parameters()):
        for k, v in opt_before[i].items():
            assert torch.equal(fresh_opt.state[p][k], v), (i, k)
