"""JAX adapter for ssmred: equinox LRU and S5 layers <-> StateSpace and in-training CompreSSM reduction.

* Layers: :class:`LRU`, an equinox module with the published equinox LRU's fields and forward
  (``nu_log, theta_log, B_re, B_im, C_re, C_im, D, gamma_log``; associative scan;
  ``Re(C x) + D * u``); :class:`S5`, in lindermanlab/S5's parameter layout
  (``Lambda_re, Lambda_im, B (P, H, 2), C (H, P, 2), D, log_step (P, 1)``).
* Conversion: :func:`to_statespace`, :func:`from_statespace` (the conventions of ``ssmred_torch``).
* Reduction: :func:`reduce_model` ``(model, mode) -> (new_model, report)`` — all layers analysed in one
  jitted call on the default device with 64-bit types enabled for the call, HSVs by the square-root
  method, orders on the host by :mod:`ssmred.selection`; :func:`plan_reduction` /
  :func:`apply_reduction` for the two halves; :func:`rebuild_opt_state` for optax states.
* Training: :class:`CompreSSM`, whose ``step(step, model, opt_state, optimizer)`` returns
  ``(model, opt_state, changed)``.
* Selection modes (re-exported from :mod:`ssmred.selection`): :func:`tolerance`, :func:`fraction`,
  :func:`rank`, :func:`pragmatic`.
"""

from ssmred._require import require

require("jax")
require("equinox")
require("optax")

from ssmred.selection import Fraction as Fraction  # noqa: E402
from ssmred.selection import Pragmatic as Pragmatic  # noqa: E402
from ssmred.selection import Rank as Rank  # noqa: E402
from ssmred.selection import Tolerance as Tolerance  # noqa: E402
from ssmred.selection import fraction as fraction  # noqa: E402
from ssmred.selection import pragmatic as pragmatic  # noqa: E402
from ssmred.selection import rank as rank  # noqa: E402
from ssmred.selection import tolerance as tolerance  # noqa: E402
from ssmred_jax import kernels as kernels  # noqa: E402
from ssmred_jax._adapter import AbstractAdapter as AbstractAdapter  # noqa: E402
from ssmred_jax._adapter import MomentLayout as MomentLayout  # noqa: E402
from ssmred_jax._adapter import SSMLayer as SSMLayer  # noqa: E402
from ssmred_jax._adapter import adapter_for as adapter_for  # noqa: E402
from ssmred_jax._adapter import register_adapter as register_adapter  # noqa: E402
from ssmred_jax._adapter import replace_layers as replace_layers  # noqa: E402
from ssmred_jax._adapter import ssm_layers as ssm_layers  # noqa: E402
from ssmred_jax.controller import AttemptRecord as AttemptRecord  # noqa: E402
from ssmred_jax.controller import CompreSSM as CompreSSM  # noqa: E402
from ssmred_jax.controller import StepOutput as StepOutput  # noqa: E402
from ssmred_jax.controller import resolve_schedule as resolve_schedule  # noqa: E402
from ssmred_jax.convert import from_statespace as from_statespace  # noqa: E402
from ssmred_jax.convert import to_statespace as to_statespace  # noqa: E402
from ssmred_jax.errors import DiagonalizationError as DiagonalizationError  # noqa: E402
from ssmred_jax.errors import ReductionWarning as ReductionWarning  # noqa: E402
from ssmred_jax.layers.lru import LRU as LRU  # noqa: E402
from ssmred_jax.layers.lru import LRU_FIELDS as LRU_FIELDS  # noqa: E402
from ssmred_jax.layers.lru_adapter import LRUAdapter as LRUAdapter  # noqa: E402
from ssmred_jax.layers.s5 import S5 as S5  # noqa: E402
from ssmred_jax.layers.s5 import S5_FIELDS as S5_FIELDS  # noqa: E402
from ssmred_jax.layers.s5_adapter import S5Adapter as S5Adapter  # noqa: E402
from ssmred_jax.optim import rebuild_opt_state as rebuild_opt_state  # noqa: E402
from ssmred_jax.reduce import apply_reduction as apply_reduction  # noqa: E402
from ssmred_jax.reduce import plan_reduction as plan_reduction  # noqa: E402
from ssmred_jax.reduce import reduce_model as reduce_model  # noqa: E402
from ssmred_jax.reports import LayerReport as LayerReport  # noqa: E402
from ssmred_jax.reports import ReductionPlan as ReductionPlan  # noqa: E402
from ssmred_jax.reports import ReductionReport as ReductionReport  # noqa: E402
from ssmred_jax.reports import TruncationMap as TruncationMap  # noqa: E402
from ssmred_jax.scan import diagonal_scan as diagonal_scan  # noqa: E402
from ssmred_jax.scan import diagonal_scan_sequential as diagonal_scan_sequential  # noqa: E402

__all__ = [
    "LRU",
    "LRU_FIELDS",
    "AbstractAdapter",
    "AttemptRecord",
    "CompreSSM",
    "DiagonalizationError",
    "Fraction",
    "LRUAdapter",
    "LayerReport",
    "MomentLayout",
    "Pragmatic",
    "Rank",
    "ReductionPlan",
    "ReductionReport",
    "ReductionWarning",
    "S5",
    "S5Adapter",
    "S5_FIELDS",
    "SSMLayer",
    "StepOutput",
    "Tolerance",
    "TruncationMap",
    "adapter_for",
    "apply_reduction",
    "diagonal_scan",
    "diagonal_scan_sequential",
    "fraction",
    "from_statespace",
    "kernels",
    "plan_reduction",
    "pragmatic",
    "rank",
    "rebuild_opt_state",
    "reduce_model",
    "register_adapter",
    "replace_layers",
    "resolve_schedule",
    "ssm_layers",
    "to_statespace",
    "tolerance",
]
