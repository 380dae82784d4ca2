"""The run cache and the index of an experiment folder.

Owns what decides whether a finished run can be reused (:func:`cache_key`, :func:`train_cached` and
the messages naming the keys that differ), the timing kept next to every run (``timing.json``), and
``<out>/index.json``: the base configuration, every registered run and every invocation, read and
written under a file lock, and the finished runs it names (:class:`_Run`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ssmred_app.config import (
    CompressionConfig,
    ConfigError,
    MethodConfig,
    ModelConfig,
    RunConfig,
    config_to_dict,
    parse_config,
)
from ssmred_app.data import SequenceData
from ssmred_app.experiment._spec import ExperimentSpec, _schedule_label
from ssmred_app.families import LayerName
from ssmred_app.trainer import RunResult, train_run


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
