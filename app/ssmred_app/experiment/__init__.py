r"""``ssmred experiment``: CompreSSM against every baseline over a grid, with paired statistics.

The grid is **methods × compression levels × schedules × seeds** (× optimizer policies). A compression
level is a tolerance τ (``experiment.taus``: CompreSSM in tolerance mode; τ is the discarded share of
the plain HSV sum *per attempt*, so four attempts keep about :math:`(1-\tau)^4` of the original
:math:`\sum\sigma`) or a target order r per layer (``experiment.orders``: rank mode). For every seed:

* ``full`` — the full-size model (``model.d_state``), no reduction; the reference of every speedup;
* ``n=<b>`` — optional extra sizes from scratch (``experiment.baseline_states``);

and for every level (and schedule, policy) the CompreSSM run ``CompreSSM <level>`` plus the methods of
``experiment.methods``, each paired with that CompreSSM run of the same seed:

=====================  ==========================================================================
``scratch``            the CompreSSM run's final per-layer sizes, trained from scratch
``bt_init``            the same rule, applied as many times as the schedule has attempts, at step 0
``bt_init_matched``    balanced truncation at step 0 straight to the CompreSSM run's final sizes
``random``             random balanced states, same schedule, cut to the CompreSSM run's size at
                       every attempt (``method.cut_orders``)
``smallest``           the smallest-HSV balanced states, likewise (the published catastrophic ablation)
``compressm_real``     CompreSSM choosing its orders from the exact real-output HSVs
``distill``            the CompreSSM run's final sizes from scratch, distilled from the full run
                       (α = 0.5, T = 2)
``post_bt``            the full run cut once after training to the CompreSSM run's total size
                       (one global threshold on normalised HSVs; ``experiment.finetune_epochs``)
``last``               the full run pruned once by LAST scores to the same total size
``hnn``                a full-size run with λ·Σσ in the loss (``experiment.hnn_lambdas``), then the
                       post-training BT to the same total size
=====================  ==========================================================================

Runs live in ``<out>/runs/<variant>/seed<k>``: an interrupted experiment resumes, finished runs are
reused (:func:`train_cached` compares only the parts of the configuration the method reads: a full
run is reused whatever the ``compression`` section says). The post-training methods start from the
final model file of the run whose training they share (:mod:`ssmred_app.baselines`). ``<out>/index.json``
accumulates every run of every invocation: the report covers all of them, so a second call with other
levels or seeds adds to the report instead of replacing it (the invocations are listed). Every run's
load average before and after it is kept in ``timing.json`` next to it; CPU times measured while the
1-minute load average exceeded the number of CPUs are flagged.

Examples
--------
>>> spec = parse_experiment({"experiment": {"taus": [0.05, 0.1]}})
>>> spec.taus, spec.from_scratch, spec.method_list
([0.05, 0.1], True, ['compressm', 'scratch'])
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import re
import time
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import model_validator

from ssmred_app.config import (
    CompressionConfig,
    ConfigError,
    MethodConfig,
    ModelConfig,
    RunConfig,
    apply_overrides,
    config_to_dict,
    parse_config,
    read_yaml,
    with_sections,
)
from ssmred_app.data import SequenceData
from ssmred_app.errors import RunFolderBusy
from ssmred_app.families import LayerName, config_state_sizes
from ssmred_app.report import Doc, write_json, write_report
from ssmred_app.schema import Section, invalid_combination, validate_mapping, value_rule
from ssmred_app.trainer import RunResult, environment, train_run

__all__ = [
    "EXPERIMENT_COLUMNS",
    "EXPERIMENT_METHODS",
    "ExperimentSpec",
    "aggregate",
    "cache_key",
    "comparisons",
    "cut_table",
    "experiment_doc",
    "load_experiment",
    "parse_experiment",
    "run_experiment",
    "run_variants",
    "train_cached",
]

ExperimentMethod = Literal[
    "compressm",
    "scratch",
    "bt_init",
    "bt_init_matched",
    "random",
    "smallest",
    "compressm_real",
    "distill",
    "post_bt",
    "last",
    "hnn",
]
EXPERIMENT_METHODS: tuple[str, ...] = typing.get_args(ExperimentMethod)

#: label prefix and plot group of every method
_LABEL = {
    "compressm": "CompreSSM",
    "scratch": "scratch",
    "bt_init": "BT-init",
    "bt_init_matched": "BT-init matched",
    "random": "random",
    "smallest": "smallest",
    "compressm_real": "CompreSSM real-HSV",
    "distill": "KD",
    "post_bt": "post-BT",
    "last": "LAST",
    "hnn": "HNN",
}


@dataclass(frozen=True)
class ExperimentSpec:
    """The ``experiment`` section of an experiment file plus the base run configuration.

    Attributes
    ----------
    base
        Configuration shared by all runs (its ``compression`` section supplies gate, schedule and
        optimizer policy of the CompreSSM runs).
    taus
        Compression levels as tolerances (CompreSSM in tolerance mode).
    baseline_states
        Extra state sizes trained from scratch without reduction.
    from_scratch
        Also train the CompreSSM runs' final sizes from scratch (when ``methods`` is not given).
    seeds
        Seeds (overridden by ``--seeds``).
    optimizer_policies
        Adam-moment policies of the CompreSSM runs (default: the base config's); runs with a policy
        other than the base config's are labelled with it, e.g. ``CompreSSM τ=0.1 (reset)``.
    orders
        Compression levels as target orders per layer (CompreSSM in rank mode).
    schedules
        Reduction schedules (each a list of steps / fractions; ``None``: the base config's); runs on a
        schedule other than the first are labelled ``@<schedule>``.
    methods
        The methods besides ``full`` (:data:`EXPERIMENT_METHODS`; default ``compressm`` and, with
        ``from_scratch``, ``scratch``). ``compressm`` always runs: it defines every level's sizes.
    hnn_lambdas
        λ of the Hankel nuclear-norm runs.
    finetune_epochs
        Fine-tuning epochs after the post-training cuts (``post_bt``, ``last``, ``hnn``).
    min_order
        Floor of every layer's order in every cut of every method.
    """

    base: RunConfig
    taus: list[float] = field(default_factory=lambda: [0.05, 0.1])
    baseline_states: list[int] = field(default_factory=list)
    from_scratch: bool = True
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    optimizer_policies: list[str] = field(default_factory=list)
    orders: list[int] = field(default_factory=list)
    schedules: list[list[int | float] | None] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    hnn_lambdas: list[float] = field(default_factory=lambda: [1e-3])
    finetune_epochs: int = 0
    min_order: int = 1

    @property
    def method_list(self) -> list[str]:
        """The methods that run (``compressm`` first)."""
        methods = list(self.methods) or (["compressm", "scratch"] if self.from_scratch else ["compressm"])
        return ["compressm", *[m for m in methods if m != "compressm"]]

    @property
    def levels(self) -> list[tuple[str, dict[str, Any]]]:
        """``(label, compression settings)`` of every level."""
        out = [(f"τ={t:g}", {"mode": "tolerance", "tau": t}) for t in self.taus]
        return out + [(f"r={r}", {"mode": "rank", "rank": r}) for r in self.orders]


class _ExperimentSection(Section):
    taus: Annotated[
        list[float],
        value_rule(lambda v: all(0 < t < 1 for t in v), "expected a list of numbers in (0, 1), got {v!r}"),
    ] = [0.05, 0.1]
    orders: Annotated[
        list[int], value_rule(lambda v: all(r >= 1 for r in v), "expected a list of positive ints, got {v!r}")
    ] = []
    baseline_states: Annotated[
        list[int], value_rule(lambda v: all(s >= 1 for s in v), "expected a list of positive ints, got {v!r}")
    ] = []
    from_scratch: bool = True
    seeds: Annotated[list[int], value_rule(bool, "expected a non-empty list of ints, got {v!r}")] = [0, 1, 2]
    optimizer_policies: list[Literal["project", "slice", "reset"]] = []
    schedules: list[list[int | float] | None] = []
    methods: list[ExperimentMethod] = []
    hnn_lambdas: Annotated[
        list[float], value_rule(lambda v: bool(v) and all(x >= 0 for x in v), "expected numbers >= 0, got {v!r}")
    ] = [1e-3]
    finetune_epochs: Annotated[int, value_rule(lambda v: v >= 0, "must be >= 0, got {v}")] = 0
    min_order: Annotated[int, value_rule(lambda v: v >= 1, "must be >= 1, got {v}")] = 1

    @model_validator(mode="after")
    def _some_level(self) -> _ExperimentSection:
        if not self.taus and not self.orders:
            invalid_combination("taus: give at least one compression level (taus or orders)")
        return self


def parse_experiment(raw: Mapping[str, Any], overrides: Sequence[str] = ()) -> ExperimentSpec:
    """Validate an experiment mapping (run config + ``experiment`` section).

    Parameters
    ----------
    raw
        Parsed YAML.
    overrides
        ``dotted.key=value`` overrides, of the run configuration and of the ``experiment`` section
        (``experiment.taus=[0.04,0.2]``).

    Returns
    -------
    ExperimentSpec
        The validated experiment.

    Raises
    ------
    ConfigError
        Listing every problem of both the ``experiment`` section and the run configuration.
    """
    raw = apply_overrides(dict(raw), overrides)
    exp, problems = validate_mapping(_ExperimentSection, raw.pop("experiment", None), where="experiment")
    base, base_problems = validate_mapping(RunConfig, raw)
    if exp is None or base is None:
        raise ConfigError(*problems, *base_problems)
    from ssmred.selection import check_schedule

    for k, s in enumerate(exp.schedules):
        if s is not None:
            try:
                check_schedule(s)
            except ValueError as exc:
                raise ConfigError(f"experiment.schedules[{k}]: {exc}") from exc
    return ExperimentSpec(
        base,
        list(exp.taus),
        list(exp.baseline_states),
        exp.from_scratch,
        list(exp.seeds),
        list(exp.optimizer_policies),
        list(exp.orders),
        [None if s is None else list(s) for s in exp.schedules],
        list(exp.methods),
        list(exp.hnn_lambdas),
        exp.finetune_epochs,
        exp.min_order,
    )


def load_experiment(path: str | os.PathLike[str], overrides: Sequence[str] = ()) -> ExperimentSpec:
    """Read and validate an experiment YAML file."""
    return parse_experiment(read_yaml(path), overrides)


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9.=_-]+", "_", label.replace("τ", "tau").replace("λ", "lambda"))


@dataclass
class _Run:
    variant: str
    group: str
    seed: int
    result: RunResult
    level: str = ""
    method: str = "full"
    path: str = ""
    timing: dict[str, Any] = field(default_factory=dict)
    suffix: str = ""


# ---------------------------------------------------------------------------------------------- caching
def cache_key(cfg: RunConfig | Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a run configuration that decide its result (name, out and unread sections dropped).

    ``method.name: auto`` is resolved; a method that does not read the ``compression`` section
    (``full``, ``distill``, ``last``, and ``post_bt``/``hnn`` with a ``target_total``) gets the default
    section, and ``full`` the default ``method`` section, so that e.g. a full run is reused whatever
    τ the experiment file names.

    Parameters
    ----------
    cfg
        A configuration or its stored mapping.

    Returns
    -------
    dict
        Plain data; equal keys mean the same training.
    """
    if not isinstance(cfg, RunConfig):
        cfg = parse_config(dict(cfg))
    d = _drop_other_families(config_to_dict(cfg))
    d.pop("name", None)
    d.pop("out", None)
    name = cfg.method.resolved(cfg.compression)
    d["method"]["name"] = name
    if name in ("full", "distill", "last") or (name in ("post_bt", "hnn") and cfg.method.target_total is not None):
        d["compression"] = CompressionConfig().model_dump()
    if name == "full":
        d["method"] = {**MethodConfig().model_dump(), "name": "full"}
    if d["method"].get("teacher"):  # the same file, named relative to the working directory or absolutely
        d["method"]["teacher"] = os.path.abspath(d["method"]["teacher"])
    return d


def _same_run(stored: Any, cfg: RunConfig) -> bool:
    try:
        return cache_key(stored) == cache_key(cfg)
    except ConfigError:
        return False


def train_cached(
    cfg: RunConfig,
    out: str | os.PathLike[str],
    *,
    data: SequenceData | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> RunResult:
    """Like :func:`train_run`, but reuse ``out/result.json`` when a finished run of the same training left it there.

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
        The stored or new measurements (:func:`cache_key` decides whether a stored run is the same).
    """
    done = Path(out) / "result.json"
    if done.is_file():
        d = json.loads(done.read_text())
        if _same_run(d.get("config"), cfg):
            log(f"[{cfg.name}] already finished: {done}")
            return RunResult.from_dict(d)
        raise ConfigError(
            f"{out}: holds a finished run of a different configuration ({_key_difference(d.get('config'), cfg)}); "
            "delete that folder to train it again with this configuration, or choose another --out"
        )
    return train_run(cfg, out, data=data, progress=progress, log=log)


def _key_difference(stored: Any, cfg: RunConfig) -> str:
    """The dotted keys whose values differ between a stored run's cache key and ``cfg``'s (for messages)."""
    try:
        old = cache_key(stored)
    except ConfigError:
        return "its stored configuration is not valid any more"
    return _difference(old, cache_key(cfg))


def _difference(old: Mapping[str, Any], new: Mapping[str, Any], most: int = 4) -> str:
    """``key: old -> new`` for the first ``most`` dotted keys whose values differ."""

    def flat(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, Mapping) else {f"{prefix}{k}": v})
        return out

    a, b = flat(old), flat(new)
    keys = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    return ", ".join(f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in keys[:most]) + (" ..." if len(keys) > most else "")


def _mtime(path: Path) -> float | None:
    return path.stat().st_mtime_ns if path.is_file() else None


def _timed(fn: Callable[[], RunResult], folder: Path) -> tuple[RunResult, dict[str, Any]]:
    """Run ``fn``; when it (re)wrote the run's ``result.json``, keep the load average before and after it."""
    done = folder / "result.json"
    stamp = _mtime(done)
    before = os.getloadavg()
    res = fn()
    path = folder / "timing.json"
    if _mtime(done) != stamp:
        info = {"loadavg_start": list(before), "loadavg_end": list(os.getloadavg()), "cpu_count": os.cpu_count()}
        path.write_text(json.dumps(info))
        return res, info
    with contextlib.suppress(ValueError, FileNotFoundError):
        return res, json.loads(path.read_text())
    return res, {}


def _loaded(timing: Mapping[str, Any]) -> bool:
    """Whether a run was timed on a loaded machine (1-minute load average above the CPU count)."""
    if not timing:
        return False
    cpus = timing.get("cpu_count") or 1
    return max(timing["loadavg_start"][0], timing["loadavg_end"][0]) > cpus


# ---------------------------------------------------------------------------------------------- the grid
def _schedule_label(schedule: Sequence[int | float] | None) -> str:
    return "default" if schedule is None else ",".join(f"{s:g}" for s in schedule)


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


# ---------------------------------------------------------------------------------------------- the index
@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".index.lock", "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


#: the family option sections of ``model`` (``model.s4d`` ...): only ``model.layer``'s is read
FAMILY_SECTIONS = tuple(n for n in typing.get_args(LayerName) if n in ModelConfig.model_fields)


def _drop_other_families(d: dict[str, Any]) -> dict[str, Any]:
    """Keep only the option section of the family ``model.layer`` names (the others are not read)."""
    model = d.get("model", {})
    for family in FAMILY_SECTIONS:
        if family != model.get("layer"):
            model.pop(family, None)
    return d


def _base_key(cfg: RunConfig | Mapping[str, Any]) -> dict[str, Any]:
    """What every run of one experiment shares (data, model, optim, top-level keys), as plain data.

    A stored key is parsed again, so options added later with their default compare equal.
    """
    if not isinstance(cfg, RunConfig):
        try:
            cfg = parse_config(dict(cfg))
        except ConfigError:
            return dict(cfg)
    d = config_to_dict(cfg)
    for k in ("name", "seed", "out", "compression", "method"):
        d.pop(k, None)
    return _drop_other_families(d)


def _read_index(out: Path) -> dict[str, Any]:
    p = out / "index.json"
    return json.loads(p.read_text()) if p.is_file() else {"base": None, "runs": {}, "invocations": []}


def _write_index(out: Path, index: Mapping[str, Any]) -> None:
    tmp = out / f".index.json.{os.getpid()}"
    tmp.write_text(json.dumps(index, indent=1))
    os.replace(tmp, out / "index.json")


def _register(
    out: Path, folder: Path, variant: str, group: str, seed: int, level: str, method: str, suffix: str
) -> None:
    with _locked(out):
        index = _read_index(out)
        index["runs"][str(folder.relative_to(out))] = {
            "variant": variant,
            "group": group,
            "seed": seed,
            "level": level,
            "method": method,
            "suffix": suffix,
        }
        _write_index(out, index)


def _open_index(out: Path, spec: ExperimentSpec, argv: Sequence[str] | None) -> None:
    """Check that ``out`` holds this base configuration (or nothing) and log the invocation."""
    with _locked(out):
        index = _read_index(out)
        key = _base_key(spec.base)
        if index["base"] is not None and (stored := _base_key(index["base"])) != key:
            raise ConfigError(
                f"{out}: holds an experiment of another base configuration ({_difference(stored, key)}); "
                "choose another --out"
            )
        index["base"] = key
        index["invocations"].append(
            {
                "time": time.strftime("%Y-%m-%d %H:%M:%S"),
                "levels": [lab for lab, _ in spec.levels],
                "methods": spec.method_list,
                "seeds": list(spec.seeds),
                "schedules": [_schedule_label(s) for s in (spec.schedules or [spec.base.compression.schedule])],
                "loadavg": list(os.getloadavg()),
                "argv": list(argv) if argv else None,
            }
        )
        _write_index(out, index)


def _indexed_runs(out: Path) -> tuple[list[_Run], list[dict[str, Any]]]:
    """Every finished run the index names (in registration order)."""
    index = _read_index(out)
    runs = []
    for rel, meta in index["runs"].items():
        folder = out / rel
        done = folder / "result.json"
        if not done.is_file():
            continue
        d = json.loads(done.read_text())
        timing = {}
        with contextlib.suppress(FileNotFoundError, ValueError):
            timing = json.loads((folder / "timing.json").read_text())
        runs.append(
            _Run(
                meta["variant"],
                meta["group"],
                int(meta["seed"]),
                RunResult.from_dict(d),
                meta["level"],
                meta["method"],
                str(folder),
                timing,
                meta.get("suffix", ""),
            )
        )
    return runs, index["invocations"]


# ---------------------------------------------------------------------------------------------- aggregation
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
    how many times longer the other method trained.

    Returns
    -------
    list of dict
        One entry per comparison: ``level``, ``a``, ``b``, ``seeds`` and the :func:`paired` fields.
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
    """The experiment report (built from ``metrics`` only)."""
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
