"""ssmred: balanced truncation and Hankel analysis for (deep) state-space models.

The core imports numpy and scipy only. Framework adapters live in separate packages
(``ssmred_torch``).
"""

from importlib.metadata import PackageNotFoundError, version

from ssmred import errors as errors
from ssmred._threads import blas_threads as blas_threads
from ssmred.balanced import BalancedTruncation as BalancedTruncation
from ssmred.balanced import BTResult as BTResult
from ssmred.balanced import SPAResult as SPAResult
from ssmred.balanced import balanced_truncation as balanced_truncation
from ssmred.balanced import minimal_realization as minimal_realization
from ssmred.balanced import singular_perturbation as singular_perturbation
from ssmred.bounds import bt_error_bounds as bt_error_bounds
from ssmred.bounds import order_from_energy as order_from_energy
from ssmred.construct import from_diagonal as from_diagonal
from ssmred.construct import random_stable as random_stable
from ssmred.discretize import discretize as discretize
from ssmred.errors import AccuracyWarning as AccuracyWarning
from ssmred.errors import BackendUnavailableError as BackendUnavailableError
from ssmred.errors import DiagonalizationError as DiagonalizationError
from ssmred.errors import DimensionError as DimensionError
from ssmred.errors import NotStableError as NotStableError
from ssmred.gramians import GramianFactors as GramianFactors
from ssmred.gramians import controllability_gramian as controllability_gramian
from ssmred.gramians import diagonal_gramians as diagonal_gramians
from ssmred.gramians import gramian_factors as gramian_factors
from ssmred.gramians import observability_gramian as observability_gramian
from ssmred.hsv import hankel_singular_values as hankel_singular_values
from ssmred.hsv import hsv_diagonal as hsv_diagonal
from ssmred.norms import PeakGain as PeakGain
from ssmred.norms import h2_norm as h2_norm
from ssmred.norms import hankel_norm as hankel_norm
from ssmred.norms import hinf_norm as hinf_norm
from ssmred.norms import peak_gain as peak_gain
from ssmred.perturbation import HSVPerturbation as HSVPerturbation
from ssmred.perturbation import hankel_distance as hankel_distance
from ssmred.perturbation import hankel_matrix as hankel_matrix
from ssmred.perturbation import hsv_perturbation as hsv_perturbation
from ssmred.statespace import StateSpace as StateSpace
from ssmred.tracking import HSVTrajectories as HSVTrajectories
from ssmred.tracking import RankStability as RankStability
from ssmred.tracking import rank_stability as rank_stability
from ssmred.tracking import tail_energy as tail_energy
from ssmred.tracking import track_hsvs as track_hsvs
from ssmred.transforms import conj_augment as conj_augment
from ssmred.transforms import half_states_from_real as half_states_from_real
from ssmred.transforms import spectral_split as spectral_split

try:
    __version__ = version("ssmred")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = [
    "blas_threads",
    "spectral_split",
    "conj_augment",
    "half_states_from_real",
    "discretize",
    "minimal_realization",
    "AccuracyWarning",
    "BTResult",
    "BackendUnavailableError",
    "BalancedTruncation",
    "DiagonalizationError",
    "DimensionError",
    "GramianFactors",
    "HSVPerturbation",
    "HSVTrajectories",
    "NotStableError",
    "PeakGain",
    "RankStability",
    "SPAResult",
    "StateSpace",
    "__version__",
    "balanced_truncation",
    "bt_error_bounds",
    "controllability_gramian",
    "diagonal_gramians",
    "errors",
    "from_diagonal",
    "gramian_factors",
    "h2_norm",
    "hankel_distance",
    "hankel_matrix",
    "hankel_norm",
    "hankel_singular_values",
    "hinf_norm",
    "hsv_diagonal",
    "hsv_perturbation",
    "observability_gramian",
    "order_from_energy",
    "peak_gain",
    "random_stable",
    "rank_stability",
    "singular_perturbation",
    "tail_energy",
    "track_hsvs",
]
