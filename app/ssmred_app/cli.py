"""The ``ssmred`` command: ``demo``, ``train``, ``experiment``, ``analyze``, ``reduce``.

Run ``ssmred <command> --help`` for the options of each command. Configuration problems are reported
as one message before anything is trained (exit status 2); an interrupted run exits with status 130
and resumes when the same command is run again.

Importing this module imports neither PyTorch nor any other optional package: ``ssmred --help`` works
without them, and a command whose requirement is missing says which one and how to install it (exit
status 2). ``python -m ssmred_app`` and ``python -m ssmred_app.cli`` run the same command.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from ssmred.selection import Tolerance

__all__ = ["main"]

EXIT_CONFIG = 2
EXIT_INTERRUPTED = 130


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Descriptions wrapped to the terminal paragraph by paragraph (blank lines kept); a default shown
    only where an option has one (not ``None`` or an unset flag).
    """

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return "\n\n".join(super(_Formatter, self)._fill_text(par, width, indent) for par in text.split("\n\n"))

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def _new_run_dir(kind: str) -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{kind}-{stamp}"
    path, k = base, 1
    while path.exists():
        k += 1
        path = Path(f"{base}-{k}")
    return path


def _overrides(args: argparse.Namespace) -> list[str]:
    """The command's ``key=value`` overrides, with ``--device`` as one more."""
    return [*args.overrides, f"device={args.device}"] if args.device else list(args.overrides)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------- demo
def _cmd_demo(args: argparse.Namespace) -> int:
    from ssmred_app.config import ConfigError
    from ssmred_app.demo import DEMO_COLUMNS, demo_summary, run_demo
    from ssmred_app.report import format_table

    try:  # fail before announcing a run folder; the range is ssmred.selection's
        Tolerance(args.tau)
    except ValueError as exc:
        raise ConfigError(f"--tau: {exc}") from exc
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
    print(format_table(metrics["table"], DEMO_COLUMNS))
    print("\n" + demo_summary(metrics).replace("**", ""))
    print(f"\nreport: {out / 'report.md'} (and report.html), metrics: {out / 'metrics.json'}")
    print(f"total time {metrics['elapsed_s']:.0f} s")
    return 0


# ---------------------------------------------------------------------------------------------- train
def _cmd_train(args: argparse.Namespace) -> int:
    from ssmred_app.config import load_config, with_sections
    from ssmred_app.report import Doc, write_json, write_report
    from ssmred_app.trainer import Trainer, environment

    cfg = load_config(args.config, _overrides(args))
    out = Path(args.out or cfg.out or _new_run_dir(f"train-{cfg.name}"))
    cfg = with_sections(cfg, out=None)
    _log(f"ssmred train {cfg.name} -> {out}")
    trainer = Trainer(cfg, out, progress=not args.no_progress, log=_log)
    res = trainer.run(resume=not args.no_resume, force=args.force)
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
        from ssmred_app.demo import REDUCTION_HEADERS, reduction_rows

        doc.h("Reductions")
        doc.table(REDUCTION_HEADERS, reduction_rows(res.reductions))
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


def _cmd_train_any(args: argparse.Namespace) -> int:
    """``train`` in one process, in ``--nproc N`` processes, or as one rank of a torchrun job."""
    from ssmred_app.distributed_launch import train_command

    return train_command(args, _cmd_train)


# ---------------------------------------------------------------------------------------------- experiment
def _cmd_experiment(args: argparse.Namespace) -> int:
    import dataclasses

    from ssmred_app.experiment import EXPERIMENT_COLUMNS, load_experiment, run_experiment
    from ssmred_app.report import format_table

    spec = load_experiment(args.config, _overrides(args))
    if args.seeds:
        spec = dataclasses.replace(spec, seeds=list(args.seeds))
    out = Path(args.out or spec.base.out or _new_run_dir(f"experiment-{spec.base.name}"))
    _log(f"ssmred experiment {spec.base.name} (seeds {spec.seeds}) -> {out}")
    metrics = run_experiment(spec, out, progress=not args.no_progress, log=_log)
    print(format_table(metrics["table"], EXPERIMENT_COLUMNS))
    print(f"\nreport: {out / 'report.md'}, metrics: {out / 'metrics.json'}")
    return 0


