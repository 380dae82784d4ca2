"""The layer-family conformance suite: every registered adapter must pass every check that applies to it.

A family is done when it passes: add a factory for it to ``FAMILIES`` (the first test fails until
every registered adapter has one). Checks (DESIGN.md), selected by ``adapter.time_invariant``:

* every family: HSVs from ``systems()`` equal ``ssmred.hankel_singular_values``; optimizer state
  shapes under reset/slice/project; checkpoint round trip; other layers untouched; resize gives the
  shapes a reduction gives; subclasses found along the MRO;
* time-invariant families: the impulse response of ``to_statespace(layer, exact=True)`` equals the
  layer's forward; after ``write_back_`` the layer realises the balanced-truncated system and its real
  output error obeys the bound; conversion round trip;
* selective families (``time_invariant = False``, the analysed system is a documented LTI surrogate;
  they also need a ``SELECTIVE`` entry): in the frozen case (constant selection) the core is exactly
  the surrogate's LTI system, and after ``write_back_`` it realises the reported reduced system whose
  error obeys the reported bound exactly; on held-out inputs the surrogate part of the output moves by at
  most the bound, and the core's output by no more than the measured surrogate error allows.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import ssmred_torch  # noqa: E402
from ssmred_torch import (  # noqa: E402
    LRU,
    S4D,
    S5,
    LRUAdapter,
    Mamba,
    MambaAdapter,
    S4DAdapter,
    S5Adapter,
    adapter_for,
    calibrate_,
    from_statespace,
    load,
    rank,
    recording,
    reduce_model,
    registered_adapters,
    save,
    ssm_layers,
    to_statespace,
)

import ssmred  # noqa: E402

pytestmark = pytest.mark.torch

Factory = Callable[[torch.Generator], torch.nn.Module]
_F64 = torch.float64
#: Delta * Im(a) of the six half-states of the aliasing variants: just inside the Nyquist limit pi on
#: both sides, just beyond it, and far beyond it (3 pi - 0.2); distinct discrete eigenvalues
_NEAR_NYQUIST = (math.pi - 1e-3, -(math.pi - 0.01), math.pi + 0.1, 2.9, 3 * math.pi - 0.2, 0.3)


def _s4d_near_nyquist(gen: torch.Generator) -> torch.nn.Module:
    layer = S4D(3, 12, dtype=_F64, generator=gen)
    with torch.no_grad():
        layer.A_imag.copy_(torch.tensor(_NEAR_NYQUIST, dtype=_F64)[None, :] / torch.exp(layer.log_dt)[:, None])
    return layer


def _s5_near_nyquist(gen: torch.Generator) -> torch.nn.Module:
    layer = S5(3, 12, dtype=_F64, generator=gen)
    with torch.no_grad():
        layer.Lambda_im.copy_(torch.tensor(_NEAR_NYQUIST, dtype=_F64) / torch.exp(layer.log_step))
    return layer


def _s4d_bilinear_near_minus_one(gen: torch.Generator) -> torch.nn.Module:
    # bilinear has no aliasing, its frequency axis is warped: Delta * Im(a) -> infinity maps onto mu -> -1
    # (damped, Delta * Re(a) = -1: with 1 - |mu|^2 ~ 1e-7 the core's HSVs, computed from the rounded
    # eigenvalues, are only ~1e-9 accurate, the kernel's from log(mu) stay ~1e-16 — checked with mpmath)
    layer = S4D(3, 12, discretization="bilinear", dtype=_F64, generator=gen)
    with torch.no_grad():
        dims = torch.tensor([0.5, 3.0, 8.0, 60.0, 400.0, -2.0], dtype=_F64)  # 400: |mu + 1| ~ 0.005
        step = torch.exp(layer.log_dt)[:, None]
        layer.A_imag.copy_(dims[None, :] / step)
        layer.log_A_real.copy_(torch.log(1.0 / step).expand(-1, 6))
    return layer


def _s5_real_poles(gen: torch.Generator) -> torch.nn.Module:
    layer = S5(3, 12, dtype=_F64, generator=gen)
    with torch.no_grad():
        layer.Lambda_im[::2] = 0.0  # three real poles among six conjugate half-states
        layer.Lambda_re.copy_(-torch.linspace(0.3, 3.0, 6, dtype=_F64))
    return layer


def _mamba(rule: str, **kw) -> Factory:
    def make(gen: torch.Generator) -> torch.nn.Module:
        layer = Mamba(3, 10, rule=rule, dtype=_F64, generator=gen, **kw)
        calibrate_(layer, torch.randn(8, 24, 3, dtype=_F64, generator=gen))  # the surrogate's calibration set
        return layer

    return make


#: adapter type -> factory(generator) -> float64 layer with 3 channels and >= 6 states (selective layers
#: calibrated)
FAMILIES: dict[type, Factory] = {
    LRUAdapter: lambda gen: LRU(3, 12, dtype=torch.float64, generator=gen),
    S4DAdapter: lambda gen: S4D(3, 12, dt_min=0.05, dt_max=0.5, dtype=_F64, generator=gen),  # ZOH, aliased modes
    S5Adapter: lambda gen: S5(3, 12, dtype=_F64, generator=gen),
    MambaAdapter: _mamba("modal_shared"),
}
#: further parameter regimes of a family, (adapter type, id) -> factory; every check runs on each
VARIANTS: dict[tuple[type, str], Factory] = {
    (S4DAdapter, "bilinear-inv"): lambda g: S4D(3, 12, discretization="bilinear", init="inv", dtype=_F64, generator=g),
    (S4DAdapter, "real-poles"): lambda gen: S4D(3, 12, init="real", dtype=_F64, generator=gen),
    (S4DAdapter, "near-nyquist"): _s4d_near_nyquist,
    (S4DAdapter, "bilinear-near-minus-one"): _s4d_bilinear_near_minus_one,
    (S4DAdapter, "fixed-B-scan"): lambda gen: S4D(3, 12, learn_B=False, mode="scan", dtype=_F64, generator=gen),
    (S5Adapter, "bilinear-blocks"): lambda g: S5(3, 12, discretization="bilinear", blocks=2, dtype=_F64, generator=g),
    (S5Adapter, "real-poles"): _s5_real_poles,
    (S5Adapter, "near-nyquist"): _s5_near_nyquist,
    (S5Adapter, "no-conj-sym"): lambda gen: S5(3, 6, conj_sym=False, dtype=_F64, generator=gen),
    (MambaAdapter, "modal-channel"): _mamba("modal_channel"),
    (MambaAdapter, "balanced"): _mamba("balanced"),
    (MambaAdapter, "balanced-product-of-means"): _mamba("balanced", drive="product_of_means"),
    (MambaAdapter, "modal-mean-exp"): _mamba("modal_shared", transition="mean_exp"),
}
ADAPTERS = sorted({type(a) for a in registered_adapters()}, key=lambda t: t.__name__)


class Selective(NamedTuple):
    """What the suite needs to know about a selective family beyond its adapter."""

    #: channels of the layer's forward input
    width: Callable[[torch.nn.Module], int]
    #: give the layer the surrogate statistics of a constant selection (the layer is then exactly LTI)
    freeze: Callable[[torch.nn.Module, torch.Generator], None]
    #: the layer's core with that constant selection: an LTI map (batch, length, G) -> (batch, length, G)
    frozen: Callable[[torch.nn.Module, torch.Tensor], torch.Tensor]
    #: (core input u, core output minus its feedthrough) for a forward input x; u drives the G systems
    core_io: Callable[[torch.nn.Module, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def _mamba_freeze(layer: torch.nn.Module, gen: torch.Generator) -> None:
    d, n = layer.d_inner, layer.n_features
    delta = (0.05 + 0.2 * torch.rand(d, dtype=_F64, generator=gen)).expand(1, 4, d)
    B, C = (torch.randn(n, dtype=_F64, generator=gen).expand(1, 4, n) for _ in range(2))
    with recording(layer), torch.no_grad():
        layer.core(torch.zeros(1, 4, d, dtype=_F64), delta, B, C)


def _mamba_core_io(layer: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    s = layer.selection(x)
    return s.u, layer.core(s.u, s.delta, s.B, s.C) - layer.D * s.u


#: selective adapter type -> its Selective entry
SELECTIVE: dict[type, Selective] = {
    MambaAdapter: Selective(
        lambda layer: layer.d_model, _mamba_freeze, lambda layer, u: layer.frozen_core(u), _mamba_core_io
    ),
}


class Case(NamedTuple):
    adapter: type
    make: Factory


CASES = [pytest.param(Case(t, FAMILIES[t]), id=t.__name__) for t in ADAPTERS if t in FAMILIES] + [
    pytest.param(Case(t, make), id=f"{t.__name__}-{name}") for (t, name), make in VARIANTS.items()
]
LTI_CASES = [c for c in CASES if c.values[0].adapter.time_invariant]
SELECTIVE_CASES = [c for c in CASES if not c.values[0].adapter.time_invariant]


def _layer(case: Case, gen: torch.Generator) -> torch.nn.Module:
    return case.make(gen)


def _channels(layer: torch.nn.Module) -> int:
    """Channels of the layer's forward input."""
    adapter = adapter_for(layer)
    if not adapter.time_invariant:
        return SELECTIVE[type(adapter)].width(layer)
    return to_statespace(layer).n_inputs


