"""Layer families: per family the ``nn.Module`` (``<family>.py``) and its final, registered adapter
(``<family>_adapter.py``, registered on import).
"""

from ssmred_torch.layers.lru import LRU as LRU
from ssmred_torch.layers.lru_adapter import LRUAdapter as LRUAdapter

__all__ = ["LRU", "LRUAdapter"]
