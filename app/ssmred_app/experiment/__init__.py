r"""``ssmred experiment``: CompreSSM against every baseline over a grid, with paired statistics.

The grid is **methods × compression levels × schedules × seeds** (× optimizer policies). A compression
level is a tolerance τ (``experiment.taus``: CompreSSM in tolerance mode; τ is the discarded share of
the plain HSV sum *per attempt*, so four attempts keep about :math:`(1-\tau)^4` of the original
:math:`\sum\sigma`) or a target order r per layer (``experiment.orders``: rank mode). For every seed:

* ``full`` — the full-size model (``model.d_state``), no reduction; the reference of every speedup;
* ``n=<b>`` — optional extra sizes from scratch (``experiment.baseline_states``);

and for every level (and schedule, policy) the CompreSSM run ``CompreSSM <level>`` plus the methods of
``experiment.methods``, each paired with that CompreSSM run of the same seed:

=====================  ==========================================================================
``scratch``            the CompreSSM run's final per-layer sizes, trained from scratch
``bt_init``            the same rule, applied as many times as the schedule has attempts, at step 0
``bt_init_matched``    balanced truncation at step 0 straight to the CompreSSM run's final sizes
``random``             random balanced states, same schedule, cut to the CompreSSM run's size at
                       every attempt (``method.cut_orders``)
``smallest``           the smallest-HSV balanced states, likewise (the published catastrophic ablation)
``compressm_real``     CompreSSM choosing its orders from the exact real-output HSVs
``distill``            the CompreSSM run's final sizes from scratch, distilled from the full run
                       (α = 0.5, T = 2)
``post_bt``            the full run cut once after training to the CompreSSM run's total size
                       (one global threshold on normalised HSVs; ``experiment.finetune_epochs``)
``last``               the full run pruned once by LAST scores to the same total size
``hnn``                a full-size run with λ·Σσ in the loss (``experiment.hnn_lambdas``), then the
                       post-training BT to the same total size
=====================  ==========================================================================

Runs live in ``<out>/runs/<variant>/seed<k>``: an interrupted experiment resumes, finished runs are
reused (:func:`train_cached` compares only the parts of the configuration the method reads: a full
run is reused whatever the ``compression`` section says). The post-training methods start from the
final model file of the run whose training they share (:mod:`ssmred_app.baselines`). ``<out>/index.json``
accumulates every run of every invocation: the report covers all of them, so a second call with other
levels or seeds adds to the report instead of replacing it (the invocations are listed). Every run's
load average before and after it is kept in ``timing.json`` next to it; CPU times measured while the
1-minute load average exceeded the number of CPUs are flagged.

The package re-exports everything from four modules: ``_spec`` (the ``experiment`` section,
:class:`ExperimentSpec`, :func:`parse_experiment`), ``_cache`` (:func:`cache_key`, :func:`train_cached`,
the timing next to every run and the folder's ``index.json``), ``_grid`` (:func:`run_variants`,
:func:`run_experiment`) and ``_report`` (:func:`aggregate`, :func:`comparisons`, :func:`cut_table`,
:func:`experiment_doc`, ``write_experiment_report``).

Examples
--------
>>> spec = parse_experiment({"experiment": {"taus": [0.05, 0.1]}})
>>> spec.taus, spec.from_scratch, spec.method_list
([0.05, 0.1], True, ['compressm', 'scratch'])
"""

from ssmred_app.experiment._aggregate import _best_k_mean as _best_k_mean
from ssmred_app.experiment._aggregate import _by_variant as _by_variant
from ssmred_app.experiment._aggregate import _std as _std
from ssmred_app.experiment._aggregate import aggregate as aggregate
from ssmred_app.experiment._aggregate import comparisons as comparisons
from ssmred_app.experiment._aggregate import cut_table as cut_table
from ssmred_app.experiment._cache import FAMILY_SECTIONS as FAMILY_SECTIONS
from ssmred_app.experiment._cache import _base_key as _base_key
from ssmred_app.experiment._cache import _difference as _difference
from ssmred_app.experiment._cache import _drop_other_families as _drop_other_families
from ssmred_app.experiment._cache import _indexed_runs as _indexed_runs
from ssmred_app.experiment._cache import _key_difference as _key_difference
from ssmred_app.experiment._cache import _loaded as _loaded
from ssmred_app.experiment._cache import _locked as _locked
from ssmred_app.experiment._cache import _mtime as _mtime
from ssmred_app.experiment._cache import _open_index as _open_index
from ssmred_app.experiment._cache import _read_index as _read_index
from ssmred_app.experiment._cache import _register as _register
from ssmred_app.experiment._cache import _Run as _Run
from ssmred_app.experiment._cache import _same_run as _same_run
from ssmred_app.experiment._cache import _timed as _timed
from ssmred_app.experiment._cache import _write_index as _write_index
from ssmred_app.experiment._cache import cache_key as cache_key
from ssmred_app.experiment._cache import train_cached as train_cached
from ssmred_app.experiment._grid import _cuts as _cuts
from ssmred_app.experiment._grid import _slug as _slug
from ssmred_app.experiment._grid import run_experiment as run_experiment
from ssmred_app.experiment._grid import run_variants as run_variants
from ssmred_app.experiment._report import COMPARISON_HEADERS as COMPARISON_HEADERS
from ssmred_app.experiment._report import CUT_HEADERS as CUT_HEADERS
from ssmred_app.experiment._report import EXPERIMENT_COLUMNS as EXPERIMENT_COLUMNS
from ssmred_app.experiment._report import _p as _p
from ssmred_app.experiment._report import _plots as _plots
from ssmred_app.experiment._report import comparison_rows as comparison_rows
from ssmred_app.experiment._report import cut_rows as cut_rows
from ssmred_app.experiment._report import experiment_doc as experiment_doc
from ssmred_app.experiment._report import write_experiment_report as write_experiment_report
from ssmred_app.experiment._spec import _LABEL as _LABEL
from ssmred_app.experiment._spec import EXPERIMENT_METHODS as EXPERIMENT_METHODS
from ssmred_app.experiment._spec import ExperimentMethod as ExperimentMethod
from ssmred_app.experiment._spec import ExperimentSpec as ExperimentSpec
from ssmred_app.experiment._spec import _ExperimentSection as _ExperimentSection
from ssmred_app.experiment._spec import _schedule_label as _schedule_label
from ssmred_app.experiment._spec import load_experiment as load_experiment
from ssmred_app.experiment._spec import parse_experiment as parse_experiment

__all__ = [
    "EXPERIMENT_COLUMNS",
    "EXPERIMENT_METHODS",
    "ExperimentSpec",
    "aggregate",
    "cache_key",
    "comparisons",
    "cut_table",
    "experiment_doc",
    "load_experiment",
    "parse_experiment",
    "run_experiment",
    "run_variants",
    "train_cached",
]
