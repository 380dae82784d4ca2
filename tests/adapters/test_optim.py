"""Optimizer surgery: reset / slice / project for Adam, AdamW and SGD with momentum."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from ssmred_torch import (  # noqa: E402  # noqa: E402
    LRU,
    LRUModel,
    plan_reduction,
    rank,
    reduce_model,
    ssm_layers,
    tolerance,
    update_optimizer_state,
)

pytestmark = pytest.mark.torch

STATE_PARAMS = ("nu_log", "theta_log", "gamma_log", "B_re", "B_im", "C_re", "C_im")


def _train_step(model, opt, gen, d_in=2):
    x = torch.randn(4, 16, d_in, dtype=next(model.parameters()).dtype, generator=gen)
    loss = model(x).square().mean()
    opt.zero_grad()
    loss.backward()
    opt.step()
    return float(loss.detach())


def _reduce(layer, mode):
    """Plan and write back without touching the optimizer; returns (plan, state maps)."""
    entries = ssm_layers(layer)
    plan = plan_reduction(entries, mode, gate=1.0)
    maps = [e.adapter.write_back_(e.module, p.reduced) for e, p in zip(entries, plan.layers, strict=True)]
    return plan, maps


def _linear_loss(layer, Wb, Wc):
    """A loss that is linear in (B~, C): its gradient does not depend on the point."""
    Bt = torch.exp(layer.gamma_log)[:, None] * torch.complex(layer.B_re, layer.B_im)
    C = torch.complex(layer.C_re, layer.C_im)
    return (Wb.conj() * Bt).real.sum() + (Wc.conj() * C).real.sum()


def test_project_maps_first_moments_by_the_pullback_of_the_truncation(gen):
    layer = LRU(3, 10, dtype=torch.float64, generator=gen)
    Wb = torch.randn(10, 3, dtype=torch.complex128, generator=gen)
    Wc = torch.randn(3, 10, dtype=torch.complex128, generator=gen)
    opt = torch.optim.SGD(layer.parameters(), lr=0.0, momentum=0.9)
    _linear_loss(layer, Wb, Wc).backward()
    opt.step()  # momentum_buffer = gradient, parameters unchanged (lr = 0)
    plan, maps = _reduce(layer, rank(6))
    assert plan.layers[0].report.status == "reduced"
    update_optimizer_state(opt, maps, "project")
    (tmap,) = maps
    # the loss as a function of the new parameters through the lifting B~_old = M B~_new, C_old = C_new N
    B_re = layer.B_re.detach().clone().requires_grad_()
    B_im = layer.B_im.detach().clone().requires_grad_()
    C_re = layer.C_re.detach().clone().requires_grad_()
    C_im = layer.C_im.detach().clone().requires_grad_()
    Bt_new = tmap.extra["gamma_new"][:, None] * torch.complex(B_re, B_im)
    Bt_old = tmap.M[0] @ Bt_new
    C_old = torch.complex(C_re, C_im) @ tmap.N[0]
    ((Wb.conj() * Bt_old).real.sum() + (Wc.conj() * C_old).real.sum()).backward()
    for name, t in (("B_re", B_re), ("B_im", B_im), ("C_re", C_re), ("C_im", C_im)):
        buf = opt.state[getattr(layer, name)]["momentum_buffer"]
        torch.testing.assert_close(buf, t.grad, rtol=1e-9, atol=1e-12)


def test_project_keeps_second_moments_nonnegative_and_per_state_moments_convex(gen):
    model = LRUModel(2, 4, 12, 2, 3, dtype=torch.float64, generator=gen)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, amsgrad=True)
    _train_step(model, opt, gen)
    with torch.no_grad():
        for block in model.blocks:
            opt.state[block.ssm.nu_log]["exp_avg"].fill_(0.25)
    steps = {p: opt.state[p]["step"].clone() for p in model.parameters()}
    reduce_model(model, rank(5), optimizer=opt, optimizer_policy="project")
    for block in model.blocks:
        layer = block.ssm
        torch.testing.assert_close(
            opt.state[layer.nu_log]["exp_avg"], torch.full((5,), 0.25, dtype=torch.float64), rtol=1e-12, atol=0
        )
        for name in STATE_PARAMS:
            st = opt.state[getattr(layer, name)]
            assert st["exp_avg"].shape == getattr(layer, name).shape
            assert bool((st["exp_avg_sq"] >= 0).all())
            assert bool((st["max_exp_avg_sq"] >= 0).all())
    for p in model.parameters():
        assert torch.equal(opt.state[p]["step"], steps[p])


def test_slice_keeps_the_first_entries_in_old_coordinates(gen):
    layer = LRU(2, 9, dtype=torch.float64, generator=gen)
    opt = torch.optim.AdamW(layer.parameters(), lr=1e-3)
    layer(torch.randn(2, 8, 2, dtype=torch.float64, generator=gen)).square().sum().backward()
    opt.step()
    old = {name: opt.state[getattr(layer, name)]["exp_avg"].clone() for name in STATE_PARAMS}
    reduce_model(layer, rank(4), optimizer=opt, optimizer_policy="slice")
    for name in STATE_PARAMS:
        new = opt.state[getattr(layer, name)]["exp_avg"]
        expected = old[name][..., :4] if name.startswith("C") else old[name][:4]
        assert torch.equal(new, expected)


def test_reset_drops_the_state_of_the_reduced_parameters(gen):
    layer = LRU(2, 9, dtype=torch.float64, generator=gen)
    opt = torch.optim.Adam(layer.parameters(), lr=1e-3)
    layer(torch.randn(2, 8, 2, dtype=torch.float64, generator=gen)).square().sum().backward()
    opt.step()
    reduce_model(layer, rank(4), optimizer=opt, optimizer_policy="reset")
    for name in STATE_PARAMS:
        assert getattr(layer, name) not in opt.state
    assert layer.D in opt.state


@pytest.mark.parametrize("policy", ["reset", "slice", "project"])
@pytest.mark.parametrize("kind", ["adam", "adamw", "sgd"])
def test_training_continues_with_the_same_optimizer_and_scheduler(gen, policy, kind):
    model = LRUModel(2, 4, 12, 2, 3, generator=gen)
    if kind == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    else:
        opt = (torch.optim.Adam if kind == "adam" else torch.optim.AdamW)(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (1 + s))
    for _ in range(2):
        _train_step(model, opt, gen)
        sched.step()
    groups_before = [list(map(id, g["params"])) for g in opt.param_groups]
    report = reduce_model(model, tolerance(0.3), optimizer=opt, optimizer_policy=policy)
    assert report.changed
    assert [list(map(id, g["params"])) for g in opt.param_groups] == groups_before
    for _ in range(2):
        loss = _train_step(model, opt, gen)
        sched.step()
    assert torch.isfinite(torch.tensor(loss))
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-3 / 5 if kind != "sgd" else 0.05 / 5)
    for p in model.parameters():
        for v in opt.state[p].values():
            if isinstance(v, torch.Tensor) and v.ndim:
                assert v.shape == p.shape


def test_policy_and_optimizer_are_checked(gen):
    layer = LRU(2, 6, generator=gen)
    with pytest.raises(ValueError, match="optimizer_policy"):
        reduce_model(layer, rank(3), optimizer=torch.optim.Adam(layer.parameters()), optimizer_policy="magic")
    with pytest.raises(TypeError, match="reset"):
        reduce_model(layer, rank(3), optimizer=torch.optim.Adagrad(layer.parameters()), optimizer_policy="project")
    assert layer.d_state == 6  # nothing touched
    reduce_model(layer, rank(3), optimizer=torch.optim.Adagrad(layer.parameters()), optimizer_policy="reset")
    assert layer.d_state == 3
