"""Interop with ssmred_torch: exchanged LRU and S5 parameters give identical outputs and identical reductions.

Only the top-level public names of ssmred_torch are used (LRU, S5, to_statespace, from_statespace,
reduce_model, CompreSSM, tolerance, fraction, rank) and the torch modules' own state-dict and
``replace_parameters_`` APIs.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

jax = pytest.importorskip("jax")
torch = pytest.importorskip("torch")
import jax.numpy as jnp  # noqa: E402
import ssmred_jax  # noqa: E402
import ssmred_torch  # noqa: E402

import ssmred  # noqa: E402

pytestmark = [pytest.mark.jax, pytest.mark.torch]

_W = np.linspace(-np.pi, np.pi, 129)


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def torch_to_jax(layer: ssmred_torch.LRU) -> ssmred_jax.LRU:
    return ssmred_jax.LRU.from_parameters(**{k: v.detach().numpy() for k, v in layer.state_dict().items()})


def jax_to_torch(layer: ssmred_jax.LRU) -> ssmred_torch.LRU:
    out = ssmred_torch.LRU(layer.d_model, layer.d_state, dtype=torch.float64)
    out.load_state_dict({k: torch.from_numpy(np.array(getattr(layer, k))) for k in ssmred_jax.LRU_FIELDS})
    return out


def _outputs(t_layer, j_layer, u):
    with torch.no_grad():
        y_t = t_layer(torch.from_numpy(u)).numpy()
    y_j = np.asarray(j_layer(jnp.asarray(u)))
    return y_t, y_j


def test_exchanged_parameters_give_identical_outputs(gen, make_lru, rng, x64):
    u = rng.normal(size=(2, 200, 4))
    t_layer = ssmred_torch.LRU(4, 10, r_max=0.9999, dtype=torch.float64, generator=gen)
    y_t, y_j = _outputs(t_layer, torch_to_jax(t_layer), u)
    np.testing.assert_allclose(y_j, y_t, rtol=0, atol=1e-12 * np.abs(y_t).max())
    j_layer = make_lru(rng, 4, 10, r_max=0.9999)
    y_t, y_j = _outputs(jax_to_torch(j_layer), j_layer, u)
    np.testing.assert_allclose(y_t, y_j, rtol=0, atol=1e-12 * np.abs(y_j).max())


def test_same_statespace_in_both_frameworks(gen, x64):
    t_layer = ssmred_torch.LRU(3, 8, dtype=torch.float64, generator=gen)
    j_layer = torch_to_jax(t_layer)
    for exact in (False, True):
        a, b = ssmred_torch.to_statespace(t_layer, exact=exact), ssmred_jax.to_statespace(j_layer, exact=exact)
        for name in ("A", "B", "C", "D"):
            np.testing.assert_allclose(getattr(b, name), getattr(a, name), rtol=1e-14, atol=1e-15)
        assert a.dt == b.dt == 1.0
    # from_statespace of a reduced (non-diagonal) system: the same transfer function from both adapters
    red = ssmred.balanced_truncation(ssmred_torch.to_statespace(t_layer), 5).reduced
    G_t = ssmred_torch.to_statespace(ssmred_torch.from_statespace(red, like=t_layer)).frequency_response(_W)
    G_j = ssmred_jax.to_statespace(ssmred_jax.from_statespace(red, like=j_layer)).frequency_response(_W)
    np.testing.assert_allclose(G_j, G_t, rtol=0, atol=1e-10 * np.abs(G_t).max())


@pytest.mark.parametrize(
    ("t_mode", "j_mode"),
    [
        (ssmred_torch.tolerance(0.05), ssmred_jax.tolerance(0.05)),
        (ssmred_torch.fraction(0.3), ssmred_jax.fraction(0.3)),
        (ssmred_torch.rank(total=20), ssmred_jax.rank(total=20)),
    ],
    ids=["tolerance", "fraction", "rank-total"],
)
def test_identical_reductions(gen, x64, t_mode, j_mode):
    # three layers, two state sizes, one numerically semidefinite (one channel, fast decay)
    t_layers = torch.nn.ModuleList(
        [
            ssmred_torch.LRU(4, 16, dtype=torch.float64, generator=gen),
            ssmred_torch.LRU(4, 16, dtype=torch.float64, generator=gen),
            ssmred_torch.LRU(4, 12, r_min=0.0, r_max=0.6, dtype=torch.float64, generator=gen),
        ]
    )
    j_layers = [torch_to_jax(layer) for layer in t_layers]
    u = np.random.default_rng(1).normal(size=(2, 100, 4))
    t_report = ssmred_torch.reduce_model(t_layers, t_mode)
    j_new, j_report = ssmred_jax.reduce_model(j_layers, j_mode)
    assert j_report.sizes_after == t_report.sizes_after
    assert [lr.r for lr in j_report.layers] == [lr.r for lr in t_report.layers]
    assert [lr.status for lr in j_report.layers] == [lr.status for lr in t_report.layers]
    for t_rep, j_rep, t_layer, j_layer in zip(t_report.layers, j_report.layers, t_layers, j_new, strict=True):
        sigma_1 = t_rep.hsv[0]
        np.testing.assert_allclose(j_rep.hsv, t_rep.hsv, rtol=0, atol=1e-12 * sigma_1)
        # the reduced layers: same transfer function, same outputs (the realizations may differ by a
        # phase per mode, which the output Re(C x) + D u does not see)
        G_t = ssmred_torch.to_statespace(t_layer).frequency_response(_W)
        G_j = ssmred_jax.to_statespace(j_layer).frequency_response(_W)
        np.testing.assert_allclose(G_j, G_t, rtol=0, atol=1e-9 * np.abs(G_t).max())
        y_t, y_j = _outputs(t_layer, j_layer, u)
        np.testing.assert_allclose(y_j, y_t, rtol=0, atol=1e-9 * np.abs(y_t).max())


def test_s5_exchanged_parameters_give_identical_outputs_and_reductions(make_s5, rng, x64):
    H, N = 3, 8  # the make_s5 shape

    def to_torch(layer: ssmred_jax.S5):
        out = ssmred_torch.S5(H, 2 * N, discretization=layer.discretization, dtype=torch.float64)
        p = {k: np.array(getattr(layer, k)) for k in ssmred_jax.S5_FIELDS}  # writable copies for torch
        out.replace_parameters_(
            **{
                "Lambda_re": torch.from_numpy(p["Lambda_re"]),
                "Lambda_im": torch.from_numpy(p["Lambda_im"]),
                "log_step": torch.from_numpy(p["log_step"][:, 0].copy()),
                "B_re": torch.from_numpy(p["B"][..., 0].copy()),
                "B_im": torch.from_numpy(p["B"][..., 1].copy()),
                "C_re": torch.from_numpy(p["C"][..., 0].copy()),
                "C_im": torch.from_numpy(p["C"][..., 1].copy()),
                "D": torch.from_numpy(p["D"]),
            }
        )
        return out

    def to_jax(layer) -> ssmred_jax.S5:
        p = {k: v.detach().numpy() for k, v in layer.state_dict().items()}
        return ssmred_jax.S5.from_parameters(
            Lambda_re=p["Lambda_re"],
            Lambda_im=p["Lambda_im"],
            B=np.stack([p["B_re"], p["B_im"]], axis=-1),
            C=np.stack([p["C_re"], p["C_im"]], axis=-1),
            D=p["D"],
            log_step=p["log_step"][:, None],
            discretization=layer.discretization,
        )

    j_layers = [make_s5(rng, fast=True), make_s5(rng, discretization="bilinear")]
    t_layers = torch.nn.ModuleList([to_torch(layer) for layer in j_layers])
    u = rng.normal(size=(2, 50, H))
    for t_layer, j_layer in zip(t_layers, j_layers, strict=True):
        with torch.no_grad():
            y_t = t_layer(torch.from_numpy(u)).numpy()
        y_j = np.asarray(jax.vmap(j_layer)(jnp.asarray(u)))
        np.testing.assert_allclose(y_j, y_t, rtol=0, atol=1e-12 * np.abs(y_t).max())
        back = to_jax(t_layer)
        for k in ssmred_jax.S5_FIELDS:
            np.testing.assert_array_equal(np.asarray(getattr(back, k)), np.asarray(getattr(j_layer, k)))
    t_report = ssmred_torch.reduce_model(t_layers, ssmred_torch.tolerance(0.05))
    j_new, j_report = ssmred_jax.reduce_model(j_layers, ssmred_jax.tolerance(0.05))
    assert j_report.sizes_after == t_report.sizes_after
    for t_rep, j_rep, t_layer, j_layer in zip(t_report.layers, j_report.layers, t_layers, j_new, strict=True):
        np.testing.assert_allclose(j_rep.hsv, t_rep.hsv, rtol=0, atol=1e-12 * t_rep.hsv[0])
        assert j_rep.error_bound == pytest.approx(t_rep.error_bound, rel=1e-9)
        with torch.no_grad():
            y_t = t_layer(torch.from_numpy(u)).numpy()
        y_j = np.asarray(jax.vmap(j_layer)(jnp.asarray(u)))
        np.testing.assert_allclose(y_j, y_t, rtol=0, atol=1e-9 * np.abs(y_t).max())
        # the same steps are kept (nearest old state), so the layers agree beyond their transfer function
        np.testing.assert_allclose(
            np.sort(np.asarray(j_layer.log_step[:, 0])), np.sort(t_layer.log_step.detach().numpy()), rtol=0, atol=1e-12
        )


@pytest.mark.parametrize("total", [40, 100, 300, 999, 1000, 4000, 12345])
@pytest.mark.parametrize("schedule", [None, [0.5, 10, 0.02], [0.1, 0.2, 0.3, 0.4, 0.5], [1, 2, 3]])
def test_schedule_is_torchs(total, schedule):
    try:
        t = ssmred_torch.CompreSSM(total, mode=ssmred_torch.tolerance(0.1), schedule=schedule).attempt_steps
    except ValueError as exc:
        with pytest.raises(ValueError, match=re.escape(str(exc))):
            ssmred_jax.CompreSSM(total, mode=ssmred_jax.tolerance(0.1), schedule=schedule)
        return
    assert ssmred_jax.CompreSSM(total, mode=ssmred_jax.tolerance(0.1), schedule=schedule).attempt_steps == t
