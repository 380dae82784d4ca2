"""The equinox LRU: published field layout, scan = recurrence, initialisation, construction errors."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

jax = pytest.importorskip("jax")
eqx = pytest.importorskip("equinox")
import jax.numpy as jnp  # noqa: E402
from ssmred_jax import LRU, LRU_FIELDS, diagonal_scan, diagonal_scan_sequential  # noqa: E402

from ssmred.errors import DimensionError  # noqa: E402

pytestmark = pytest.mark.jax


def test_fields_are_the_published_layout(make_lru, rng):
    # the published equinox LRULayer declares exactly these fields, in this order, with these shapes
    assert [f.name for f in dataclasses.fields(LRU)] == list(LRU_FIELDS)
    assert LRU_FIELDS == ("nu_log", "theta_log", "B_re", "B_im", "C_re", "C_im", "D", "gamma_log")
    layer = make_lru(rng, 3, 5, dtype=np.float32)
    shapes = {f: getattr(layer, f).shape for f in LRU_FIELDS}
    assert shapes == {
        "nu_log": (5,),
        "theta_log": (5,),
        "B_re": (5, 3),
        "B_im": (5, 3),
        "C_re": (3, 5),
        "C_im": (3, 5),
        "D": (3,),
        "gamma_log": (5,),
    }
    # pytree leaves in field order: a checkpoint of the published layer deserialises into an LRU
    assert [leaf.shape for leaf in jax.tree_util.tree_leaves(layer)] == [shapes[f] for f in LRU_FIELDS]


def _published_forward(layer, u):
    """The published layer's forward, step by step: x_k = lam x_{k-1} + B_norm u_k, y_k = Re(C x_k) + D u_k."""
    lam = np.exp(-np.exp(np.asarray(layer.nu_log)) + 1j * np.exp(np.asarray(layer.theta_log)))
    B = (np.asarray(layer.B_re) + 1j * np.asarray(layer.B_im)) * np.exp(np.asarray(layer.gamma_log))[:, None]
    C = np.asarray(layer.C_re) + 1j * np.asarray(layer.C_im)
    x = np.zeros(lam.shape, dtype=complex)
    out = []
    for uk in np.asarray(u):
        x = lam * x + B @ uk
        out.append((C @ x).real + np.asarray(layer.D) * uk)
    return np.stack(out)


def test_forward_is_the_published_recurrence(make_lru, rng, x64):
    layer = make_lru(rng, 4, 9, r_max=0.9999)
    u = jnp.asarray(rng.normal(size=(37, 4)))
    expected = _published_forward(layer, u)
    np.testing.assert_allclose(np.asarray(layer(u)), expected, rtol=0, atol=1e-12 * np.abs(expected).max())
    np.testing.assert_allclose(np.asarray(layer.forward_sequential(u)), expected, rtol=0, atol=1e-12)
    # leading batch axes are accepted (the published layer is vmapped instead)
    ub = jnp.stack([u, 2 * u])
    np.testing.assert_allclose(np.asarray(layer(ub))[1], 2 * expected, rtol=0, atol=1e-11)
    np.testing.assert_allclose(np.asarray(jax.vmap(layer)(ub)), np.asarray(layer(ub)), rtol=0, atol=1e-13)


@pytest.mark.parametrize("length", [1, 7, 300])
def test_parallel_scan_matches_sequential_float32(make_lru, rng, length):
    layer = make_lru(rng, 3, 8, r_max=0.9999, dtype=np.float32)
    u = jnp.asarray(rng.normal(size=(2, length, 3)).astype(np.float32))
    y_scan, y_seq = np.asarray(layer(u)), np.asarray(layer.forward_sequential(u))
    np.testing.assert_allclose(y_scan, y_seq, rtol=0, atol=2e-5 * np.abs(y_seq).max())


def test_scan_on_raw_complex_states(rng, x64):
    lam = jnp.asarray(rng.uniform(size=5) * np.exp(6j * rng.uniform(size=5)))
    x = jnp.asarray(rng.normal(size=(2, 37, 5)) + 1j * rng.normal(size=(2, 37, 5)))
    np.testing.assert_allclose(
        np.asarray(diagonal_scan(lam, x)), np.asarray(diagonal_scan_sequential(lam, x)), rtol=1e-12, atol=1e-12
    )
    with pytest.raises(DimensionError, match="n_states"):
        diagonal_scan(lam, x[..., :4])


