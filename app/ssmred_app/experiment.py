r"""The published CompreSSM protocol at small scale: ``ssmred experiment`` and ``ssmred demo``.

For every seed an experiment trains

* ``full`` -- the full-size model (``model.d_state``) without reduction;
* ``n=<b>`` -- optional extra baselines trained from scratch at smaller sizes
  (``experiment.baseline_states``);
* ``CompreSSM τ=<t>`` -- tolerance-mode CompreSSM for each ``t`` in ``experiment.taus``;
* ``scratch τ=<t>`` -- a model with the per-layer sizes that the CompreSSM run ended with, trained from
  scratch (``experiment.from_scratch``).

and aggregates over seeds: mean ± standard deviation (``ddof = 1``) and the published "mean of the
best 3" (by test accuracy; with fewer than 3 seeds it is the mean over all of them). Each run
lives in ``<out>/runs/<variant>/seed<k>`` with its own checkpoints: an interrupted experiment resumes
where it stopped, and finished runs are not repeated.

Examples
--------
>>> spec = parse_experiment({"experiment": {"taus": [0.05, 0.1]}})
>>> spec.taus, spec.from_scratch
([0.05, 0.1], True)
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np

from ssmred_app.config import (
    ConfigError,
    RunConfig,
    apply_overrides,
    config_to_dict,
    read_yaml,
    same_config,
    with_sections,
)
from ssmred_app.data import SequenceData
from ssmred_app.families import config_state_sizes
from ssmred_app.report import Doc, write_json, write_report
from ssmred_app.schema import Section, validate_mapping, value_rule
from ssmred_app.trainer import RunResult, environment, train_run

__all__ = [
    "EXPERIMENT_COLUMNS",
    "ExperimentSpec",
    "aggregate",
    "experiment_doc",
    "load_experiment",
    "parse_experiment",
    "run_experiment",
    "run_variants",
    "train_cached",
]


@dataclass(frozen=True)
class ExperimentSpec:
    """The ``experiment`` section of an experiment file plus the base run configuration.

    Attributes
    ----------
    base
        Configuration shared by all runs (its ``compression`` section supplies gate, schedule and
        optimizer policy of the CompreSSM runs).
    taus
        Tolerances of the CompreSSM runs.
    baseline_states
        Extra state sizes trained from scratch without reduction.
    from_scratch
        Also train the CompreSSM runs' final sizes from scratch.
    seeds
        Seeds (overridden by ``--seeds``).
    optimizer_policies
        Adam-moment policies of the CompreSSM runs (default: the base config's); runs with a policy
        other than the base config's are labelled with it, e.g. ``CompreSSM τ=0.1 (reset)``.
    """

    base: RunConfig
    taus: list[float] = field(default_factory=lambda: [0.05, 0.1])
    baseline_states: list[int] = field(default_factory=list)
    from_scratch: bool = True
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    optimizer_policies: list[str] = field(default_factory=list)


class _ExperimentSection(Section):
    taus: Annotated[
        list[float],
        value_rule(
            lambda v: v and all(0 < t < 1 for t in v), "expected a non-empty list of numbers in (0, 1), got {v!r}"
        ),
    ] = [0.05, 0.1]
    baseline_states: Annotated[
        list[int], value_rule(lambda v: all(s >= 1 for s in v), "expected a list of positive ints, got {v!r}")
    ] = []
    from_scratch: bool = True
    seeds: Annotated[list[int], value_rule(bool, "expected a non-empty list of ints, got {v!r}")] = [0, 1, 2]
    optimizer_policies: list[Literal["project", "slice", "reset"]] = []


def parse_experiment(raw: Mapping[str, Any], overrides: Sequence[str] = ()) -> ExperimentSpec:
    """Validate an experiment mapping (run config + ``experiment`` section).

    Parameters
    ----------
    raw
        Parsed YAML.
    overrides
        ``dotted.key=value`` overrides of the run configuration.

    Returns
    -------
    ExperimentSpec
        The validated experiment.

    Raises
    ------
    ConfigError
        Listing every problem of both the ``experiment`` section and the run configuration.
    """
    raw = dict(raw)
    exp, problems = validate_mapping(_ExperimentSection, raw.pop("experiment", None), where="experiment")
    base, base_problems = validate_mapping(RunConfig, apply_overrides(raw, overrides))
    if exp is None or base is None:
        raise ConfigError(*problems, *base_problems)
    return ExperimentSpec(
        base, list(exp.taus), list(exp.baseline_states), exp.from_scratch, list(exp.seeds), list(exp.optimizer_policies)
    )


def load_experiment(path: str | os.PathLike[str], overrides: Sequence[str] = ()) -> ExperimentSpec:
    """Read and validate an experiment YAML file."""
    return parse_experiment(read_yaml(path), overrides)


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9.=_-]+", "_", label.replace("τ", "tau"))


@dataclass
class _Run:
    variant: str
    group: str
    seed: int
    result: RunResult


def train_cached(
    cfg: RunConfig,
    out: str | os.PathLike[str],
    *,
    data: SequenceData | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> RunResult:
    """Like :func:`train_run`, but reuse ``out/result.json`` when a finished run of ``cfg`` left it there.

    Parameters
    ----------
    cfg
        The validated configuration.
    out
        Run folder.
    data
        Pre-loaded data set (default: load ``cfg.data``).
    progress
        Show a progress bar.
    log
        Message sink.

    Returns
    -------
    RunResult
        The stored or new measurements.
    """
    done = Path(out) / "result.json"
    if done.is_file():
        d = json.loads(done.read_text())
        if same_config(d.get("config"), cfg):
            d.pop("mean_final_dim", None)
            log(f"[{cfg.name}] already finished: {done}")
            return RunResult(**d)
    return train_run(cfg, out, data=data, progress=progress, log=log)


def run_variants(
    spec: ExperimentSpec,
    out: str | os.PathLike[str],
    *,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> list[_Run]:
    """Train every variant for every seed (skipping finished runs)."""
    runs: list[_Run] = []
    base = spec.base
    root = Path(out) / "runs"
    for seed in spec.seeds:

        def go(variant: str, group: str, cfg: RunConfig, seed: int = seed) -> RunResult:
            cfg = with_sections(cfg, seed=seed, name=f"{variant} seed {seed}")
            res = train_cached(cfg, root / _slug(variant) / f"seed{seed}", progress=progress, log=log)
            runs.append(_Run(variant, group, seed, res))
            log(
                f"[{variant} seed {seed}] test acc {100 * res.test_acc:.1f} %, dims {res.final_dims}, "
                f"train CPU time {res.train_cpu_s:.1f} s (wall {res.train_time_s:.1f} s)"
            )
            return res

        go("full", "full size", with_sections(base, compression={"mode": "none"}))
        for b in spec.baseline_states:
            go(f"n={b}", "from scratch", with_sections(base, model={"d_state": b}, compression={"mode": "none"}))
        default_policy = base.compression.optimizer_policy
        for policy in spec.optimizer_policies or [default_policy]:
            suffix = "" if policy == default_policy else f" ({policy})"
            for tau in spec.taus:
                res = go(
                    f"CompreSSM τ={tau:g}{suffix}",
                    "CompreSSM" + suffix,
                    with_sections(base, compression={"mode": "tolerance", "tau": tau, "optimizer_policy": policy}),
                )
                if spec.from_scratch:
                    go(
                        f"scratch τ={tau:g}{suffix}",
                        "from scratch",
                        with_sections(
                            base,
                            model={"d_state": config_state_sizes(base.model, res.final_dims)},
                            compression={"mode": "none"},
                        ),
                    )
    return runs


def _best_k_mean(values: Sequence[float], k: int = 3) -> float:
    return float(np.mean(sorted(values, reverse=True)[:k]))


def _std(values: Sequence[float]) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def aggregate(runs: Sequence[_Run]) -> list[dict[str, Any]]:
    """Aggregate per variant over seeds; numbers rounded as they appear in reports.

    Returns
    -------
    list of dict
        One row per variant (in first-seen order) with accuracy mean/std/best-3 (in %), final dims,
        train time and speedup against ``full``.
    """
    order: list[str] = []
    by: dict[str, list[_Run]] = {}
    for r in runs:
        if r.variant not in by:
            order.append(r.variant)
        by.setdefault(r.variant, []).append(r)
    full_cpu = float(np.mean([r.result.train_cpu_s for r in by["full"]])) if "full" in by else float("nan")
    rows = []
    for v in order:
        rs = by[v]
        acc = [100 * r.result.test_acc for r in rs]
        dims = [r.result.mean_final_dim for r in rs]
        t = [r.result.train_time_s for r in rs]
        c = [r.result.train_cpu_s for r in rs]
        rows.append(
            {
                "variant": v,
                "group": rs[0].group,
                "seeds": len(rs),
                "test_acc_mean": round(float(np.mean(acc)), 2),
                "test_acc_std": round(_std(acc), 2),
                "test_acc_best3": round(_best_k_mean(acc), 2),
                "final_dim_mean": round(float(np.mean(dims)), 1),
                "final_dim_std": round(_std(dims), 1),
                "final_dims": [list(r.result.final_dims) for r in rs],
                "train_time_mean_s": round(float(np.mean(t)), 1),
                "train_time_std_s": round(_std(t), 1),
                "train_cpu_mean_s": round(float(np.mean(c)), 1),
                "train_cpu_std_s": round(_std(c), 1),
                "speedup_vs_full": round(full_cpu / float(np.mean(c)), 2),
            }
        )
    return rows


EXPERIMENT_COLUMNS = [
    ("variant", "run"),
    ("seeds", "seeds"),
    ("test_acc_mean", "test acc mean (%)"),
    ("test_acc_std", "± std"),
    ("test_acc_best3", "best-3 mean (%)"),
    ("final_dim_mean", "mean final n"),
    ("final_dim_std", "± std"),
    ("train_cpu_mean_s", "train CPU time (s)"),
    ("train_time_mean_s", "train wall time (s)"),
    ("speedup_vs_full", "speedup vs full (CPU time)"),
]


def experiment_doc(metrics: Mapping[str, Any], *, title: str) -> Doc:
    """The experiment report (built from ``metrics`` only)."""
    doc = Doc(title)
    base = metrics["config"]
    m, o = base["model"], base["optim"]
    doc.p(
        f"Data: {metrics['data']}. Model: LRU classifier, {m['n_layers']} blocks, width H = {m['d_model']}, "
        f"initial state size n₀ = {m['d_state']}; AdamW lr {o['lr']}, SSM lr × {o['ssm_lr_factor']}, "
        f"{o['epochs']} epochs, batch {o['batch_size']}, warm-up {100 * o['warmup_fraction']:.0f} % then cosine. "
        f"Seeds: {', '.join(str(s) for s in metrics['seeds'])}. Device: {metrics['device']}."
    )
    doc.h("Results")
    doc.table([h for _, h in EXPERIMENT_COLUMNS], [[row[k] for k, _ in EXPERIMENT_COLUMNS] for row in metrics["table"]])
    doc.p(
        "τ is the discarded fraction of the plain sum of Hankel singular values (SPEC §6); reductions at 2.5, 5, "
        '7.5 and 10 % of training unless the configuration says otherwise. "scratch τ=t" trains the per-layer '
        "sizes that the CompreSSM τ=t run of the same seed ended with. Training time counts optimizer steps and "
        "reductions, not evaluation; torch runs one thread, so CPU time measures the work even when other "
        "processes share the machine (wall time is listed too); speedup = mean full-model CPU time / mean CPU "
        "time. best-3 = mean of the 3 best "
        "seeds by test accuracy (the published protocol uses 3 of 5)."
    )
    doc.h("Plots")
    for name, alt in (
        ("acc_vs_dim.png", "accuracy vs final state dimension"),
        ("acc_vs_time.png", "accuracy vs training time"),
        ("state_sizes.png", "state size over training (first seed; full and CompreSSM runs)"),
        ("hsv_spectra.png", "HSV spectra at each reduction attempt (first seed, first τ)"),
    ):
        if name in metrics.get("plots", []):
            doc.image(f"plots/{name}", alt)
    doc.h("Per-run numbers")
    doc.table(
        ["run", "seed", "test acc (%)", "final dims", "train CPU time (s)", "train wall time (s)"],
        [
            [
                r["variant"],
                r["seed"],
                round(100 * r["test_acc"], 2),
                " ".join(map(str, r["final_dims"])),
                round(r["train_cpu_s"], 1),
                round(r["train_time_s"], 1),
            ]
            for r in metrics["runs"]
        ],
    )
    return doc


def _plots(runs: Sequence[_Run], table: Sequence[Mapping[str, Any]], out: Path) -> list[str]:
    from ssmred_app import plots as rp

    plots = out / "plots"
    made = []
    pts = []
    for row in table:
        pts.append(
            {
                "label": row["variant"],
                "group": row["group"],
                "dim": row["final_dim_mean"],
                "acc": row["test_acc_mean"] / 100,
                "acc_std": row["test_acc_std"] / 100,
                "time": row["train_cpu_mean_s"],
                "time_std": row["train_cpu_std_s"],
                "note": row["variant"].replace("CompreSSM ", "").replace("scratch ", ""),
            }
        )
    rp.plot_acc_vs_dim(pts, plots / "acc_vs_dim.png")
    rp.plot_acc_vs_time(pts, plots / "acc_vs_time.png")
    made += ["acc_vs_dim.png", "acc_vs_time.png"]
    seed0 = runs[0].seed
    first = {r.variant: r.result.to_dict() for r in runs if r.seed == seed0 and r.group != "from scratch"}
    rp.plot_state_sizes(first, plots / "state_sizes.png")
    made.append("state_sizes.png")
    comp = [r for r in runs if r.seed == seed0 and r.group == "CompreSSM"]
    if comp and comp[0].result.reductions:
        rp.plot_hsv_spectra(comp[0].result.reductions, plots / "hsv_spectra.png", title=comp[0].variant)
        made.append("hsv_spectra.png")
    return made


def run_experiment(
    spec: ExperimentSpec,
    out: str | os.PathLike[str],
    *,
    progress: bool = True,
    log: Callable[[str], None] = print,
    title: str | None = None,
) -> dict[str, Any]:
    """Run all variants and seeds, write ``metrics.json``, ``report.md``/``.html`` and plots.

    Parameters
    ----------
    spec
        The experiment.
    out
        Output folder.
    progress
        Show progress bars.
    log
        Message sink.
    title
        Report title.

    Returns
    -------
    dict
        The metrics written to ``metrics.json``.
    """
    from ssmred_app.data import load_dataset

    out = Path(out)
    t0 = time.perf_counter()
    data = load_dataset(spec.base.data)
    runs = run_variants(spec, out, progress=progress, log=log)
    table = aggregate(runs)
    metrics: dict[str, Any] = {
        "kind": "experiment",
        "data": data.describe(),
        "config": config_to_dict(spec.base),
        "taus": spec.taus,
        "seeds": spec.seeds,
        "device": runs[0].result.device if runs else "cpu",
        "table": table,
        "runs": [
            {"variant": r.variant, "group": r.group, "seed": r.seed, **r.result.to_dict(), "config": None} for r in runs
        ],
        "environment": environment(),
        "elapsed_s": time.perf_counter() - t0,
    }
    metrics["plots"] = _plots(runs, table, out)
    write_json(metrics, out / "metrics.json")
    write_report(experiment_doc(metrics, title=title or f"ssmred experiment: {spec.base.name}"), out)
    return metrics
