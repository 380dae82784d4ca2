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

import dataclasses
import json
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ssmred_app.report import Doc, fmt, write_json, write_report
from ssmred_app.trainer import (
    ConfigError,
    RunConfig,
    RunResult,
    apply_overrides,
    config_to_dict,
    environment,
    parse_config,
    read_yaml,
    train_run,
)

__all__ = ["ExperimentSpec", "aggregate", "parse_experiment", "run_experiment"]


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


_EXP_KEYS = ("taus", "baseline_states", "from_scratch", "seeds", "optimizer_policies")
_POLICIES = ("project", "slice", "reset")


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
        Listing every problem.
    """
    raw = dict(raw)
    exp = raw.pop("experiment", None) or {}
    problems: list[str] = []
    if not isinstance(exp, Mapping):
        raise ConfigError("invalid configuration:\n  - experiment: expected a mapping")
    for k in exp:
        if k not in _EXP_KEYS:
            problems.append(f"experiment.{k}: unknown key (valid keys: {', '.join(_EXP_KEYS)})")
    taus = exp.get("taus", [0.05, 0.1])
    if not isinstance(taus, list) or not taus or not all(isinstance(t, (int, float)) and 0 < t < 1 for t in taus):
        problems.append(f"experiment.taus: expected a non-empty list of numbers in (0, 1), got {taus!r}")
    states = exp.get("baseline_states", [])
    if not isinstance(states, list) or not all(isinstance(s, int) and s >= 1 for s in states):
        problems.append(f"experiment.baseline_states: expected a list of positive ints, got {states!r}")
    scratch = exp.get("from_scratch", True)
    if not isinstance(scratch, bool):
        problems.append(f"experiment.from_scratch: expected true or false, got {scratch!r}")
    seeds = exp.get("seeds", [0, 1, 2])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        problems.append(f"experiment.seeds: expected a non-empty list of ints, got {seeds!r}")
    policies = exp.get("optimizer_policies", [])
    if not isinstance(policies, list) or not all(p in _POLICIES for p in policies):
        problems.append(f"experiment.optimizer_policies: expected a list of {', '.join(_POLICIES)}, got {policies!r}")
    try:
        base = parse_config(apply_overrides(raw, overrides))
    except ConfigError as exc:
        problems += [line[4:] for line in str(exc).splitlines()[1:]]
        base = RunConfig()
    if problems:
        raise ConfigError("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))
    return ExperimentSpec(base, [float(t) for t in taus], list(states), scratch, list(seeds), list(policies))


def load_experiment(path: str | os.PathLike[str], overrides: Sequence[str] = ()) -> ExperimentSpec:
    """Read and validate an experiment YAML file."""
    return parse_experiment(read_yaml(path), overrides)


def _with(cfg: RunConfig, **sections: Mapping[str, Any]) -> RunConfig:
    changes: dict[str, Any] = {}
    for key, val in sections.items():
        if isinstance(val, Mapping):
            changes[key] = dataclasses.replace(getattr(cfg, key), **val)
        else:
            changes[key] = val
    return dataclasses.replace(cfg, **changes)


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9.=_-]+", "_", label.replace("τ", "tau"))


@dataclass
class _Run:
    variant: str
    group: str
    seed: int
    result: RunResult


def _same_config(stored: Any, cfg: RunConfig) -> bool:
    """Whether a stored config (possibly written before new keys with defaults existed) equals ``cfg``."""
    try:
        return parse_config(stored) == cfg
    except ConfigError:
        return False


def _train_cached(cfg: RunConfig, out: Path, *, progress: bool, log: Callable[[str], None]) -> RunResult:
    done = out / "result.json"
    if done.is_file():
        d = json.loads(done.read_text())
        if _same_config(d.get("config"), cfg):
            d.pop("mean_final_dim", None)
            log(f"[{cfg.name}] already finished: {done}")
            return RunResult(**d)
    return train_run(cfg, out, progress=progress, log=log)


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
            cfg = dataclasses.replace(cfg, seed=seed, name=f"{variant} seed {seed}")
            res = _train_cached(cfg, root / _slug(variant) / f"seed{seed}", progress=progress, log=log)
            runs.append(_Run(variant, group, seed, res))
            log(
                f"[{variant} seed {seed}] test acc {100 * res.test_acc:.1f} %, dims {res.final_dims}, "
                f"train CPU time {res.train_cpu_s:.1f} s (wall {res.train_time_s:.1f} s)"
            )
            return res

        go("full", "full size", _with(base, compression={"mode": "none"}))
        for b in spec.baseline_states:
            go(f"n={b}", "from scratch", _with(base, model={"d_state": b}, compression={"mode": "none"}))
        default_policy = base.compression.optimizer_policy
        for policy in spec.optimizer_policies or [default_policy]:
            suffix = "" if policy == default_policy else f" ({policy})"
            for tau in spec.taus:
                res = go(
                    f"CompreSSM τ={tau:g}{suffix}",
                    "CompreSSM" + suffix,
                    _with(base, compression={"mode": "tolerance", "tau": tau, "optimizer_policy": policy}),
                )
                if spec.from_scratch:
                    go(
                        f"scratch τ={tau:g}{suffix}",
                        "from scratch",
                        _with(base, model={"d_state": list(res.final_dims)}, compression={"mode": "none"}),
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


_COLUMNS = [
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
    doc.table([h for _, h in _COLUMNS], [[row[k] for k, _ in _COLUMNS] for row in metrics["table"]])
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
        rs = [r for r in runs if r.variant == row["variant"]]
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
        del rs
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


# --------------------------------------------------------------------------------------------------
# the demo: full model, CompreSSM, the same final sizes from scratch
# --------------------------------------------------------------------------------------------------

DEMO_TAU = 0.1


def demo_config(*, quick: bool = False, tau: float = DEMO_TAU, seed: int = 0, device: str = "auto") -> RunConfig:
    """The embedded demo configuration (digits as 64-step pixel sequences, SPEC §9 sizes).

    Parameters
    ----------
    quick
        The ≤ 1 minute smoke version (n₀ = 32, 4 epochs).
    tau
        Tolerance of the CompreSSM run.
    seed
        Seed.
    device
        Device.

    Returns
    -------
    RunConfig
        The full-size run's configuration (compression mode ``none``).
    """
    return parse_config(
        {
            "name": "demo",
            "seed": seed,
            "device": device,
            "data": {"name": "digits"},
            "model": {"d_model": 16, "d_state": 32 if quick else 64, "n_layers": 2},
            "optim": {"epochs": 4 if quick else 30, "batch_size": 64, "lr": 1e-2, "ssm_lr_factor": 0.5},
            "compression": {"mode": "none", "tau": tau},
        }
    )


_DEMO_COLUMNS = [
    ("run", "run"),
    ("test_acc_pct", "test acc (%)"),
    ("val_acc_pct", "val acc (%)"),
    ("mean_final_dim", "mean final n"),
    ("final_dims", "final n per layer"),
    ("train_cpu_s", "train CPU time (s)"),
    ("train_time_s", "train wall time (s)"),
    ("speedup_vs_full", "speedup vs full (CPU time)"),
]


def demo_table(results: Mapping[str, RunResult]) -> list[dict[str, Any]]:
    """Summary rows (rounded as printed) for the demo runs; the first run is the reference."""
    full = next(iter(results.values())).train_cpu_s
    rows = []
    for label, res in results.items():
        rows.append(
            {
                "run": label,
                "test_acc_pct": round(100 * res.test_acc, 2),
                "val_acc_pct": round(100 * res.val_acc, 2),
                "mean_final_dim": round(res.mean_final_dim, 1),
                "final_dims": " ".join(str(n) for n in res.final_dims),
                "train_cpu_s": round(res.train_cpu_s, 1),
                "train_time_s": round(res.train_time_s, 1),
                "speedup_vs_full": round(full / res.train_cpu_s, 2) if res.train_cpu_s > 0 else float("nan"),
            }
        )
    return rows


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """Plain-text table for the terminal."""
    cells = [[h for _, h in columns]] + [[fmt(r[k]) for k, _ in columns] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(columns))]
    lines = [
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def reduction_rows(reductions: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    """Rows of the per-attempt reduction table."""
    rows = []
    for rec in reductions:
        bounds = [lay.get("bound") for lay in rec.get("layers", [])]
        rows.append(
            [
                rec["step"],
                round(100 * rec["fraction"], 1),
                " ".join(map(str, rec["dims_before"])),
                " ".join(map(str, rec["dims_after"])),
                None if rec.get("val_acc_before") is None else round(100 * rec["val_acc_before"], 2),
                None if rec.get("val_acc_after") is None else round(100 * rec["val_acc_after"], 2),
                " ".join("n/a" if b is None else f"{b:.3g}" for b in bounds),
                round(1000 * rec["time_s"], 1),
            ]
        )
    return rows


def demo_summary(metrics: Mapping[str, Any]) -> str:
    """One sentence comparing the three demo runs (numbers from ``metrics['table']``)."""
    full, comp, scratch = metrics["table"]
    diff = comp["test_acc_pct"] - scratch["test_acc_pct"]
    verdict = "above" if diff > 0 else ("equal to" if diff == 0 else "below")
    return (
        f"**Summary:** CompreSSM shrank the layers from n = {full['mean_final_dim']:g} to a mean of "
        f"{comp['mean_final_dim']:g} states and reached {fmt(comp['test_acc_pct'])} % test accuracy, "
        f"{verdict} the same sizes trained from scratch ({fmt(scratch['test_acc_pct'])} %); the full model reached "
        f"{fmt(full['test_acc_pct'])} %. Training CPU time: full {fmt(full['train_cpu_s'])} s, CompreSSM "
        f"{fmt(comp['train_cpu_s'])} s (speedup {fmt(comp['speedup_vs_full'])}×), scratch "
        f"{fmt(scratch['train_cpu_s'])} s."
    )


def demo_doc(metrics: Mapping[str, Any]) -> Doc:
    """The demo report, built from ``metrics`` only."""
    cfg = metrics["config"]
    m, o = cfg["model"], cfg["optim"]
    doc = Doc("ssmred demo: CompreSSM on digits")
    doc.p(
        f"Data: {metrics['data']}. Model: LRU classifier, {m['n_layers']} blocks, width H = {m['d_model']}, "
        f"initial state size n₀ = {m['d_state']} per layer; AdamW lr {o['lr']} (SSM parameters × "
        f"{o['ssm_lr_factor']}, no weight decay), {o['epochs']} epochs, batch {o['batch_size']}, warm-up "
        f"{100 * o['warmup_fraction']:.0f} % then cosine. Device: {metrics['device']}, "
        f"{metrics['environment']['torch_threads']} torch thread(s)."
    )
    doc.p(
        f"Three runs: **full** (n₀ states throughout), **CompreSSM τ={metrics['tau']:g}** (balanced truncation of "
        "every LRU layer at 2.5, 5, 7.5 and 10 % of training, keeping the smallest order whose Hankel singular "
        f"values hold ≥ {100 * (1 - metrics['tau']):g} % of their sum; gate r < 0.95 n), and **scratch** (the "
        "CompreSSM run's final per-layer sizes, trained from scratch with the same recipe)."
    )
    doc.h("Results")
    doc.table([h for _, h in _DEMO_COLUMNS], [[r[k] for k, _ in _DEMO_COLUMNS] for r in metrics["table"]])
    doc.p(demo_summary(metrics))
    doc.p(
        "Training time counts optimizer steps and reductions (evaluation excluded). torch runs one thread, so CPU "
        "time measures the work even on a shared machine; speedup = full CPU time / CPU time. "
        "Accuracies are on the held-out test split; one seed — see docs/results.md for several seeds."
    )
    comp = metrics["runs"]["compressm"]
    doc.h("Reductions (CompreSSM run)")
    doc.table(
        [
            "step",
            "% of training",
            "n before",
            "n after",
            "val acc before (%)",
            "val acc after (%)",
            "bound 2Σσ_tail per layer",
            "time (ms)",
        ],
        reduction_rows(comp["reductions"]),
    )
    doc.p(
        f"Reduction time in total: {comp['reduction_time_s']:.3f} s = "
        f"{100 * comp['reduction_time_s'] / max(comp['train_time_s'], 1e-9):.2f} % of the run's training time."
    )
    doc.h("Plots")
    for name, alt in (
        ("hsv_spectra.png", "HSV spectra at each reduction attempt, per layer"),
        ("state_sizes.png", "state size over training"),
        ("acc_vs_dim.png", "accuracy vs mean final state dimension"),
        ("acc_vs_time.png", "accuracy vs training time"),
    ):
        doc.image(f"plots/{name}", alt)
    doc.h("Files")
    doc.bullets(
        [
            "`metrics.json` — every number above, per-epoch logs and per-reduction HSVs",
            "`runs/<run>/checkpoints/last.pt` — resumable checkpoints; `epoch_NNN.pt` model weights "
            "(usable with `ssmred analyze` and `ssmred reduce`)",
        ]
    )
    return doc


def run_demo(
    out: str | os.PathLike[str],
    *,
    quick: bool = False,
    tau: float = DEMO_TAU,
    seed: int = 0,
    device: str = "auto",
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train full / CompreSSM / scratch on digits and write the demo run folder.

    Parameters
    ----------
    out
        Run folder.
    quick
        Smoke-test size (≤ 1 minute).
    tau
        CompreSSM tolerance.
    seed
        Seed.
    device
        Device.
    progress
        Progress bars.
    log
        Message sink.

    Returns
    -------
    dict
        The metrics written to ``metrics.json``.
    """
    from ssmred_app import plots as rp
    from ssmred_app.data import load_dataset

    out = Path(out)
    t0 = time.perf_counter()
    base = demo_config(quick=quick, tau=tau, seed=seed, device=device)
    data = load_dataset(base.data)
    log(f"data: {data.describe()}")
    results: dict[str, RunResult] = {}
    cfgs = {
        "full": dataclasses.replace(base, name="full"),
        "compressm": _with(base, name="compressm", compression={"mode": "tolerance", "tau": tau}),
    }
    for key, cfg in cfgs.items():
        results[key] = _train_cached(cfg, out / "runs" / key, progress=progress, log=log)
    scratch = _with(base, name="scratch", model={"d_state": list(results["compressm"].final_dims)})
    results["scratch"] = _train_cached(scratch, out / "runs" / "scratch", progress=progress, log=log)
    labels = {"full": f"full (n={base.model.d_state})", "compressm": f"CompreSSM τ={tau:g}", "scratch": "scratch"}
    table = demo_table({labels[k]: v for k, v in results.items()})
    metrics: dict[str, Any] = {
        "kind": "demo",
        "quick": quick,
        "tau": tau,
        "data": data.describe(),
        "config": config_to_dict(base),
        "device": results["full"].device,
        "table": table,
        "runs": {k: v.to_dict() for k, v in results.items()},
        "environment": environment(),
    }
    plots = out / "plots"
    rp.plot_hsv_spectra(results["compressm"].reductions, plots / "hsv_spectra.png", title=labels["compressm"])
    rp.plot_state_sizes({labels[k]: v.to_dict() for k, v in results.items()}, plots / "state_sizes.png")
    pts = [
        {
            "label": r["run"],
            "group": r["run"],
            "dim": r["mean_final_dim"],
            "acc": r["test_acc_pct"] / 100,
            "time": r["train_cpu_s"],
        }
        for r in table
    ]
    rp.plot_acc_vs_dim(pts, plots / "acc_vs_dim.png")
    rp.plot_acc_vs_time(pts, plots / "acc_vs_time.png")
    metrics["elapsed_s"] = time.perf_counter() - t0
    write_json(metrics, out / "metrics.json")
    write_report(demo_doc(metrics), out)
    return metrics


