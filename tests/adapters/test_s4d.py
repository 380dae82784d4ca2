"""S4D family: forward by kernel vs scan, initialisation, importer of the state-spaces/s4 layouts, the
analysed/exact relation, the ZOH aliasing guard, conjugate pairs, the one-order-per-layer rule, models."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg as spla

torch = pytest.importorskip("torch")

from ssmred_torch import (  # noqa: E402
    S4D,
    S4DModel,
    adapter_for,
    load,
    plan_reduction,
    rank,
    reduce_model,
    s4d_from_reference,
    save,
    ssm_layers,
    to_statespace,
    tolerance,
    update_optimizer_state,
)
from ssmred_torch.layers._continuous import continuous_from_discrete, half_states_from_real  # noqa: E402

import ssmred  # noqa: E402
from ssmred.errors import DimensionError  # noqa: E402
from ssmred.selection import numerical_rank, select_orders  # noqa: E402

pytestmark = pytest.mark.torch
F64 = torch.float64


# ---------------------------------------------------------------------------------------------- forward
@pytest.mark.parametrize("length", [1, 2, 17, 200])
@pytest.mark.parametrize("discretization", ["zoh", "bilinear"])
@pytest.mark.parametrize("init", ["lin", "inv", "real"])
def test_kernel_scan_and_recurrence_agree_in_float64(gen, length, discretization, init):
    layer = S4D(4, 16, discretization=discretization, init=init, dt_max=0.5, dtype=F64, generator=gen)
    u = torch.randn(3, length, 4, dtype=F64, generator=gen)
    with torch.no_grad():
        y_conv, y_scan, y_seq = layer.forward_conv(u), layer.forward_scan(u), layer.forward_sequential(u)
    scale = float(y_seq.abs().max())
    torch.testing.assert_close(y_conv, y_seq, rtol=0, atol=1e-10 * scale)
    torch.testing.assert_close(y_scan, y_seq, rtol=0, atol=1e-10 * scale)


def test_modes_are_selectable_and_float32_agrees(gen):
    layer = S4D(3, 8, dtype=torch.float32, generator=gen)
    u = torch.randn(2, 64, 3, generator=gen)
    with torch.no_grad():
        y_conv = layer(u)
        layer.mode = "scan"
        y_scan = layer(u)
    torch.testing.assert_close(y_conv, y_scan, rtol=1e-4, atol=1e-4 * float(y_scan.abs().max()))


def test_gradients_of_kernel_and_scan_agree(gen):
    layer = S4D(3, 8, discretization="bilinear", dtype=F64, generator=gen)
    u = torch.randn(2, 33, 3, dtype=F64, generator=gen)
    grads = []
    for fwd in (layer.forward_conv, layer.forward_scan):
        layer.zero_grad()
        (fwd(u) ** 2).sum().backward()
        grads.append([p.grad.clone() for p in layer.parameters()])
    for g_conv, g_scan in zip(*grads, strict=True):
        torch.testing.assert_close(g_conv, g_scan, rtol=1e-8, atol=1e-10)


# ---------------------------------------------------------------------------------------------- initialisation
def test_init_follows_state_spaces_s4d(gen):
    H, N = 64, 16
    lin = S4D(H, N, dt_min=1e-3, dt_max=1e-1, dtype=F64, generator=gen)
    n = torch.arange(N // 2, dtype=F64)
    torch.testing.assert_close(lin.A_imag.detach(), (math.pi * n).expand(H, -1), rtol=0, atol=0)
    torch.testing.assert_close(torch.exp(lin.log_A_real.detach()), torch.full((H, N // 2), 0.5, dtype=F64))
    inv = S4D(H, N, init="inv", dtype=F64, generator=gen)
    expected = (N / math.pi) * (N / (2 * n + 1) - 1)
    torch.testing.assert_close(inv.A_imag.detach(), expected.expand(H, -1), rtol=1e-15, atol=0)
    real = S4D(H, N, init="real", dtype=F64, generator=gen)
    torch.testing.assert_close(real.continuous_eigenvalues().detach(), -(1 + n).expand(H, -1).to(torch.complex128))
    dt = torch.exp(lin.log_dt.detach())
    assert 1e-3 <= float(dt.min())
    assert float(dt.max()) <= 1e-1
    torch.testing.assert_close(lin.B_re.detach(), torch.ones(H, N // 2, dtype=F64))
    assert abs(float(lin.C_re.detach().var()) - 0.5) < 0.1
    assert [k for k, _ in lin.named_parameters()] == [
        "log_dt", "log_A_real", "A_imag", "B_re", "B_im", "C_re", "C_im", "D"
    ]
    fixed = S4D(2, 4, learn_B=False)
    assert "B_re" not in dict(fixed.named_parameters())
    assert "B_re" in dict(fixed.named_buffers())


def test_bad_arguments_raise_named_errors():
    with pytest.raises(ValueError, match="even"):
        S4D(2, 7)
    with pytest.raises(ValueError, match="init"):
        S4D(2, 8, init="legs")
    with pytest.raises(ValueError, match="discretization"):
        S4D(2, 8, discretization="euler")
    with pytest.raises(ValueError, match="mode"):
        S4D(2, 8, mode="fft")
    with pytest.raises(ValueError, match="dt_min"):
        S4D(2, 8, dt_min=0.2, dt_max=0.1)
    with pytest.raises(DimensionError, match="d_model=2"):
        S4D(2, 8)(torch.zeros(1, 3, 5))


# ---------------------------------------------------------------------------------------------- importer
def _minimal_state_dict(rng: np.random.Generator, H: int, n: int) -> dict[str, torch.Tensor]:
    """The layout of state-spaces/s4 models/s4/s4d.py (S4D with its S4DKernel), synthetic values."""
    return {
        "D": torch.tensor(rng.normal(size=H)),
        "kernel.log_dt": torch.tensor(rng.uniform(np.log(1e-3), np.log(0.3), size=H)),
        "kernel.C": torch.tensor(rng.normal(size=(H, n, 2))),
        "kernel.log_A_real": torch.tensor(np.log(rng.uniform(0.1, 1.0, size=(H, n)))),
        "kernel.A_imag": torch.tensor(np.pi * rng.uniform(0, 2 * n, size=(H, n))),
        "output_linear.0.weight": torch.zeros(2 * H, H, 1),  # the rest of the module: ignored
    }


def _minimal_kernel(sd: dict[str, torch.Tensor], L: int) -> np.ndarray:
    """That module's kernel, from its documented formula (K = 2 Re sum C (e^{dtA} - 1)/A e^{dtA l})."""
    dt = np.exp(sd["kernel.log_dt"].numpy())
    C = sd["kernel.C"].numpy()[..., 0] + 1j * sd["kernel.C"].numpy()[..., 1]
    A = -np.exp(sd["kernel.log_A_real"].numpy()) + 1j * sd["kernel.A_imag"].numpy()
    dtA = A * dt[:, None]
    return 2 * np.einsum("hn,hnl->hl", C * np.expm1(dtA) / A, np.exp(dtA[..., None] * np.arange(L))).real


