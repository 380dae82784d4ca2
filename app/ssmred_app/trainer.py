r"""Run configuration (strictly validated YAML) and the trainer behind ``ssmred train`` / ``ssmred demo``.

The trainer follows SPEC §6: AdamW with the SSM parameters (``nu_log``, ``theta_log``, ``gamma_log``,
``B_re``, ``B_im``) in their own group at ``lr * ssm_lr_factor`` without weight decay, linear warm-up
over the first ``warmup_fraction`` of the steps and cosine decay after it. When compression is on, a
:class:`ssmred_torch.CompreSSM` controller is called after every optimizer step; the validation
accuracy is measured right before and right after every reduction attempt and logged.

Checkpoints are written atomically at the end of every epoch (``checkpoints/last.pt``); a run started
again with the same output folder resumes from it. An interrupt (Ctrl-C) stops at the current step,
keeps the last completed epoch's checkpoint and re-raises.

Examples
--------
>>> cfg = parse_config({"model": {"d_state": 8}, "compression": {"mode": "tolerance", "tau": 0.1}})
>>> cfg.model.d_state, cfg.compression.tau
(8, 0.1)
>>> parse_config({"model": {"d_sate": 8}})
Traceback (most recent call last):
...
ssmred_app.trainer.ConfigError: invalid configuration:
  - model.d_sate: unknown key (valid keys: d_model, d_state, n_layers, dropout, r_min, r_max)
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import sys
import time
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ssmred_app.data import DATASETS, DataConfig, SequenceData, load_dataset

__all__ = [
    "CompressionConfig",
    "ConfigError",
    "ModelConfig",
    "OptimConfig",
    "RunConfig",
    "RunResult",
    "apply_overrides",
    "load_config",
    "parse_config",
    "train_run",
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
    ssmred_app.trainer.ConfigError: invalid configuration:
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


# --------------------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------------------


@dataclass
class RunResult:
    """Everything a run measured (plain data; written to ``metrics.json``).

    Attributes
    ----------
    name
        Run name.
    config
        The configuration as a mapping.
    test_acc, val_acc
        Final test / validation accuracy.
    initial_dims, final_dims
        Per-layer state sizes at the start and the end.
    train_time_s
        Wall-clock seconds spent in optimizer steps and reductions (evaluation excluded).
    train_cpu_s
        CPU seconds of the same (robust to other processes on a shared machine when torch runs one
        thread; speedups are computed from it).
    wall_time_s
        Total seconds including evaluation.
    reduction_time_s
        Seconds spent inside the CompreSSM controller.
    epochs
        Per-epoch log: loss, accuracy, dims, cumulative train time.
    reductions
        Per reduction attempt: step, accuracy before/after, per-layer HSVs, r, bound.
    dims_trace
        ``[step, dims]`` pairs whenever the sizes changed (plus start and end).
    """

    name: str
    config: dict[str, Any]
    test_acc: float = float("nan")
    val_acc: float = float("nan")
    initial_dims: list[int] = field(default_factory=list)
    final_dims: list[int] = field(default_factory=list)
    train_time_s: float = 0.0
    train_cpu_s: float = 0.0
    wall_time_s: float = 0.0
    reduction_time_s: float = 0.0
    epochs: list[dict[str, Any]] = field(default_factory=list)
    reductions: list[dict[str, Any]] = field(default_factory=list)
    dims_trace: list[list[Any]] = field(default_factory=list)
    total_steps: int = 0
    device: str = "cpu"

    @property
    def mean_final_dim(self) -> float:
        """Mean final state size over layers."""
        return float(np.mean(self.final_dims)) if self.final_dims else float("nan")

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping, with ``mean_final_dim`` added."""
        d = asdict(self)
        d["mean_final_dim"] = self.mean_final_dim
        return d


# --------------------------------------------------------------------------------------------------
# the training loop
# --------------------------------------------------------------------------------------------------


