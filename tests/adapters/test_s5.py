"""S5 family: scan vs recurrence, HiPPO-N initialisation, importer of the lindermanlab/S5 layout, the
analysed/exact relation, per-state steps and the aliasing guard at write-back, conjugate pairs, models."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg as spla

torch = pytest.importorskip("torch")

from ssmred_torch import (  # noqa: E402
    S5,
    S5Model,
    adapter_for,
    from_statespace,
    load,
    plan_reduction,
    rank,
    reduce_model,
    s5_from_reference,
    save,
    ssm_layers,
    to_statespace,
    update_optimizer_state,
)
from ssmred_torch.layers.s5 import hippo_n  # noqa: E402

from ssmred import hinf_norm as ssmred_hinf  # noqa: E402
from ssmred.errors import DimensionError  # noqa: E402

pytestmark = pytest.mark.torch
F64 = torch.float64


# ---------------------------------------------------------------------------------------------- forward
@pytest.mark.parametrize("length", [1, 2, 17, 200])
@pytest.mark.parametrize("discretization", ["zoh", "bilinear"])
@pytest.mark.parametrize("conj_sym", [True, False])
def test_parallel_scan_matches_the_recurrence(gen, length, discretization, conj_sym):
    layer = S5(4, 16, discretization=discretization, conj_sym=conj_sym, blocks=2, dtype=F64, generator=gen)
    u = torch.randn(3, length, 4, dtype=F64, generator=gen)
    with torch.no_grad():
        y, y_seq = layer(u), layer.forward_sequential(u)
    torch.testing.assert_close(y, y_seq, rtol=0, atol=1e-12 * float(y_seq.abs().max()))


# ---------------------------------------------------------------------------------------------- initialisation
def test_hippo_n_diagonalises_the_normal_part_of_hippo_legs():
    N = 10
    k = np.arange(N)
    q = np.sqrt(2 * k + 1.0)
    A = -(np.tril(np.outer(q, q)) - np.diag(k))  # HiPPO-LegS
    p = np.sqrt(k + 0.5)
    S = A + np.outer(p, p)
    lam, V = hippo_n(N)
    np.testing.assert_allclose(V @ np.diag(lam) @ V.conj().T, S, rtol=0, atol=1e-12)
    np.testing.assert_allclose(V.conj().T @ V, np.eye(N), rtol=0, atol=1e-12)
    dense = spla.eigvals(S)
    np.testing.assert_allclose(lam, dense[np.argsort(dense.imag)], rtol=0, atol=1e-10)
    assert np.all(np.diff(lam.imag) > 0)


def test_init_follows_lindermanlab_s5(gen):
    layer = S5(8, 24, blocks=3, dt_min=1e-3, dt_max=1e-1, dtype=F64, generator=gen)
    lam, _ = hippo_n(8)
    np.testing.assert_allclose(layer.Lambda_re.detach().numpy(), -0.5, rtol=0, atol=1e-12)
    np.testing.assert_allclose(layer.Lambda_im.detach().numpy(), np.tile(lam.imag[:4], 3), rtol=0, atol=1e-12)
    assert float(layer.Lambda_im.detach().max()) < 0  # the first half of every block
    step = torch.exp(layer.log_step.detach())
    assert 1e-3 <= float(step.min())
    assert float(step.max()) <= 1e-1
    assert layer.n_states == 12
    assert layer.d_state == 24
    full = S5(8, 6, conj_sym=False, dtype=F64, generator=gen)
    np.testing.assert_allclose(full.Lambda_im.detach().numpy(), hippo_n(6)[0].imag, rtol=0, atol=1e-12)
    assert [k for k, _ in layer.named_parameters()] == [
        "Lambda_re", "Lambda_im", "log_step", "B_re", "B_im", "C_re", "C_im", "D"
    ]


def test_bad_arguments_raise_named_errors():
    with pytest.raises(ValueError, match="blocks"):
        S5(2, 12, blocks=4)  # blocks of 3: odd under conj_sym
    with pytest.raises(ValueError, match="blocks"):
        S5(2, 12, blocks=5)
    with pytest.raises(ValueError, match="discretization"):
        S5(2, 8, discretization="dss")
    with pytest.raises(TypeError, match="conj_sym"):
        S5(2, 8, conj_sym=1)
    with pytest.raises(DimensionError, match="d_model=2"):
        S5(2, 8)(torch.zeros(1, 3, 5))


# ---------------------------------------------------------------------------------------------- importer
def _s5_params(rng: np.random.Generator, P: int, H: int) -> dict[str, np.ndarray]:
    """The parameters of one lindermanlab/S5 S5SSM by name, synthetic values in its layout."""
    return {
        "Lambda_re": -rng.uniform(0.1, 1.0, size=P),
        "Lambda_im": rng.uniform(-20, 20, size=P),
        "B": rng.normal(size=(P, H, 2)),
        "C": rng.normal(size=(H, P, 2)),
        "D": rng.normal(size=H),
        "log_step": rng.uniform(np.log(1e-3), np.log(1e-1), size=(P, 1)),
    }


def _s5_apply(params: dict[str, np.ndarray], u: np.ndarray, disc: str, conj_sym: bool, rescale: float) -> np.ndarray:
    """That module's map from its documented formulas (discretize_zoh / _bilinear, apply_ssm), for (L, H)."""
    Lam = params["Lambda_re"] + 1j * params["Lambda_im"]
    Bt = params["B"][..., 0] + 1j * params["B"][..., 1]
    Ct = params["C"][..., 0] + 1j * params["C"][..., 1]
    step = rescale * np.exp(params["log_step"][:, 0])
    if disc == "zoh":
        Lbar = np.exp(Lam * step)
        Bbar = ((Lbar - 1) / Lam)[:, None] * Bt
    else:
        BL = 1 / (1 - step / 2 * Lam)
        Lbar = BL * (1 + step / 2 * Lam)
        Bbar = (BL * step)[:, None] * Bt
    x = np.zeros(Lam.size, dtype=complex)
    ys = []
    for uk in u:
        x = Lbar * x + Bbar @ uk
        ys.append((2 if conj_sym else 1) * (Ct @ x).real + params["D"] * uk)
    return np.stack(ys)