def _full_state_dict(rng: np.random.Generator, H: int, S: int, n: int, prefix: str) -> dict[str, np.ndarray]:
    """The layout of state-spaces/s4 SSMKernelDiag inside FFTConv (channels = 1, dt_tie), synthetic values."""
    return {
        prefix + "D": rng.normal(size=(1, H)),
        prefix + "kernel.inv_dt": rng.uniform(np.log(1e-3), np.log(0.1), size=(H, 1)),
        prefix + "kernel.A_real": np.log(rng.uniform(0.2, 1.0, size=(S, n))),
        prefix + "kernel.A_imag": rng.uniform(0, 30, size=(S, n)),
        prefix + "kernel.B": rng.normal(size=(1, S, n, 2)),
        prefix + "kernel.C": rng.normal(size=(1, H, n, 2)),
    }


def _full_kernel(sd: dict[str, np.ndarray], prefix: str, L: int, disc: str) -> np.ndarray:
    """SSMKernelDiag's kernel from its documented formulas (default transforms exp / exp / none)."""
    H = sd[prefix + "D"].shape[1]
    S = sd[prefix + "kernel.A_real"].shape[0]
    copy = np.arange(H) % S  # repeat 't n -> (v t) n'
    dt = np.exp(sd[prefix + "kernel.inv_dt"])  # (H, 1)
    A = (-np.exp(sd[prefix + "kernel.A_real"]) - 1j * sd[prefix + "kernel.A_imag"])[copy]
    B = (sd[prefix + "kernel.B"][0, ..., 0] + 1j * sd[prefix + "kernel.B"][0, ..., 1])[copy]
    C = sd[prefix + "kernel.C"][0, ..., 0] + 1j * sd[prefix + "kernel.C"][0, ..., 1]
    dtA = dt * A
    if disc == "zoh":
        w, log_dA = C * B * np.expm1(dtA) / A, dtA
    else:
        w, log_dA = C * B * dt / (1 - dtA / 2), np.log((1 + dtA / 2) / (1 - dtA / 2))
    return 2 * np.einsum("hn,hnl->hl", w, np.exp(log_dA[..., None] * np.arange(L))).real


