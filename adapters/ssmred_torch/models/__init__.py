r"""Sequence classifiers built from any registered SSM layer family (SPEC §1).

:class:`SSMBlock` is the residual block ``x -> x + Dropout(GLU(Dropout(GELU(SSM(BatchNorm(x))))))``
with the GLU :math:`W_1 z \odot \sigma(W_2 z)`; :class:`SSMClassifier` is encoder (linear, or an
embedding for tokens) → blocks → mean pooling over time → linear head, with one SSM layer per block
made by a factory. :class:`LRUBlock` and :class:`LRUModel` are the LRU instances, :class:`S4DModel` and
:class:`S5Model` the S4D and S5 ones, :class:`MambaModel` the Mamba one.

Layout: the generic block and classifier in ``models/_classifier.py``, one module per family
(``models/lru.py``, ``models/s4d.py``, ``models/s5.py``, ``models/mamba.py``); every name is importable
from here (``ssmred_torch.models.LRUModel``) as from ``ssmred_torch``.
"""

from ssmred_torch.models._classifier import SSMBlock as SSMBlock
from ssmred_torch.models._classifier import SSMClassifier as SSMClassifier
from ssmred_torch.models.lru import LRUBlock as LRUBlock
from ssmred_torch.models.lru import LRUModel as LRUModel
from ssmred_torch.models.mamba import MambaModel as MambaModel
from ssmred_torch.models.s4d import S4DModel as S4DModel
from ssmred_torch.models.s5 import S5Model as S5Model

__all__ = ["LRUBlock", "LRUModel", "MambaModel", "S4DModel", "S5Model", "SSMBlock", "SSMClassifier"]
