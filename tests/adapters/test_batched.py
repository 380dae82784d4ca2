"""Batched torch reduction = numpy core; bounds hold on measured outputs; modes, gate, refusals."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg as spla

torch = pytest.importorskip("torch")

from ssmred_torch import (  # noqa: E402
    LRU,
    LRUModel,
    ReductionWarning,
    fraction,
    hankel_nuclear_norm,
    kernels,
    layer_matrices,
    pragmatic,
    rank,
    reduce_layers,
    reduce_model,
    to_statespace,
    tolerance,
)
from ssmred_torch.layers import lru_adapter as lru_module  # noqa: E402

import ssmred  # noqa: E402

pytestmark = pytest.mark.torch

# (n_states, channels, r_min, r_max): LRU rings, and fast-decaying semidefinite cases (H << n)
CASES = [(16, 8, 0.9, 0.999), (48, 16, 0.9, 0.999), (64, 2, 0.3, 0.8), (40, 1, 0.0, 0.9), (24, 32, 0.5, 0.99)]


def _stack(layers):
    with torch.no_grad():
        mats = [layer_matrices(layer) for layer in layers]
    return tuple(torch.stack([m[i] for m in mats]) for i in range(4))


@pytest.mark.parametrize(("n", "H", "r_min", "r_max"), CASES)
def test_hsvs_equal_the_core(gen, n, H, r_min, r_max):
    layers = [LRU(H, n, r_min=r_min, r_max=r_max, dtype=torch.float64, generator=gen) for _ in range(3)]
    lam, log_lam, B, C = _stack(layers)
    s_core = ssmred.hsv_diagonal(lam.numpy(), B.numpy(), C.numpy(), dt=1.0)
    for s_torch in (kernels.hsv_diagonal(lam, B, C, log_lam=log_lam), kernels.hsv_diagonal(lam, B, C)):
        s_torch = s_torch.numpy()
        for k in range(3):
            np.testing.assert_allclose(s_torch[k], s_core[k], rtol=0, atol=1e-10 * s_core[k, 0])


def test_semidefinite_gramians_use_the_pivoted_fallback(gen):
    layers = [LRU(1, 40, r_min=0.0, r_max=0.5, dtype=torch.float64, generator=gen) for _ in range(2)]
    lam, log_lam, B, C = _stack(layers)
    P, _ = kernels.diagonal_gramians(lam, B, C, log_lam=log_lam)
    _, info = torch.linalg.cholesky_ex(P)
    assert bool((info != 0).all())  # plain Cholesky fails: numerically semidefinite
    L = kernels.psd_factor(P)
    assert torch.isfinite(L).all()
    torch.testing.assert_close(L @ L.mH, P, rtol=0, atol=1e-14 * float(P.abs().max()))
    for k in range(2):
        L_core = ssmred.backends.scipy.psd_factor(P[k].numpy(), rtol=40 * np.finfo(float).eps)
        # the factor of LAPACK ?pstrf with the same stopping rule (pivot <= n eps max diag): same pivot
        # order (same zero pattern), same numerical rank,
        # leading columns equal up to rounding (trailing ones carry the usual error growth)
        np.testing.assert_array_equal(L[k].numpy() != 0, L_core != 0)
        np.testing.assert_allclose(L[k, :, :5].numpy(), L_core[:, :5], rtol=0, atol=1e-12 * np.abs(L_core).max())


@pytest.mark.parametrize(("n", "H", "r_min", "r_max"), CASES)
def test_reduction_equals_core_balanced_truncation(gen, n, H, r_min, r_max):
    layers = [LRU(H, n, r_min=r_min, r_max=r_max, dtype=torch.float64, generator=gen) for _ in range(2)]
    systems = [to_statespace(layer) for layer in layers]
    reports = reduce_layers(layers, tolerance(0.05))
    w = np.linspace(-np.pi, np.pi, 181)
    for layer, sys, rep in zip(layers, systems, reports, strict=True):
        core = ssmred.balanced_truncation(sys, energy=0.05)
        assert rep.r == core.r == ssmred.order_from_energy(core.hsv, 0.05)
        np.testing.assert_allclose(rep.hsv, core.hsv, rtol=0, atol=1e-10 * core.hsv[0])
        assert rep.error_bound == pytest.approx(core.error_bound, rel=1e-10)
        assert rep.status == "reduced"
        assert layer.d_state == core.r
        G_core = core.reduced.frequency_response(w)
        G_torch = to_statespace(layer).frequency_response(w)
        scale = np.abs(sys.frequency_response(w)).max()
        np.testing.assert_allclose(G_torch, G_core, rtol=0, atol=1e-10 * scale)


def _hinf_sampled(a, b, n_freq=2048):
    w = np.linspace(-np.pi, np.pi, n_freq)
    E = a.frequency_response(w) - b.frequency_response(w)
    return max(spla.svdvals(Ek)[0] for Ek in E)


@pytest.mark.parametrize("mode", [tolerance(0.1), fraction(0.5), rank(3)])
def test_measured_output_error_is_below_the_bound(gen, mode):
    layer = LRU(4, 24, dtype=torch.float64, generator=gen)
    original = LRU(4, 24, dtype=torch.float64)
    original.load_state_dict(layer.state_dict())
    sys = to_statespace(layer)
    rep = reduce_layers([layer], mode, gate=1.0)[0]
    assert rep.applied
    # complex transfer function (sampled H-infinity) and the layer's real output over a long input
    assert _hinf_sampled(sys, to_statespace(layer)) <= rep.error_bound
    u = torch.randn(8, 3000, 4, dtype=torch.float64, generator=gen)
    with torch.no_grad():
        err = torch.linalg.vector_norm(original(u) - layer(u))
    assert float(err) <= rep.error_bound * float(torch.linalg.vector_norm(u))
    assert float(err) > 0


def test_selection_modes(gen):
    model = LRUModel(1, 6, [20, 12, 9], 3, 2, dtype=torch.float64, generator=gen)
    rep = reduce_model(model, fraction(0.25))
    assert rep.sizes_after == (15, 9, 6)  # floor(n * 0.75)
    rep = reduce_model(model, rank([10, 4, 2]))
    assert rep.sizes_after == (10, 4, 2)
    rep = reduce_model(model, rank(3))
    assert rep.sizes_after == (3, 3, 2)
    assert [lr.status for lr in rep.layers] == ["reduced", "reduced", "gated"]  # 2 >= 0.95 * 2


def test_total_budget_is_shared_by_normalised_energy(gen):
    model = LRUModel(1, 6, [20, 12, 9], 3, 2, dtype=torch.float64, generator=gen)
    hsv = [ssmred.hankel_singular_values(to_statespace(b.ssm)) for b in model.blocks]
    rep = reduce_model(model, rank(total=15))
    assert sum(rep.sizes_after) == 15
    assert min(rep.sizes_after) >= 1
    # the kept normalised HSVs are the 15 largest over all layers (the first state of each is free)
    kept = np.concatenate([h[1:r] / h.sum() for h, r in zip(hsv, rep.sizes_after, strict=True)])
    dropped = np.concatenate([h[r:] / h.sum() for h, r in zip(hsv, rep.sizes_after, strict=True)])
    assert kept.min() >= dropped.max()
    with pytest.raises(ValueError, match="number of SSM layers"):
        reduce_model(model, rank(total=2))


def test_gate_and_numerical_rank(gen):
    layer = LRU(1, 40, r_min=0.0, r_max=0.3, dtype=torch.float64, generator=gen)
    s = ssmred.hankel_singular_values(to_statespace(layer))
    numerical_rank = int(np.count_nonzero(s > 40 * np.finfo(float).eps * s[0]))
    assert numerical_rank < 30
    rep = reduce_layers([layer], rank(30), gate=1.0)[0]
    assert rep.r == numerical_rank
    assert rep.applied
    layer2 = LRU(3, 20, dtype=torch.float64, generator=gen)
    rep2 = reduce_layers([layer2], rank(19))[0]
    assert rep2.status == "gated"
    assert layer2.d_state == 20


def test_mixed_sizes_and_float32_model(gen):
    model = LRUModel(2, 8, [16, 16, 10], 3, 3, generator=gen)  # float32
    rep = reduce_model(model, tolerance(0.2))
    assert all(lr.applied for lr in rep.layers)
    assert model.blocks[0].ssm.B_re.dtype == torch.float32
    out = model(torch.randn(2, 30, 2, generator=gen))
    assert torch.isfinite(out).all()
    rep2 = reduce_model(model, tolerance(0.2))  # second reduction: new Gramians of the reduced layers
    assert all(b <= a for a, b in zip(rep.sizes_after, rep2.sizes_after, strict=True))


def _snapshot(layer):
    return [p.detach().clone() for p in layer.parameters()]


def _assert_untouched(layer, before):
    for p, q in zip(layer.parameters(), before, strict=True):
        torch.testing.assert_close(p.detach(), q, rtol=0, atol=0, equal_nan=True)


def test_nonfinite_layer_is_refused_and_left_untouched(gen):
    good, bad = LRU(3, 10, dtype=torch.float64, generator=gen), LRU(3, 10, dtype=torch.float64, generator=gen)
    with torch.no_grad():
        bad.B_re[2, 1] = float("nan")
    before = _snapshot(bad)
    with pytest.warns(ReductionWarning, match="refused"):
        reps = reduce_layers([good, bad], rank(4), names=["good", "bad"])
    assert [r.status for r in reps] == ["reduced", "refused"]
    assert "non-finite" in reps[1].message
    _assert_untouched(bad, before)
    assert bad.d_state == 10
    assert good.d_state == 4


def test_nonfinite_reduction_result_is_refused(gen, monkeypatch):
    layer = LRU(3, 10, dtype=torch.float64, generator=gen)
    before = _snapshot(layer)
    real = lru_module.lru_parameters_from_diagonal

    def poisoned(*args, **kwargs):
        params, unstable = real(*args, **kwargs)
        params["B_re"] = params["B_re"] * float("inf")
        return params, unstable

    monkeypatch.setattr(lru_module, "lru_parameters_from_diagonal", poisoned)
    model = torch.nn.ModuleDict({"lru": layer})
    with pytest.warns(ReductionWarning, match="not finite"):
        report = reduce_model(model, rank(4))
    assert report.layers[0].status == "refused"
    assert report.warnings
    _assert_untouched(layer, before)


def test_ill_conditioned_rediagonalisation_is_refused(gen):
    layer = LRU(3, 10, dtype=torch.float64, generator=gen)
    before = _snapshot(layer)
    with pytest.warns(ReductionWarning, match="cond"):
        rep = reduce_layers([layer], rank(4), max_condition=1.0 - 1e-9)[0]
    assert rep.status == "refused"
    _assert_untouched(layer, before)


def test_typed_errors_for_bad_modes():
    with pytest.raises(ValueError, match="tau"):
        tolerance(1.0)
    with pytest.raises(ValueError, match="f must"):
        fraction(0.0)
    with pytest.raises(ValueError, match="exactly one"):
        rank()
    with pytest.raises(ValueError, match=r"r\[1\]"):
        rank([3, 0])
    with pytest.raises(ValueError, match="tolerance"):
        pragmatic(0.1, -1.0)
    with pytest.raises(TypeError, match="selection mode"):
        reduce_model(LRU(2, 4), 0.1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="gate"):
        reduce_model(LRU(2, 4), rank(2), gate=0.0)
    with pytest.raises(ValueError, match="entries"):
        reduce_model(LRUModel(1, 2, 4, 2, 2), rank([2]))


def test_hankel_nuclear_norm_value_and_gradient(gen):
    model = LRUModel(1, 3, [6, 6, 5], 3, 2, dtype=torch.float64, generator=gen)
    value = hankel_nuclear_norm(model)
    expected = sum(ssmred.hankel_singular_values(to_statespace(b.ssm)).sum() for b in model.blocks)
    assert float(value.detach()) == pytest.approx(expected, rel=1e-10)
    layer = model.blocks[0].ssm
    names = ["nu_log", "theta_log", "gamma_log", "B_re", "B_im", "C_re", "C_im"]
    originals = {k: getattr(layer, k).detach().clone() for k in names}

    def as_function(*tensors):
        for k, t in zip(names, tensors, strict=True):
            del layer._parameters[k]
            setattr(layer, k, t)
        try:
            return hankel_nuclear_norm(layer)
        finally:
            for k in names:
                delattr(layer, k)
                layer.register_parameter(k, torch.nn.Parameter(originals[k].clone()))

    inputs = tuple(originals[k].clone().requires_grad_() for k in names)
    assert torch.autograd.gradcheck(as_function, inputs, eps=1e-6, atol=1e-6, rtol=1e-5)


def test_hankel_nuclear_norm_gradient_is_finite_when_semidefinite(gen):
    layer = LRU(1, 30, r_min=0.0, r_max=0.5, dtype=torch.float64, generator=gen)
    value = hankel_nuclear_norm(layer)
    value.backward()
    for p in layer.parameters():
        if p.grad is not None:
            assert torch.isfinite(p.grad).all()


def test_no_warnings_in_a_normal_reduction(gen):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reduce_model(LRUModel(1, 4, 12, 2, 2, generator=gen), tolerance(0.1))


@pytest.mark.gpu
def test_reduction_on_cuda_matches_cpu(gen):
    model = LRUModel(1, 8, [24, 24, 16], 3, 2, dtype=torch.float64, generator=gen)
    twin = LRUModel(1, 8, [24, 24, 16], 3, 2, dtype=torch.float64)
    twin.load_state_dict(model.state_dict())
    twin = twin.cuda()
    rep_cpu = reduce_model(model, tolerance(0.1))
    rep_gpu = reduce_model(twin, tolerance(0.1))
    assert rep_cpu.sizes_after == rep_gpu.sizes_after
    for a, b in zip(rep_cpu.layers, rep_gpu.layers, strict=True):
        np.testing.assert_allclose(b.hsv, a.hsv, rtol=0, atol=1e-10 * a.hsv[0])
    assert next(twin.parameters()).is_cuda
    w = np.linspace(-np.pi, np.pi, 64)
    for block_cpu, block_gpu in zip(model.blocks, twin.blocks, strict=True):
        G_cpu = to_statespace(block_cpu.ssm).frequency_response(w)
        G_gpu = to_statespace(block_gpu.ssm).frequency_response(w)
        np.testing.assert_allclose(G_gpu, G_cpu, rtol=0, atol=1e-9 * np.abs(G_cpu).max())


def test_gramians_from_log_eigenvalues_stay_accurate_near_the_unit_circle():
    decay = torch.tensor([[1e-9, 2e-9]], dtype=torch.float64)
    phase = torch.tensor([[0.3, 0.3 + 1e-9]], dtype=torch.float64)
    log_lam = torch.complex(-decay, phase)
    lam = torch.exp(log_lam)
    B = torch.ones(1, 2, 1, dtype=torch.complex128)
    C = torch.ones(1, 1, 2, dtype=torch.complex128)
    P, _ = kernels.diagonal_gramians(lam, B, C, log_lam=log_lam)
    # exact: P_ij = 1 / (1 - exp(l_i + conj l_j)), evaluated in extended form
    exact_00 = 1.0 / -np.expm1(-2e-9)
    dy = float(phase[0, 0]) - float(phase[0, 1])  # exact (Sterbenz); the stored phases differ by ~1e-9
    exact_01 = 1.0 / -np.expm1(complex(-3e-9, dy))
    assert abs(complex(P[0, 0, 0]) - exact_00) <= 1e-14 * exact_00
    assert abs(complex(P[0, 0, 1]) - exact_01) <= 1e-14 * abs(exact_01)
    P_plain, _ = kernels.diagonal_gramians(lam, B, C)
    assert abs(complex(P_plain[0, 0, 0]) - exact_00) > 1e-9 * exact_00  # the plain formula cancels
