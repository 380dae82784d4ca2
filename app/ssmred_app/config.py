r"""Run configuration: reading YAML files, ``key=value`` overrides, validation and :class:`ConfigError`.

The sections themselves (:class:`RunConfig` and its pydantic section models, with their value ranges and
the rules tying fields together) live in :mod:`ssmred_app.config_sections` and are re-exported here.
:func:`parse_config` reports every problem at once as one :class:`ConfigError`, one line
``section.key: message`` per problem.

Examples
--------
>>> cfg = parse_config({"model": {"d_state": 8}, "compression": {"mode": "tolerance", "tau": 0.1}})
>>> cfg.model.d_state, cfg.compression.tau
(8, 0.1)
>>> parse_config({"model": {"d_sate": 8}, "optim": {"epochs": True, "lr": 0}})
Traceback (most recent call last):
...
ssmred_app.config.ConfigError: invalid configuration:
  - model.d_sate: unknown key (valid keys: layer, d_model, d_state, n_layers, dropout, r_min, r_max, s4d, s5, mamba)
  - optim.epochs: expected int, got True
  - optim.lr: must be > 0, got 0.0
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ssmred_app.config_sections import (
    DATASETS,
    METHODS,
    CompressionConfig,
    DataConfig,
    MethodConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
)
from ssmred_app.config_sections import DatasetName as DatasetName  # the option types, importable from here as before
from ssmred_app.config_sections import MethodName as MethodName
from ssmred_app.schema import validate_mapping

__all__ = [
    "DATASETS",
    "CompressionConfig",
    "ConfigError",
    "DataConfig",
    "METHODS",
    "MethodConfig",
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
    """An invalid run configuration; the message lists every problem found.

    Parameters
    ----------
    *problems
        One line per problem, ``where: what`` (e.g. ``model.d_state: state sizes must be >= 1, got 0``).
    """

    def __init__(self, *problems: str) -> None:
        self.problems = list(problems)
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


def parse_config(raw: Mapping[str, Any] | None) -> RunConfig:
    """Build a :class:`RunConfig` from a mapping and validate it completely.

    Parameters
    ----------
    raw
        Parsed YAML (sections ``data``, ``model``, ``optim``, ``compression``, ``method`` and top-level keys).

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
      - compression.tau: tau must be in [0, 1); got 1.5
    """
    cfg, problems = validate_mapping(RunConfig, raw)
    if cfg is None:
        raise ConfigError(*problems)
    return cfg


_FLOAT_1_2 = (
    r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)"
    r"|\.[0-9_]+(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)


def _yaml() -> Any:
    try:
        import yaml
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigError("reading YAML configs needs pyyaml. Install it with: pip install 'ssmred[data]'") from exc
    return yaml


def _loader() -> Any:
    """A safe YAML loader that reads ``1e-3`` as a float (YAML 1.2; PyYAML's 1.1 rules make it a string)."""
    import re

    yaml = _yaml()

    class Loader(yaml.SafeLoader):
        pass

    Loader.yaml_implicit_resolvers = {k: list(v) for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    Loader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(_FLOAT_1_2), list("-+0123456789."))
    return Loader


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
            raise ConfigError(f"override {item!r}: expected key=value (e.g. optim.epochs=5)")
        key, value = item.split("=", 1)
        node = out
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {p} is not a section")
        node[parts[-1]] = yaml.load(value, Loader=_loader())
    return out


def read_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML mapping, with a clear error for a missing file or bad syntax.

    Parameters
    ----------
    path
        The YAML file; read with a safe loader that takes ``1e-3`` as a float (YAML 1.2 rule).

    Returns
    -------
    dict
        The top-level mapping, not yet validated (see :func:`parse_config`).

    Raises
    ------
    ConfigError
        If the file does not exist, is not UTF-8 text or not valid YAML, is empty, or its top level is
        not a mapping (also when pyyaml is not installed).
    """
    yaml = _yaml()
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {str(p)!r} does not exist")
    try:
        raw = yaml.load(p.read_text(), Loader=_loader())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML ({exc})") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not a text file ({exc})") from exc
    if raw is None:
        raise ConfigError(f"{p}: is empty; a config needs at least one section (see configs/*.yaml)")
    if not isinstance(raw, dict):
        raise ConfigError(f"{p}: expected a mapping at the top level")
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
    """The configuration as plain data (JSON/YAML-safe).

    Parameters
    ----------
    cfg
        The configuration.

    Returns
    -------
    dict
        Every section and top-level key, defaults included (pydantic ``model_dump``); reading it back
        with :func:`parse_config` gives an equal configuration.
    """
    return cfg.model_dump()


def same_config(stored: Any, cfg: RunConfig) -> bool:
    """Whether a stored config (possibly written before new keys with defaults existed) equals ``cfg``.

    Parameters
    ----------
    stored
        The stored configuration as plain data (e.g. the ``config`` of a run's saved state); keys it lacks
        take their defaults.
    cfg
        The configuration to compare with.

    Returns
    -------
    bool
        ``True`` if ``stored`` validates to a configuration equal to ``cfg``; ``False`` otherwise, also
        when ``stored`` is missing (``None``: nothing says which configuration it was) or does not validate.
    """
    if stored is None:
        return False
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
    update = {k: getattr(cfg, k).model_copy(update=v) if isinstance(v, Mapping) else v for k, v in changes.items()}
    return cfg.model_copy(update=update)
