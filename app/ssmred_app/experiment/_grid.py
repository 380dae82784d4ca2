"""Running an experiment: every variant of the grid for every seed, then the report.

Owns :func:`run_variants` (the methods × levels × schedules × policies grid, each run registered in the
index and trained or reused through the cache) and :func:`run_experiment` (open the index, run the
grid, write the report).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ssmred_app.config import CompressionConfig, ConfigError, RunConfig, with_sections
from ssmred_app.data import SequenceData
from ssmred_app.errors import RunFolderBusy
from ssmred_app.experiment._cache import _open_index, _register, _Run, _same_run, _timed, train_cached
from ssmred_app.experiment._report import write_experiment_report
from ssmred_app.experiment._spec import _LABEL, ExperimentSpec, _schedule_label
from ssmred_app.families import config_state_sizes
from ssmred_app.trainer import RunResult


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9.=_-]+", "_", label.replace("τ", "tau").replace("λ", "lambda"))


def _cuts(res: RunResult) -> list[list[int]]:
    """Sizes after every scheduled attempt of a CompreSSM run (its reduction records)."""
    return [list(r["dims_after"]) for r in res.reductions if str(r.get("kind", "")).startswith("reduce")]


def run_variants(
    spec: ExperimentSpec,
    out: str | os.PathLike[str],
    *,
    progress: bool = True,
    log: Callable[[str], None] = print,
    data: SequenceData | None = None,
) -> list[_Run]:
    """Train every variant for every seed (skipping finished runs); see the module docstring.

    Parameters
    ----------
    spec
        The experiment.
    out
        Output folder.
    progress
        Progress bars.
    log
        Message sink.
    data
        Pre-loaded data set.

    Returns
    -------
    list
        One entry per run of this invocation.
    """
    from ssmred_app.baselines import posthoc_cached

    runs: list[_Run] = []
    base = spec.base
    root = Path(out) / "runs"
    methods = spec.method_list
    epochs = base.optim.epochs
    plain = CompressionConfig().model_dump()
    floor = {"min_order": spec.min_order} if spec.min_order > 1 else {}
    schedules = spec.schedules or [base.compression.schedule]
    for seed in spec.seeds:

        def go(
            variant: str,
            group: str,
            cfg: RunConfig,
            *,
            level: str = "",
            method: str = "full",
            source: Path | None = None,
            suffix: str = "",
            seed: int = seed,
        ) -> RunResult | None:
            cfg = with_sections(cfg, seed=seed, name=f"{variant} seed {seed}")
            folder = root / _slug(variant) / f"seed{seed}"
            _register(Path(out), folder, variant, group, seed, level, method, suffix)
            if source is None:
                fn = lambda: train_cached(cfg, folder, data=data, progress=progress, log=log)  # noqa: E731
            else:
                fn = lambda: posthoc_cached(cfg, source, folder, data=data, log=log, same=_same_run)  # noqa: E731
            try:
                res, timing = _timed(fn, folder)
            except RunFolderBusy as exc:  # another worker trains it; the report picks it up when it is done
                log(f"[{variant} seed {seed}] skipped: {exc}")
                return None
            runs.append(_Run(variant, group, seed, res, level, method, str(folder), timing, suffix))
            log(
                f"[{variant} seed {seed}] test acc {100 * res.test_acc:.1f} %, dims {res.final_dims}, "
                f"train CPU time {res.train_cpu_s:.1f} s (wall {res.train_time_s:.1f} s)"
            )
            return res

        go("full", "full", with_sections(base, compression=plain))
        full_dir = root / "full" / f"seed{seed}"
        for b in spec.baseline_states:
            go(f"n={b}", "n=k from scratch", with_sections(base, model={"d_state": b}, compression=plain))
        hnn_src: dict[float, Path | None] = {}

        def hnn_source(lam: float, hnn_src: dict[float, Path | None] = hnn_src, seed: int = seed) -> Path | None:
            """The full-size HNN run of this seed (trained on first use, after the other methods of the level)."""
            if lam not in hnn_src:
                label = f"HNN λ={lam:g} (full size)"
                cfg = with_sections(base, compression=plain, method={"name": "hnn", "hnn_lambda": lam})
                done = go(label, "HNN full size", cfg, method="hnn")
                hnn_src[lam] = None if done is None else root / _slug(label) / f"seed{seed}"
            return hnn_src[lam]

        default_policy = base.compression.optimizer_policy
        for policy in spec.optimizer_policies or [default_policy]:
            for si, schedule in enumerate(schedules):
                sfx = ("" if policy == default_policy else f" ({policy})") + (
                    "" if si == 0 else f" @{_schedule_label(schedule)}"
                )
                for level, settings in spec.levels:
                    comp_cfg = with_sections(
                        base, compression={**settings, "schedule": schedule, "optimizer_policy": policy}
                    )
                    if floor:
                        comp_cfg = with_sections(comp_cfg, method={"name": "compressm", **floor})
                    res = go(
                        f"CompreSSM {level}{sfx}",
                        "CompreSSM" + sfx,
                        comp_cfg,
                        level=level,
                        method="compressm",
                        suffix=sfx,
                    )
                    if res is None:
                        continue
                    sizes = list(res.final_dims)
                    cuts = _cuts(res)
                    total = int(sum(sizes))
                    scratch_model = {"d_state": config_state_sizes(base.model, sizes)}

                    def named(m: str, level: str = level, sfx: str = sfx) -> tuple[str, str]:
                        return f"{_LABEL[m]} {level}{sfx}", _LABEL[m] + sfx

                    for m in methods[1:]:
                        if m == "scratch":
                            cfg = with_sections(base, model=scratch_model, compression=plain)
                        elif m == "bt_init":
                            if settings["mode"] == "rank":  # one cut to r at step 0: that is bt_init_matched
                                continue
                            cfg = with_sections(comp_cfg, method={"name": "bt_init", **floor})
                        elif m == "bt_init_matched":
                            cfg = with_sections(comp_cfg, method={"name": "bt_init", "cut_orders": [sizes]})
                        elif m in ("random", "smallest"):
                            if not cuts:
                                continue
                            cfg = with_sections(comp_cfg, method={"name": m, "cut_orders": cuts})
                        elif m == "compressm_real":
                            cfg = with_sections(comp_cfg, method={"name": "compressm", "hsv": "real", **floor})
                        elif m == "distill":
                            teacher = str(full_dir / "checkpoints" / f"epoch_{epochs:03d}.pt")
                            cfg = with_sections(
                                base,
                                model=scratch_model,
                                compression=plain,
                                method={"name": "distill", "teacher": teacher},
                            )
                        elif m in ("post_bt", "last"):
                            cfg = with_sections(
                                base,
                                compression=plain,
                                method={
                                    "name": m,
                                    "target_total": total,
                                    "finetune_epochs": spec.finetune_epochs,
                                    **floor,
                                },
                            )
                            label, group = named(m)
                            go(label, group, cfg, level=level, method=m, source=full_dir, suffix=sfx)
                            continue
                        elif m == "hnn":
                            for lam in spec.hnn_lambdas:
                                src = hnn_source(lam)
                                if src is None:
                                    continue
                                cfg = with_sections(
                                    base,
                                    compression=plain,
                                    method={
                                        "name": "hnn",
                                        "hnn_lambda": lam,
                                        "target_total": total,
                                        "finetune_epochs": spec.finetune_epochs,
                                        **floor,
                                    },
                                )
                                lab = f"HNN λ={lam:g} {level}{sfx}"
                                go(lab, f"HNN λ={lam:g}{sfx}", cfg, level=level, method="hnn", source=src, suffix=sfx)
                            continue
                        else:  # pragma: no cover - the schema lists every method
                            raise ConfigError(f"experiment.methods: unknown method {m!r}")
                        label, group = named(m)
                        go(label, group, cfg, level=level, method=m, suffix=sfx)
    return runs


def run_experiment(
    spec: ExperimentSpec,
    out: str | os.PathLike[str],
    *,
    progress: bool = True,
    log: Callable[[str], None] = print,
    title: str | None = None,
    argv: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Run the grid, then write ``metrics.json``, ``report.md``/``.html`` and plots over every run of ``out``.

    Parameters
    ----------
    spec
        The experiment.
    out
        Output folder (may hold runs of earlier invocations with the same base configuration: the
        report accumulates them).
    progress
        Show progress bars.
    log
        Message sink.
    title
        Report title.
    argv
        The command line, recorded with the invocation.

    Returns
    -------
    dict
        The metrics written to ``metrics.json``.

    Raises
    ------
    ConfigError
        When ``out`` holds an experiment of another base configuration.
    """
    from ssmred_app.data import load_dataset

    out = Path(out)
    t0 = time.perf_counter()
    _open_index(out, spec, argv)
    data = load_dataset(spec.base.data)
    run_variants(spec, out, progress=progress, log=log, data=data)
    return write_experiment_report(out, spec.base, data=data, title=title, elapsed=time.perf_counter() - t0)
