"""The statistics and the report of an experiment folder.

Owns the aggregation over seeds (:func:`aggregate`), the paired comparisons (:func:`comparisons`), the
per-cut table (:func:`cut_table`), their table columns and rows, the report document
(:func:`experiment_doc`), its plots, and :func:`write_experiment_report`, which rebuilds
``metrics.json``, the report and the plots from every finished run of the folder's index.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ssmred_app.config import RunConfig, config_to_dict
from ssmred_app.data import SequenceData
from ssmred_app.experiment._cache import _indexed_runs, _loaded, _locked, _Run
from ssmred_app.report import Doc, write_json, write_report
from ssmred_app.trainer import environment


def _best_k_mean(values: Sequence[float], k: int = 3) -> float:
    return float(np.mean(sorted(values, reverse=True)[:k]))


def _std(values: Sequence[float]) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def _by_variant(runs: Sequence[_Run]) -> tuple[list[str], dict[str, list[_Run]]]:
    order: list[str] = []
    by: dict[str, list[_Run]] = {}
    for r in runs:
        if r.variant not in by:
            order.append(r.variant)
        by.setdefault(r.variant, []).append(r)
    for v in by:
        by[v].sort(key=lambda r: r.seed)
    return order, by


def aggregate(runs: Sequence[_Run]) -> list[dict[str, Any]]:
    """Aggregate per variant over seeds; numbers rounded as they appear in reports.

    Parameters
    ----------
    runs
        The experiment's finished runs (the folder's index), each with its variant, group, method,
        level, seed, result and timing; the order of first appearance fixes the variants' order.

    Returns
    -------
    list of dict
        One row per variant (in first-seen order) with accuracy mean/std/best-3 (in %), final dims,
        train time, speedup against ``full`` (ratio of the mean CPU times), its level, method and
        group, and whether any of its runs was timed on a loaded machine.
    """
    order, by = _by_variant(runs)
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
                "method": rs[0].method,
                "level": rs[0].level,
                "seeds": len(rs),
                "seed_list": [r.seed for r in rs],
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
                "loaded": any(_loaded(r.timing) for r in rs),
            }
        )
    return rows


def comparisons(runs: Sequence[_Run]) -> list[dict[str, Any]]:
    """Paired per-seed comparisons (:func:`ssmred_app.stats.paired`) of every level's methods.

    For every CompreSSM variant: CompreSSM − each other method of the same level (and suffix), and
    CompreSSM − full; for every other method of the level: method − full. Accuracy differences are in
    points; ``cpu_ratio`` is the mean over seeds of (other's CPU time / CompreSSM's CPU time), i.e.
    how many times longer the other method trained (in general the mean of B's CPU time / A's, over
    the seeds where A's is positive). Only the seeds both variants ran are compared.

    Parameters
    ----------
    runs
        The experiment's finished runs (the folder's index), each with its variant, group, method,
        level, seed, result and timing; the order of first appearance fixes the variants' order.

    Returns
    -------
    list of dict
        One entry per comparison: ``level``, ``a``, ``b``, ``seeds`` and the :func:`paired` fields of
        A − B in test-accuracy points, ``cpu_ratio`` (NaN when no seed has a positive CPU time for A)
        and ``dim_b`` (B's mean final state size, over seeds and layers).
    """
    from ssmred_app.stats import paired

    order, by = _by_variant(runs)
    out: list[dict[str, Any]] = []

    def compare(a: str, b: str, level: str) -> None:
        ra = {r.seed: r.result for r in by[a]}
        rb = {r.seed: r.result for r in by[b]}
        seeds = sorted(set(ra) & set(rb))
        if not seeds:
            return
        st = paired([100 * ra[s].test_acc for s in seeds], [100 * rb[s].test_acc for s in seeds])
        ratio = [rb[s].train_cpu_s / ra[s].train_cpu_s for s in seeds if ra[s].train_cpu_s > 0]
        dims_b = [float(np.mean(rb[s].final_dims)) for s in seeds]
        out.append(
            {
                "level": level,
                "a": a,
                "b": b,
                "seeds": seeds,
                **st,
                "cpu_ratio": float(np.mean(ratio)) if ratio else math.nan,
                "dim_b": float(np.mean(dims_b)),
            }
        )

    for v in order:
        if by[v][0].method != "compressm":
            continue
        level, sfx = by[v][0].level, by[v][0].suffix
        others = [
            w
            for w in order
            if w != v and by[w][0].level == level and by[w][0].suffix == sfx and by[w][0].method != "compressm"
        ]
        for w in others:
            compare(v, w, level)
        if "full" in by:
            compare(v, "full", level)
            for w in others:
                compare(w, "full", level)
    return out


def cut_table(runs: Sequence[_Run]) -> list[dict[str, Any]]:
    r"""Per variant and cut (mean over seeds): step, validation accuracy before/after, kept share, bound/σ₁.

    ``kept`` is the share of :math:`\sum\sigma` (of the ranking quantity for modal cuts) kept by the cut,
    averaged over layers; ``cumulative`` is the product of the per-cut shares up to this cut — τ applies
    per attempt, so k cuts keep about :math:`(1-\tau)^k`.

    Parameters
    ----------
    runs
        The experiment's finished runs (the folder's index), each with its variant, group, method,
        level, seed, result and timing; the order of first appearance fixes the variants' order.

    Returns
    -------
    list of dict
        One row per variant with reductions and cut ``k`` (1-based), averaged over the seeds that made
        at least ``k`` cuts: ``variant``, ``cut``, ``seeds``, ``percent`` (of training), ``val_before``
        and ``val_after`` (in %, ``None`` when not measured), ``kept`` and ``cumulative`` (in %),
        ``bound_rel`` (bound / σ₁ averaged over layers, ``None`` when undefined) and ``dims_after``
        (mean state size after the cut).
    """
    order, by = _by_variant(runs)
    rows = []
    for v in order:
        recs = [r.result.reductions for r in by[v] if r.result.reductions]
        if not recs:
            continue
        n_cuts = max(len(x) for x in recs)
        cum = [1.0] * len(recs)
        for k in range(n_cuts):
            at = [(i, x[k]) for i, x in enumerate(recs) if k < len(x)]
            kept, rel, before, after, frac = [], [], [], [], []
            for i, rec in at:
                layers = rec.get("layers") or []
                shares = [lay.get("kept_energy") for lay in layers if lay.get("kept_energy") is not None]
                share = float(np.mean(shares)) if shares else 1.0
                kept.append(share)
                cum[i] *= share
                rel += [lay["bound_rel"] for lay in layers if lay.get("bound_rel") is not None]
                if rec.get("val_acc_before") is not None:
                    before.append(rec["val_acc_before"])
                if rec.get("val_acc_after") is not None:
                    after.append(rec["val_acc_after"])
                frac.append(rec["fraction"])
            rows.append(
                {
                    "variant": v,
                    "cut": k + 1,
                    "seeds": len(at),
                    "percent": round(100 * float(np.mean(frac)), 1),
                    "val_before": round(100 * float(np.mean(before)), 1) if before else None,
                    "val_after": round(100 * float(np.mean(after)), 1) if after else None,
                    "kept": round(100 * float(np.mean(kept)), 1),
                    "cumulative": round(100 * float(np.mean([cum[i] for i, _ in at])), 1),
                    "bound_rel": round(float(np.mean(rel)), 3) if rel else None,
                    "dims_after": round(float(np.mean([np.mean(rec["dims_after"]) for _, rec in at])), 1),
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
        "post-training cuts and fine-tuning, not evaluation; torch runs one thread, so CPU time measures the "
        "work even when other processes share the machine (wall time is listed too). best-3 = mean of the 3 "
        "best seeds by test accuracy (the published protocol uses 3 of 5)."
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
