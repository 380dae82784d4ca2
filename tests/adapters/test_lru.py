"""LRU layer: parallel scan vs the sequential recurrence, shapes, initialisation, model."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ssmred_torch import LRU, LRUBlock, LRUModel, diagonal_scan, diagonal_scan_sequential  # noqa: E402

from ssmred.errors import DimensionError  # noqa: E402

pytestmark = pytest.mark.torch


@pytest.mark.parametrize("length", [1, 2, 3, 5, 8, 17, 64, 999, 1024])
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float32, 1e-5), (torch.float64, 1e-12)])
def test_parallel_scan_matches_sequential(gen, length, dtype, tol):
    layer = LRU(6, 16, r_max=0.9999, dtype=dtype, generator=gen)
    u = torch.randn(3, length, 6, dtype=dtype, generator=gen)
    with torch.no_grad():
        y_scan = layer(u)
        y_seq = layer.forward_sequential(u)
    scale = float(y_seq.abs().max())
    torch.testing.assert_close(y_scan, y_seq, rtol=tol, atol=tol * scale)


def test_scan_on_raw_complex_states(gen):
    lam = torch.polar(
        torch.rand(5, generator=gen, dtype=torch.float64), 6 * torch.rand(5, generator=gen, dtype=torch.float64)
    )
    x = torch.randn(2, 4, 37, 5, dtype=torch.complex128, generator=gen)
    torch.testing.assert_close(diagonal_scan(lam, x), diagonal_scan_sequential(lam, x), rtol=1e-12, atol=1e-12)


def test_scan_gradients_match_sequential(gen):
    layer = LRU(3, 8, dtype=torch.float64, generator=gen)
    u = torch.randn(2, 33, 3, dtype=torch.float64, generator=gen)
    grads = []
    for fwd in (layer.forward, layer.forward_sequential):
        layer.zero_grad()
        (fwd(u) ** 2).sum().backward()
        grads.append([p.grad.clone() for p in layer.parameters()])
    for g_scan, g_seq in zip(*grads, strict=True):
        torch.testing.assert_close(g_scan, g_seq, rtol=1e-10, atol=1e-12)


def test_init_follows_the_spec(gen):
    layer = LRU(16, 4000, r_min=0.9, r_max=0.999, max_phase=math.pi, dtype=torch.float64, generator=gen)
    lam = layer.eigenvalues().detach()
    mod2 = lam.abs() ** 2
    assert float(lam.abs().min()) >= 0.9 - 1e-12
    assert float(lam.abs().max()) <= 0.999 + 1e-12
    # |lam|^2 uniform on [0.81, 0.998]: mean in the middle
    assert abs(float(mod2.mean()) - (0.81 + 0.999**2) / 2) < 0.01
    phase = torch.exp(layer.theta_log.detach())
    assert 0 < float(phase.min())
    assert float(phase.max()) <= math.pi
    gamma = torch.exp(layer.gamma_log.detach())
    torch.testing.assert_close(gamma, torch.sqrt(1 - mod2), rtol=1e-12, atol=0.0)
    assert abs(float(layer.B_re.detach().var()) - 1 / 32) < 0.003
    assert abs(float(layer.C_im.detach().var()) - 1 / 4000) < 3e-5
    names = [name for name, _ in layer.named_parameters()]
    assert names == ["nu_log", "theta_log", "gamma_log", "B_re", "B_im", "C_re", "C_im", "D"]


def test_generator_makes_init_reproducible():
    a = LRU(4, 8, generator=torch.Generator().manual_seed(3))
    b = LRU(4, 8, generator=torch.Generator().manual_seed(3))
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_bad_arguments_raise_named_errors():
    with pytest.raises(ValueError, match="d_state"):
        LRU(4, 0)
    with pytest.raises(ValueError, match="r_min"):
        LRU(4, 4, r_min=0.9, r_max=1.0)
    with pytest.raises(TypeError, match="dtype"):
        LRU(4, 4, dtype=torch.float16)
    with pytest.raises(DimensionError, match="d_model=4"):
        LRU(4, 4)(torch.randn(2, 5, 3))
    with pytest.raises(ValueError, match="n_layers"):
        LRUModel(1, 4, [4, 4], 3, 2)


def test_block_and_model_shapes(gen):
    block = LRUBlock(8, 16, dropout=0.1, generator=gen)
    assert block(torch.randn(2, 7, 8, generator=gen)).shape == (2, 7, 8)
    model = LRUModel(3, 8, [16, 4], 2, 5, generator=gen)
    assert model(torch.randn(4, 11, 3, generator=gen)).shape == (4, 5)
    assert model.state_sizes == [16, 4]
    tokens = LRUModel(0, 8, 16, 1, 2, vocab_size=20, generator=gen)
    assert tokens(torch.randint(0, 20, (3, 9), generator=gen)).shape == (3, 2)


def test_replace_and_resize_keep_parameter_objects(gen):
    layer = LRU(4, 8, generator=gen)
    before = [id(p) for p in layer.parameters()]
    layer.resize_(3)
    assert layer.d_state == 3
    assert [id(p) for p in layer.parameters()] == before
    assert layer.B_re.shape == (3, 4)
    assert layer.C_im.shape == (4, 3)
    with pytest.raises(DimensionError, match="C_re"):
        layer.replace_parameters_(
            nu_log=torch.zeros(2),
            theta_log=torch.zeros(2),
            gamma_log=torch.zeros(2),
            B_re=torch.zeros(2, 4),
            B_im=torch.zeros(2, 4),
            C_re=torch.zeros(4, 3),
            C_im=torch.zeros(4, 2),
        )


def test_float64_layer_outputs_are_finite_for_long_sequences(gen):
    layer = LRU(2, 4, r_min=0.999, r_max=0.9999, dtype=torch.float64, generator=gen)
    y = layer(torch.ones(1, 5000, 2, dtype=torch.float64))
    assert np.isfinite(y.detach().numpy()).all()


@pytest.mark.gpu
def test_layer_runs_on_cuda(gen):
    layer = LRU(4, 8, generator=gen).cuda()
    u = torch.randn(2, 9, 4, generator=gen).cuda()
    torch.testing.assert_close(layer(u).cpu(), layer.cpu()(u.cpu()), rtol=1e-5, atol=1e-5)


def test_resizing_while_an_old_graph_is_alive(gen):
    layer = LRU(3, 8, generator=gen)
    u = torch.randn(2, 5, 3, generator=gen)
    loss = layer(u).square().sum()
    loss.backward()  # the graph object (and its gradient accumulators) is still referenced by `loss`
    layer.resize_(4)
    new_loss = layer(u).square().sum()
    new_loss.backward()
    assert layer.C_re.grad.shape == (3, 4)
    assert loss.grad_fn is not None
