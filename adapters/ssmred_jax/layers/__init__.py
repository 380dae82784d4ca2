"""SSM layer families of the JAX adapter: per family the equinox module and its final adapter.

``lru.py`` / ``lru_adapter.py`` and ``s5.py`` / ``s5_adapter.py`` (each adapter registered on import);
``_conversion.py`` and ``_continuous.py`` are shared by the adapters.
"""

from ssmred._require import require

require("jax")

from ssmred_jax.layers.lru import LRU as LRU  # noqa: E402
from ssmred_jax.layers.lru_adapter import LRUAdapter as LRUAdapter  # noqa: E402
from ssmred_jax.layers.s5 import S5 as S5  # noqa: E402
from ssmred_jax.layers.s5_adapter import S5Adapter as S5Adapter  # noqa: E402

__all__ = ["LRU", "LRUAdapter", "S5", "S5Adapter"]
