"""Layer families: one module per family, holding the ``nn.Module`` and its registered final adapter."""

from ssmred_torch.layers.lru import LRU as LRU
from ssmred_torch.layers.lru import LRUAdapter as LRUAdapter

__all__ = ["LRU", "LRUAdapter"]