@pytest.mark.parametrize(("disc", "conj_sym", "rescale"), [("zoh", True, 1.0), ("bilinear", False, 2.0)])
def test_importer_reads_the_lindermanlab_layout(disc, conj_sym, rescale):
    params = _s5_params(np.random.default_rng(0), 6, 3)
    params["encoder"] = np.zeros(2)  # other names are ignored
    layer = s5_from_reference(params, discretization=disc, conj_sym=conj_sym, step_rescale=rescale, dtype=F64)
    assert layer.n_states == 6
    assert layer.d_state == (12 if conj_sym else 6)
    u = np.random.default_rng(1).normal(size=(80, 3))
    expected = _s5_apply(params, u, disc, conj_sym, rescale)
    got = layer(torch.from_numpy(u)[None])[0].detach().numpy()
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-11 * np.abs(expected).max())
    flat = dict(params, log_step=params["log_step"][:, 0])  # (P,) accepted too
    torch.testing.assert_close(s5_from_reference(flat, discretization=disc, step_rescale=rescale).log_step,
                               layer.log_step.float(), rtol=1e-6, atol=1e-6)


def test_importer_refuses_what_it_cannot_represent():
    params = _s5_params(np.random.default_rng(2), 4, 2)
    with pytest.raises(ValueError, match="bidirectional"):
        s5_from_reference({**params, "C1": params["C"], "C2": params["C"]})
    with pytest.raises(ValueError, match="log_step"):
        s5_from_reference({k: v for k, v in params.items() if k != "log_step"})
    with pytest.raises(DimensionError, match="B"):
        s5_from_reference({**params, "B": params["B"][:3]})
    with pytest.raises(ValueError, match="step_rescale"):
        s5_from_reference(params, step_rescale=0.0)


