"""LRU <-> StateSpace: exact round trips (impulse responses to 1e-10), explicit edge cases."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ssmred_torch import (  # noqa: E402
    LRU,
    DiagonalizationError,
    LRUAdapter,
    adapter_for,
    from_statespace,
    rank,
    reduce_layers,
    to_statespace,
)

import ssmred  # noqa: E402
from ssmred.errors import DimensionError, NotStableError  # noqa: E402

pytestmark = pytest.mark.torch


def _impulse_responses(layer: LRU, length: int) -> np.ndarray:
    """h[k, :, j]: output at step k for a unit impulse on channel j at step 0."""
    H = layer.d_model
    u = torch.zeros(H, length, H, dtype=torch.float64)
    u[torch.arange(H), 0, torch.arange(H)] = 1.0
    with torch.no_grad():
        y = layer(u)  # (j, k, out)
    return y.permute(1, 2, 0).numpy()


def _markov(sys: ssmred.StateSpace, length: int) -> np.ndarray:
    """Markov parameters D, CB, CAB, ... of a (real) system."""
    out = [sys.D]
    X = sys.B
    for _ in range(length - 1):
        out.append(sys.C @ X)
        X = sys.A @ X
    return np.stack(out)


def _assert_same_tf(a: ssmred.StateSpace, b: ssmred.StateSpace, rtol: float) -> None:
    w = np.linspace(-np.pi, np.pi, 97)
    Ga, Gb = a.frequency_response(w), b.frequency_response(w)
    scale = np.abs(Ga).max()
    np.testing.assert_allclose(Gb, Ga, rtol=0, atol=rtol * scale)


@pytest.fixture
def layer(gen) -> LRU:
    return LRU(5, 12, dtype=torch.float64, generator=gen)


def test_exact_statespace_has_the_layers_impulse_response(layer):
    h_layer = _impulse_responses(layer, 40)
    h_sys = _markov(to_statespace(layer, exact=True).to_real(), 40)
    np.testing.assert_allclose(h_layer, h_sys, rtol=0, atol=1e-10 * np.abs(h_sys).max())


def test_spec_statespace_is_the_layer_one_step_ahead(layer):
    sigma = to_statespace(layer)
    assert sigma.is_complex
    assert sigma.dt == 1.0
    assert sigma.n_states == 12
    np.testing.assert_array_equal(np.diag(sigma.D).real, layer.D.detach().numpy())
    h_layer = _impulse_responses(layer, 40)
    h_sigma = _markov(sigma.to_real(), 41)
    # h_layer[k] = Re h_sigma[k + 1] + D delta_k
    expected = h_sigma[1:].copy()
    expected[0] += sigma.D.real
    np.testing.assert_allclose(h_layer, expected, rtol=0, atol=1e-10 * np.abs(expected).max())


def test_round_trip_through_statespace(layer):
    back = from_statespace(to_statespace(layer), like=layer)
    assert back is not layer
    assert back.d_state == layer.d_state
    np.testing.assert_allclose(_impulse_responses(back, 30), _impulse_responses(layer, 30), rtol=0, atol=1e-12)
    # diagonal input: the order of the states is kept, the eigenvalues are the same
    torch.testing.assert_close(back.eigenvalues(), layer.eigenvalues(), rtol=1e-13, atol=0.0)


def test_round_trip_of_a_reduced_nondiagonal_system(layer):
    red = ssmred.balanced_truncation(to_statespace(layer), 7).reduced
    assert np.count_nonzero(red.A - np.diag(np.diag(red.A))) > 0
    new = from_statespace(red, like=layer)
    assert new.d_state == 7
    _assert_same_tf(red, to_statespace(new), rtol=1e-10)
    # exact I/O systems agree too
    _assert_same_tf(
        ssmred.StateSpace(red.A, red.A @ red.B, red.C, red.D + red.C @ red.B, dt=1.0).to_real(),
        to_statespace(new, exact=True).to_real(),
        rtol=1e-10,
    )


def test_real_system_is_realised_exactly(layer, gen):
    real = to_statespace(layer).to_real()  # 2n real states, same real output
    new = from_statespace(real, like=layer)
    assert new.d_state == 24
    u = torch.randn(2, 50, 5, dtype=torch.float64, generator=gen)
    with torch.no_grad():
        torch.testing.assert_close(new(u), layer(u), rtol=1e-10, atol=1e-10)


def test_like_sets_dtype_and_keeps_it_unchanged(gen):
    like = LRU(3, 6, generator=gen)  # float32
    before = [p.detach().clone() for p in like.parameters()]
    sys = to_statespace(like)
    new = from_statespace(ssmred.balanced_truncation(sys, 4).reduced, like=like)
    assert new.D.dtype == torch.float32
    assert new.d_state == 4
    for p, q in zip(like.parameters(), before, strict=True):
        assert torch.equal(p, q)


def _sys(A, H=2, D=None):
    A = np.asarray(A, dtype=complex)
    n = A.shape[0]
    rng = np.random.default_rng(1)
    B = rng.normal(size=(n, H)) + 1j * rng.normal(size=(n, H))
    C = rng.normal(size=(H, n)) + 1j * rng.normal(size=(H, n))
    return ssmred.StateSpace(A, B, C, np.eye(H) if D is None else D, dt=1.0)


def test_phase_zero_gets_the_equivalent_phase_two_pi(gen):
    like = LRU(2, 2, dtype=torch.float64, generator=gen)
    sys = _sys(np.diag([0.5, -0.25]))
    new = from_statespace(sys, like=like)
    assert torch.isfinite(new.theta_log).all()
    torch.testing.assert_close(torch.exp(new.theta_log[0]), torch.tensor(2 * np.pi, dtype=torch.float64))
    _assert_same_tf(sys, to_statespace(new), rtol=1e-12)


def test_modulus_one_from_roundoff_is_clamped_inside(gen):
    like = LRU(2, 2, dtype=torch.float64, generator=gen)
    sys = _sys(np.diag([1.0 + 1e-12, 0.5j]))
    new = from_statespace(sys, like=like)
    lam = new.eigenvalues().detach()
    assert torch.isfinite(new.nu_log).all()
    assert float(lam.abs().max()) < 1.0
    like32 = LRU(2, 2, generator=gen)
    lam32 = from_statespace(sys, like=like32).eigenvalues().detach()
    assert float(lam32.abs().max()) < 1.0


def test_zero_eigenvalue_gives_finite_parameters(gen):
    like = LRU(2, 2, dtype=torch.float64, generator=gen)
    sys = _sys(np.diag([0.0, 0.5]))
    new = from_statespace(sys, like=like)
    for p in new.parameters():
        assert torch.isfinite(p).all()
    _assert_same_tf(sys, to_statespace(new), rtol=1e-12)


def test_unstable_system_is_refused(gen):
    like = LRU(2, 2, dtype=torch.float64, generator=gen)
    with pytest.raises(NotStableError, match=r"\|mu\|"):
        from_statespace(_sys(np.diag([1.1, 0.5])), like=like)


def test_defective_matrix_is_refused(gen):
    like = LRU(2, 2, dtype=torch.float64, generator=gen)
    with pytest.raises(DiagonalizationError, match="cond"):
        from_statespace(_sys([[0.5, 1.0], [0.0, 0.5]]), like=like)


def test_invalid_systems_raise_typed_errors(gen):
    like = LRU(2, 2, dtype=torch.float64, generator=gen)
    with pytest.raises(DimensionError, match="diagonal"):
        from_statespace(_sys(np.diag([0.1, 0.2]), D=np.ones((2, 2))), like=like)
    with pytest.raises(DimensionError, match="d_model"):
        from_statespace(_sys(np.diag([0.1, 0.2]), H=3), like=like)
    with pytest.raises(ValueError, match="discrete"):
        from_statespace(ssmred.StateSpace(-np.eye(2), np.ones((2, 2)), np.ones((2, 2))), like=like)
    with pytest.raises(TypeError, match="StateSpace"):
        from_statespace("sys", like=like)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="LRU"):
        to_statespace(torch.nn.Linear(2, 2))  # type: ignore[arg-type]


def test_adapter_is_found_by_exact_type(layer):
    adapter = adapter_for(layer)
    assert isinstance(adapter, LRUAdapter)
    assert adapter_for(torch.nn.Linear(2, 2)) is None
    _assert_same_tf(adapter.to_statespace(layer), to_statespace(layer), rtol=0.0)
    new = adapter.from_statespace(to_statespace(layer), like=layer)
    _assert_same_tf(to_statespace(new), to_statespace(layer), rtol=1e-12)
    (report,) = reduce_layers([layer], rank(5), gate=1.0)
    assert report.applied
    assert layer.d_state == 5
