"""PyTorch adapter for ssmred: SSM layers <-> StateSpace and in-training CompreSSM reduction.

* The layer-family protocol: :class:`AbstractAdapter`, :func:`register_adapter`, :func:`adapter_for`
  (MRO lookup) and the one layer discovery :func:`ssm_layers`.
* Families: :class:`LRU` (:class:`LRUAdapter`); models :class:`SSMClassifier`, :class:`LRUModel`.
* Conversion: :func:`to_statespace`, :func:`from_statespace` (any registered family).
* Batched on-device reduction: :func:`plan_reduction` + :func:`apply_reduction_` = :func:`reduce_model`,
  with the selection modes of :mod:`ssmred.selection` (:func:`tolerance`, :func:`fraction`,
  :func:`rank`, :func:`pragmatic`); the :class:`CompreSSM` controller.
* Optimizer surgery (:func:`update_optimizer_state`), checkpoints (:func:`save`, :func:`load`), and the
  differentiable :func:`hankel_nuclear_norm`.
"""

from ssmred._require import require

require("torch")

from ssmred.selection import Fraction as Fraction  # noqa: E402
from ssmred.selection import Pragmatic as Pragmatic  # noqa: E402
from ssmred.selection import Rank as Rank  # noqa: E402
from ssmred.selection import SelectionMode as SelectionMode  # noqa: E402
from ssmred.selection import Tolerance as Tolerance  # noqa: E402
from ssmred.selection import fraction as fraction  # noqa: E402
from ssmred.selection import pragmatic as pragmatic  # noqa: E402
from ssmred.selection import rank as rank  # noqa: E402
from ssmred.selection import tolerance as tolerance  # noqa: E402
from ssmred_torch import kernels as kernels  # noqa: E402
from ssmred_torch._adapter import AbstractAdapter as AbstractAdapter  # noqa: E402
from ssmred_torch._adapter import DiagonalSystems as DiagonalSystems  # noqa: E402
from ssmred_torch._adapter import ReducedSystems as ReducedSystems  # noqa: E402
from ssmred_torch._adapter import ReductionRefused as ReductionRefused  # noqa: E402
from ssmred_torch._adapter import SSMLayer as SSMLayer  # noqa: E402
from ssmred_torch._adapter import StateMap as StateMap  # noqa: E402
from ssmred_torch._adapter import adapter_for as adapter_for  # noqa: E402
from ssmred_torch._adapter import register_adapter as register_adapter  # noqa: E402
from ssmred_torch._adapter import registered_adapters as registered_adapters  # noqa: E402
from ssmred_torch._adapter import replace_parameter_ as replace_parameter_  # noqa: E402
from ssmred_torch._adapter import ssm_layers as ssm_layers  # noqa: E402
from ssmred_torch.checkpoint import load as load  # noqa: E402
from ssmred_torch.checkpoint import read_checkpoint as read_checkpoint  # noqa: E402
from ssmred_torch.checkpoint import save as save  # noqa: E402
from ssmred_torch.checkpoint import state_sizes as state_sizes  # noqa: E402
from ssmred_torch.controller import AttemptRecord as AttemptRecord  # noqa: E402
from ssmred_torch.controller import CompreSSM as CompreSSM  # noqa: E402
from ssmred_torch.controller import StepResult as StepResult  # noqa: E402
from ssmred_torch.convert import from_statespace as from_statespace  # noqa: E402
from ssmred_torch.convert import to_statespace as to_statespace  # noqa: E402
from ssmred_torch.errors import CheckpointError as CheckpointError  # noqa: E402
from ssmred_torch.errors import DiagonalizationError as DiagonalizationError  # noqa: E402
from ssmred_torch.errors import ReductionWarning as ReductionWarning  # noqa: E402
from ssmred_torch.layers.lru import LRU as LRU  # noqa: E402
from ssmred_torch.layers.lru import layer_matrices as layer_matrices  # noqa: E402
from ssmred_torch.layers.lru_adapter import LRUAdapter as LRUAdapter  # noqa: E402
from ssmred_torch.models import LRUBlock as LRUBlock  # noqa: E402
from ssmred_torch.models import LRUModel as LRUModel  # noqa: E402
from ssmred_torch.models import SSMBlock as SSMBlock  # noqa: E402
from ssmred_torch.models import SSMClassifier as SSMClassifier  # noqa: E402
from ssmred_torch.optim import TruncationMap as TruncationMap  # noqa: E402
from ssmred_torch.optim import update_optimizer_state as update_optimizer_state  # noqa: E402
from ssmred_torch.reduce import LayerPlan as LayerPlan  # noqa: E402
from ssmred_torch.reduce import ReductionPlan as ReductionPlan  # noqa: E402
from ssmred_torch.reduce import apply_reduction_ as apply_reduction_  # noqa: E402
from ssmred_torch.reduce import plan_reduction as plan_reduction  # noqa: E402
from ssmred_torch.reduce import reduce_layers as reduce_layers  # noqa: E402
from ssmred_torch.reduce import reduce_model as reduce_model  # noqa: E402
from ssmred_torch.regularize import hankel_nuclear_norm as hankel_nuclear_norm  # noqa: E402
from ssmred_torch.reports import LayerReport as LayerReport  # noqa: E402
from ssmred_torch.reports import ReductionReport as ReductionReport  # noqa: E402
from ssmred_torch.scan import diagonal_scan as diagonal_scan  # noqa: E402
from ssmred_torch.scan import diagonal_scan_sequential as diagonal_scan_sequential  # noqa: E402

__all__ = [
    "LRU",
    "AbstractAdapter",
    "AttemptRecord",
    "CompreSSM",
    "DiagonalSystems",
    "CheckpointError",
    "DiagonalizationError",
    "Fraction",
    "LRUAdapter",
    "LRUBlock",
    "LRUModel",
    "LayerPlan",
    "LayerReport",
    "Pragmatic",
    "Rank",
    "ReducedSystems",
    "ReductionPlan",
    "ReductionRefused",
    "ReductionReport",
    "ReductionWarning",
    "SSMBlock",
    "SSMClassifier",
    "SSMLayer",
    "SelectionMode",
    "StateMap",
    "StepResult",
    "Tolerance",
    "TruncationMap",
    "adapter_for",
    "apply_reduction_",
    "diagonal_scan",
    "diagonal_scan_sequential",
    "fraction",
    "from_statespace",
    "hankel_nuclear_norm",
    "kernels",
    "layer_matrices",
    "load",
    "plan_reduction",
    "pragmatic",
    "rank",
    "read_checkpoint",
    "reduce_layers",
    "reduce_model",
    "register_adapter",
    "registered_adapters",
    "replace_parameter_",
    "save",
    "ssm_layers",
    "state_sizes",
    "to_statespace",
    "tolerance",
    "update_optimizer_state",
]
