"""The Mamba family (issue 12): the selective block, its reference layout, the surrogate, the reduction rules."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import ssmred_torch as st  # noqa: E402
from ssmred_torch import Mamba, adapter_for, rank  # noqa: E402

import ssmred  # noqa: E402

pytestmark = pytest.mark.torch
F64 = torch.float64
RULES = ("modal_shared", "modal_channel", "balanced")
REFERENCE = {"in_proj.weight", "conv1d.weight", "conv1d.bias", "x_proj.weight", "dt_proj.weight", "dt_proj.bias"}
REFERENCE |= {"A_log", "D", "out_proj.weight"}


def _layer(gen, rule="modal_shared", n=8, H=2, **kw) -> Mamba:
    return Mamba(H, n, rule=rule, dtype=F64, generator=gen, **kw)


def _reference_forward(layer: Mamba, x: torch.Tensor) -> torch.Tensor:
    """The reference equations (mamba_ssm's selective_scan_ref, as mamba-minimal writes it) in plain loops."""
    sd = {k: v.detach() for k, v in layer.state_dict().items()}
    d, n = sd["A_log"].shape
    R, K = sd["dt_proj.weight"].shape[1], sd["conv1d.weight"].shape[-1]
    b, L, _ = x.shape
    xz = x @ sd["in_proj.weight"].T
    xs, z = xz[..., :d], xz[..., d:]
    padded = torch.cat([torch.zeros(b, K - 1, d, dtype=x.dtype), xs], 1)
    conv = torch.stack([(padded[:, t : t + K, :] * sd["conv1d.weight"][:, 0, :].T).sum(1) for t in range(L)], 1)
    u = torch.nn.functional.silu(conv + sd["conv1d.bias"])
    dbc = u @ sd["x_proj.weight"].T
    delta = torch.nn.functional.softplus(dbc[..., :R] @ sd["dt_proj.weight"].T + sd["dt_proj.bias"])
    B, C = dbc[..., R : R + n], dbc[..., R + n :]
    A = -torch.exp(sd["A_log"])
    h = torch.zeros(b, d, n, dtype=x.dtype)
    ys = []
    for t in range(L):
        h = torch.exp(delta[:, t, :, None] * A) * h + (delta[:, t] * u[:, t])[..., None] * B[:, t, None, :]
        ys.append((h * C[:, t, None, :]).sum(-1) + sd["D"] * u[:, t])
    y = torch.stack(ys, 1)
    return (y * torch.nn.functional.silu(z)) @ sd["out_proj.weight"].T


# ---------------------------------------------------------------------------------------------- the block
def test_scan_varying_matches_the_loop(gen):
    for L in (1, 2, 7, 16, 33):
        a = torch.rand(2, L, 3, dtype=F64, generator=gen)
        x = torch.randn(2, L, 3, dtype=F64, generator=gen)
        torch.testing.assert_close(
            st.diagonal_scan_varying(a, x, dim=1), st.diagonal_scan_varying_sequential(a, x, dim=1), rtol=0, atol=1e-12
        )
    a = torch.polar(torch.rand(5, 9, dtype=F64, generator=gen), torch.randn(5, 9, dtype=F64, generator=gen))
    x = torch.randn(5, 9, dtype=torch.complex128, generator=gen)
    torch.testing.assert_close(
        st.diagonal_scan_varying(a, x), st.diagonal_scan_varying_sequential(a, x), rtol=0, atol=1e-12
    )


def test_forward_is_the_reference_recurrence(gen):
    layer = _layer(gen, n=6, H=3)
    x = torch.randn(2, 17, 3, dtype=F64, generator=gen)
    with torch.no_grad():
        y = layer(x)
        torch.testing.assert_close(y, _reference_forward(layer, x), rtol=0, atol=1e-10)
        torch.testing.assert_close(y, layer.forward_sequential(x), rtol=0, atol=1e-10)


def test_names_and_initialisation(gen):
    state = torch.random.get_rng_state()
    layer = Mamba(16, 8, dt_min=1e-3, dt_max=1e-1, generator=gen)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global RNG is not touched
    assert {k for k, _ in layer.named_parameters()} == REFERENCE
    assert layer.d_inner == 32
    assert layer.dt_rank == 1
    assert tuple(layer.A_log.shape) == (32, 8)
    torch.testing.assert_close(layer.A_log[3], torch.log(torch.arange(1.0, 9.0)))
    assert torch.equal(layer.D, torch.ones(32))
    dt = torch.nn.functional.softplus(layer.dt_proj.bias.double())
    assert bool((dt >= 1e-3 * (1 - 1e-6)).all())
    assert bool((dt <= 0.1 * (1 + 1e-6)).all())
    assert float(layer.dt_proj.weight.detach().abs().max()) <= 1.0  # U(-dt_rank^-1/2, dt_rank^-1/2)
    assert torch.equal(Mamba(16, 8, generator=torch.Generator().manual_seed(0)).x_proj.weight,
                       Mamba(16, 8, generator=torch.Generator().manual_seed(0)).x_proj.weight)  # fmt: skip


@pytest.mark.parametrize("prefix", ["backbone.layers.1.mixer.", "layers.0.mixer.", ""])
def test_loads_a_reference_state_dict(gen, prefix):
    ref = Mamba(4, 5, d_conv=3, dt_rank=2, bias=True, dtype=F64, generator=gen)
    sd = {prefix + k: v for k, v in ref.state_dict().items() if not k.startswith("calib")}
    sd[prefix + "norm.weight"] = torch.ones(4)  # a residual block's other keys are ignored
    layer = Mamba.from_reference_state_dict(sd, prefix=prefix, rule="balanced", dtype=F64)
    assert (layer.d_model, layer.d_inner, layer.d_state, layer.dt_rank, layer.d_conv) == (4, 8, 5, 2, 3)
    x = torch.randn(2, 6, 4, dtype=F64, generator=gen)
    torch.testing.assert_close(layer(x), ref(x), rtol=0, atol=0)
    del sd[prefix + "A_log"]
    with pytest.raises(KeyError, match="A_log"):
        Mamba.from_reference_state_dict(sd, prefix=prefix)


# ---------------------------------------------------------------------------------------------- surrogate
def test_calibration_means_are_exact_and_training_keeps_a_window(gen):
    layer = _layer(gen, calibration_batches=2)
    xs = [torch.randn(3, 7, 2, dtype=F64, generator=gen) for _ in range(3)]
    st.calibrate_(layer, torch.cat(xs), batch_size=4)
    with torch.no_grad():
        sel = layer.selection(torch.cat(xs))
    stats = layer.statistics()
    assert stats.weight == 63.0
    torch.testing.assert_close(stats.delta, sel.delta.mean((0, 1)), rtol=1e-12, atol=0)
    torch.testing.assert_close(stats.delta_B, torch.einsum("bld,bln->dn", sel.delta, sel.B) / 63, rtol=1e-12, atol=0)
    torch.testing.assert_close(stats.C, sel.C.mean((0, 1)), rtol=1e-12, atol=0)
    A = -torch.exp(layer.A_log.detach())
    expected = torch.exp(sel.delta[..., None] * A).mean((0, 1))
    torch.testing.assert_close(stats.transition.real, expected, rtol=1e-12, atol=0)
    # training mode: a ring of the last calibration_batches batches; evaluation records nothing
    layer.train()
    for x in xs:
        layer(x)
    layer.eval()
    layer(torch.randn(5, 7, 2, dtype=F64, generator=gen))
    with torch.no_grad():
        last = torch.cat([layer.selection(x).delta for x in xs[1:]])
    torch.testing.assert_close(layer.statistics().delta, last.mean((0, 1)), rtol=1e-12, atol=0)
    assert layer.statistics().transition is None  # exp_mean layers do not record E[exp(delta a)] in training


def test_averaging_rules(gen):
    layer = _layer(gen)
    st.calibrate_(layer, torch.randn(8, 20, 2, dtype=F64, generator=gen))
    out = {}
    for transition in ("exp_mean", "mean_exp"):
        for drive in ("mean_product", "product_of_means"):
            layer.transition, layer.drive = transition, drive
            out[transition, drive] = [t.detach() for t in st.surrogate_matrices(layer)]
    lam_em, lam_me = out["exp_mean", "mean_product"][0], out["mean_exp", "mean_product"][0]
    assert bool((lam_me.real >= lam_em.real * (1 - 1e-12)).all())  # Jensen: E[exp(dA)] >= exp(E[d] A)
    assert not torch.allclose(out["exp_mean", "mean_product"][2], out["exp_mean", "product_of_means"][2])
    # frozen (constant) selection: all four rules give the same system
    _freeze(layer, gen)
    for t in ("exp_mean", "mean_exp"):
        for dr in ("mean_product", "product_of_means"):
            layer.transition, layer.drive = t, dr
            want_all = _surrogate_of(layer, "exp_mean", "mean_product")
            for got, want in zip(st.surrogate_matrices(layer), want_all, strict=True):
                torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)


