"""The layer-family conformance suite: every registered adapter must pass every check here.

A family is done when it passes: add a factory for it to ``FAMILIES`` (the first test fails until
every registered adapter has one). Checks (DESIGN.md): the impulse response of
``to_statespace(layer, exact=True)`` equals the layer's forward; HSVs from ``systems()`` equal
``ssmred.hankel_singular_values``; after ``write_back_`` the layer realises the balanced-truncated
system and its real output error obeys the bound; optimizer state shapes under reset/slice/project;
checkpoint round trip; other layers untouched; conversion round trip; resize and state sizes agree.
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
    S4DAdapter,
    S5Adapter,
    adapter_for,
    from_statespace,
    load,
    rank,
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


def _s5_real_poles(gen: torch.Generator) -> torch.nn.Module:
    layer = S5(3, 12, dtype=_F64, generator=gen)
    with torch.no_grad():
        layer.Lambda_im[::2] = 0.0  # three real poles among six conjugate half-states
        layer.Lambda_re.copy_(-torch.linspace(0.3, 3.0, 6, dtype=_F64))
    return layer


#: adapter type -> factory(generator) -> float64 layer with 3 channels and >= 6 states
FAMILIES: dict[type, Factory] = {
    LRUAdapter: lambda gen: LRU(3, 12, dtype=torch.float64, generator=gen),
    S4DAdapter: lambda gen: S4D(3, 12, dt_min=0.05, dt_max=0.5, dtype=_F64, generator=gen),  # ZOH, aliased modes
    S5Adapter: lambda gen: S5(3, 12, dtype=_F64, generator=gen),
}
#: further parameter regimes of a family, (adapter type, id) -> factory; every check runs on each
VARIANTS: dict[tuple[type, str], Factory] = {
    (S4DAdapter, "bilinear-inv"): lambda g: S4D(3, 12, discretization="bilinear", init="inv", dtype=_F64, generator=g),
    (S4DAdapter, "real-poles"): lambda gen: S4D(3, 12, init="real", dtype=_F64, generator=gen),
    (S4DAdapter, "near-nyquist"): _s4d_near_nyquist,
    (S4DAdapter, "fixed-B-scan"): lambda gen: S4D(3, 12, learn_B=False, mode="scan", dtype=_F64, generator=gen),
    (S5Adapter, "bilinear-blocks"): lambda g: S5(3, 12, discretization="bilinear", blocks=2, dtype=_F64, generator=g),
    (S5Adapter, "real-poles"): _s5_real_poles,
    (S5Adapter, "near-nyquist"): _s5_near_nyquist,
    (S5Adapter, "no-conj-sym"): lambda gen: S5(3, 6, conj_sym=False, dtype=_F64, generator=gen),
}
ADAPTERS = sorted({type(a) for a in registered_adapters()}, key=lambda t: t.__name__)


class Case(NamedTuple):
    adapter: type
    make: Factory


CASES = [pytest.param(Case(t, FAMILIES[t]), id=t.__name__) for t in ADAPTERS if t in FAMILIES] + [
    pytest.param(Case(t, make), id=f"{t.__name__}-{name}") for (t, name), make in VARIANTS.items()
]


def _layer(case: Case, gen: torch.Generator) -> torch.nn.Module:
    return case.make(gen)


def _channels(layer: torch.nn.Module) -> int:
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


@pytest.fixture(params=CASES)
def family(request):
    return request.param


def test_exact_statespace_impulse_response_is_the_forward(family, gen):
    layer = _layer(family, gen)
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
def test_write_back_realises_the_truncated_system_and_obeys_the_bound(family, gen, r):
    layer = _layer(family, gen)
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


def test_conversion_round_trip_and_resize(family, gen):
    layer = _layer(family, gen)
    back = from_statespace(to_statespace(layer), like=layer)
    assert type(back) is type(layer)
    x = torch.randn(2, 20, _channels(layer), dtype=torch.float64, generator=gen)
    torch.testing.assert_close(back(x), layer(x), rtol=1e-10, atol=1e-10)
    adapter = adapter_for(layer)
    sizes = tuple(max(1, s - 2) for s in adapter.state_sizes(layer))
    adapter.resize_(layer, sizes)
    assert adapter.state_sizes(layer) == sizes
    params = dict(layer.named_parameters())
    for name, axis in adapter.state_parameters(layer).items():
        assert params[name].shape[axis] == max(sizes), name


def test_subclasses_are_found_along_the_mro(family, gen):
    base = type(_layer(family, gen))
    sub = type(f"My{base.__name__}", (base,), {})
    layer = _layer(family, gen)
    layer.__class__ = sub
    assert type(adapter_for(layer)) is family.adapter
    assert [e.name for e in ssm_layers(torch.nn.ModuleDict({"x": layer}))] == ["x"]
    report = reduce_model(layer, rank(4), gate=1.0)  # issue 9 defect 2: a subclass was silently skipped
    assert report.sizes_after == (4,)