def _impulse(layer: torch.nn.Module, length: int) -> np.ndarray:
    """h[k, :, j]: output at step k for a unit impulse on input channel j at step 0."""
    H = _channels(layer)
    u = torch.zeros(H, length, H, dtype=torch.float64)
    u[torch.arange(H), 0, torch.arange(H)] = 1.0
    with torch.no_grad():
        return layer(u).permute(1, 2, 0).numpy()


def _markov(sys: ssmred.StateSpace, length: int) -> np.ndarray:
    out, X = [sys.D], sys.B
    for _ in range(length - 1):
        out.append(sys.C @ X)
        X = sys.A @ X
    return np.stack(out)


def _state_of(layer: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in layer.state_dict().items()}


def test_every_registered_family_has_a_conformance_factory():
    missing = [t.__name__ for t in ADAPTERS if t not in FAMILIES]
    assert not missing, f"add a factory to FAMILIES for {missing}"
    selective = [t.__name__ for t in ADAPTERS if not t.time_invariant and t not in SELECTIVE]
    assert not selective, f"add an entry to SELECTIVE for the selective families {selective}"


@pytest.fixture(params=CASES)
def family(request):
    return request.param


@pytest.fixture(params=LTI_CASES)
def lti_family(request):
    return request.param


@pytest.fixture(params=SELECTIVE_CASES)
def selective_family(request):
    return request.param


