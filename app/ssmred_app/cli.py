"""The ``ssmred`` command: ``demo``, ``train``, ``experiment``, ``analyze``, ``reduce``.

Run ``ssmred <command> --help`` for the options of each command. Configuration problems are reported
as one message before anything is trained (exit status 2); an interrupted run exits with status 130
and resumes when the same command is run again.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main"]

EXIT_CONFIG = 2
EXIT_INTERRUPTED = 130


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    pass


def _new_run_dir(kind: str) -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{kind}-{stamp}"
    path, k = base, 1
    while path.exists():
        k += 1
        path = Path(f"{base}-{k}")
    return path


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------- demo
def _cmd_demo(args: argparse.Namespace) -> int:
    from ssmred_app.experiment import _DEMO_COLUMNS, demo_summary, format_table, run_demo
    from ssmred_app.trainer import ConfigError

    if not 0.0 < args.tau < 1.0:  # fail before announcing a run folder
        raise ConfigError(
            f"invalid configuration:\n  - --tau: must lie in (0, 1) (discarded fraction of the HSV sum), got {args.tau}"
        )
    out = Path(args.out) if args.out else _new_run_dir("demo-quick" if args.quick else "demo")
    _log(f"ssmred demo -> {out}")
    metrics = run_demo(
        out,
        quick=args.quick,
        tau=args.tau,
        seed=args.seed,
        device=args.device,
        progress=not args.no_progress,
        log=_log,
    )
    print(format_table(metrics["table"], _DEMO_COLUMNS))
    print("\n" + demo_summary(metrics).replace("**", ""))
    print(f"\nreport: {out / 'report.md'} (and report.html), metrics: {out / 'metrics.json'}")
    print(f"total time {metrics['elapsed_s']:.0f} s")
    return 0


# ---------------------------------------------------------------------------------------------- train
def _cmd_train(args: argparse.Namespace) -> int:
    import dataclasses

    from ssmred_app.report import Doc, write_json, write_report
    from ssmred_app.trainer import Trainer, environment, load_config

    overrides = list(args.overrides)
    if args.device:
        overrides.append(f"device={args.device}")
    cfg = load_config(args.config, overrides)
    out = Path(args.out or cfg.out or _new_run_dir(f"train-{cfg.name}"))
    cfg = dataclasses.replace(cfg, out=None)
    _log(f"ssmred train {cfg.name} -> {out}")
    trainer = Trainer(cfg, out, progress=not args.no_progress, log=_log)
    res = trainer.run(resume=not args.no_resume)
    metrics = {"kind": "train", "data": trainer.data.describe(), "run": res.to_dict(), "environment": environment()}
    write_json(metrics, out / "metrics.json")
    doc = Doc(f"ssmred train: {cfg.name}")
    doc.p(f"Data: {metrics['data']}. Device: {res.device}.")
    row = [
        round(100 * res.test_acc, 2),
        round(100 * res.val_acc, 2),
        " ".join(map(str, res.initial_dims)),
        " ".join(map(str, res.final_dims)),
        round(res.mean_final_dim, 1),
        round(res.train_cpu_s, 1),
        round(res.train_time_s, 1),
    ]
    doc.table(
        [
            "test acc (%)",
            "val acc (%)",
            "initial n",
            "final n",
            "mean final n",
            "train CPU time (s)",
            "train wall time (s)",
        ],
        [row],
    )
    if res.reductions:
        from ssmred_app import plots as rp
        from ssmred_app.experiment import reduction_rows

        doc.h("Reductions")
        doc.table(
            [
                "step",
                "% of training",
                "n before",
                "n after",
                "val acc before (%)",
                "val acc after (%)",
                "bound per layer",
                "time (ms)",
            ],
            reduction_rows(res.reductions),
        )
        rp.plot_hsv_spectra(res.reductions, out / "plots" / "hsv_spectra.png", title=cfg.name)
        rp.plot_state_sizes({cfg.name: res.to_dict()}, out / "plots" / "state_sizes.png")
        doc.image("plots/hsv_spectra.png", "HSV spectra at each attempt")
        doc.image("plots/state_sizes.png", "state sizes over training")
    doc.h("Per epoch")
    doc.table(
        ["epoch", "train loss", "train acc (%)", "val acc (%)", "n", "train time (s)"],
        [
            [
                e["epoch"],
                round(e["train_loss"], 4),
                round(100 * e["train_acc"], 2),
                round(100 * e["val_acc"], 2),
                " ".join(map(str, e["dims"])),
                round(e["train_time_s"], 1),
            ]
            for e in res.epochs
        ],
    )
    write_report(doc, out)
    print(
        f"{cfg.name}: test acc {100 * res.test_acc:.2f} %, state sizes {res.initial_dims} -> {res.final_dims}, "
        f"train time {res.train_time_s:.1f} s\nreport: {out / 'report.md'}"
    )
    return 0


# ---------------------------------------------------------------------------------------------- experiment
def _cmd_experiment(args: argparse.Namespace) -> int:
    import dataclasses

    from ssmred_app.experiment import _COLUMNS, format_table, load_experiment, run_experiment

    overrides = list(args.overrides)
    if args.device:
        overrides.append(f"device={args.device}")
    spec = load_experiment(args.config, overrides)
    if args.seeds:
        spec = dataclasses.replace(spec, seeds=list(args.seeds))
    out = Path(args.out or spec.base.out or _new_run_dir(f"experiment-{spec.base.name}"))
    _log(f"ssmred experiment {spec.base.name} (seeds {spec.seeds}) -> {out}")
    metrics = run_experiment(spec, out, progress=not args.no_progress, log=_log)
    print(format_table(metrics["table"], _COLUMNS))
    print(f"\nreport: {out / 'report.md'}, metrics: {out / 'metrics.json'}")
    return 0


# ---------------------------------------------------------------------------------------------- analyze / reduce
def _cmd_analyze(args: argparse.Namespace) -> int:
    pass

    out = (
        Path(args.out)
        if args.out
        else Path(args.checkpoint).with_suffix("").parent / (Path(args.checkpoint).stem + "-analysis")
    )
    summary = analyze(args.checkpoint, out, taus=args.taus)
    for line in summary:
        print(line)
    print(f"\nreport: {out / 'analysis.md'}, data: {out / 'analysis.json'}, plot: {out / 'plots' / 'analysis.png'}")
    return 0


def _cmd_reduce(args: argparse.Namespace) -> int:
    pass

    info = reduce_checkpoint(
        args.checkpoint, args.output, tau=args.tau, rank=args.rank, config=args.config, device=args.device or "auto"
    )
    for line in info["lines"]:
        print(line)
    return 0


# ---------------------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``ssmred`` command."""
    p = argparse.ArgumentParser(
        prog="ssmred",
        description="Balanced truncation for deep state-space models: train LRU models that shrink while "
        "they learn (CompreSSM), analyse and reduce trained layers.",
        formatter_class=_Formatter,
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    d = sub.add_parser(
        "demo",
        help="full vs CompreSSM vs same-size-from-scratch on digits (a few minutes on a CPU)",
        description="Train (1) the full-size LRU (n=64), (2) the same with CompreSSM in tolerance mode and (3) "
        "the CompreSSM run's final per-layer sizes from scratch, on scikit-learn's digits read as 64-step "
        "pixel sequences (no download). Prints a table and writes a run folder with report.md/.html, "
        "metrics.json, plots and checkpoints.",
        formatter_class=_Formatter,
    )
    d.add_argument("--quick", action="store_true", help="smoke-test size (n=32, 4 epochs; under a minute)")
    d.add_argument("--out", help="run folder (default: a new folder under runs/)")
    d.add_argument("--tau", type=float, default=0.1, help="CompreSSM tolerance: discarded fraction of the HSV sum")
    d.add_argument("--seed", type=int, default=0, help="seed")
    d.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    d.add_argument("--no-progress", action="store_true", help="no progress bars (log lines per epoch instead)")
    d.set_defaults(func=_cmd_demo)

    t = sub.add_parser(
        "train",
        help="train one configuration (YAML), with optional in-training reduction",
        description="Train an LRU classifier from a YAML config. Overrides are dotted key=value pairs, e.g. "
        "optim.epochs=5 compression.mode=tolerance compression.tau=0.05. The run folder holds "
        "checkpoints/last.pt; running the same command again resumes from it.\n\n"
        "Config sections: data (name: digits|mnist1d|listops|npz, path, n_samples, seq_len, val_fraction, "
        "test_fraction, split_seed), model (d_model, d_state, n_layers, dropout, r_min, r_max), optim (epochs, "
        "batch_size, lr, ssm_lr_factor, weight_decay, warmup_fraction, grad_clip, eval_batch_size), compression "
        "(mode: none|tolerance|fraction|rank|pragmatic, tau, fraction, rank, rank_total, tolerance, schedule, gate, "
        "optimizer_policy), and top-level name, seed, device, threads, out. See configs/*.yaml.",
        formatter_class=_Formatter,
    )
    t.add_argument("--config", required=True, help="YAML configuration file")
    t.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="overrides, e.g. optim.epochs=5")
    t.add_argument("--out", help="run folder (default: config 'out' or a new folder under runs/)")
    t.add_argument("--device", help="override the config's device (auto, cpu, cuda, cuda:N)")
    t.add_argument("--no-resume", action="store_true", help="start from scratch even if a checkpoint exists")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(func=_cmd_train)

    e = sub.add_parser(
        "experiment",
        help="the published protocol at small scale: baselines, several τ, same size from scratch, seeds",
        description="For every seed: the full model, optional smaller baselines (experiment.baseline_states), "
        "CompreSSM at each τ in experiment.taus and each CompreSSM run's final sizes from scratch. Aggregates "
        "mean ± std and the mean of the best 3 seeds; writes report.md/.html, metrics.json and plots. Finished "
        "runs are reused when the command is repeated.",
        formatter_class=_Formatter,
    )
    e.add_argument("config", help="YAML file: a run config plus an 'experiment' section")
    e.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="overrides of the run config")
    e.add_argument("--seeds", type=int, nargs="+", help="seeds (default: experiment.seeds)")
    e.add_argument("--out", help="output folder (default: a new folder under runs/)")
    e.add_argument("--device", help="override the config's device")
    e.add_argument("--no-progress", action="store_true", help="no progress bars")
    e.set_defaults(func=_cmd_experiment)

    a = sub.add_parser(
        "analyze",
        help="per-layer HSVs, poles and error bounds of a trained model",
        description="Analyse every LRU layer of a checkpoint written by ssmred (checkpoints/*.pt) or of a plain "
        "LRUModel state dict (torch.save(model.state_dict(), path)): Hankel singular values (square-root "
        "method), poles, the balanced-truncation bound 2Σ_{i>r}σ_i for every order r, and the orders chosen "
        "by several tolerances. Writes analysis.md/.html, analysis.json and plots/analysis.png.",
        formatter_class=_Formatter,
    )
    a.add_argument("checkpoint", help="checkpoint or state-dict file")
    a.add_argument("--out", help="output folder (default: <checkpoint>-analysis next to it)")
    a.add_argument("--taus", type=float, nargs="+", default=[0.01, 0.05, 0.1, 0.2], help="tolerances to tabulate")
    a.set_defaults(func=_cmd_analyze)

    r = sub.add_parser(
        "reduce",
        help="post-training balanced truncation of every LRU layer",
        description="Reduce every LRU layer of a trained model by balanced truncation, to the order keeping "
        "(1-τ) of the HSV sum (--tau) or to a fixed order (--rank), write the reduced model as a checkpoint and "
        "report the error bound per layer and the measured change of validation accuracy (data taken from the "
        "checkpoint's config, or from --config for a plain state dict).",
        formatter_class=_Formatter,
    )
    r.add_argument("checkpoint", help="checkpoint or state-dict file")
    g = r.add_mutually_exclusive_group(required=True)
    g.add_argument("--tau", type=float, help="discarded fraction of the HSV sum, in (0, 1)")
    g.add_argument("--rank", type=int, help="reduced order of every layer")
    r.add_argument("-o", "--output", required=True, help="output checkpoint file")
    r.add_argument("--config", help="YAML config naming the data set (needed for a plain state dict)")
    r.add_argument("--device", help="device for the accuracy evaluation")
    r.set_defaults(func=_cmd_reduce)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ssmred`` console script.

    Parameters
    ----------
    argv
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status: 0 on success, 2 for a configuration / input problem, 130 when interrupted.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    from ssmred.errors import BackendUnavailableError

    try:
        from ssmred_app.trainer import ConfigError

        return int(args.func(args))
    except ConfigError as exc:
        print(f"ssmred {args.command}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except (BackendUnavailableError, FileNotFoundError) as exc:
        print(f"ssmred {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        print(f"ssmred {args.command}: interrupted (run the same command again to resume)", file=sys.stderr)
        return EXIT_INTERRUPTED


def _json(obj: Any) -> str:
    return json.dumps(obj, indent=1)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


# ---------------------------------------------------------------------------------------------- analysis
def layer_analysis(layer: Any, taus: Sequence[float]) -> dict[str, Any]:
    """HSVs, poles, bounds for every order and the orders chosen by ``taus`` for one LRU layer."""
    import numpy as np

    from ssmred import BalancedTruncation, order_from_energy
    from ssmred_torch import to_statespace

    sys_c = to_statespace(layer)
    bt = BalancedTruncation(sys_c)
    hsv = np.asarray(bt.hsv)
    bounds = np.asarray(bt.error_bounds())
    hsv_real = np.asarray(BalancedTruncation(sys_c.to_real()).hsv)
    poles = np.diag(sys_c.A)
    orders = {f"{t:g}": order_from_energy(hsv, t) for t in taus}
    return {
        "n": int(hsv.size),
        "hsv": hsv.tolist(),
        "hsv_real_output": hsv_real.tolist(),
        "bounds": bounds.tolist(),
        "poles_re": poles.real.tolist(),
        "poles_im": poles.imag.tolist(),
        "spectral_radius": float(np.abs(poles).max()),
        "orders": orders,
        "order_bounds": {k: float(bounds[r]) for k, r in orders.items()},
        "orders_real_output": {f"{t:g}": order_from_energy(hsv_real, t) for t in taus},
    }


def analyze(checkpoint: str, out: Path, *, taus: Sequence[float] = (0.01, 0.05, 0.1, 0.2)) -> list[str]:
    """Analyse every LRU layer of ``checkpoint``; write ``analysis.{md,html,json}`` and a plot into ``out``."""
    from ssmred_app import plots as rp
    from ssmred_app.report import Doc, write_json, write_report
    from ssmred_app.trainer import ConfigError, load_model_file

    for t in taus:
        if not 0 < t < 1:
            raise ConfigError(f"invalid configuration:\n  - --taus: each τ must lie in (0, 1), got {t}")
    model, config = load_model_file(checkpoint)
    layers = [layer_analysis(b.lru, taus) for b in model.blocks]
    info = {"checkpoint": str(checkpoint), "taus": list(taus), "config": config, "layers": layers}
    write_json(info, out / "analysis.json")
    rp.plot_analysis(layers, out / "plots" / "analysis.png", title=str(checkpoint))
    doc = Doc(f"ssmred analyze: {checkpoint}")
    doc.p(
        "Hankel singular values of the complex system (diag λ, diag(γ)(B_re + i B_im), C_re + i C_im) of every LRU "
        "layer, by the square-root method; r(τ) is the smallest order keeping (1 − τ) of Σσ, its a-priori bound "
        "is ‖G − G_r‖∞ ≤ 2 Σ_{i>r} σ_i. The real-output system (2n states, y = Re(C h)) has its own HSVs; the "
        "orders its HSVs select are listed for comparison (SPEC §3)."
    )
    headers = ["layer", "n", "σ₁", "σ_n", "Σσ", "spectral radius"]
    for t in taus:
        headers += [f"r(τ={t:g})", f"bound(τ={t:g})", f"r_real(τ={t:g})"]
    rows = []
    lines = []
    for i, lay in enumerate(layers):
        s = lay["hsv"]
        row: list[Any] = [i, lay["n"], f"{s[0]:.4g}", f"{s[-1]:.3g}", f"{sum(s):.4g}", f"{lay['spectral_radius']:.5f}"]
        for t in taus:
            k = f"{t:g}"
            row += [lay["orders"][k], f"{lay['order_bounds'][k]:.3g}", lay["orders_real_output"][k]]
        rows.append(row)
        lines.append(
            f"layer {i}: n={lay['n']}, σ1={s[0]:.4g}, orders "
            + ", ".join(f"τ={k}: r={r} (bound {lay['order_bounds'][k]:.3g})" for k, r in lay["orders"].items())
        )
    doc.table(headers, rows)
    doc.image("plots/analysis.png", "HSVs, poles and error bounds per layer")
    write_report(doc, out, stem="analysis")
    return lines


def reduce_checkpoint(
    checkpoint: str,
    output: str,
    *,
    tau: float | None = None,
    rank: int | None = None,
    config: str | None = None,
    device: str = "auto",
) -> dict[str, Any]:
    """Balanced truncation of every LRU layer of a trained model; writes the reduced checkpoint + summary."""
    import torch

    from ssmred import BalancedTruncation
    from ssmred_torch import from_statespace, to_statespace
    from ssmred_app.data import load_dataset
    from ssmred_app.report import Doc, write_json, write_report
    from ssmred_app.trainer import (
        ConfigError,
        _atomic_save,
        load_config,
        load_model_file,
        model_meta,
        parse_config,
        resolve_device,
    )

    if tau is not None and not 0 < tau < 1:
        raise ConfigError(f"invalid configuration:\n  - --tau: must lie in (0, 1), got {tau}")
    if rank is not None and rank < 1:
        raise ConfigError(f"invalid configuration:\n  - --rank: must be >= 1, got {rank}")
    model, cfg_dict = load_model_file(checkpoint)
    if config is not None:
        cfg = load_config(config)
    elif cfg_dict is not None:
        cfg = parse_config(cfg_dict)
    else:
        cfg = None
    dev = resolve_device(device)
    data = load_dataset(cfg.data) if cfg is not None else None

    def val_acc(m: Any) -> float | None:
        if data is None:
            return None
        X = torch.as_tensor(data.X_val, device=dev)
        y = torch.as_tensor(data.y_val, device=dev)
        m = m.to(dev).eval()
        with torch.no_grad():
            return float((m(X).argmax(-1) == y).float().mean())

    acc_before = val_acc(model)
    layers = []
    for i, block in enumerate(model.blocks):
        sys_c = to_statespace(block.lru)
        bt = BalancedTruncation(sys_c)
        n = sys_c.n_states
        if rank is not None and rank > n:
            raise ConfigError(f"invalid configuration:\n  - --rank {rank} exceeds layer {i}'s state size {n}")
        try:
            res = bt.reduce(r=rank) if rank is not None else bt.reduce(energy=tau)
        except ValueError as exc:
            raise ConfigError(f"invalid configuration:\n  - layer {i}: {exc}") from exc
        note = None
        try:
            block.lru = from_statespace(res.reduced, like=block.lru)
            r_applied = res.r
        except ValueError as exc:  # e.g. an ill-conditioned re-diagonalisation: keep the layer as it is
            note = f"kept at n={n}: {exc}"
            r_applied = n
        layers.append(
            {
                "layer": i,
                "n": n,
                "r": r_applied,
                "bound": res.error_bound if r_applied == res.r else 0.0,
                "hsv": list(map(float, res.hsv)),
                "note": note,
            }
        )
    acc_after = val_acc(model)
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    model = model.cpu()
    _atomic_save(
        {
            "format": "ssmred-model",
            "version": 1,
            "config": cfg_dict if cfg_dict is not None else None,
            "state_sizes": list(model.state_sizes),
            "model_meta": model_meta(model),
            "model": model.state_dict(),
            "reduced_from": str(checkpoint),
        },
        out,
    )
    what = f"τ = {tau:g}" if tau is not None else f"rank {rank}"
    summary = {
        "checkpoint": str(checkpoint),
        "output": str(out),
        "tau": tau,
        "rank": rank,
        "layers": layers,
        "val_acc_before": acc_before,
        "val_acc_after": acc_after,
    }
    write_json(summary, out.with_suffix(".json"))
    doc = Doc(f"ssmred reduce ({what}): {checkpoint}")
    doc.table(
        ["layer", "n", "r", "bound 2Σ_{i>r}σ_i"],
        [[lay["layer"], lay["n"], lay["r"], f"{lay['bound']:.4g}"] for lay in layers],
    )

    def pct(a: float | None) -> str:
        return "n/a (no data set: pass --config)" if a is None else f"{100 * a:.2f} %"

    doc.p(f"Validation accuracy before: {pct(acc_before)}; after: {pct(acc_after)}.")
    write_report(doc, out.parent, stem=out.stem)
    lines = [
        f"layer {lay['layer']}: n {lay['n']} -> r {lay['r']}, bound {lay['bound']:.4g}"
        + (f" ({lay['note']})" if lay["note"] else "")
        for lay in layers
    ]
    lines.append(f"val acc {pct(acc_before)} -> {pct(acc_after)}")
    lines.append(f"reduced model: {out} (summary {out.with_suffix('.json')}, {out.with_suffix('.md')})")
    summary["lines"] = lines
    return summary