def test_importer_reads_the_minimal_s4d_layout():
    sd = _minimal_state_dict(np.random.default_rng(0), 5, 6)
    layer = s4d_from_reference(sd, dtype=F64)
    assert (layer.d_model, layer.d_state, layer.learn_B, layer.discretization) == (5, 12, False, "zoh")
    with torch.no_grad():
        K = layer.kernel(300).numpy()
    ref = _minimal_kernel(sd, 300)
    np.testing.assert_allclose(K, ref, rtol=0, atol=1e-12 * np.abs(ref).max())
    torch.testing.assert_close(layer.D.detach(), sd["D"], rtol=0, atol=0)


@pytest.mark.parametrize("disc", ["zoh", "bilinear"])
def test_importer_reads_the_full_ssmkerneldiag_layout(disc):
    prefix = "model.layers.2.layer."
    sd = _full_state_dict(np.random.default_rng(1), 6, 3, 4, prefix)
    sd["model.layers.1.layer.kernel_other"] = np.zeros(3)  # other modules are ignored
    layer = s4d_from_reference(sd, discretization=disc, dtype=F64)
    assert (layer.d_model, layer.n_states, layer.learn_B) == (6, 4, True)
    with torch.no_grad():
        K = layer.kernel(200).numpy()
    ref = _full_kernel(sd, prefix, 200, disc)
    np.testing.assert_allclose(K, ref, rtol=0, atol=1e-12 * np.abs(ref).max())
    # the layer's own forward is the convolution with that kernel plus D u
    u = torch.randn(1, 50, 6, dtype=F64)
    y = np.stack([np.convolve(u[0, :, h].numpy(), ref[h, :50])[:50] for h in range(6)], -1) + sd[prefix + "D"][0] * u[
        0
    ].numpy()
    np.testing.assert_allclose(layer(u)[0].detach().numpy(), y, rtol=0, atol=1e-10 * np.abs(y).max())


def test_importer_refuses_what_it_cannot_represent():
    rng = np.random.default_rng(2)
    two = {**_full_state_dict(rng, 4, 4, 3, "a."), **_full_state_dict(rng, 4, 4, 3, "b.")}
    with pytest.raises(ValueError, match="prefix"):
        s4d_from_reference(two)
    assert s4d_from_reference(two, prefix="b.").d_model == 4
    wide = _full_state_dict(rng, 4, 4, 3, "")
    wide["kernel.C"] = rng.normal(size=(2, 4, 3, 2))
    with pytest.raises(ValueError, match="channels"):
        s4d_from_reference(wide)
    untied = _full_state_dict(rng, 4, 4, 3, "")
    untied["kernel.inv_dt"] = rng.normal(size=(4, 3))
    with pytest.raises(ValueError, match="dt_tie"):
        s4d_from_reference(untied)
    with pytest.raises(ValueError, match="no S4D kernel"):
        s4d_from_reference({"D": np.zeros(3)})