# ---------------------------------------------------------------------------------------------- analyze / reduce
def _cmd_analyze(args: argparse.Namespace) -> int:
    from ssmred_app.analysis import analyze

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
    from ssmred_app.analysis import reduce_checkpoint

    info = reduce_checkpoint(
        args.checkpoint,
        args.output,
        tau=args.tau,
        rank=args.rank,
        config=args.config,
        device=args.device or "auto",
        force=args.force,
    )
    for line in info["lines"]:
        print(line)
    return 0


# ---------------------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``ssmred`` command."""
    p = argparse.ArgumentParser(
        prog="ssmred",
        description="Balanced truncation for deep state-space models: train SSM classifiers (LRU, S4D, S5, "
        "Mamba) that shrink while they learn (CompreSSM), compare them with baselines, analyse and reduce "
        "trained layers.",
        formatter_class=_Formatter,
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    d = sub.add_parser(
        "demo",
        help="full vs CompreSSM vs same-size-from-scratch on digits (a few minutes on a CPU)",
        description="On scikit-learn's digits read as 64-step pixel sequences (no download), one seed, LRU. "
        "The paper shape (1 block, H=8, n=256): the full model, CompreSSM in tolerance mode, its final sizes "
        "from scratch, and the same sizes cut by balanced truncation at step 0 (BT-init); then the default "
        "shape (2 blocks, H=16, n=64), where scratch is as good. Prints a table and writes a run folder with "
        "report.md/.html, metrics.json, plots and checkpoints.",
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
        description="Train an SSM classifier from a YAML config. Overrides are dotted key=value pairs, e.g. "
        "optim.epochs=5 compression.mode=tolerance compression.tau=0.05. The run folder holds "
        "checkpoints/last.pt; running the same command again resumes from it.\n\n"
        "Config sections: data (name: digits|mnist1d|listops|npz, path, n_samples, seq_len, val_fraction, "
        "test_fraction, split_seed, n_classes, vocab_size), model (layer: lru|s4d|s5|mamba, d_model, d_state, "
        "n_layers, dropout, r_min, r_max, and the family's options under s4d, s5 or mamba), optim (epochs, "
        "batch_size, lr, ssm_lr_factor, weight_decay, warmup_fraction, grad_clip, eval_batch_size, "
        "checkpoint_every), compression (mode: none|tolerance|fraction|rank|pragmatic, tau, fraction, rank, "
        "rank_total, tolerance, schedule, gate, optimizer_policy), method (the baseline a run trains: name and "
        "its options), and top-level name, seed, device, threads, out. See configs/*.yaml.",
        formatter_class=_Formatter,
    )
    t.add_argument("--config", required=True, help="YAML configuration file")
    t.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="overrides, e.g. optim.epochs=5")
    t.add_argument("--out", help="run folder (default: config 'out' or a new folder under runs/)")
    t.add_argument("--device", help="override the config's device (auto, cpu, cuda, cuda:N)")
    t.add_argument(
        "--no-resume",
        action="store_true",
        help="start from an empty run folder (a folder holding an earlier run is refused without --force)",
    )
    t.add_argument("--force", action="store_true", help="with --no-resume: delete an earlier run in the folder first")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument(
        "--nproc",
        type=int,
        default=1,
        metavar="N",
        help="train in N processes on this machine with torch DDP (torchrun's launcher, --standalone); "
        "optim.batch_size is per process, each step sees N times as many samples. Several machines: "
        "torchrun --nnodes ... -m ssmred_app train ... (docs/distributed.md)",
    )
    t.set_defaults(func=_cmd_train_any)

    e = sub.add_parser(
        "experiment",
        help="the published protocol at small scale: baselines, several τ, same size from scratch, seeds",
        description="For every seed: the full model, optional smaller baselines (experiment.baseline_states), "
        "CompreSSM at each τ in experiment.taus, each CompreSSM run's final sizes from scratch, and the methods "
        "listed in experiment.methods (BT-init, random/smallest selection, KD, post-training BT, LAST, HNN, "
        "...). Aggregates mean ± std, the mean of the best 3 seeds and paired tests against CompreSSM; writes "
        "report.md/.html, metrics.json and plots. Finished runs are reused when the command is repeated.",
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
        description="Analyse every SSM layer of a checkpoint written by ssmred (checkpoints/*.pt, any family) "
        "or of a plain LRUModel state dict (torch.save(model.state_dict(), path)): Hankel singular values "
        "(square-root "
        "method), poles, the balanced-truncation bound 2Σ_{i>r}σ_i for every order r (twice that for S4D and S5, "
        "whose output is 2 Re(Cx)), and the orders chosen "
        "by several tolerances. Writes analysis.md/.html, analysis.json and plots/analysis.png.",
        formatter_class=_Formatter,
    )
    a.add_argument("checkpoint", help="checkpoint or state-dict file")
    a.add_argument("--out", help="output folder (default: <checkpoint>-analysis next to it)")
    a.add_argument("--taus", type=float, nargs="+", default=[0.01, 0.05, 0.1, 0.2], help="tolerances to tabulate")
    a.set_defaults(func=_cmd_analyze)

    r = sub.add_parser(
        "reduce",
        help="post-training balanced truncation of every SSM layer",
        description="Reduce every SSM layer of a trained model by balanced truncation, to the order keeping "
        "(1-τ) of the HSV sum (--tau) or to a fixed order (--rank), write the reduced model as a checkpoint and "
        "report the error bound per layer and the measured change of validation accuracy (data taken from the "
        "checkpoint's config, or from --config for a plain state dict).",
        formatter_class=_Formatter,
    )
    r.add_argument("checkpoint", help="checkpoint or state-dict file")
    g = r.add_mutually_exclusive_group(required=True)
    g.add_argument("--tau", type=float, help="discarded fraction of the HSV sum, in [0, 1)")
    g.add_argument("--rank", type=int, help="reduced order of every layer")
    r.add_argument("-o", "--output", required=True, help="output checkpoint file")
    r.add_argument("--config", help="YAML config naming the data set (needed for a plain state dict)")
    r.add_argument("--device", help="device for the accuracy evaluation")
    r.add_argument("--force", action="store_true", help="allow writing over the input or into a run's checkpoints")
    r.set_defaults(func=_cmd_reduce)
    return p


