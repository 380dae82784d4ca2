r"""``ssmred demo``: the full model, CompreSSM and the same final sizes from scratch, on digits.

Three runs of one embedded configuration (:func:`demo_config`): **full** keeps n₀ states throughout,
**CompreSSM** reduces every layer by balanced truncation in tolerance mode early in training, and
**scratch** trains the CompreSSM run's final per-layer sizes from the start. :func:`run_demo` writes a
run folder with ``metrics.json``, ``report.md``/``.html``, plots and checkpoints; the report is built
from the metrics only.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ssmred_app.config import RunConfig, config_to_dict, parse_config, with_sections
from ssmred_app.experiment import train_cached
from ssmred_app.families import config_state_sizes
from ssmred_app.report import Doc, fmt, write_json, write_report
from ssmred_app.trainer import RunResult, environment

__all__ = [
    "DEMO_COLUMNS",
    "DEMO_TAU",
    "REDUCTION_HEADERS",
    "demo_config",
    "demo_doc",
    "demo_summary",
    "demo_table",
    "reduction_rows",
    "run_demo",
]

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


DEMO_COLUMNS = [
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


REDUCTION_HEADERS = [
    "step",
    "% of training",
    "n before",
    "n after",
    "val acc before (%)",
    "val acc after (%)",
    "bound 2Σσ_tail per layer",
    "time (ms)",
]


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
    doc.table([h for _, h in DEMO_COLUMNS], [[r[k] for k, _ in DEMO_COLUMNS] for r in metrics["table"]])
    doc.p(demo_summary(metrics))
    doc.p(
        "Training time counts optimizer steps and reductions (evaluation excluded). torch runs one thread, so CPU "
        "time measures the work even on a shared machine; speedup = full CPU time / CPU time. "
        "Accuracies are on the held-out test split; one seed — see docs/results.md for several seeds."
    )
    comp = metrics["runs"]["compressm"]
    doc.h("Reductions (CompreSSM run)")
    doc.table(REDUCTION_HEADERS, reduction_rows(comp["reductions"]))
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
        "full": with_sections(base, name="full"),
        "compressm": with_sections(base, name="compressm", compression={"mode": "tolerance", "tau": tau}),
    }
    for key, cfg in cfgs.items():
        results[key] = train_cached(cfg, out / "runs" / key, progress=progress, log=log)
    scratch = with_sections(
        base, name="scratch", model={"d_state": config_state_sizes(base.model, results["compressm"].final_dims)}
    )
    results["scratch"] = train_cached(scratch, out / "runs" / "scratch", progress=progress, log=log)
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