def test_gradients_of_scan_and_recurrence_agree(make_lru, rng, x64):
    layer = make_lru(rng, 3, 6)
    u = jnp.asarray(rng.normal(size=(21, 3)))
    g_scan = eqx.filter_jit(eqx.filter_grad(lambda m: jnp.sum(m(u) ** 2)))(layer)
    g_seq = eqx.filter_jit(eqx.filter_grad(lambda m: jnp.sum(m.forward_sequential(u) ** 2)))(layer)
    for f in LRU_FIELDS:
        np.testing.assert_allclose(np.asarray(getattr(g_scan, f)), np.asarray(getattr(g_seq, f)), rtol=1e-9, atol=1e-11)


def test_init_follows_the_spec():
    layer = LRU(8, 2000, r_min=0.9, r_max=0.999, max_phase=math.pi, key=jax.random.key(0))
    assert layer.nu_log.dtype == jnp.float32
    lam = np.asarray(layer.eigenvalues()).astype(complex)
    mod = np.abs(lam)
    assert mod.min() >= 0.9 - 1e-6
    assert mod.max() <= 0.999 + 1e-6
    assert abs(float(np.mean(mod**2)) - (0.81 + 0.999**2) / 2) < 0.01  # |lam|^2 uniform on the ring
    phase = np.exp(np.asarray(layer.theta_log))
    assert 0 < phase.min()
    assert phase.max() <= math.pi * (1 + 1e-6)
    gamma = np.exp(np.asarray(layer.gamma_log))
    np.testing.assert_allclose(gamma, np.sqrt(1 - mod**2), rtol=1e-3)
    assert abs(float(np.std(np.asarray(layer.B_re))) - 1 / math.sqrt(16)) < 0.01
    assert abs(float(np.std(np.asarray(layer.C_im))) - 1 / math.sqrt(2000)) < 0.002
    # the same key gives the same layer
    again = LRU(8, 2000, r_min=0.9, r_max=0.999, max_phase=math.pi, key=jax.random.key(0))
    assert all(bool(jnp.array_equal(getattr(layer, f), getattr(again, f))) for f in LRU_FIELDS)


def test_bad_arguments_raise_named_errors():
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="d_model"):
        LRU(0, 4, key=key)
    with pytest.raises(ValueError, match="d_state"):
        LRU(2, True, key=key)
    with pytest.raises(ValueError, match="r_min"):
        LRU(2, 4, r_min=0.9, r_max=0.5, key=key)
    with pytest.raises(ValueError, match="max_phase"):
        LRU(2, 4, max_phase=float("inf"), key=key)
    with pytest.raises(TypeError, match="dtype"):
        LRU(2, 4, dtype=jnp.int32, key=key)
    with pytest.raises(ValueError, match="enable_x64"):
        LRU(2, 4, dtype=jnp.float64, key=key)
    layer = LRU(2, 4, key=key)
    with pytest.raises(DimensionError, match="d_model=2"):
        layer(jnp.ones((5, 3)))


def test_from_parameters_checks_shapes_and_dtypes(make_lru, rng):
    layer = make_lru(rng, 2, 4, dtype=np.float32)
    values = {f: getattr(layer, f) for f in LRU_FIELDS}
    with pytest.raises(DimensionError, match="C_re"):
        LRU.from_parameters(**{**values, "C_re": values["C_re"][:, :3]})
    with pytest.raises(TypeError, match="one float dtype"):
        LRU.from_parameters(**{**values, "D": values["D"].astype(jnp.int32)})
    copy = LRU.from_parameters(**values)
    assert copy.d_state == 4
    assert copy.d_model == 2


def test_serialised_leaves_round_trip(make_lru, rng, tmp_path):
    layer = make_lru(rng, 3, 5, dtype=np.float32)
    eqx.tree_serialise_leaves(tmp_path / "layer.eqx", layer)
    template = LRU(3, 5, key=jax.random.key(1))
    back = eqx.tree_deserialise_leaves(tmp_path / "layer.eqx", template)
    assert all(bool(jnp.array_equal(getattr(back, f), getattr(layer, f))) for f in LRU_FIELDS)
