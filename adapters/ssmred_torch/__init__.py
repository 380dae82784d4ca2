"""PyTorch adapter for ssmred: SSM layers <-> StateSpace and in-training CompreSSM reduction.

* The layer-family protocol: :class:`AbstractAdapter`, :func:`register_adapter`, :func:`adapter_for`
  (MRO lookup) and the one layer discovery :func:`ssm_layers`.
* Families: :class:`LRU` (:class:`LRUAdapter`), the selective :class:`Mamba` (:class:`MambaAdapter`,
  surrogate statistics by :func:`calibrate_`), :class:`S4D` (:class:`S4DAdapter`) and :class:`S5`
  (:class:`S5Adapter`) with importers of the reference layouts (:func:`s4d_from_reference`,
  :func:`s5_from_reference`); models (:mod:`ssmred_torch.models`) :class:`SSMClassifier`,
  :class:`LRUModel`, :class:`S4DModel`, :class:`S5Model`, :class:`MambaModel`.
* Conversion: :func:`to_statespace`, :func:`from_statespace` (any registered family).
* Batched on-device reduction: :func:`plan_reduction` + :func:`apply_reduction_` = :func:`reduce_model`,
  with the selection modes of :mod:`ssmred.selection` (:func:`tolerance`, :func:`fraction`,
  :func:`rank`, :func:`pragmatic`); the :class:`CompreSSM` controller. Under data parallelism every
  :func:`decide` inside :func:`shared_decisions` is made by one process for all.
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
from ssmred_torch.checkpoint import nonfinite_entries as nonfinite_entries  # noqa: E402
from ssmred_torch.checkpoint import read_checkpoint as read_checkpoint  # noqa: E402
from ssmred_torch.checkpoint import save as save  # noqa: E402
from ssmred_torch.checkpoint import state_sizes as state_sizes  # noqa: E402
from ssmred_torch.checkpoint import verify_archive as verify_archive  # noqa: E402
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
from ssmred_torch.layers.mamba import CalibrationError as CalibrationError  # noqa: E402
from ssmred_torch.layers.mamba import CalibrationStatistics as CalibrationStatistics  # noqa: E402
from ssmred_torch.layers.mamba import HSVSpread as HSVSpread  # noqa: E402
from ssmred_torch.layers.mamba import Mamba as Mamba  # noqa: E402
from ssmred_torch.layers.mamba import Selection as Selection  # noqa: E402
from ssmred_torch.layers.mamba import calibrate_ as calibrate_  # noqa: E402
from ssmred_torch.layers.mamba import frozen_time_hsvs as frozen_time_hsvs  # noqa: E402
from ssmred_torch.layers.mamba import recording as recording  # noqa: E402
from ssmred_torch.layers.mamba import surrogate_matrices as surrogate_matrices  # noqa: E402
from ssmred_torch.layers.mamba_adapter import MambaAdapter as MambaAdapter  # noqa: E402
from ssmred_torch.layers.mamba_adapter import modal_error_bound as modal_error_bound  # noqa: E402
from ssmred_torch.layers.mamba_adapter import mode_energies as mode_energies  # noqa: E402
from ssmred_torch.layers.s4d import S4D as S4D  # noqa: E402
from ssmred_torch.layers.s4d import s4d_from_reference as s4d_from_reference  # noqa: E402
from ssmred_torch.layers.s4d_adapter import S4DAdapter as S4DAdapter  # noqa: E402
from ssmred_torch.layers.s5 import S5 as S5  # noqa: E402
from ssmred_torch.layers.s5 import s5_from_reference as s5_from_reference  # noqa: E402
from ssmred_torch.layers.s5_adapter import S5Adapter as S5Adapter  # noqa: E402
from ssmred_torch.models import LRUBlock as LRUBlock  # noqa: E402
from ssmred_torch.models import LRUModel as LRUModel  # noqa: E402
from ssmred_torch.models import MambaModel as MambaModel  # noqa: E402
from ssmred_torch.models import S4DModel as S4DModel  # noqa: E402
from ssmred_torch.models import S5Model as S5Model  # noqa: E402
from ssmred_torch.models import SSMBlock as SSMBlock  # noqa: E402
from ssmred_torch.models import SSMClassifier as SSMClassifier  # noqa: E402
from ssmred_torch.optim import TruncationMap as TruncationMap  # noqa: E402
from ssmred_torch.optim import update_optimizer_state as update_optimizer_state  # noqa: E402
from ssmred_torch.reduce import LayerPlan as LayerPlan  # noqa: E402
from ssmred_torch.reduce import ReductionPlan as ReductionPlan  # noqa: E402
from ssmred_torch.reduce import apply_reduction_ as apply_reduction_  # noqa: E402
from ssmred_torch.reduce import decide as decide  # noqa: E402
from ssmred_torch.reduce import plan_reduction as plan_reduction  # noqa: E402
from ssmred_torch.reduce import reduce_layers as reduce_layers  # noqa: E402
from ssmred_torch.reduce import reduce_model as reduce_model  # noqa: E402
from ssmred_torch.reduce import shared_decisions as shared_decisions  # noqa: E402
from ssmred_torch.regularize import hankel_nuclear_norm as hankel_nuclear_norm  # noqa: E402
from ssmred_torch.reports import LayerReport as LayerReport  # noqa: E402
from ssmred_torch.reports import ReductionReport as ReductionReport  # noqa: E402
from ssmred_torch.scan import diagonal_scan as diagonal_scan  # noqa: E402
from ssmred_torch.scan import diagonal_scan_sequential as diagonal_scan_sequential  # noqa: E402
from ssmred_torch.scan import diagonal_scan_varying as diagonal_scan_varying  # noqa: E402
from ssmred_torch.scan import diagonal_scan_varying_sequential as diagonal_scan_varying_sequential  # noqa: E402

__all__ = [
    "LRU",
    "AbstractAdapter",
    "AttemptRecord",
    "CalibrationError",
    "CalibrationStatistics",
    "CheckpointError",
    "CompreSSM",
    "DiagonalSystems",
    "DiagonalizationError",
    "Fraction",
    "HSVSpread",
    "LRUAdapter",
    "LRUBlock",
    "LRUModel",
    "LayerPlan",
    "LayerReport",
    "Mamba",
    "MambaAdapter",
    "MambaModel",
    "Pragmatic",
    "Rank",
    "ReducedSystems",
    "ReductionPlan",
    "ReductionRefused",
    "ReductionReport",
    "ReductionWarning",
    "S4D",
    "S4DAdapter",
    "S4DModel",
    "S5",
    "S5Adapter",
    "S5Model",
    "SSMBlock",
    "SSMClassifier",
    "SSMLayer",
    "Selection",
    "SelectionMode",
    "StateMap",
    "StepResult",
    "Tolerance",
    "TruncationMap",
    "adapter_for",
    "apply_reduction_",
    "calibrate_",
    "decide",
    "diagonal_scan",
    "diagonal_scan_sequential",
    "diagonal_scan_varying",
    "diagonal_scan_varying_sequential",
    "fraction",
    "from_statespace",
    "frozen_time_hsvs",
    "hankel_nuclear_norm",
    "kernels",
    "layer_matrices",
    "load",
    "nonfinite_entries",
    "modal_error_bound",
    "mode_energies",
    "plan_reduction",
    "pragmatic",
    "rank",
    "read_checkpoint",
    "recording",
    "reduce_layers",
    "reduce_model",
    "register_adapter",
    "registered_adapters",
    "replace_parameter_",
    "s4d_from_reference",
    "s5_from_reference",
    "save",
    "shared_decisions",
    "ssm_layers",
    "state_sizes",
    "surrogate_matrices",
    "to_statespace",
    "tolerance",
    "update_optimizer_state",
    "verify_archive",
]
