"""Layer families: per family the ``nn.Module`` (``<family>.py``) and its final, registered adapter
(``<family>_adapter.py``, registered on import).
"""

from ssmred_torch.layers.lru import LRU as LRU
from ssmred_torch.layers.lru_adapter import LRUAdapter as LRUAdapter
from ssmred_torch.layers.mamba import Mamba as Mamba
from ssmred_torch.layers.mamba_adapter import MambaAdapter as MambaAdapter
from ssmred_torch.layers.s4d import S4D as S4D
from ssmred_torch.layers.s4d_adapter import S4DAdapter as S4DAdapter
from ssmred_torch.layers.s5 import S5 as S5
from ssmred_torch.layers.s5_adapter import S5Adapter as S5Adapter

__all__ = ["LRU", "S4D", "S5", "LRUAdapter", "Mamba", "MambaAdapter", "S4DAdapter", "S5Adapter"]