def test_exact_statespace_impulse_response_is_the_forward(lti_family, gen):
    layer = _layer(lti_family, gen)
    h_layer = _impulse(layer, 48)
    h_sys = _markov(to_statespace(layer, exact=True).to_real(), 48)
    np.testing.assert_allclose(h_layer, h_sys, rtol=0, atol=1e-10 * np.abs(h_sys).max())


def test_systems_hsvs_equal_the_core(family, gen):
    layer = _layer(family, gen)
    adapter = adapter_for(layer)
    with torch.no_grad():
        sys = adapter.systems(layer)
        hsv = ssmred_torch.kernels.hsv_diagonal(sys.lam, sys.B, sys.C, log_lam=sys.log_lam)
    assert sys.lam.dtype == torch.complex128
    for g in range(sys.n_systems):
        core = ssmred.hankel_singular_values(
            ssmred.from_diagonal(sys.lam[g].numpy(), sys.B[g].numpy(), sys.C[g].numpy(), dt=1.0)
        )
        np.testing.assert_allclose(hsv[g].numpy(), core, rtol=0, atol=1e-10 * core[0])
    if sys.n_systems == 1:  # the analysed StateSpace is that system
        np.testing.assert_allclose(
            hsv[0].numpy(), ssmred.hankel_singular_values(to_statespace(layer)), rtol=0, atol=1e-10 * hsv[0, 0].item()
        )


def _analysed(systems, g: int) -> ssmred.StateSpace:
    return ssmred.from_diagonal(systems.lam[g].numpy(), systems.B[g].numpy(), systems.C[g].numpy(), dt=1.0)


@pytest.mark.parametrize("r", [3, 4])  # odd and even orders
def test_write_back_realises_the_truncated_system_and_obeys_the_bound(lti_family, gen, r):
    layer = _layer(lti_family, gen)
    adapter = adapter_for(layer)
    full_analysed = to_statespace(layer)
    full_exact = to_statespace(layer, exact=True).to_real()
    with torch.no_grad():
        before = adapter.systems(layer)
    report = reduce_model(layer, rank(r), gate=1.0)
    (lr,) = report.layers
    assert lr.status == "reduced"
    assert lr.n_after == r
    assert max(adapter.state_sizes(layer)) == r
    # every analysed system of the reduced layer is the balanced truncation of the old one
    w = np.linspace(-np.pi, np.pi, 129)
    with torch.no_grad():
        after = adapter.systems(layer)
    bounds = []
    for g in range(before.n_systems):
        bt = ssmred.balanced_truncation(_analysed(before, g), r)
        G_layer, G_bt = _analysed(after, g).frequency_response(w), bt.reduced.frequency_response(w)
        np.testing.assert_allclose(G_layer, G_bt, rtol=0, atol=1e-8 * np.abs(G_bt).max())
        bounds.append(bt.error_bound)
    factor = 2.0 if before.output == "two_real" else 1.0  # |2 Re v| <= 2 |v|
    np.testing.assert_allclose(lr.error_bound, factor * max(bounds), rtol=1e-8)
    if before.n_systems == 1:  # ... and so is the analysed StateSpace
        bt = ssmred.balanced_truncation(full_analysed, r)
        G_layer, G_bt = to_statespace(layer).frequency_response(w), bt.reduced.frequency_response(w)
        np.testing.assert_allclose(G_layer, G_bt, rtol=0, atol=1e-8 * np.abs(G_bt).max())
    # the layer's real input/output error obeys the bound
    error = ssmred.hinf_norm(full_exact - to_statespace(layer, exact=True).to_real())
    assert error <= lr.error_bound * (1 + 1e-8)
    assert error >= 0.0