# ---------------------------------------------------------------------------------------------- systems
@pytest.mark.parametrize("conj_sym", [True, False])
def test_exact_system_is_the_real_part_of_the_advanced_analysed_system(gen, conj_sym):
    layer = S5(3, 8, conj_sym=conj_sym, discretization="bilinear", dtype=F64, generator=gen)
    analysed, exact = to_statespace(layer), to_statespace(layer, exact=True)
    assert exact.n_states == 2 * analysed.n_states
    assert not exact.is_complex
    kappa = 2.0 if conj_sym else 1.0
    D = np.diag(layer.D.detach().numpy())
    for w in (-2.5, 0.0, 0.7, 3.0):
        z = np.exp(1j * w)
        F = z * (analysed(z) - D)
        Fc = np.conj(np.conj(z) * (analysed(np.conj(z)) - D))
        np.testing.assert_allclose(exact(z), D + 0.5 * kappa * (F + Fc), rtol=0, atol=1e-10 * np.abs(F).max())


def test_exact_round_trip_makes_conjugate_pairs_and_half_residue_real_poles(gen):
    layer = S5(2, 8, dtype=F64, generator=gen)
    with torch.no_grad():
        layer.Lambda_im[0] = 0.0  # one real pole
    back = adapter_for(layer).from_statespace(to_statespace(layer, exact=True), like=layer, exact=True)
    assert back.n_states == layer.n_states + 1  # the real-pole half-state is realised twice
    u = torch.randn(2, 40, 2, dtype=F64, generator=gen)
    torch.testing.assert_close(back(u), layer(u), rtol=1e-9, atol=1e-9)
    with pytest.raises(ValueError, match="conj_sym"):
        adapter_for(layer).from_statespace(to_statespace(layer, exact=True), like=S5(2, 4, conj_sym=False), exact=True)
    # a non-diagonal analysed system is re-diagonalised
    sys = to_statespace(layer)
    T = np.eye(sys.n_states) + 0.1 * np.random.default_rng(3).normal(size=(sys.n_states,) * 2)
    moved = from_statespace(sys.similarity(T), like=layer)
    torch.testing.assert_close(moved(u), layer(u), rtol=1e-9, atol=1e-9)


# ---------------------------------------------------------------------------------------------- write-back
def test_write_back_keeps_per_state_steps_and_frequency_branches():
    layer = S5(1, 8, dtype=F64, generator=torch.Generator().manual_seed(5))
    steps = torch.tensor([0.01, 0.05, 0.2, 0.5], dtype=F64)
    target = torch.tensor([0.5, 2.0, 3 * math.pi - 0.3, math.pi - 0.01], dtype=F64)  # Delta * Im(Lambda)
    with torch.no_grad():
        layer.log_step.copy_(torch.log(steps))
        layer.Lambda_im.copy_(target / steps)
        layer.C_re[:, 0] = 1e-7  # the mode the truncation drops
        layer.C_im[:, 0] = 0.0
    reduce_model(layer, rank(3), gate=1.0)
    new_steps = torch.exp(layer.log_step.detach())
    assert sorted(new_steps.tolist()) == pytest.approx([0.05, 0.2, 0.5], rel=1e-12)  # steps kept, none invented
    kept = sorted((new_steps * layer.Lambda_im.detach()).tolist())
    np.testing.assert_allclose(kept, [2.0, math.pi - 0.01, 3 * math.pi - 0.3], rtol=0, atol=2e-2)
    assert float(layer.Lambda_re.detach().max()) < 0