# ---------------------------------------------------------------------------------------------- systems
def test_exact_system_is_twice_the_real_part_of_the_advanced_analysed_system(gen):
    layer = S4D(3, 8, discretization="bilinear", dtype=F64, generator=gen)
    analysed, exact = to_statespace(layer), to_statespace(layer, exact=True)
    assert analysed.is_complex
    assert not exact.is_complex
    assert (analysed.n_states, exact.n_states) == (12, 24)
    w = np.linspace(-3.0, 3.0, 41)
    z = np.exp(1j * w)
    D = np.diag(layer.D.detach().numpy())

    def F(zz: np.ndarray) -> np.ndarray:  # z (G_Sigma(z) - D)
        return np.stack([zk * (analysed(zk) - D) for zk in zz])

    expected = D + F(z) + np.conj(F(np.conj(z)))  # D + 2 Re* [z (G_Sigma - D)]
    got = np.stack([exact(zk) for zk in z])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10 * np.abs(expected).max())
    assert np.count_nonzero(got[:, 0, 1]) == 0  # SISO per channel: the transfer matrix is diagonal


def test_exact_round_trip_makes_conjugate_pairs_and_half_residue_real_poles(gen):
    for init in ("lin", "real"):  # S4D-Lin's first mode (Im a = 0) and all of S4D-Real's are real poles
        layer = S4D(2, 6, init=init, dtype=F64, generator=gen)
        back = adapter_for(layer).from_statespace(to_statespace(layer, exact=True), like=layer, exact=True)
        n_real = int((layer.A_imag.detach()[0] == 0).sum())
        # a pair becomes one half-state; a real-pole half-state is realised twice (2 real states), each
        # becomes a half-state with half the residue
        assert back.n_states == layer.n_states + n_real
        u = torch.randn(2, 40, 2, dtype=F64, generator=gen)
        torch.testing.assert_close(back(u), layer(u), rtol=1e-9, atol=1e-9)