# --------------------------------------------------------------------------------------------------
# HSV rank stability (SPEC §5)
# --------------------------------------------------------------------------------------------------


def hsv_rank_stability(early: str | os.PathLike[str], late: str | os.PathLike[str]) -> list[dict[str, Any]]:
    r"""Kendall τ between the HSV order of every LRU layer at two checkpoints of one (unreduced) run.

    Balanced modes are identified across the two checkpoints by linear assignment: mode ``i`` is the
    direction :math:`x_i = L_c v_i` in the layer's own state coordinates (the same parameters at both
    times when nothing was reduced), and modes are matched to maximise :math:`\sum |\cos(x_i, x'_{\pi(i)})|`.
    The Kendall τ (``scipy.stats.kendalltau``) compares the early σ of each mode with the late σ of its
    match: 1 means the HSV order did not change.

    Parameters
    ----------
    early, late
        Checkpoints (e.g. ``epoch_003.pt`` at 10 % of a 30-epoch run, and the last one).

    Returns
    -------
    list of dict
        Per layer: ``kendall_tau``, ``p_value``, ``mean_match_cosine``, the fraction of the HSV sum in the
        bottom half of the states at both times, and the order kept by τ = 0.1 at both times.
    """
    import scipy.linalg as spla
    import scipy.optimize
    import scipy.stats

    from ssmred import order_from_energy
    from ssmred.hsv import hankel_svd
    from ssmred_torch import to_statespace
    from ssmred_app.trainer import load_model_file

    m1, _ = load_model_file(early)
    m2, _ = load_model_file(late)
    if m1.state_sizes != m2.state_sizes:
        raise ValueError(f"state sizes differ ({m1.state_sizes} vs {m2.state_sizes}): use a run without reduction")
    out = []
    for i, (b1, b2) in enumerate(zip(m1.blocks, m2.blocks, strict=True)):
        h1, h2 = hankel_svd(to_statespace(b1.lru)), hankel_svd(to_statespace(b2.lru))
        X1 = h1.Lc @ h1.Vh.conj().T
        X2 = h2.Lc @ h2.Vh.conj().T
        X1 = X1 / np.maximum(spla.norm(X1, axis=0), 1e-300)
        X2 = X2 / np.maximum(spla.norm(X2, axis=0), 1e-300)
        cos = np.abs(X1.conj().T @ X2)
        rows, cols = scipy.optimize.linear_sum_assignment(-cos)
        s1, s2 = h1.hsv[rows], h2.hsv[cols]
        kt = scipy.stats.kendalltau(s1, s2)
        half = s1.size // 2
        out.append(
            {
                "layer": i,
                "n": int(s1.size),
                "kendall_tau": float(kt.statistic),
                "p_value": float(kt.pvalue),
                "mean_match_cosine": float(cos[rows, cols].mean()),
                "bottom_half_energy_early": float(np.sort(h1.hsv)[:half].sum() / h1.hsv.sum()),
                "bottom_half_energy_late": float(np.sort(h2.hsv)[:half].sum() / h2.hsv.sum()),
                "r_tau0.1_early": order_from_energy(h1.hsv, 0.1),
                "r_tau0.1_late": order_from_energy(h2.hsv, 0.1),
            }
        )
    return out