# ---------------------------------------------------------------------------------------------- models
def test_model_trains_reduces_with_projected_moments_and_reloads(gen, tmp_path):
    model = S5Model(1, 6, 16, 2, 3, blocks=2, dtype=F64, generator=gen)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.randn(4, 30, 1, dtype=F64, generator=gen), torch.tensor([0, 1, 2, 0])
    for _ in range(2):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    report = reduce_model(model, rank([5, 3]), optimizer=opt, optimizer_policy="project")
    assert report.sizes_after == (5, 3)
    opt.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    save(tmp_path / "m.pt", model)
    fresh = S5Model(1, 6, 16, 2, 3, blocks=2, dtype=F64)
    load(tmp_path / "m.pt", fresh)
    model.eval()
    fresh.eval()
    torch.testing.assert_close(fresh(x), model(x), rtol=0, atol=0)


def test_project_maps_first_moments_by_the_pullback_of_the_truncation(gen):
    layer = S5(3, 12, dtype=F64, generator=gen)
    Wb = torch.randn(6, 3, dtype=torch.complex128, generator=gen)
    Wc = torch.randn(3, 6, dtype=torch.complex128, generator=gen)
    opt = torch.optim.SGD(layer.parameters(), lr=0.0, momentum=0.9)
    _, _, Bbar, C = layer.discrete_system()
    ((Wb.conj() * Bbar).real.sum() + (Wc.conj() * C).real.sum()).backward()
    opt.step()
    (entry,) = ssm_layers(layer)
    plan = plan_reduction([entry], rank(4), gate=1.0)
    tmap = entry.adapter.write_back_(layer, plan.layers[0].reduced)
    update_optimizer_state(opt, [tmap], "project")
    B_re = layer.B_re.detach().clone().requires_grad_()
    B_im = layer.B_im.detach().clone().requires_grad_()
    C_re = layer.C_re.detach().clone().requires_grad_()
    C_im = layer.C_im.detach().clone().requires_grad_()
    B_old = tmap.M[0] @ (tmap.extra["phi_new"][:, None] * torch.complex(B_re, B_im))
    C_old = torch.complex(C_re, C_im) @ tmap.N[0]
    ((Wb.conj() * B_old).real.sum() + (Wc.conj() * C_old).real.sum()).backward()
    for name, t in (("B_re", B_re), ("B_im", B_im), ("C_re", C_re), ("C_im", C_im)):
        torch.testing.assert_close(opt.state[getattr(layer, name)]["momentum_buffer"], t.grad, rtol=1e-9, atol=1e-12)


def test_clip_eigs_keeps_the_layer_stable_and_write_back_exact(gen):
    layer = S5(3, 12, clip_eigs=True, dtype=F64, generator=gen)
    with torch.no_grad():
        layer.Lambda_re[:2] = 0.3  # what training can do to an unconstrained real part
    assert float(layer.continuous_eigenvalues().real.max().detach()) == pytest.approx(-1e-4)
    assert bool((layer.discrete_system()[0].abs() < 1).all())
    unclipped = S5(3, 12, dtype=F64, generator=gen)
    with torch.no_grad():
        unclipped.Lambda_re[0] = 0.3
    (lp,) = plan_reduction(unclipped, rank(4)).layers
    assert lp.report.status == "refused"  # an unstable layer is not reduced
    # write-back into a clipped layer is exact when it is accepted, refused when the clipping would bite
    safe = S5(3, 12, clip_eigs=True, dtype=F64, generator=gen)
    full = to_statespace(safe, exact=True)
    (lr,) = reduce_model(safe, rank(4), gate=1.0).layers
    assert lr.status == "reduced"
    assert float(safe.Lambda_re.detach().max()) <= -1e-4
    assert ssmred_hinf(full - to_statespace(safe, exact=True)) <= lr.error_bound * (1 + 1e-8)
    with torch.no_grad():
        safe.Lambda_re.fill_(-1e-4)  # every mode at the clipping bound
    full = to_statespace(safe, exact=True)
    (lr,) = reduce_model(safe, rank(2), gate=1.0).layers
    if lr.status == "reduced":
        assert float(safe.Lambda_re.detach().max()) <= -1e-4
        assert ssmred_hinf(full - to_statespace(safe, exact=True)) <= lr.error_bound * (1 + 1e-8)