# what every command needs besides the core: import name -> (what, how to install it)
_REQUIRED = {
    "torch": ("PyTorch", "pip install torch==2.13.0 (the version ssmred is tested with), or pip install 'ssmred[cli]'"),
    "pydantic": ("pydantic (run configurations)", "pip install 'ssmred[cli]'"),
}
# optional packages a command imports when it gets there (the cli extra installs them all)
_OPTIONAL = {"yaml", "tqdm", "markdown_it", "matplotlib", "sklearn", "mnist1d"}


def _missing_requirement(command: str) -> str | None:
    """The message for the first missing requirement of ``command`` (``None`` when all are there)."""
    for module, (what, how) in _REQUIRED.items():
        try:
            importlib.import_module(module)
        except ImportError:
            return f"ssmred {command} needs {what}: {how}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ssmred`` console script.

    Parameters
    ----------
    argv
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status: 0 on success, 2 for a configuration / input / data / checkpoint problem or a
        missing dependency, 3 when training diverged (NaN/inf), 130 when interrupted (SIGINT or
        SIGTERM; the state at the last step is saved).
    """
    parser = build_parser()
    args = parser.parse_args(argv)  # --help and usage errors end here, before any heavy import
    missing = _missing_requirement(args.command)
    if missing is not None:
        print(missing, file=sys.stderr)
        return EXIT_CONFIG
    from ssmred.errors import BackendUnavailableError
    from ssmred_app.config import ConfigError
    from ssmred_app.errors import RunError

    try:
        return int(args.func(args))
    except (ConfigError, RunError) as exc:
        print(f"ssmred {args.command}: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", EXIT_CONFIG)
    except (BackendUnavailableError, FileNotFoundError) as exc:
        print(f"ssmred {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except ModuleNotFoundError as exc:
        package = (exc.name or "").split(".")[0]
        if package not in _OPTIONAL:
            raise
        print(
            f"ssmred {args.command} needs the optional package {package!r}: pip install 'ssmred[cli]'", file=sys.stderr
        )
        return EXIT_CONFIG
    except KeyboardInterrupt:
        print(f"ssmred {args.command}: interrupted (run the same command again to resume)", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
