"""SSM layer families of the JAX adapter: one module per family, each with its final adapter."""

from ssmred._require import require

require("jax")

from ssmred_jax.layers.lru import LRU as LRU  # noqa: E402
from ssmred_jax.layers.lru import LRUAdapter as LRUAdapter  # noqa: E402
from ssmred_jax.layers.s5 import S5 as S5  # noqa: E402
from ssmred_jax.layers.s5 import S5Adapter as S5Adapter  # noqa: E402

__all__ = ["LRU", "LRUAdapter", "S5", "S5Adapter"]
