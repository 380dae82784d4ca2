"""Produce docs/results.md: CompreSSM vs full vs same-size-from-scratch on digits and mnist1d.

Usage (from the repository root; finished runs are reused)::

    .venv/bin/python scripts/results.py [--seeds 0 1 2 3 4] [--out runs/results] [--doc docs/results.md]

With the default 5 seeds: 110 training runs, about 21 min of single-threaded training CPU time (about
50 min of wall time on a shared 2-core machine; run-to-run CPU times vary with the load).

Runs ``ssmred experiment`` on configs/digits.yaml and configs/mnist1d.yaml, measures the HSV rank
stability (SPEC §5) on the full-size run of the first seed (epoch at 10 % of training vs the last
epoch), copies the plots to docs/results/ and writes the Markdown page.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

from ssmred_app.experiment import EXPERIMENT_COLUMNS, load_experiment, run_experiment
from ssmred_app.report import fmt
from ssmred_app.stability import hsv_rank_stability, hsv_tracking_stability

ROOT = Path(__file__).resolve().parents[1]


def _table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(fmt(c) for c in r) + " |" for r in rows]
    return lines + [""]


def _rel(p: Path) -> str:
    try:
        return str(p.resolve().relative_to(ROOT))
    except ValueError:
        return str(p)


def _summary(name: str, m: dict[str, Any]) -> str:
    """One bullet per data set: does size matter, and does CompreSSM beat the same size from scratch."""
    rows = {r["variant"]: r for r in m["table"]}
    full = rows["full"]
    small = min(
        (r for r in m["table"] if r["variant"].startswith("n=")), key=lambda r: r["final_dim_mean"], default=None
    )
    size = (
        f"state size matters: n = {small['final_dim_mean']:g} reaches {small['test_acc_mean']} % vs "
        f"{full['test_acc_mean']} % at n = {full['final_dim_mean']:g}"
        if small
        else f"full model {full['test_acc_mean']} %"
    )
    parts = []
    diffs = []
    for tau in m["taus"]:
        c, sc = rows.get(f"CompreSSM τ={tau:g}"), rows.get(f"scratch τ={tau:g}")
        if c and sc:
            d = c["test_acc_mean"] - sc["test_acc_mean"]
            diffs.append(d)
            parts.append(
                f"τ = {tau:g}: n → {c['final_dim_mean']:g}, {c['test_acc_mean']} % vs {sc['test_acc_mean']} % from "
                f"scratch ({d:+.2f}), trains {c['speedup_vs_full']}× faster than full (CPU time)"
            )
    if diffs and all(d <= 0 for d in diffs):
        verdict = "CompreSSM does **not** beat the same sizes trained from scratch here"
    elif diffs and all(d > 0 for d in diffs):
        verdict = "CompreSSM beats the same sizes trained from scratch"
    else:
        verdict = "CompreSSM vs the same sizes from scratch is mixed"
    return f"- **{name}**: {size}. {verdict} (mean over {len(m['seeds'])} seeds; " + "; ".join(parts) + ")."


def _findings(m: dict[str, Any]) -> list[str]:
    """Paired per-seed comparisons, computed from the runs (so the text cannot drift from the numbers)."""
    runs = m["runs"]
    by = {(r["variant"], r["seed"]): r for r in runs}
    out = ["Paired by seed:", ""]
    full_cpu = {s: by[("full", s)]["train_cpu_s"] for s in m["seeds"]}
    full_acc = {s: by[("full", s)]["test_acc"] for s in m["seeds"]}
    variants = [r["variant"] for r in m["table"] if r["variant"].startswith("CompreSSM ")]
    for variant in variants:
        label = variant.removeprefix("CompreSSM ")
        comp = [by[(variant, s)] for s in m["seeds"]]
        scratch = [by.get((variant.replace("CompreSSM", "scratch"), s)) for s in m["seeds"]]
        d_scratch = [100 * (c["test_acc"] - sc["test_acc"]) for c, sc in zip(comp, scratch, strict=True) if sc]
        d_full = [100 * (c["test_acc"] - full_acc[c["seed"]]) for c in comp]
        speed = [full_cpu[c["seed"]] / c["train_cpu_s"] for c in comp]
        wins = sum(d > 0 for d in d_scratch)
        ties = sum(d == 0 for d in d_scratch)
        out.append(
            f"- {label}: CompreSSM − scratch at the same sizes = {sum(d_scratch) / len(d_scratch):+.2f} points "
            f"(per seed: {', '.join(f'{d:+.2f}' for d in d_scratch)}; better in {wins} of {len(d_scratch)}"
            f"{f', equal in {ties}' if ties else ''}); CompreSSM − full = {sum(d_full) / len(d_full):+.2f} points; "
            f"CPU-time speedup vs full {min(speed):.2f}–{max(speed):.2f}×."
        )
        before = [c["reductions"][-1]["val_acc_before"] for c in comp if c["reductions"]]
        after = [c["reductions"][-1]["val_acc_after"] for c in comp if c["reductions"]]
        if before:
            out.append(
                f"  Validation accuracy right before / after the last reduction (10 % of training): "
                f"{100 * sum(before) / len(before):.1f} % / {100 * sum(after) / len(after):.1f} % (mean over seeds) "
                "— the layers are cut while the model is still early in learning (LR warm-up)."
            )
    return [*out, ""]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--out", default=str(ROOT / "runs" / "results"))
    ap.add_argument("--doc", default=str(ROOT / "docs" / "results.md"))
    ap.add_argument("--datasets", nargs="+", default=["digits", "mnist1d"])
    ap.add_argument("--configs", default=str(ROOT / "configs"), help="folder with <dataset>.yaml experiment files")
    args = ap.parse_args(argv)
    out, doc_path = Path(args.out), Path(args.doc)
    fig_dir = doc_path.parent / "results"
    fig_dir.mkdir(parents=True, exist_ok=True)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    sections: list[str] = []
    summary: list[str] = []
    totals = {"runs": 0, "cpu": 0.0, "wall": 0.0}
    stability: dict[str, list[dict[str, Any]]] = {}
    env: dict[str, Any] = {}
    for name in args.datasets:
        import dataclasses

        spec = load_experiment(Path(args.configs) / f"{name}.yaml")
        spec = dataclasses.replace(spec, seeds=list(args.seeds))
        m = run_experiment(spec, out / name, progress=False, log=log, title=f"CompreSSM on {name}")
        env = m["environment"]
        summary.append(_summary(name, m))
        totals["runs"] += len(m["runs"])
        totals["cpu"] += sum(r["train_cpu_s"] for r in m["runs"])
        totals["wall"] += sum(r["wall_time_s"] for r in m["runs"])
        cfg = m["config"]
        mc, oc = cfg["model"], cfg["optim"]
        sections += [
            f"## {name}",
            "",
            f"{m['data']}. LRU classifier: {mc['n_layers']} blocks, H = {mc['d_model']}, n₀ = {mc['d_state']}; "
            f"{oc['epochs']} epochs, batch {oc['batch_size']}, AdamW lr {oc['lr']} (SSM × {oc['ssm_lr_factor']}), "
            f"warm-up {100 * oc['warmup_fraction']:.0f} % + cosine; reductions at 2.5/5/7.5/10 % of training. "
            f"Seeds {', '.join(map(str, m['seeds']))}. Config: `configs/{name}.yaml`; full report: "
            f"`{_rel(out / name / 'report.md')}`.",
            "",
        ]
        sections += _table(
            [h for _, h in EXPERIMENT_COLUMNS], [[r[k] for k, _ in EXPERIMENT_COLUMNS] for r in m["table"]]
        )
        sections += _findings(m) + ["Final per-layer state sizes per seed:", ""]
        sections += [
            f"- {r['variant']}: " + "; ".join(" ".join(map(str, d)) for d in r["final_dims"]) for r in m["table"]
        ]
        sections.append("")
        for png in m["plots"]:
            dst = fig_dir / f"{name}_{png}"
            shutil.copyfile(out / name / "plots" / png, dst)
            sections += [f"![{name}: {png[:-4].replace('_', ' ')}](results/{dst.name})", ""]
        full_dir = out / name / "runs" / "full" / f"seed{spec.seeds[0]}" / "checkpoints"
        epochs = spec.base.optim.epochs
        early = max(1, round(0.1 * epochs))
        stability[name] = hsv_rank_stability(full_dir / f"epoch_{early:03d}.pt", full_dir / f"epoch_{epochs:03d}.pt")
        stability[name + "_epochs"] = [{"early": early, "late": epochs}]  # type: ignore[list-item]
        ckpts = [full_dir / f"epoch_{e:03d}.pt" for e in range(1, epochs + 1)]
        stability[name + "_tracking"] = hsv_tracking_stability(ckpts, early - 1, tau=0.1)

    lines = [
        "# Results: CompreSSM on CPU-sized problems",
        "",
        f"Produced by `python scripts/results.py --seeds {' '.join(map(str, args.seeds))}`: {totals['runs']} "
        f"training runs, {totals['cpu'] / 60:.0f} min of training CPU time and {totals['wall'] / 60:.0f} min of "
        "wall time in total (sum over runs; finished runs are reused when the script is run again). "
        f"torch {env.get('torch')}, {env.get('cpu_count')} CPUs, one torch thread per run; the machine was "
        "shared with other jobs, so **CPU time** (process time of the single-threaded run, optimizer steps and "
        "reductions, evaluation excluded) is the cost measure; wall time is listed for completeness.",
        "",
        "What each row is: **full** — n₀ states throughout; **CompreSSM τ=t** — tolerance mode, each layer cut "
        "to the smallest order keeping (1 − t) of its plain HSV sum at 2.5, 5, 7.5 and 10 % of training "
        "(gate r < 0.95 n, Adam moments projected through the truncation); **scratch τ=t** — the per-layer "
        "sizes that CompreSSM τ=t reached (same seed), trained from scratch with the same recipe; rows marked "
        "**(reset)** are the ablation that drops the Adam moments of reduced layers instead of projecting them "
        "(and their own same-size baselines); **n=k** — k states per layer from scratch. Accuracies "
        "are on a held-out test split; best-3 = mean of the 3 best seeds (the published protocol uses 3 of 5).",
        "",
    ]
    lines += ["## Summary", "", *summary, "", *sections]
    lines += [
        "## HSV rank stability (SPEC §5)",
        "",
        "Full-size run of the first seed, no reduction: the balanced modes of each layer at 10 % of training "
        "are matched to those at the end by linear assignment on the absolute cosine of their directions "
        "L_c v_i in the layer's state coordinates; Kendall τ (scipy.stats.kendalltau) compares the early HSV "
        "of each mode with the late HSV of its match (1 = order unchanged). 'bottom-half energy' is the share "
        "of Σσ in the smallest n/2 HSVs; r(τ=0.1) is the order the tolerance rule would keep.",
        "",
    ]
    rows = []
    for name in args.datasets:
        ep = stability[name + "_epochs"][0]
        for r in stability[name]:
            rows.append(
                [
                    name,
                    f"{ep['early']} → {ep['late']}",
                    r["layer"],
                    r["n"],
                    round(r["kendall_tau"], 3),
                    f"{r['p_value']:.1e}",
                    round(r["mean_match_cosine"], 3),
                    f"{100 * r['bottom_half_energy_early']:.1f} → {100 * r['bottom_half_energy_late']:.1f} %",
                    f"{r['r_tau0.1_early']} → {r['r_tau0.1_late']}",
                ]
            )
    lines += _table(
        ["data", "epochs", "layer", "n", "Kendall τ", "p", "mean match cos", "bottom-half energy", "r(τ=0.1)"],
        rows,
    )
    lines += [
        "The same two checkpoints through `ssmred.tracking`: every layer's HSVs followed through every epoch "
        "checkpoint, identities matched by linear assignment inside the per-epoch Weyl bound ‖H_k − H_{k−1}‖₂ "
        "(SPEC §5), kept set = the k states the τ = 0.1 rule keeps at the early epoch. 'carried tail' is the share "
        "of the final Σσ held by the states that were in the tail at the early epoch — what a cut decided there "
        "would discard by the end.",
        "",
    ]
    rows = []
    for name in args.datasets:
        ep = stability[name + "_epochs"][0]
        for r in stability[name + "_tracking"]:
            rows.append(
                [
                    name,
                    f"{ep['early']} → {ep['late']}",
                    r["layer"],
                    r["k"],
                    round(r["kendall_tau"], 3),
                    round(r["top_k_overlap"], 3),
                    f"{100 * r['tail_energy_early']:.1f} → {100 * r['tail_energy_late']:.1f} %",
                    f"{100 * r['carried_tail_energy']:.1f} %",
                    "yes" if r["all_moves_within_weyl_bound"] else "no",
                ]
            )
    lines += _table(
        [
            "data",
            "epochs",
            "layer",
            "k",
            "Kendall τ (tracked)",
            "top-k overlap",
            "tail energy",
            "carried tail",
            "moves within Weyl bound",
        ],
        rows,
    )
    dir_tau = [r["kendall_tau"] for n in args.datasets for r in stability[n]]
    trk = [r for n in args.datasets for r in stability[n + "_tracking"]]
    trk_tau = [r["kendall_tau"] for r in trk]
    overlap = [r["top_k_overlap"] for r in trk]
    lines += [
        f"Kendall τ by matching balanced directions: {min(dir_tau):.2f}–{max(dir_tau):.2f}; by tracking values "
        f"inside per-epoch Weyl intervals: {min(trk_tau):.2f}–{max(trk_tau):.2f}; top-k overlap "
        f"{min(overlap):.2f}–{max(overlap):.2f}. The identification matters where the Weyl bounds between "
        "checkpoints are wide compared with the gaps between neighbouring HSVs: then many value pairings are "
        "admissible."
        + (
            " Neither measure shows a frozen order at 10 % of training; the kept set (top-k) is the more stable "
            "quantity."
            if max(dir_tau + trk_tau) < 0.9 and min(overlap) > max(trk_tau)
            else ""
        ),
        "",
    ]
    doc_path.write_text("\n".join(lines))
    print(f"wrote {doc_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