def test_half_states_of_a_random_real_system():
    sys = ssmred.random_stable(7, 2, 3, dt=1.0, rng=np.random.default_rng(4))
    mu, B, C = half_states_from_real(sys.A, sys.B, sys.C)
    n_real = int(np.sum(np.imag(spla.eigvals(sys.A)) == 0))
    assert mu.size == (7 - n_real) // 2 + n_real
    for z in (0.3 + 0.9j, -1.0, 1j):
        half = C @ np.diag(1 / (z - mu)) @ B
        half_conj = np.conj(C @ np.diag(1 / (np.conj(z) - mu)) @ B)
        np.testing.assert_allclose(half + half_conj, sys(z) - sys.D, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------------------------- aliasing guard
def test_continuous_from_discrete_keeps_the_branch_of_the_reference():
    step = torch.tensor(0.5, dtype=F64)
    # a mode just inside the Nyquist limit whose truncated successor crossed it
    ref = torch.tensor([complex(-0.1, math.pi - 1e-3)], dtype=torch.complex128)
    mu = torch.exp(torch.tensor([complex(-0.1, -math.pi + 1e-4)], dtype=torch.complex128))
    a, phi, bad = continuous_from_discrete(mu, step, "zoh", ref_log=ref)
    assert abs(float((step * a).imag) - (math.pi + 1e-4)) < 1e-12
    assert float((step * continuous_from_discrete(mu, step, "zoh")[0]).imag) < -3.0  # principal: flipped side
    torch.testing.assert_close(torch.exp(step * a), mu, rtol=1e-14, atol=0)
    torch.testing.assert_close(phi, torch.expm1(step * a) / a, rtol=1e-14, atol=0)
    # near mu = 1 a far branch would shrink the input gain: the principal branch is kept
    mu1 = torch.exp(torch.tensor([complex(-1e-4, 1e-4)], dtype=torch.complex128))
    ref1 = torch.tensor([complex(-1e-4, 2 * math.pi)], dtype=torch.complex128)
    a1 = continuous_from_discrete(mu1, step, "zoh", ref_log=ref1)[0]
    assert abs(float((step * a1).imag)) < 1e-3
    # bilinear: unique inverse, unstable values flagged
    a2, _, bad2 = continuous_from_discrete(torch.tensor([0.5j, 1.5], dtype=torch.complex128), step, "bilinear")
    assert bad2.tolist() == [False, True]
    assert float(a2[0].real) < 0
    assert not bool(bad.any())


def test_write_back_keeps_modes_beyond_nyquist_on_their_branch():
    layer = S4D(1, 8, dtype=F64, generator=torch.Generator().manual_seed(1))
    step = float(torch.exp(layer.log_dt.detach())[0])
    target = torch.tensor([[0.5, 2.0, 3 * math.pi - 0.3, math.pi - 0.01]], dtype=F64)
    with torch.no_grad():
        layer.A_imag.copy_(target / step)
        layer.C_re[0, 0] = 1e-6  # a weak mode, the one the truncation drops
        layer.C_im[0, 0] = 0.0
    reduce_model(layer, rank(3), gate=1.0)
    kept = sorted((step * layer.A_imag.detach()[0]).tolist())
    np.testing.assert_allclose(kept, [2.0, math.pi - 0.01, 3 * math.pi - 0.3], rtol=0, atol=2e-2)
    assert all(float(v) > 0 for v in torch.exp(layer.log_A_real.detach()).flatten())  # stored real, stable


# ---------------------------------------------------------------------------------------------- orders
def test_one_order_per_layer_is_the_largest_channel_order(gen):
    layer = S4D(5, 16, dt_max=0.5, dtype=F64, generator=gen)
    with torch.no_grad():
        layer.C_re[:2, 3:] *= 1e-3  # two channels that need few states
        layer.C_im[:2, 3:] *= 1e-3
    mode = tolerance(0.05)
    (lp,) = plan_reduction(layer, mode).layers
    hsv = lp.report.hsv
    assert hsv.shape == (5, 8)
    per_channel = select_orders(mode, list(hsv))
    assert min(per_channel) < max(per_channel)
    assert lp.report.r == min(max(per_channel), min(numerical_rank(row) for row in hsv))
    assert lp.report.r == max(per_channel)


# ---------------------------------------------------------------------------------------------- models
def test_model_trains_reduces_with_projected_moments_and_reloads(gen, tmp_path):
    model = S4DModel(1, 6, 16, 2, 3, dtype=F64, generator=gen)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x, y = torch.randn(4, 30, 1, dtype=F64, generator=gen), torch.tensor([0, 1, 2, 0])
    for _ in range(2):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    report = reduce_model(model, rank(5), optimizer=opt, optimizer_policy="project")
    assert report.sizes_after == (5, 5)
    assert model.state_sizes == [5, 5]
    opt.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    save(tmp_path / "m.pt", model, optimizer=opt)
    fresh = S4DModel(1, 6, 16, 2, 3, dtype=F64)
    load(tmp_path / "m.pt", fresh)
    model.eval()
    fresh.eval()
    torch.testing.assert_close(fresh(x), model(x), rtol=0, atol=0)


@pytest.mark.parametrize("learn_B", [True, False])
def test_project_maps_first_moments_by_the_pullback_of_each_channel_truncation(gen, learn_B):
    layer = S4D(2, 10, learn_B=learn_B, dtype=F64, generator=gen)
    H, n = 2, 5
    Wb = torch.randn(H, n, dtype=torch.complex128, generator=gen)
    Wc = torch.randn(H, n, dtype=torch.complex128, generator=gen)

    def Bbar(lay, phi):
        return phi * torch.complex(lay.B_re, lay.B_im)

    opt = torch.optim.SGD(layer.parameters(), lr=0.0, momentum=0.9)
    phi_old = layer.discrete_system()[2].detach() / torch.complex(layer.B_re, layer.B_im).detach()
    C = torch.complex(layer.C_re, layer.C_im)
    ((Wb.conj() * Bbar(layer, phi_old)).real.sum() + (Wc.conj() * C).real.sum()).backward()
    opt.step()  # momentum_buffer = gradient, parameters unchanged
    (entry,) = ssm_layers(layer)
    plan = plan_reduction([entry], rank(3), gate=1.0)
    tmap = entry.adapter.write_back_(layer, plan.layers[0].reduced)
    update_optimizer_state(opt, [tmap], "project")
    # the same loss through the lifting x_old = M x_r (x_r = scale * x_stored): Bbar_old = M Bbar_r, C_old = C_r N
    scale = tmap.extra["scale"]
    C_re = layer.C_re.detach().clone().requires_grad_()
    C_im = layer.C_im.detach().clone().requires_grad_()
    C_r = torch.complex(C_re, C_im) / scale
    C_old = (C_r[:, None, :] @ tmap.N)[:, 0, :]
    loss = (Wc.conj() * C_old).real.sum()
    leaves = [("C_re", C_re), ("C_im", C_im)]
    if learn_B:
        B_re = layer.B_re.detach().clone().requires_grad_()
        B_im = layer.B_im.detach().clone().requires_grad_()
        B_r = tmap.extra["phi_new"] * torch.complex(B_re, B_im)
        B_old = (tmap.M @ B_r[:, :, None])[:, :, 0]
        loss = loss + (Wb.conj() * B_old).real.sum()
        leaves += [("B_re", B_re), ("B_im", B_im)]
    loss.backward()
    for name, t in leaves:
        torch.testing.assert_close(opt.state[getattr(layer, name)]["momentum_buffer"], t.grad, rtol=1e-9, atol=1e-12)


def test_channel_statespaces_are_the_blocks_of_to_statespace(gen):
    layer = S4D(3, 6, dtype=F64, generator=gen)
    adapter = adapter_for(layer)
    for exact in (False, True):
        whole = to_statespace(layer, exact=exact)
        parts = adapter.channel_statespaces(layer, exact=exact)
        for z in (0.4 + 0.8j, -1.0, 1j):
            G = whole(z)
            np.testing.assert_allclose(np.diag(G), [p(z)[0, 0] for p in parts], rtol=1e-12, atol=1e-14)
        hsv = np.sort(np.concatenate([ssmred.hankel_singular_values(p) for p in parts]))[::-1]
        np.testing.assert_allclose(hsv, ssmred.hankel_singular_values(whole), rtol=0, atol=1e-9 * hsv[0])


def test_bilinear_log_eigenvalues_are_accurate_near_minus_one():
    mp = pytest.importorskip("mpmath")
    from ssmred_torch.layers._continuous import discretize_diagonal

    mp.mp.dps = 40
    a = torch.tensor([complex(-0.5, w) for w in (0.3, 60.0, 4e3, -2e4)], dtype=torch.complex128)
    step = torch.tensor(1e-3, dtype=F64)
    lam, log_lam, _ = discretize_diagonal(a, step, "bilinear")
    for k in range(4):
        z = mp.mpc(complex(a[k])) * mp.mpf(1e-3) / 2
        exact = mp.log((1 + z) / (1 - z))
        got = complex(log_lam[k])
        assert abs((got.real - float(exact.real)) / float(exact.real)) < 1e-14  # log|1+z| - log|1-z| loses ~8 digits
        assert abs(got.imag - float(exact.imag)) < 1e-14
    torch.testing.assert_close(torch.exp(log_lam), lam, rtol=1e-14, atol=0)