def _surrogate_of(layer, transition, drive):
    saved = layer.transition, layer.drive
    layer.transition, layer.drive = transition, drive
    try:
        return st.surrogate_matrices(layer)
    finally:
        layer.transition, layer.drive = saved


def _freeze(layer: Mamba, gen) -> None:
    """Calibration statistics of constant delta, B, C: the core is then exactly LTI (the frozen case)."""
    d, n = layer.d_inner, layer.n_features
    delta = 0.05 + 0.2 * torch.rand(d, dtype=F64, generator=gen)
    B = torch.randn(n, dtype=F64, generator=gen)
    C = torch.randn(n, dtype=F64, generator=gen)
    with st.recording(layer), torch.no_grad():
        layer.core(torch.zeros(1, 4, d, dtype=F64), delta.expand(1, 4, d), B.expand(1, 4, n), C.expand(1, 4, n))


def _frozen_impulse(layer: Mamba, length: int) -> np.ndarray:
    d = layer.d_inner
    u = torch.zeros(d, length, d, dtype=F64)
    u[torch.arange(d), 0, torch.arange(d)] = 1.0
    with torch.no_grad():
        return layer.frozen_core(u).permute(1, 2, 0).numpy()


def _markov(sys: ssmred.StateSpace, length: int) -> np.ndarray:
    out, X = [sys.D], sys.B
    for _ in range(length - 1):
        out.append(sys.C @ X)
        X = sys.A @ X
    return np.stack(out)