@pytest.mark.parametrize("policy", ["reset", "slice", "project"])
def test_optimizer_state_follows_the_new_shapes(family, gen, policy):
    layer = _layer(family, gen)
    adapter = adapter_for(layer)
    if policy == "project" and not adapter.supports_projection:
        pytest.skip("family without a moment projection")
    opt = torch.optim.Adam(layer.parameters(), lr=1e-3)
    x = torch.randn(2, 16, _channels(layer), dtype=torch.float64, generator=gen)
    layer(x).square().mean().backward()
    opt.step()
    reduce_model(layer, rank(4), optimizer=opt, optimizer_policy=policy, gate=1.0)
    params = dict(layer.named_parameters())
    for name in adapter.state_parameters(layer):
        st = opt.state.get(params[name], {})
        if policy == "reset":
            assert not st, name
        for key in ("exp_avg", "exp_avg_sq"):
            if key in st:
                assert st[key].shape == params[name].shape, (name, key)
                assert torch.isfinite(st[key]).all()
    opt.zero_grad()
    layer(x).square().mean().backward()
    opt.step()  # the same optimizer keeps working
    assert all(torch.isfinite(p).all() for p in layer.parameters())


def test_checkpoint_round_trip(family, gen, tmp_path):
    model = torch.nn.ModuleDict({"a": _layer(family, gen), "b": _layer(family, gen)})
    reduce_model(model, rank([4, 5]), gate=1.0)
    save(tmp_path / "m.pt", model)
    fresh = torch.nn.ModuleDict({"a": _layer(family, gen), "b": _layer(family, gen)})
    load(tmp_path / "m.pt", fresh)
    for (k, v), w in zip(model.state_dict().items(), fresh.state_dict().values(), strict=True):
        assert torch.equal(v, w), k
    x = torch.randn(2, 9, _channels(model["a"]), dtype=torch.float64, generator=gen)
    torch.testing.assert_close(fresh["a"](x), model["a"](x), rtol=0, atol=0)


def test_other_layers_are_untouched(family, gen):
    model = torch.nn.ModuleDict({"keep": _layer(family, gen), "cut": _layer(family, gen)})
    model["head"] = torch.nn.Linear(3, 2, dtype=torch.float64)
    n = max(adapter_for(model["keep"]).state_sizes(model["keep"]))
    before_keep, before_head = _state_of(model["keep"]), _state_of(model["head"])
    report = reduce_model(model, rank([n, 4]))  # the first is gated (r = n)
    assert [lr.status for lr in report.layers] == ["gated", "reduced"]
    for k, v in _state_of(model["keep"]).items():
        assert torch.equal(v, before_keep[k]), k
    for k, v in _state_of(model["head"]).items():
        assert torch.equal(v, before_head[k]), k


def test_conversion_round_trip(lti_family, gen):
    layer = _layer(lti_family, gen)
    back = from_statespace(to_statespace(layer), like=layer)
    assert type(back) is type(layer)
    x = torch.randn(2, 20, _channels(layer), dtype=torch.float64, generator=gen)
    torch.testing.assert_close(back(x), layer(x), rtol=1e-10, atol=1e-10)


def test_resize_gives_the_shapes_of_a_reduction(family, gen):
    layer = _layer(family, gen)
    adapter = adapter_for(layer)
    sizes = tuple(max(1, s - 2) for s in adapter.state_sizes(layer))
    adapter.resize_(layer, sizes)
    assert adapter.state_sizes(layer) == sizes
    if adapter.time_invariant:
        params = dict(layer.named_parameters())
        for name, axis in adapter.state_parameters(layer).items():
            assert params[name].shape[axis] == max(sizes), name
    reduced = _layer(family, gen)  # every parameter and buffer as a reduction to the same sizes leaves it
    reduce_model(reduced, rank(max(sizes)), gate=1.0)
    assert {k: v.shape for k, v in layer.state_dict().items()} == {k: v.shape for k, v in reduced.state_dict().items()}


