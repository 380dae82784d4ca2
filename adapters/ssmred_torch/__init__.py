"""PyTorch adapter for ssmred: LRU layers <-> StateSpace and in-training CompreSSM reduction.

* Layers: :class:`LRU`, :class:`LRUBlock`, :class:`LRUModel` (parallel-scan forward).
* Conversion: :func:`to_statespace`, :func:`from_statespace`, :class:`LRUAdapter`.
* Batched on-device reduction: :func:`reduce_model` with the selection modes :func:`tolerance`,
  :func:`fraction`, :func:`rank`, :func:`pragmatic`; the :class:`CompreSSM` controller.
* Optimizer surgery (:func:`update_optimizer_state`), checkpoints (:func:`save`, :func:`load`), and
  the differentiable :func:`hankel_nuclear_norm`.
"""

from ssmred._require import require

require("torch")

from ssmred_torch import batched as batched  # noqa: E402
from ssmred_torch._base import AbstractAdapter as AbstractAdapter  # noqa: E402
from ssmred_torch._base import LRUAdapter as LRUAdapter  # noqa: E402
from ssmred_torch._base import adapter_for as adapter_for  # noqa: E402
from ssmred_torch.checkpoint import load as load  # noqa: E402
from ssmred_torch.checkpoint import save as save  # noqa: E402
from ssmred_torch.compress import AttemptRecord as AttemptRecord  # noqa: E402
from ssmred_torch.compress import CompreSSM as CompreSSM  # noqa: E402
from ssmred_torch.compress import Fraction as Fraction  # noqa: E402
from ssmred_torch.compress import LayerReport as LayerReport  # noqa: E402
from ssmred_torch.compress import Pragmatic as Pragmatic  # noqa: E402
from ssmred_torch.compress import Rank as Rank  # noqa: E402
from ssmred_torch.compress import ReductionReport as ReductionReport  # noqa: E402
from ssmred_torch.compress import SelectionMode as SelectionMode  # noqa: E402
from ssmred_torch.compress import StepResult as StepResult  # noqa: E402
from ssmred_torch.compress import Tolerance as Tolerance  # noqa: E402
from ssmred_torch.compress import fraction as fraction  # noqa: E402
from ssmred_torch.compress import pragmatic as pragmatic  # noqa: E402
from ssmred_torch.compress import rank as rank  # noqa: E402
from ssmred_torch.compress import reduce_layers as reduce_layers  # noqa: E402
from ssmred_torch.compress import reduce_model as reduce_model  # noqa: E402
from ssmred_torch.compress import tolerance as tolerance  # noqa: E402
from ssmred_torch.convert import from_statespace as from_statespace  # noqa: E402
from ssmred_torch.convert import layer_matrices as layer_matrices  # noqa: E402
from ssmred_torch.convert import to_statespace as to_statespace  # noqa: E402
from ssmred_torch.errors import DiagonalizationError as DiagonalizationError  # noqa: E402
from ssmred_torch.errors import ReductionWarning as ReductionWarning  # noqa: E402
from ssmred_torch.lru import LRU as LRU  # noqa: E402
from ssmred_torch.lru import LRUBlock as LRUBlock  # noqa: E402
from ssmred_torch.lru import LRUModel as LRUModel  # noqa: E402
from ssmred_torch.lru import diagonal_scan as diagonal_scan  # noqa: E402
from ssmred_torch.lru import diagonal_scan_sequential as diagonal_scan_sequential  # noqa: E402
from ssmred_torch.optim import TruncationMap as TruncationMap  # noqa: E402
from ssmred_torch.optim import update_optimizer_state as update_optimizer_state  # noqa: E402
from ssmred_torch.regularize import hankel_nuclear_norm as hankel_nuclear_norm  # noqa: E402

__all__ = [
    "LRU",
    "AbstractAdapter",
    "AttemptRecord",
    "CompreSSM",
    "DiagonalizationError",
    "Fraction",
    "LRUAdapter",
    "LRUBlock",
    "LRUModel",
    "LayerReport",
    "Pragmatic",
    "Rank",
    "ReductionReport",
    "ReductionWarning",
    "SelectionMode",
    "StepResult",
    "Tolerance",
    "TruncationMap",
    "adapter_for",
    "batched",
    "diagonal_scan",
    "diagonal_scan_sequential",
    "fraction",
    "from_statespace",
    "hankel_nuclear_norm",
    "layer_matrices",
    "load",
    "pragmatic",
    "rank",
    "reduce_layers",
    "reduce_model",
    "save",
    "to_statespace",
    "tolerance",
    "update_optimizer_state",
]
