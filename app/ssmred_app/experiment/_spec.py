"""The ``experiment`` section of an experiment file: its schema, :class:`ExperimentSpec` and the parsing.

Owns the method names of the grid (``EXPERIMENT_METHODS``, their labels), the validated spec with its
compression levels, :func:`parse_experiment` / :func:`load_experiment`, and the label of a schedule.
"""

from __future__ import annotations

import os
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import model_validator

from ssmred_app.config import ConfigError, RunConfig, apply_overrides, read_yaml
from ssmred_app.schema import Section, invalid_combination, validate_mapping, value_rule

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
    """Read and validate an experiment YAML file.

    Parameters
    ----------
    path
        The YAML file: a run configuration plus an ``experiment`` section.
    overrides
        ``dotted.key=value`` overrides (see :func:`parse_experiment`).

    Returns
    -------
    ExperimentSpec
        The validated experiment.

    Raises
    ------
    ConfigError
        For a missing, empty or unparsable file, or any problem :func:`parse_experiment` finds.
    """
    return parse_experiment(read_yaml(path), overrides)


def _schedule_label(schedule: Sequence[int | float] | None) -> str:
    return "default" if schedule is None else ",".join(f"{s:g}" for s in schedule)