def resolve_device(name: str) -> str:
    """``auto`` -> ``cuda`` when available else ``cpu``; otherwise check the device exists."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"invalid configuration:\n  - device: {name!r} requested but CUDA is not available")
    return name


def _atomic_save(obj: Any, path: Path) -> None:
    import torch

    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _rng_seed(*parts: int) -> int:
    return int(np.random.SeedSequence(list(parts)).generate_state(1)[0])


def _batches(n: int, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    perm = np.random.default_rng(_rng_seed(seed, epoch)).permutation(n)
    return [perm[i : i + batch_size] for i in range(0, n, batch_size)]


def lr_lambda(total_steps: int, warmup_fraction: float) -> Callable[[int], float]:
    """Linear warm-up over ``warmup_fraction`` of the steps, then cosine decay to 0.

    Examples
    --------
    >>> f = lr_lambda(100, 0.1)
    >>> round(f(0), 3), round(f(9), 3), round(f(10), 3), round(f(100), 3)
    (0.1, 1.0, 1.0, 0.0)
    """
    warm = max(1, round(warmup_fraction * total_steps))

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        t = min(1.0, (step - warm) / max(1, total_steps - warm))
        return 0.5 * (1.0 + math.cos(math.pi * t))

    return f


class Trainer:
    """Train one LRU classifier on one data set with optional CompreSSM reduction.

    Parameters
    ----------
    cfg
        The validated run configuration.
    out
        Run folder (checkpoints under ``out/checkpoints``).
    data
        Pre-loaded data (default: loaded from ``cfg.data``).
    progress
        Show a tqdm progress bar.
    log
        Where one-line messages go (default: stderr).
    """

    def __init__(
        self,
        cfg: RunConfig,
        out: str | os.PathLike[str],
        *,
        data: SequenceData | None = None,
        progress: bool = True,
        log: Callable[[str], None] | None = None,
    ) -> None:
        import torch

        self.torch = torch
        self.cfg = cfg
        self.out = Path(out)
        self.ckpt_dir = self.out / "checkpoints"
        self.progress = progress
        self._log = log or (lambda s: print(s, file=sys.stderr, flush=True))
        if cfg.threads is not None:
            torch.set_num_threads(cfg.threads)
        self.device = resolve_device(cfg.device)
        self.data = data if data is not None else load_dataset(cfg.data)
        d = self.data
        self.tensors = {
            split: (
                torch.as_tensor(getattr(d, f"X_{split}")).to(self.device),
                torch.as_tensor(getattr(d, f"y_{split}")).to(self.device),
            )
            for split in ("train", "val", "test")
        }
        self.steps_per_epoch = math.ceil(len(d.y_train) / cfg.optim.batch_size)
        self.total_steps = self.steps_per_epoch * cfg.optim.epochs
        torch.manual_seed(cfg.seed)
        self.model = build_model(cfg.model, d).to(self.device)
        self.optimizer = self._make_optimizer()
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(self.total_steps, cfg.optim.warmup_fraction)
        )
        self.controller = build_controller(cfg.compression, cfg.model, self.total_steps)
        self.result = RunResult(name=cfg.name, config=config_to_dict(cfg), total_steps=self.total_steps)
        self.result.device = self.device
        self.result.initial_dims = state_sizes(self.model)
        self.result.dims_trace.append([0, list(self.result.initial_dims)])
        self.start_epoch = 0
        self.step = 0

    # -- pieces ------------------------------------------------------------------------------------
    def log(self, msg: str) -> None:
        """Emit one line (through tqdm when a bar is active)."""
        if self.progress:
            from tqdm import tqdm

            tqdm.write(msg, file=sys.stderr)
        else:
            self._log(msg)

    def _make_optimizer(self) -> Any:
        o = self.cfg.optim
        ssm, decay, no_decay = param_groups(self.model)
        groups = [
            {"params": ssm, "lr": o.lr * o.ssm_lr_factor, "weight_decay": 0.0, "name": "ssm"},
            {"params": decay, "lr": o.lr, "weight_decay": o.weight_decay, "name": "decay"},
            {"params": no_decay, "lr": o.lr, "weight_decay": 0.0, "name": "no_decay"},
        ]
        return self.torch.optim.AdamW([g for g in groups if g["params"]], lr=o.lr)

    def evaluate(self, split: str) -> float:
        """Accuracy on ``split`` (``train``, ``val`` or ``test``)."""
        torch = self.torch
        X, y = self.tensors[split]
        bs = self.cfg.optim.eval_batch_size
        was_training = self.model.training
        self.model.eval()
        correct = 0
        with torch.no_grad():
            for i in range(0, len(y), bs):
                correct += int((self.model(X[i : i + bs]).argmax(-1) == y[i : i + bs]).sum())
        self.model.train(was_training)
        return correct / max(1, len(y))

    # -- checkpoints -------------------------------------------------------------------------------
    def checkpoint_path(self) -> Path:
        """The resumable checkpoint of the last completed epoch."""
        return self.ckpt_dir / "last.pt"

    def save_checkpoint(self, epoch: int) -> None:
        """Write ``checkpoints/last.pt`` (and ``epoch_NNN.pt`` model weights) atomically."""
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        state = {
            "format": "ssmred-run",
            "version": 1,
            "config": self.result.config,
            "state_sizes": state_sizes(self.model),
            "model": self.model.state_dict(),
            "model_meta": model_meta(self.model),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "controller": controller_state(self.controller),
            "epoch": epoch,
            "step": self.step,
            "result": json.dumps(self.result.to_dict()),
            "torch_rng": self.torch.get_rng_state(),
        }
        _atomic_save(state, self.checkpoint_path())
        _atomic_save(
            {
                "format": "ssmred-model",
                "version": 1,
                "config": self.result.config,
                "state_sizes": state["state_sizes"],
                "model_meta": state["model_meta"],
                "model": state["model"],
                "epoch": epoch,
            },
            self.ckpt_dir / f"epoch_{epoch:03d}.pt",
        )

    def try_resume(self) -> bool:
        """Resume from ``checkpoints/last.pt`` when it exists; return whether it did."""
        path = self.checkpoint_path()
        if not path.is_file():
            return False
        torch = self.torch
        state = torch.load(path, map_location=self.device, weights_only=True)
        try:
            same = parse_config(state.get("config")) == self.cfg
        except ConfigError:
            same = False
        if not same:
            raise ConfigError(
                f"invalid configuration:\n  - {self.out}: holds a checkpoint of a different configuration; "
                "choose another --out or delete the folder"
            )
        self.model = build_model(self.cfg.model, self.data, state_sizes=state["state_sizes"]).to(self.device)
        self.model.load_state_dict(state["model"])
        self.optimizer = self._make_optimizer()
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_lambda(self.total_steps, self.cfg.optim.warmup_fraction)
        )
        self.scheduler.load_state_dict(state["scheduler"])
        load_controller_state(self.controller, state["controller"])
        self.start_epoch = int(state["epoch"])
        self.step = int(state["step"])
        restored = json.loads(state["result"])
        restored.pop("mean_final_dim", None)
        self.result = RunResult(**restored)
        self.result.config = config_to_dict(self.cfg)
        torch.set_rng_state(state["torch_rng"].cpu())
        self.log(f"[{self.cfg.name}] resumed from {path} (epoch {self.start_epoch}, step {self.step})")
        return True

    # -- the loop ----------------------------------------------------------------------------------
    def _reduce(self, step: int) -> tuple[float, float]:
        """Run the controller at ``step``; log a reduction attempt; return (wall, CPU) seconds spent."""
        attempt = self.controller is not None and is_attempt(self.controller, step)
        acc_before = self.evaluate("val") if attempt else None
        t0, c0 = time.perf_counter(), time.process_time()
        dims_before = state_sizes(self.model)
        event = controller_step(
            self.controller, step, self.model, self.optimizer, acc_before if acc_before is not None else None
        )
        spent, spent_cpu = time.perf_counter() - t0, time.process_time() - c0
        if event is None and not attempt:
            return spent, spent_cpu
        dims_after = state_sizes(self.model)
        record = describe_event(event)
        record.update(
            {
                "step": step,
                "fraction": step / self.total_steps,
                "dims_before": dims_before,
                "dims_after": dims_after,
                "val_acc_before": acc_before,
                "val_acc_after": self.evaluate("val") if dims_after != dims_before else acc_before,
                "time_s": spent,
            }
        )
        self.result.reductions.append(record)
        if dims_after != dims_before:
            self.result.dims_trace.append([step, list(dims_after)])
        after = record["val_acc_after"]
        self.log(
            f"[{self.cfg.name}] step {step} ({100 * step / self.total_steps:.1f} %): state sizes "
            f"{dims_before} -> {dims_after}; val acc {_pct(acc_before)} -> {_pct(after)}; "
            f"{1000 * spent:.1f} ms{'; ' + record['note'] if record.get('note') else ''}"
        )
        return spent, spent_cpu

    def run(
        self,
        *,
        resume: bool = True,
        on_epoch_end: Callable[[int, Trainer], None] | None = None,
    ) -> RunResult:
        """Train to the end (resuming when a checkpoint exists) and return the result.

        Parameters
        ----------
        resume
            Continue from ``checkpoints/last.pt`` when present.
        on_epoch_end
            Called with ``(epoch, trainer)`` after each epoch's checkpoint is written (tests use it to
            simulate an interruption).

        Returns
        -------
        RunResult
            Final accuracies, sizes, timings and logs.
        """
        torch = self.torch
        cfg = self.cfg
        if resume:
            self.try_resume()
        self.out.mkdir(parents=True, exist_ok=True)
        res = self.result
        Xtr, ytr = self.tensors["train"]
        bar = None
        if self.progress:
            from tqdm import tqdm

            # disable=None: a live bar on a terminal, none when output goes to a file or a CI log
            bar = tqdm(
                total=self.total_steps,
                initial=self.step,
                desc=cfg.name,
                leave=False,
                dynamic_ncols=True,
                disable=None,
            )
        wall0 = time.perf_counter() - res.wall_time_s
        try:
            self.model.train()
            for epoch in range(self.start_epoch, cfg.optim.epochs):
                t_epoch, c_epoch = time.perf_counter(), time.process_time()
                eval_time = eval_cpu = 0.0
                loss_sum, correct, seen = 0.0, 0, 0
                for idx_np in _batches(len(ytr), cfg.optim.batch_size, cfg.seed, epoch):
                    idx = torch.as_tensor(idx_np, device=self.device)
                    xb, yb = Xtr[idx], ytr[idx]
                    logits = self.model(xb)
                    loss = torch.nn.functional.cross_entropy(logits, yb)
                    self.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    if cfg.optim.grad_clip is not None:
                        torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.optim.grad_clip)
                    self.optimizer.step()
                    self.scheduler.step()
                    self.step += 1
                    loss_sum += float(loss.detach()) * len(yb)
                    correct += int((logits.argmax(-1) == yb).sum())
                    seen += len(yb)
                    # drop the graph before the controller may resize parameters: a live graph keeps the
                    # parameters' gradient accumulators (with their old shapes) alive into the next step
                    del logits, loss
                    if self.controller is not None:
                        t_eval0, c_eval0 = time.perf_counter(), time.process_time()
                        spent, spent_cpu = self._reduce(self.step)
                        res.reduction_time_s += spent
                        eval_time += time.perf_counter() - t_eval0 - spent
                        eval_cpu += time.process_time() - c_eval0 - spent_cpu
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(loss=f"{loss_sum / seen:.3f}", n=state_sizes(self.model))
                res.train_time_s += time.perf_counter() - t_epoch - eval_time
                res.train_cpu_s += time.process_time() - c_epoch - eval_cpu
                val_acc = self.evaluate("val")
                res.epochs.append(
                    {
                        "epoch": epoch + 1,
                        "step": self.step,
                        "train_loss": loss_sum / seen,
                        "train_acc": correct / seen,
                        "val_acc": val_acc,
                        "dims": state_sizes(self.model),
                        "train_time_s": res.train_time_s,
                        "train_cpu_s": res.train_cpu_s,
                    }
                )
                res.wall_time_s = time.perf_counter() - wall0
                self.log(
                    f"[{cfg.name}] epoch {epoch + 1}/{cfg.optim.epochs}: loss {loss_sum / seen:.3f}, "
                    f"val acc {_pct(val_acc)}, state sizes {state_sizes(self.model)}, "
                    f"train time {res.train_time_s:.1f} s (CPU {res.train_cpu_s:.1f} s)"
                )
                self.save_checkpoint(epoch + 1)
                if on_epoch_end is not None:
                    on_epoch_end(epoch + 1, self)
        except KeyboardInterrupt:
            self.log(f"[{cfg.name}] interrupted; resume from {self.checkpoint_path()} by running the same command")
            raise
        finally:
            if bar is not None:
                bar.close()
        res.final_dims = state_sizes(self.model)
        if res.dims_trace[-1][0] != self.step:
            res.dims_trace.append([self.step, list(res.final_dims)])
        res.val_acc = self.evaluate("val")
        res.test_acc = self.evaluate("test")
        res.wall_time_s = time.perf_counter() - wall0
        (self.out / "result.json").write_text(json.dumps(res.to_dict(), indent=1))
        return res


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f} %"


def train_run(
    cfg: RunConfig,
    out: str | os.PathLike[str],
    *,
    data: SequenceData | None = None,
    progress: bool = True,
    resume: bool = True,
    log: Callable[[str], None] | None = None,
) -> RunResult:
    """Train one configuration into ``out`` (resuming from its last checkpoint when present).

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
    resume
        Resume from ``out/checkpoints/last.pt`` when present.
    log
        Message sink (default: stderr).

    Returns
    -------
    RunResult
        The run's measurements.
    """
    return Trainer(cfg, out, data=data, progress=progress, log=log).run(resume=resume)


def environment() -> dict[str, Any]:
    """Versions and machine facts recorded in ``metrics.json``."""
    import torch

    import ssmred

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "ssmred": ssmred.__version__,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
    }


# --------------------------------------------------------------------------------------------------
# glue to the adapter (model construction, parameter groups, the CompreSSM controller)
# --------------------------------------------------------------------------------------------------

_SSM_PARAMS = ("nu_log", "theta_log", "gamma_log", "B_re", "B_im")


def model_meta(model: Any) -> dict[str, Any]:
    """Constructor arguments (besides the state sizes) needed to rebuild an ``LRUModel``."""
    enc = model.encoder
    return {
        "d_input": int(enc.in_features) if hasattr(enc, "in_features") else 1,
        "vocab_size": model.vocab_size,
        "d_model": int(model.head.in_features),
        "n_layers": len(model.blocks),
        "n_classes": int(model.head.out_features),
    }


def build_model(mcfg: ModelConfig, data: SequenceData, *, state_sizes: Sequence[int] | None = None) -> Any:
    """The ``LRUModel`` of a configuration for a data set (optionally with given per-layer sizes)."""
    from ssmred_torch import LRUModel

    tokens = data.kind == "tokens"
    return LRUModel(
        1 if tokens else data.d_input,
        mcfg.d_model,
        list(state_sizes) if state_sizes is not None else mcfg.state_sizes(),
        mcfg.n_layers,
        data.n_classes,
        vocab_size=data.d_input if tokens else None,
        dropout=mcfg.dropout,
        r_min=mcfg.r_min,
        r_max=mcfg.r_max,
    )


def state_sizes(model: Any) -> list[int]:
    """Per-layer state sizes of an ``LRUModel``."""
    return list(model.state_sizes)


def param_groups(model: Any) -> tuple[list[Any], list[Any], list[Any]]:
    """Split parameters into (SSM, decayed, not decayed) following SPEC §6.

    SSM: ``nu_log, theta_log, gamma_log, B_re, B_im`` of every LRU. Not decayed: biases, norms, ``D``
    and embeddings. Decayed: the remaining weight matrices (``C``, GLU, encoder, head).
    """
    ssm, decay, no_decay = [], [], []
    for name, p in model.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        if ".lru." in f".{name}" and leaf in _SSM_PARAMS:
            ssm.append(p)
        elif p.ndim < 2 or ".norm." in name or leaf == "D" or name.startswith("encoder.") and model.vocab_size:
            no_decay.append(p)
        else:
            decay.append(p)
    return ssm, decay, no_decay


def _infer_meta(sd: Mapping[str, Any]) -> dict[str, Any]:
    """Constructor arguments of an ``LRUModel`` from the shapes of its state dict."""
    try:
        layers = sorted({int(k.split(".")[1]) for k in sd if k.startswith("blocks.") and k.endswith(".lru.nu_log")})
        head = sd["head.weight"]
        enc = sd["encoder.weight"]
    except (KeyError, ValueError, IndexError) as exc:
        raise ConfigError(
            "invalid configuration:\n  - the file is neither an ssmred checkpoint nor an LRUModel state dict "
            "(expected keys encoder.weight, blocks.<i>.lru.nu_log, head.weight)"
        ) from exc
    if not layers:
        raise ConfigError("invalid configuration:\n  - the state dict holds no LRU layers (blocks.<i>.lru.*)")
    tokens = "encoder.bias" not in sd
    return {
        "d_input": 1 if tokens else int(enc.shape[1]),
        "vocab_size": int(enc.shape[0]) if tokens else None,
        "d_model": int(head.shape[1]),
        "n_layers": len(layers),
        "n_classes": int(head.shape[0]),
    }


def load_model_file(path: str | os.PathLike[str], *, device: str = "cpu") -> tuple[Any, dict[str, Any] | None]:
    """Load an ``LRUModel`` from an ssmred checkpoint or a plain state dict.

    Parameters
    ----------
    path
        ``checkpoints/last.pt``, ``checkpoints/epoch_NNN.pt``, a file written by ``ssmred reduce``, or
        ``torch.save(model.state_dict(), path)`` of an ``LRUModel``.
    device
        Where to put the model.

    Returns
    -------
    model : LRUModel
        The model (eval mode).
    config : dict or None
        The run configuration stored in an ssmred checkpoint (``None`` for a plain state dict).

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ConfigError
        If the file holds no recognisable model.
    """
    import torch

    from ssmred_torch import LRUModel

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"checkpoint {str(p)!r} does not exist")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConfigError(f"invalid configuration:\n  - {p}: not a torch checkpoint ({exc})") from exc
    config = None
    if isinstance(obj, Mapping) and str(obj.get("format", "")).startswith("ssmred"):
        sd, config = obj["model"], obj.get("config")
    elif isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        sd = obj["state_dict"]
    elif isinstance(obj, Mapping):
        sd = obj
    else:
        raise ConfigError(f"invalid configuration:\n  - {p}: expected a state dict, got {type(obj).__name__}")
    sd = {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in sd.items()}
    meta = _infer_meta(sd)
    sizes = [int(sd[f"blocks.{i}.lru.nu_log"].shape[0]) for i in range(meta["n_layers"])]
    model = LRUModel(
        meta["d_input"], meta["d_model"], sizes, meta["n_layers"], meta["n_classes"], vocab_size=meta["vocab_size"]
    )
    model.load_state_dict(sd)
    return model.to(device).eval(), config


def build_controller(c: CompressionConfig, m: ModelConfig, total_steps: int) -> Any:
    """The ``CompreSSM`` controller of a configuration (``None`` for mode ``none``)."""
    if c.mode == "none":
        return None
    import ssmred_torch as cp

    if c.mode == "tolerance":
        mode = cp.tolerance(c.tau)
    elif c.mode == "fraction":
        mode = cp.fraction(c.fraction)
    elif c.mode == "rank":
        mode = cp.rank(total=c.rank_total) if c.rank_total is not None else cp.rank(c.rank)
    else:
        mode = cp.pragmatic(c.fraction, c.tolerance)
    try:
        return cp.CompreSSM(
            total_steps, mode=mode, schedule=c.schedule, gate=c.gate, optimizer_policy=c.optimizer_policy
        )
    except ValueError as exc:
        raise ConfigError(f"invalid configuration:\n  - compression.schedule: {exc}") from exc


def is_attempt(controller: Any, step: int) -> bool:
    """Whether the controller acts at ``step`` (a scheduled attempt or a pragmatic check)."""
    if controller.finished:
        return False
    return step in controller.attempt_steps or step in controller.check_steps


def controller_step(controller: Any, step: int, model: Any, optimizer: Any, val_metric: float | None) -> Any:
    """Call the controller after an optimizer step; ``None`` when nothing was due."""
    result = controller.step(step, model, optimizer, val_metric=val_metric)
    return result if result.records else None


def describe_event(event: Any) -> dict[str, Any]:
    """A JSON-able record of what the controller did at one step (HSVs, chosen r, bounds per layer)."""
    if event is None:
        return {"kind": "none", "layers": [], "note": ""}
    layers: list[dict[str, Any]] = []
    notes: list[str] = []
    kinds = []
    for rec in event.records:
        kinds.append(rec.kind)
        notes += list(rec.warnings)
        if rec.kind == "accept":
            notes.append(f"pragmatic check passed ({_pct(rec.reference_metric)} -> {_pct(rec.val_metric)})")
        for i, lr in enumerate(rec.layers):
            layers.append(
                {
                    "layer": i,
                    "name": lr.name,
                    "n": lr.n,
                    "r": lr.r,
                    "r_applied": lr.n_after,
                    "status": lr.status,
                    "bound": lr.error_bound,
                    "hsv": [float(x) for x in lr.hsv],
                    "message": lr.message,
                }
            )
    return {"kind": "+".join(kinds), "layers": layers, "note": "; ".join(notes)}


def controller_state(controller: Any) -> Any:
    """Resumable state of the controller (plain data)."""
    return None if controller is None else controller.state_dict()


def load_controller_state(controller: Any, state: Any) -> None:
    """Restore :func:`controller_state`."""
    if controller is not None and state is not None:
        controller.load_state_dict(state)
