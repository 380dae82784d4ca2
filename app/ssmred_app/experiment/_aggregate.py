"""The statistics of an experiment folder: aggregation over seeds, paired comparisons, the per-cut table.

Owns :func:`aggregate` (mean, std and best-3 mean of every variant), :func:`comparisons` (the paired
tests of every method against CompreSSM and the full model, :mod:`ssmred_app.stats`) and
:func:`cut_table` (post-training cuts of finished runs). The report built from them is
:mod:`ssmred_app.experiment._report`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ssmred_app.experiment._cache import _loaded, _Run


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
                "speedup_vs_full": round(full_cpu / float(np.mean(c)), 2) if np.mean(c) > 0 else math.nan,
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