@pytest.mark.parametrize("rule", RULES)
def test_frozen_delta_is_exactly_lti_and_the_bound_holds_exactly(gen, rule):
    layer = _layer(gen, rule=rule, n=10)
    _freeze(layer, gen)
    adapter = adapter_for(layer)
    full = st.to_statespace(layer, exact=True).to_real()
    h = _frozen_impulse(layer, 60)
    np.testing.assert_allclose(h, _markov(full, 60), rtol=0, atol=1e-12 * np.abs(h).max())
    with torch.no_grad():
        before = adapter.systems(layer)
    plan = st.plan_reduction(layer, rank(3), gate=1.0)
    smap = adapter.write_back_(layer, plan.layers[0].reduced)
    assert layer.d_state == 3
    reduced = st.to_statespace(layer, exact=True).to_real()
    h_r = _frozen_impulse(layer, 60)  # the reduced layer realises what its adapter reports ...
    np.testing.assert_allclose(h_r, _markov(reduced, 60), rtol=0, atol=1e-10 * np.abs(h).max())
    error = ssmred.hinf_norm(full - reduced)  # ... and that system obeys the rule's bound exactly
    if rule == "balanced":
        bound = plan.layers[0].report.error_bound
        for g in range(before.n_systems):  # every channel's reduced surrogate is its balanced truncation
            sys_g = ssmred.from_diagonal(before.lam[g].numpy(), before.B[g].numpy(), before.C[g].numpy(), dt=1.0)
            w = np.linspace(-np.pi, np.pi, 65)
            with torch.no_grad():
                after = adapter.systems(layer)
            red_g = ssmred.from_diagonal(after.lam[g].numpy(), after.B[g].numpy(), after.C[g].numpy(), dt=1.0)
            G_bt = ssmred.balanced_truncation(sys_g, 3).reduced.frequency_response(w)
            np.testing.assert_allclose(red_g.frequency_response(w), G_bt, rtol=0, atol=1e-8 * np.abs(G_bt).max())
    else:
        keep = torch.zeros(before.lam.shape, dtype=torch.bool).scatter_(1, smap.extra["index"], True)
        bound = float(st.modal_error_bound(before, keep).max())
    assert 0.0 < error <= bound * (1 + 1e-8)


