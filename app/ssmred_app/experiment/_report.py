"""The report of an experiment folder.

Owns the table columns and rows of the statistics (:mod:`ssmred_app.experiment._aggregate`), the report
document (:func:`experiment_doc`), its plots, and :func:`write_experiment_report`, which rebuilds
``metrics.json``, the report and the plots from every finished run of the folder's index.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ssmred_app.config import RunConfig, config_to_dict
from ssmred_app.data import SequenceData
from ssmred_app.experiment._aggregate import aggregate, comparisons, cut_table
from ssmred_app.experiment._cache import _indexed_runs, _locked, _Run
from ssmred_app.report import Doc, write_json, write_report
from ssmred_app.trainer import environment

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

COMPARISON_HEADERS = [
    "level",
    "A",
    "B",
    "seeds",
    "mean A − B (points)",
    "sd",
    "A better / equal / worse",
    "paired t p",
    "exact permutation p (floor)",
    "B CPU time / A CPU time",
]

CUT_HEADERS = [
    "run",
    "cut",
    "seeds",
    "% of training",
    "val acc before (%)",
    "val acc after (%)",
    "mean n after",
    "kept share of Σσ (%)",
    "cumulative (%)",
    "bound / σ₁",
]


def _p(x: float) -> str:
    return "n/a" if x is None or not math.isfinite(x) else (f"{x:.2g}" if x < 0.001 else f"{x:.3f}")


def comparison_rows(comps: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    """Table rows of :func:`comparisons`."""
    return [
        [
            c["level"],
            c["a"],
            c["b"],
            len(c["seeds"]),
            f"{c['mean']:+.2f}",
            "n/a" if not math.isfinite(c["sd"]) else f"{c['sd']:.2f}",
            f"{c['better']} / {c['equal']} / {c['worse']}",
            _p(c["p_t"]),
            f"{_p(c['p_exact'])} ({_p(c['p_floor'])})",
            "n/a" if not math.isfinite(c["cpu_ratio"]) else f"{c['cpu_ratio']:.2f}",
        ]
        for c in comps
    ]


def cut_rows(cuts: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    """Table rows of :func:`cut_table`."""
    return [
        [
            c["variant"],
            c["cut"],
            c["seeds"],
            c["percent"],
            c["val_before"],
            c["val_after"],
            c["dims_after"],
            c["kept"],
            c["cumulative"],
            c["bound_rel"],
        ]
        for c in cuts
    ]


def _thread_note(threads: int | None) -> str:
    """What the CPU time of a run measures, given the configured torch thread count."""
    if threads == 1:
        return (
            "torch runs one thread, so CPU time measures the work even when other processes share the machine "
            "(wall time is listed too)."
        )
    count = "its default number of" if threads is None else str(threads)
    return f"torch runs {count} threads, so CPU time adds up the time of all of them (wall time is listed too)."


def experiment_doc(metrics: Mapping[str, Any], *, title: str) -> Doc:
    """The experiment report (built from ``metrics`` only).

    Parameters
    ----------
    metrics
        The contents of ``metrics.json`` as :func:`write_experiment_report` builds them (``data``,
        ``config``, ``seeds``, ``device``, ``table``, ``comparisons``, ``cuts``, ``runs``, ``plots``,
        ``invocations``, ``environment``).
    title
        The report's title.

    Returns
    -------
    Doc
        The document: setup, results table, paired comparisons, cuts, plots, invocations and per-run
        numbers (:func:`ssmred_app.report.write_report` renders it).
    """
    doc = Doc(title)
    base = metrics["config"]
    m, o = base["model"], base["optim"]
    doc.p(
        f"Data: {metrics['data']}. Model: {m.get('layer', 'lru').upper()} classifier, {m['n_layers']} blocks, width "
        f"H = {m['d_model']}, initial state size n₀ = {m['d_state']}; AdamW lr {o['lr']}, SSM lr × "
        f"{o['ssm_lr_factor']}, {o['epochs']} epochs, batch {o['batch_size']}, warm-up "
        f"{100 * o['warmup_fraction']:.0f} % then cosine. Seeds: {', '.join(str(s) for s in metrics['seeds'])}. "
        f"Device: {metrics['device']}."
    )
    doc.p(
        "τ is the discarded fraction of the plain sum of Hankel singular values **per attempt** (SPEC §6): with "
        "the default schedule (2.5, 5, 7.5 and 10 % of training) four attempts keep about (1 − τ)⁴ of the "
        'original Σσ (see \'cumulative\' below). "scratch", "BT-init matched", "random", "smallest" and '
        '"KD" reach exactly the sizes of the CompreSSM run of the same level and seed; post-BT, LAST and HNN '
        "are cut to its total size by one global threshold. Training time counts optimizer steps, reductions, "
        f"post-training cuts and fine-tuning, not evaluation; {_thread_note(base.get('threads'))} best-3 = mean "
        "of the 3 best seeds by test accuracy (the published protocol uses 3 of 5)."
    )
    loaded = [r["variant"] for r in metrics["table"] if r.get("loaded")]
    if loaded:
        doc.p(
            f"**Timing flag:** {len(loaded)} of {len(metrics['table'])} rows include runs timed while the 1-minute "
            f"load average exceeded the CPU count ({metrics['environment']['cpu_count']}); CPU times there carry "
            "the machine's contention (shared caches, frequency), wall times much more. Load averages per run "
            "are in `runs/*/seed*/timing.json`."
        )
    doc.h("Results")
    doc.table([h for _, h in EXPERIMENT_COLUMNS], [[row[k] for k, _ in EXPERIMENT_COLUMNS] for row in metrics["table"]])
    doc.h("Paired comparisons (same seeds)")
    doc.p(
        "A − B in test-accuracy points per seed; paired t-test (scipy.stats.ttest_rel) and the exact sign-flip "
        "permutation test of the mean difference over all 2ⁿ sign patterns (its smallest possible value, 2/2ⁿ, "
        "in parentheses). The last column is how many times longer B trained than A (CPU time, mean of per-seed "
        "ratios)."
    )
    doc.table(COMPARISON_HEADERS, comparison_rows(metrics["comparisons"]))
    if metrics.get("cuts"):
        doc.h("Cuts")
        doc.p(
            "Per cut, mean over seeds: validation accuracy right before and right after it, the share of Σσ "
            "it kept (averaged over layers; for modal cuts the share of the modes' H∞ norms), the cumulative "
            "product of those shares, and the a-priori bound 2Σσ_tail relative to σ₁."
        )
        doc.table(CUT_HEADERS, cut_rows(metrics["cuts"]))
    doc.h("Plots")
    for name, alt in (
        ("frontier.png", "test accuracy vs mean final state dimension (one curve per method, ± sd over seeds)"),
        ("acc_vs_time.png", "test accuracy vs training CPU time"),
        ("kept_energy.png", "kept share of Σσ per cut and cumulative"),
        ("state_sizes.png", "state size over training (first seed)"),
        ("hsv_spectra.png", "HSV spectra at each reduction attempt (first seed, first level)"),
    ):
        if name in metrics.get("plots", []):
            doc.image(f"plots/{name}", alt)
    if metrics.get("invocations"):
        doc.h("Invocations (this report accumulates them)")
        doc.bullets(
            [
                f"{inv['time']}: levels {', '.join(inv['levels'])}; methods {', '.join(inv['methods'])}; seeds "
                f"{', '.join(map(str, inv['seeds']))}; schedules {', '.join(inv['schedules'])}; load average "
                f"{inv['loadavg'][0]:.1f}"
                for inv in metrics["invocations"]
            ]
        )
    doc.h("Per-run numbers")
    doc.table(
        ["run", "seed", "test acc (%)", "final dims", "train CPU time (s)", "train wall time (s)", "load avg"],
        [
            [
                r["variant"],
                r["seed"],
                round(100 * r["test_acc"], 2),
                " ".join(map(str, r["final_dims"])),
                round(r["train_cpu_s"], 1),
                round(r["train_time_s"], 1),
                "n/a"
                if not r.get("timing")
                else f"{max(r['timing']['loadavg_start'][0], r['timing']['loadavg_end'][0]):.1f}",
            ]
            for r in metrics["runs"]
        ],
    )
    return doc


def _plots(
    runs: Sequence[_Run], table: Sequence[Mapping[str, Any]], cuts: Sequence[Mapping[str, Any]], out: Path
) -> list[str]:
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
                "dim_std": row["final_dim_std"],
                "acc": row["test_acc_mean"] / 100,
                "acc_std": row["test_acc_std"] / 100,
                "time": row["train_cpu_mean_s"],
                "time_std": row["train_cpu_std_s"],
                "note": row["level"],
            }
        )
    rp.plot_frontier(pts, plots / "frontier.png")
    rp.plot_acc_vs_dim(pts, plots / "acc_vs_dim.png")
    rp.plot_acc_vs_time(pts, plots / "acc_vs_time.png")
    made += ["frontier.png", "acc_vs_dim.png", "acc_vs_time.png"]
    if cuts:
        rp.plot_kept_energy(cuts, plots / "kept_energy.png")
        made.append("kept_energy.png")
    seed0 = min(r.seed for r in runs)
    first = {
        r.variant: r.result.to_dict()
        for r in runs
        if r.seed == seed0 and r.method in ("full", "compressm") and r.result.dims_trace
    }
    rp.plot_state_sizes(first, plots / "state_sizes.png")
    made.append("state_sizes.png")
    comp = [r for r in runs if r.seed == seed0 and r.method == "compressm"]
    if comp and comp[0].result.reductions:
        rp.plot_hsv_spectra(comp[0].result.reductions, plots / "hsv_spectra.png", title=comp[0].variant)
        made.append("hsv_spectra.png")
    return made


def write_experiment_report(
    out: str | os.PathLike[str],
    base: RunConfig,
    *,
    data: SequenceData | None = None,
    title: str | None = None,
    elapsed: float = math.nan,
) -> dict[str, Any]:
    """Rebuild ``metrics.json``, the report and the plots of ``out`` from every finished run in its index.

    Parameters
    ----------
    out
        The experiment folder.
    base
        Its base configuration.
    data
        The data set (for its description; loaded when ``None``).
    title
        Report title.
    elapsed
        Seconds the invocation took (recorded).

    Returns
    -------
    dict
        The metrics.
    """
    from ssmred_app.data import load_dataset

    out = Path(out)
    data = data if data is not None else load_dataset(base.data)
    with _locked(out):
        runs, invocations = _indexed_runs(out)
    table = aggregate(runs)
    comps = comparisons(runs)
    cuts = cut_table(runs)
    metrics: dict[str, Any] = {
        "kind": "experiment",
        "data": data.describe(),
        "config": config_to_dict(base),
        "seeds": sorted({r.seed for r in runs}),
        "levels": sorted({r.level for r in runs if r.level}),
        "device": runs[0].result.device if runs else "cpu",
        "table": table,
        "comparisons": comps,
        "cuts": cuts,
        "runs": [
            {
                "variant": r.variant,
                "group": r.group,
                "method": r.method,
                "level": r.level,
                "seed": r.seed,
                "timing": r.timing,
                **r.result.to_dict(),
                "config": None,
            }
            for r in runs
        ],
        "invocations": invocations,
        "environment": environment(),
        "elapsed_s": elapsed,
    }
    metrics["plots"] = _plots(runs, table, cuts, out) if runs else []
    write_json(metrics, out / "metrics.json")
    write_report(experiment_doc(metrics, title=title or f"ssmred experiment: {base.name}"), out)
    return metrics
