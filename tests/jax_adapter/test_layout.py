"""The JAX adapters' declared state layout: the defaults read the class variables; registration checks them."""

from __future__ import annotations

import pytest

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402
from ssmred_jax import LRU, S5, AbstractAdapter, LRUAdapter, S5Adapter, adapter_for, register_adapter  # noqa: E402

pytestmark = pytest.mark.jax


@pytest.mark.parametrize(
    ("layer", "size"),
    [(LRU(2, 6, key=jax.random.key(0)), 6), (S5(2, 8, key=jax.random.key(0)), 4)],
    ids=["lru", "s5"],
)
def test_declared_layout(layer, size):
    adapter = adapter_for(layer)
    axes = adapter.state_parameters(layer)
    assert axes == dict(adapter.state_axes)
    assert axes is not adapter.state_axes
    assert adapter.state_size(layer) == size
    assert adapter.moment_layout(layer) is adapter.moment_fields
    assert repr(adapter) == f"{type(adapter).__name__}()"
    for name, axis in axes.items():  # every declared field has the state size on its declared axis
        assert getattr(layer, name).shape[axis] == size
    others = [f for f in type(layer).__dataclass_fields__ if f not in axes]
    params = {name: getattr(layer, name)[(slice(None),) * axis + (slice(0, 2),)] for name, axis in axes.items()}
    new = adapter.write_back(layer, params)
    assert type(new) is type(layer)
    assert adapter.state_size(new) == 2
    assert all(getattr(new, f) is getattr(layer, f) for f in others)  # D and the static settings kept
    assert all(bool(jnp.array_equal(getattr(new, k), v)) for k, v in params.items())


def test_register_checks_layout():
    class NoLayout(AbstractAdapter):  # no state_axes / moment_fields
        layer_type = LRU

    NoLayout.__abstractmethods__ = frozenset()
    with pytest.raises(TypeError, match="state_axes"):
        register_adapter(NoLayout())
    assert issubclass(S5Adapter, AbstractAdapter)
    assert type(adapter_for(LRU)) is LRUAdapter
