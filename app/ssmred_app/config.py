r"""Run configuration: the schema, its strict validation, YAML files and ``key=value`` overrides.

Examples
--------
>>> cfg = parse_config({"model": {"d_state": 8}, "compression": {"mode": "tolerance", "tau": 0.1}})
>>> cfg.model.d_state, cfg.compression.tau
(8, 0.1)
>>> parse_config({"model": {"d_sate": 8}})
Traceback (most recent call last):
...
ssmred_app.config.ConfigError: invalid configuration:
  - model.d_sate: unknown key (valid keys: d_model, d_state, n_layers, dropout, r_min, r_max)
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from ssmred_app.data import DATASETS, DataConfig

__all__ = [
    "CompressionConfig",
    "ConfigError",
    "ModelConfig",
    "OptimConfig",
    "RunConfig",
    "apply_overrides",
    "config_to_dict",
    "load_config",
    "parse_config",
    "read_yaml",
    "same_config",
    "with_sections",
]


class ConfigError(ValueError):
    """An invalid run configuration; the message lists every problem found."""


# --------------------------------------------------------------------------------------------------
# configuration schema
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelConfig:
    """LRU classifier size (SPEC §1).

    Attributes
    ----------
    d_model
        Width H of every block.
    d_state
        State size n of every LRU layer, or a list with one size per layer.
    n_layers
        Number of LRU blocks.
    dropout
        Dropout rate inside the blocks.
    r_min, r_max
        Ring of the initial eigenvalue moduli.
    """

    d_model: int = 16
    d_state: int | list[int] = 64
    n_layers: int = 2
    dropout: float = 0.0
    r_min: float = 0.9
    r_max: float = 0.999

    def state_sizes(self) -> list[int]:
        """Per-layer state sizes."""
        if isinstance(self.d_state, int):
            return [self.d_state] * self.n_layers
        return list(self.d_state)


@dataclass(frozen=True)
class OptimConfig:
    """Optimizer and schedule (SPEC §6).

    Attributes
    ----------
    epochs
        Number of passes over the training set.
    batch_size
        Training batch size.
    lr
        Peak learning rate of AdamW.
    ssm_lr_factor
        Learning-rate factor of the SSM parameters (no weight decay on them).
    weight_decay
        AdamW weight decay of the other parameters.
    warmup_fraction
        Fraction of the steps with linear warm-up; cosine decay after it.
    grad_clip
        Gradient-norm clip (``null`` for none).
    eval_batch_size
        Batch size for evaluation.
    """

    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-2
    ssm_lr_factor: float = 0.5
    weight_decay: float = 0.05
    warmup_fraction: float = 0.1
    grad_clip: float | None = 1.0
    eval_batch_size: int = 1024


@dataclass(frozen=True)
class CompressionConfig:
    r"""In-training reduction (CompreSSM, SPEC §6).

    Attributes
    ----------
    mode
        ``none``, ``tolerance`` (discard at most ``tau`` of :math:`\sum\sigma`), ``fraction`` (cut
        ``fraction`` of the states), ``rank`` (reduce to ``rank``), ``pragmatic`` (cut ``fraction``,
        revert if validation accuracy drops by more than ``tolerance``).
    tau
        Discarded fraction of the plain HSV sum, in (0, 1).
    fraction
        Fraction of the states removed per attempt, in (0, 1).
    rank
        Target order: one int for every layer or one per layer.
    rank_total
        Alternatively, a total state budget over all layers (shared by a common HSV-energy threshold).
    tolerance
        Allowed absolute drop of validation accuracy in ``pragmatic`` mode.
    schedule
        Attempt times: fractions of the total steps (floats < 1) or step numbers (ints); default
        four attempts at 2.5, 5, 7.5 and 10 % of training.
    gate
        Reduce a layer only when ``r < gate * n``.
    optimizer_policy
        Adam-moment surgery after a reduction: ``project``, ``slice`` or ``reset``.
    """

    mode: Literal["none", "tolerance", "fraction", "rank", "pragmatic"] = "none"
    tau: float = 0.05
    fraction: float = 0.1
    rank: int | list[int] | None = None
    rank_total: int | None = None
    tolerance: float = 0.02
    schedule: list[float] | None = None
    gate: float = 0.95
    optimizer_policy: Literal["project", "slice", "reset"] = "project"


@dataclass(frozen=True)
class RunConfig:
    """A whole training run.

    Attributes
    ----------
    name
        Run name (used in reports).
    seed
        Seed of initialisation, data order and dropout.
    device
        ``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``.
    threads
        Torch CPU threads (default 1: these small models run fastest single-threaded, and on a busy
        2-core machine torch's default pool was 10-80x slower per step in our measurements; ``null``
        keeps torch's default).
    out
        Run folder (``null``: a new folder under ``runs/``).
    data, model, optim, compression
        The sections.
    """

    name: str = "run"
    seed: int = 0
    device: str = "auto"
    threads: int | None = 1
    out: str | None = None
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    compression: CompressionConfig = field(default_factory=CompressionConfig)


_SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "model": ModelConfig,
    "optim": OptimConfig,
    "compression": CompressionConfig,
}


def _type_ok(value: Any, tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if tp is Any:
        return True
    if origin is Literal:
        return value in typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, a) for a in typing.get_args(tp))
    if origin is list:
        (item,) = typing.get_args(tp)
        return isinstance(value, list) and all(_type_ok(v, item) for v in value)
    if tp is type(None):
        return value is None
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, tp)


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"a list of {_type_name(typing.get_args(tp)[0])}"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _build(cls: type, raw: Any, prefix: str, problems: list[str]) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        problems.append(f"{prefix or 'config'}: expected a mapping, got {type(raw).__name__}")
        return cls()
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        where = f"{prefix}{key}"
        if key not in names:
            problems.append(f"{where}: unknown key (valid keys: {', '.join(names)})")
            continue
        tp = hints[key]
        if key in _SECTIONS and cls is RunConfig:
            kwargs[key] = _build(_SECTIONS[key], value, f"{key}.", problems)
            continue
        if not _type_ok(value, tp):
            problems.append(f"{where}: expected {_type_name(tp)}, got {value!r}")
            continue
        if tp is float or (typing.get_origin(tp) in (typing.Union, types.UnionType) and isinstance(value, int)):
            if float in typing.get_args(tp) and int not in typing.get_args(tp) and not isinstance(value, bool):
                value = float(value)
        kwargs[key] = float(value) if tp is float else value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:  # pragma: no cover - defensive
        problems.append(f"{prefix or 'config'}: {exc}")
        return cls()


def _check_values(cfg: RunConfig, problems: list[str]) -> None:
    d, m, o, c = cfg.data, cfg.model, cfg.optim, cfg.compression

    def need(cond: bool, msg: str) -> None:
        if not cond:
            problems.append(msg)

    need(d.name in DATASETS, f"data.name: unknown data set {d.name!r} (choose one of {', '.join(DATASETS)})")
    if d.name == "npz":
        if d.path is None:
            problems.append("data.path: required for data.name 'npz' (an .npz file with arrays X and y)")
        elif not Path(d.path).is_file():
            problems.append(f"data.path: file {d.path!r} does not exist")
    elif d.path is not None:
        problems.append(f"data.path: only used with data.name 'npz' (got data.name {d.name!r})")
    need(d.n_samples is None or d.n_samples >= 20, f"data.n_samples: must be >= 20, got {d.n_samples}")
    need(d.seq_len is None or d.seq_len >= 8, f"data.seq_len: must be >= 8, got {d.seq_len}")
    need(0 < d.val_fraction < 0.5, f"data.val_fraction: must lie in (0, 0.5), got {d.val_fraction}")
    need(0 <= d.test_fraction < 0.5, f"data.test_fraction: must lie in [0, 0.5), got {d.test_fraction}")

    need(m.d_model >= 1, f"model.d_model: must be >= 1, got {m.d_model}")
    need(m.n_layers >= 1, f"model.n_layers: must be >= 1, got {m.n_layers}")
    sizes = m.state_sizes()
    if isinstance(m.d_state, list) and len(m.d_state) != m.n_layers:
        problems.append(f"model.d_state: {len(m.d_state)} sizes given for {m.n_layers} layers")
    need(all(n >= 1 for n in sizes), f"model.d_state: state sizes must be >= 1, got {m.d_state}")
    need(all(n <= 4096 for n in sizes), f"model.d_state: state sizes above 4096 are not supported, got {m.d_state}")
    need(0 <= m.dropout < 1, f"model.dropout: must lie in [0, 1), got {m.dropout}")
    need(0 < m.r_min < m.r_max < 1, f"model.r_min/r_max: need 0 < r_min < r_max < 1, got {m.r_min}, {m.r_max}")

    need(o.epochs >= 1, f"optim.epochs: must be >= 1, got {o.epochs}")
    need(o.batch_size >= 1, f"optim.batch_size: must be >= 1, got {o.batch_size}")
    need(o.eval_batch_size >= 1, f"optim.eval_batch_size: must be >= 1, got {o.eval_batch_size}")
    need(o.lr > 0, f"optim.lr: must be > 0, got {o.lr}")
    need(0 < o.ssm_lr_factor <= 10, f"optim.ssm_lr_factor: must lie in (0, 10], got {o.ssm_lr_factor}")
    need(o.weight_decay >= 0, f"optim.weight_decay: must be >= 0, got {o.weight_decay}")
    need(0 <= o.warmup_fraction < 1, f"optim.warmup_fraction: must lie in [0, 1), got {o.warmup_fraction}")
    need(o.grad_clip is None or o.grad_clip > 0, f"optim.grad_clip: must be > 0 or null, got {o.grad_clip}")

    need(0 < c.tau < 1, f"compression.tau: must lie in (0, 1) (discarded fraction of the HSV sum), got {c.tau}")
    need(0 < c.fraction < 1, f"compression.fraction: must lie in (0, 1), got {c.fraction}")
    need(0 < c.tolerance < 1, f"compression.tolerance: must lie in (0, 1), got {c.tolerance}")
    need(0 < c.gate <= 1, f"compression.gate: must lie in (0, 1], got {c.gate}")
    if c.mode == "rank":
        if (c.rank is None) == (c.rank_total is None):
            problems.append("compression.rank: mode 'rank' needs exactly one of compression.rank and rank_total")
        elif c.rank_total is not None:
            if not m.n_layers <= c.rank_total <= sum(sizes):
                problems.append(
                    f"compression.rank_total: must lie in [{m.n_layers}, {sum(sizes)}] (one state per layer at "
                    f"least, at most all states), got {c.rank_total}"
                )
        else:
            ranks = [c.rank] * m.n_layers if isinstance(c.rank, int) else list(c.rank)
            if len(ranks) != m.n_layers:
                problems.append(f"compression.rank: {len(ranks)} ranks given for {m.n_layers} layers")
            elif any(not 1 <= r <= n for r, n in zip(ranks, sizes, strict=True)):
                problems.append(f"compression.rank: each rank must lie in [1, d_state]; got {c.rank} for {sizes}")
    if c.schedule is not None:
        if not c.schedule:
            problems.append("compression.schedule: must not be empty (omit it for the default)")
        for s in c.schedule:
            if isinstance(s, float) and not 0 < s < 1:
                problems.append(f"compression.schedule: fractions must lie in (0, 1), got {s}")
            elif isinstance(s, int) and s < 1:
                problems.append(f"compression.schedule: step numbers must be >= 1, got {s}")

    if cfg.device not in ("auto", "cpu") and not cfg.device.startswith("cuda"):
        problems.append(f"device: expected auto, cpu, cuda or cuda:N, got {cfg.device!r}")
    need(cfg.threads is None or cfg.threads >= 1, f"threads: must be >= 1, got {cfg.threads}")


def parse_config(raw: Mapping[str, Any] | None) -> RunConfig:
    """Build a :class:`RunConfig` from a mapping and validate it completely.

    Parameters
    ----------
    raw
        Parsed YAML (sections ``data``, ``model``, ``optim``, ``compression`` and top-level keys).

    Returns
    -------
    RunConfig
        The validated configuration.

    Raises
    ------
    ConfigError
        Listing every unknown key, wrong type and impossible value at once.

    Examples
    --------
    >>> parse_config({"compression": {"mode": "tolerance", "tau": 1.5}})
    Traceback (most recent call last):
    ...
    ssmred_app.config.ConfigError: invalid configuration:
      - compression.tau: must lie in (0, 1) (discarded fraction of the HSV sum), got 1.5
    """
    problems: list[str] = []
    cfg = _build(RunConfig, raw, "", problems)
    if not problems:
        _check_values(cfg, problems)
    if problems:
        raise ConfigError("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))
    return cfg


def _yaml() -> Any:
    try:
        import yaml
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigError("reading YAML configs needs pyyaml. Install it with: pip install 'ssmred[data]'") from exc
    return yaml


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` overrides (values parsed as YAML) to a raw config mapping.

    Parameters
    ----------
    raw
        The parsed config (not modified).
    overrides
        Strings ``dotted.key=value``.

    Returns
    -------
    dict
        A new mapping.

    Raises
    ------
    ConfigError
        For an override without ``=``.

    Examples
    --------
    >>> apply_overrides({"model": {"d_state": 8}}, ["model.d_state=16", "seed=3"])
    {'model': {'d_state': 16}, 'seed': 3}
    """
    yaml = _yaml()
    out = json.loads(json.dumps(raw))
    for item in overrides:
        if "=" not in item:
            raise ConfigError(
                f"invalid configuration:\n  - override {item!r}: expected key=value (e.g. optim.epochs=5)"
            )
        key, value = item.split("=", 1)
        node = out
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"invalid configuration:\n  - override {item!r}: {p} is not a section")
        node[parts[-1]] = yaml.safe_load(value)
    return out