@pytest.mark.parametrize("rule", RULES)
def test_training_and_checkpoints_after_a_reduction(gen, rule, tmp_path):
    model = st.MambaModel(1, 4, 10, 2, 3, rule=rule, dtype=F64, generator=gen)
    x = torch.randn(6, 12, 1, dtype=F64, generator=gen)
    y = torch.randint(0, 3, (6,), generator=gen)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(2):  # training records the surrogate statistics
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    report = st.reduce_model(model, rank(4), optimizer=opt, gate=1.0)
    assert report.sizes_after == (4, 4)
    for _ in range(2):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    assert all(bool(torch.isfinite(p).all()) for p in model.parameters())
    st.save(tmp_path / "m.pt", model, optimizer=opt)
    fresh = st.MambaModel(1, 4, 10, 2, 3, rule=rule, dtype=F64, generator=torch.Generator().manual_seed(5))
    st.load(tmp_path / "m.pt", fresh)
    model.eval(), fresh.eval()
    torch.testing.assert_close(fresh(x), model(x), rtol=0, atol=0)
    assert torch.equal(fresh.blocks[0].ssm.calib_delta_B, model.blocks[0].ssm.calib_delta_B)


def test_modal_shared_is_a_plain_smaller_mamba(gen):
    layer = _layer(gen, n=10)
    st.calibrate_(layer, torch.randn(4, 16, 2, dtype=F64, generator=gen))
    st.reduce_model(layer, rank(3), gate=1.0)
    sd = {k: v for k, v in layer.state_dict().items() if not k.startswith("calib")}
    plain = Mamba.from_reference_state_dict(sd, dtype=F64)
    assert plain.d_state == 3
    x = torch.randn(2, 9, 2, dtype=F64, generator=gen)
    torch.testing.assert_close(plain(x), layer(x), rtol=0, atol=0)


def test_uncalibrated_and_stale_statistics_are_typed_errors(gen):
    layer = _layer(gen, rule="balanced", transition="mean_exp")
    with pytest.raises(st.CalibrationError, match="calibrate_"):
        adapter_for(layer).systems(layer)
    st.calibrate_(layer, torch.randn(3, 10, 2, dtype=F64, generator=gen))
    st.reduce_model(layer, rank(3), gate=1.0)
    with pytest.raises(st.CalibrationError, match="mean_exp"):  # E[exp(delta a)] is stale after new rates
        adapter_for(layer).systems(layer)
    st.calibrate_(layer, torch.randn(3, 10, 2, dtype=F64, generator=gen))
    assert adapter_for(layer).systems(layer).lam.shape == (4, 3)
    with pytest.raises(NotImplementedError, match="selective"):
        st.from_statespace(st.to_statespace(layer), like=layer)


def test_frozen_time_hsv_spread_and_the_regulariser(gen):
    model = st.MambaModel(1, 4, 6, 1, 3, dtype=F64, generator=gen)
    x = torch.randn(8, 12, 1, dtype=F64, generator=gen)
    st.calibrate_(model, x)
    (spread,) = st.frozen_time_hsvs(model, x, positions=32, generator=gen)
    layer = model.blocks[0].ssm
    s = adapter_for(layer).systems(layer)
    torch.testing.assert_close(spread.surrogate, st.kernels.hsv_diagonal(s.lam, s.B, s.C, log_lam=s.log_lam).detach())
    assert bool((spread.frozen[0] <= spread.frozen[1]).all())
    assert bool((spread.frozen[1] <= spread.frozen[2]).all())
    st.hankel_nuclear_norm(model).backward()  # exp_mean surrogate: differentiable in A_log
    assert layer.A_log.grad is not None
    assert bool(layer.A_log.grad.abs().sum() > 0)


def test_compressm_controller_on_a_mamba_model(gen):
    model = st.MambaModel(1, 4, 16, 2, 3, dtype=torch.float32, generator=gen)
    x = torch.randn(8, 12, 1, generator=gen)
    y = torch.randint(0, 3, (8,), generator=gen)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    ctl = st.CompreSSM(8, mode=st.tolerance(0.05), schedule=[2, 4])
    for step in range(1, 9):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        ctl.step(step, model, opt)
    assert max(model.state_sizes) < 16
    assert [r.kind for r in ctl.history] == ["reduce", "reduce"]
