"""LRU <-> StateSpace: the torch adapter's conventions, exact round trips, explicit edge cases."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402
from ssmred_jax import LRU, DiagonalizationError, LRUAdapter, adapter_for, from_statespace, to_statespace  # noqa: E402

import ssmred  # noqa: E402
from ssmred.errors import DimensionError, NotStableError  # noqa: E402

pytestmark = pytest.mark.jax


def _impulse_responses(layer: LRU, length: int) -> np.ndarray:
    """h[k, :, j]: output at step k for a unit impulse on channel j at step 0."""
    H = layer.d_model
    u = np.zeros((H, length, H))
    u[np.arange(H), 0, np.arange(H)] = 1.0
    y = np.asarray(layer(jnp.asarray(u, dtype=layer.D.dtype)))  # (j, k, out)
    return y.transpose(1, 2, 0)


def _markov(sys: ssmred.StateSpace, length: int) -> np.ndarray:
    out = [sys.D]
    X = sys.B
    for _ in range(length - 1):
        out.append(sys.C @ X)
        X = sys.A @ X
    return np.stack(out)


def _assert_same_tf(a: ssmred.StateSpace, b: ssmred.StateSpace, rtol: float) -> None:
    w = np.linspace(-np.pi, np.pi, 97)
    Ga, Gb = a.frequency_response(w), b.frequency_response(w)
    np.testing.assert_allclose(Gb, Ga, rtol=0, atol=rtol * np.abs(Ga).max())


@pytest.fixture
def layer(make_lru, rng, x64):
    return make_lru(rng, 5, 12)


def test_exact_statespace_has_the_layers_impulse_response(layer):
    h_layer = _impulse_responses(layer, 40)
    h_sys = _markov(to_statespace(layer, exact=True).to_real(), 40)
    np.testing.assert_allclose(h_layer, h_sys, rtol=0, atol=1e-10 * np.abs(h_sys).max())


def test_spec_statespace_is_the_layer_one_step_ahead(layer):
    sigma = to_statespace(layer)
    assert sigma.is_complex
    assert sigma.dt == 1.0
    assert sigma.n_states == 12
    np.testing.assert_array_equal(np.diag(sigma.D).real, np.asarray(layer.D))
    h_layer = _impulse_responses(layer, 40)
    expected = _markov(sigma.to_real(), 41)[1:].copy()  # h_layer[k] = Re h_sigma[k + 1] + D delta_k
    expected[0] += sigma.D.real
    np.testing.assert_allclose(h_layer, expected, rtol=0, atol=1e-10 * np.abs(expected).max())


def test_round_trip_through_statespace(layer):
    back = from_statespace(to_statespace(layer), like=layer)
    assert back is not layer
    assert back.d_state == layer.d_state
    np.testing.assert_allclose(_impulse_responses(back, 30), _impulse_responses(layer, 30), rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(back.eigenvalues()), np.asarray(layer.eigenvalues()), rtol=1e-13, atol=0)


def test_round_trip_of_a_reduced_nondiagonal_system(layer):
    red = ssmred.balanced_truncation(to_statespace(layer), 7).reduced
    assert np.count_nonzero(red.A - np.diag(np.diag(red.A))) > 0
    new = from_statespace(red, like=layer)
    assert new.d_state == 7
    _assert_same_tf(red, to_statespace(new), rtol=1e-10)
    _assert_same_tf(
        ssmred.StateSpace(red.A, red.A @ red.B, red.C, red.D + red.C @ red.B, dt=1.0).to_real(),
        to_statespace(new, exact=True).to_real(),
        rtol=1e-10,
    )


def test_real_system_is_realised_exactly(layer, rng):
    real = to_statespace(layer).to_real()  # 2n real states, same real output
    new = from_statespace(real, like=layer)
    assert new.d_state == 24
    u = jnp.asarray(rng.normal(size=(2, 50, 5)))
    np.testing.assert_allclose(np.asarray(new(u)), np.asarray(layer(u)), rtol=1e-10, atol=1e-10)


def test_like_sets_the_dtype(make_lru, rng):
    like = make_lru(rng, 3, 6, dtype=np.float32)
    sys = to_statespace(like)
    new = from_statespace(ssmred.balanced_truncation(sys, 4).reduced, like=like)
    assert new.D.dtype == jnp.float32
    assert new.nu_log.dtype == jnp.float32
    assert new.d_state == 4


def _sys(A, H=2, D=None):
    A = np.asarray(A, dtype=complex)
    n = A.shape[0]
    rng = np.random.default_rng(1)
    B = rng.normal(size=(n, H)) + 1j * rng.normal(size=(n, H))
    C = rng.normal(size=(H, n)) + 1j * rng.normal(size=(H, n))
    return ssmred.StateSpace(A, B, C, np.eye(H) if D is None else D, dt=1.0)


def _like2() -> LRU:
    return LRU(2, 2, dtype=jnp.float64, key=jax.random.key(0))


def test_phase_zero_gets_the_equivalent_phase_two_pi(x64):
    sys = _sys(np.diag([0.5, -0.25]))
    new = from_statespace(sys, like=_like2())
    assert bool(jnp.isfinite(new.theta_log).all())
    np.testing.assert_allclose(float(jnp.exp(new.theta_log[0])), 2 * np.pi, rtol=1e-15)
    _assert_same_tf(sys, to_statespace(new), rtol=1e-12)


def test_modulus_one_from_roundoff_is_clamped_inside(x64):
    sys = _sys(np.diag([1.0 + 1e-12, 0.5j]))
    new = from_statespace(sys, like=_like2())
    assert bool(jnp.isfinite(new.nu_log).all())
    assert float(jnp.abs(new.eigenvalues()).max()) < 1.0
    like32 = LRU(2, 2, key=jax.random.key(0))
    assert float(jnp.abs(from_statespace(sys, like=like32).eigenvalues()).max()) < 1.0


def test_zero_eigenvalue_gives_finite_parameters(x64):
    sys = _sys(np.diag([0.0, 0.5]))
    new = from_statespace(sys, like=_like2())
    assert all(bool(jnp.isfinite(leaf).all()) for leaf in jax.tree_util.tree_leaves(new))
    _assert_same_tf(sys, to_statespace(new), rtol=1e-12)


def test_unstable_and_defective_systems_are_refused(x64):
    with pytest.raises(NotStableError, match=r"\|mu\|"):
        from_statespace(_sys(np.diag([1.1, 0.5])), like=_like2())
    with pytest.raises(DiagonalizationError, match="cond"):
        from_statespace(_sys([[0.5, 1.0], [0.0, 0.5]]), like=_like2())


def test_invalid_systems_raise_typed_errors(x64):
    like = _like2()
    with pytest.raises(DimensionError, match="diagonal"):
        from_statespace(_sys(np.diag([0.1, 0.2]), D=np.ones((2, 2))), like=like)
    with pytest.raises(DimensionError, match="d_model"):
        from_statespace(_sys(np.diag([0.1, 0.2]), H=3), like=like)
    with pytest.raises(ValueError, match="discrete"):
        from_statespace(ssmred.StateSpace(-np.eye(2), np.ones((2, 2)), np.ones((2, 2))), like=like)
    with pytest.raises(TypeError, match="StateSpace"):
        from_statespace("sys", like=like)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="LRU"):
        to_statespace(jnp.ones(3))
    with pytest.raises(TypeError, match="LRU"):
        from_statespace(_sys(np.diag([0.1, 0.2])), like="layer")


def test_adapter_is_found_along_the_mro(layer):
    class MyLRU(LRU):
        pass

    adapter = adapter_for(layer)
    assert isinstance(adapter, LRUAdapter)
    assert adapter_for(MyLRU) is adapter
    assert adapter_for(jnp.ones(2)) is None
    _assert_same_tf(adapter.to_statespace(layer), to_statespace(layer), rtol=0.0)