def read_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML mapping, with a clear error for a missing file or bad syntax."""
    yaml = _yaml()
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"invalid configuration:\n  - config file {str(p)!r} does not exist")
    try:
        raw = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid configuration:\n  - {p}: not valid YAML ({exc})") from exc
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"invalid configuration:\n  - {p}: expected a mapping at the top level")
    return raw


def load_config(path: str | os.PathLike[str], overrides: Sequence[str] = ()) -> RunConfig:
    """Read, override and validate a YAML run configuration.

    Parameters
    ----------
    path
        The YAML file.
    overrides
        ``dotted.key=value`` strings applied on top.

    Returns
    -------
    RunConfig
        The validated configuration (an ``experiment`` section, used by ``ssmred experiment``, is
        ignored).

    Raises
    ------
    ConfigError
        For a missing file, bad YAML or any invalid entry.
    """
    raw = read_yaml(path)
    raw.pop("experiment", None)  # the section of ``ssmred experiment``; one file serves both commands
    return parse_config(apply_overrides(raw, overrides))


def config_to_dict(cfg: RunConfig) -> dict[str, Any]:
    """The configuration as plain data (JSON/YAML-safe)."""
    return asdict(cfg)


def same_config(stored: Any, cfg: RunConfig) -> bool:
    """Whether a stored config (possibly written before new keys with defaults existed) equals ``cfg``."""
    try:
        return parse_config(stored) == cfg
    except ConfigError:
        return False


def with_sections(cfg: RunConfig, **changes: Any) -> RunConfig:
    """A copy of ``cfg`` with top-level values replaced and sections updated from mappings.

    Parameters
    ----------
    cfg
        The configuration (not modified).
    **changes
        Top-level keys with new values, or section names with a mapping of the keys to change in
        that section, e.g. ``compression={"mode": "tolerance", "tau": 0.1}``.

    Returns
    -------
    RunConfig
        The changed copy.

    Examples
    --------
    >>> cfg = with_sections(RunConfig(), name="small", model={"d_state": 8})
    >>> cfg.name, cfg.model.d_state, cfg.model.n_layers
    ('small', 8, 2)
    """
    for key, val in changes.items():
        if isinstance(val, Mapping):
            changes[key] = dataclasses.replace(getattr(cfg, key), **val)
    return dataclasses.replace(cfg, **changes)