def hsv_tracking_stability(
    checkpoints: Sequence[str | os.PathLike[str]], early: int, *, tau: float = 0.1
) -> list[dict[str, Any]]:
    """Rank stability from HSV trajectories tracked through every checkpoint (``ssmred.tracking``).

    Each layer's HSVs are followed from checkpoint to checkpoint by :func:`ssmred.tracking.track_hsvs`
    (identities matched by linear assignment inside the Weyl bound ‖H_k − H_{k−1}‖₂ of SPEC §5), then
    :func:`ssmred.tracking.rank_stability` compares position ``early`` with the last checkpoint, the kept
    set being the order the tolerance rule picks at ``early``.

    Parameters
    ----------
    checkpoints
        Checkpoints of one unreduced run, in training order (e.g. every epoch).
    early
        Position of the early checkpoint in ``checkpoints``.
    tau
        Tolerance defining the kept set.

    Returns
    -------
    list of dict
        Per layer: Kendall τ, top-k overlap, tail energies, carried tail energy, k, and whether every
        tracked move stayed within its Weyl bound.
    """
    from ssmred.tracking import rank_stability, track_hsvs
    from ssmred_torch import to_statespace
    from ssmred_app.trainer import load_model_file

    models = [load_model_file(p)[0] for p in checkpoints]
    out = []
    for i in range(len(models[0].blocks)):
        traj = track_hsvs([to_statespace(m.blocks[i].lru) for m in models])
        rs = rank_stability(traj, early, -1, energy=tau)
        out.append(
            {
                "layer": i,
                "k": rs.k,
                "kendall_tau": rs.kendall_tau,
                "top_k_overlap": rs.top_k_overlap,
                "tail_energy_early": rs.tail_energy_a,
                "tail_energy_late": rs.tail_energy_b,
                "carried_tail_energy": rs.carried_tail_energy,
                "all_moves_within_weyl_bound": bool(traj.admissible.all()),
            }
        )
    return out