def test_the_declared_state_layout_matches_the_layer(family, gen):
    layer = _layer(family, gen)
    adapter = adapter_for(layer)
    params = dict(layer.named_parameters())
    tensors = params | dict(layer.named_buffers())
    assert set(adapter.state_axes) <= set(tensors), "state_axes names a tensor the layer does not have"
    (size,) = adapter.state_sizes(layer)
    for name, axis in adapter.state_parameters(layer).items():
        assert name in params, name
        if name in adapter.state_axes:
            assert params[name].shape[axis] == size, name


def test_subclasses_are_found_along_the_mro(family, gen):
    base = type(_layer(family, gen))
    sub = type(f"My{base.__name__}", (base,), {})
    layer = _layer(family, gen)
    layer.__class__ = sub
    assert type(adapter_for(layer)) is family.adapter
    assert [e.name for e in ssm_layers(torch.nn.ModuleDict({"x": layer}))] == ["x"]
    report = reduce_model(layer, rank(4), gate=1.0)  # issue 9 defect 2: a subclass was silently skipped
    assert report.sizes_after == (4,)


# ---------------------------------------------------------------------------------------------- selective families
def _frozen_impulse(case: Case, layer: torch.nn.Module, length: int) -> np.ndarray:
    G = to_statespace(layer).n_inputs
    u = torch.zeros(G, length, G, dtype=torch.float64)
    u[torch.arange(G), 0, torch.arange(G)] = 1.0
    with torch.no_grad():
        return SELECTIVE[case.adapter].frozen(layer, u).permute(1, 2, 0).numpy()


def test_frozen_selection_is_exactly_the_surrogate(selective_family, gen):
    layer = _layer(selective_family, gen)
    SELECTIVE[selective_family.adapter].freeze(layer, gen)
    h = _frozen_impulse(selective_family, layer, 48)
    np.testing.assert_allclose(
        h, _markov(to_statespace(layer, exact=True).to_real(), 48), rtol=0, atol=1e-10 * np.abs(h).max()
    )


@pytest.mark.parametrize("r", [3, 4])
def test_frozen_write_back_realises_the_reported_system_and_obeys_the_bound(selective_family, gen, r):
    layer = _layer(selective_family, gen)
    SELECTIVE[selective_family.adapter].freeze(layer, gen)
    full = to_statespace(layer, exact=True).to_real()
    (lr,) = reduce_model(layer, rank(r), gate=1.0).layers
    assert lr.status == "reduced"
    assert max(adapter_for(layer).state_sizes(layer)) == r
    reduced = to_statespace(layer, exact=True).to_real()
    h_r = _frozen_impulse(selective_family, layer, 48)
    np.testing.assert_allclose(h_r, _markov(reduced, 48), rtol=0, atol=1e-10 * np.abs(_markov(full, 48)).max())
    error = ssmred.hinf_norm(full - reduced)
    assert error <= lr.error_bound * (1 + 1e-8)  # exactly: the frozen layer is LTI
    assert error > 0.0


def _simulate(systems, u: torch.Tensor) -> torch.Tensor:
    """Real outputs of the G analysed systems (state read after the update, as the layers do) driven by u."""
    b, L, G = u.shape
    x = u.to(torch.complex128)[..., None] * systems.B[:, :, 0]  # (b, L, G, n)
    h = ssmred_torch.diagonal_scan(systems.lam.reshape(-1), x.reshape(b, L, -1)).reshape(b, L, G, -1)
    return (h * systems.C[:, 0, :]).sum(-1).real


def test_write_back_keeps_the_output_within_the_surrogate_error(selective_family, gen):
    layer = _layer(selective_family, gen)
    io = SELECTIVE[selective_family.adapter].core_io
    adapter = adapter_for(layer)
    x = torch.randn(8, 24, _channels(layer), dtype=torch.float64, generator=gen)  # held out
    with torch.no_grad():
        u, y = io(layer, x)
        F = _simulate(adapter.systems(layer), u)
        (lr,) = reduce_model(layer, rank(3), gate=1.0).layers
        u_r, y_r = io(layer, x)
        F_r = _simulate(adapter.systems(layer), u_r)
    torch.testing.assert_close(u_r, u, rtol=0, atol=0)  # the selection path is not touched
    # the surrogate part moves by at most the bound (channel-wise l2 gain <= the H-infinity bound) ...
    assert float((F - F_r).norm()) <= lr.error_bound * float(u.norm()) * (1 + 1e-8)
    # ... and the layer's core output by no more than about the surrogate's own error plus that change
    surrogate_error = float((y - F).norm()) + float((F - F_r).norm())
    assert float((y_r - y).norm()) <= 2.0 * surrogate_error
