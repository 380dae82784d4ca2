"""What a run measured (:class:`RunResult`), the machine it ran on, and where it ran (:func:`resolve_device`)."""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from ssmred_app.config import ConfigError

__all__ = ["RunResult", "environment", "resolve_device"]


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
    total_steps
        Optimizer steps of the whole run.
    device
        Where it trained (``cpu``, ``cuda``, ``cuda:1``).
    world_size
        Processes that trained it (``ssmred train --nproc N`` / torchrun); the times are rank 0's, the
        effective batch is ``world_size × optim.batch_size``.
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
    world_size: int = 1

    @property
    def mean_final_dim(self) -> float:
        """Mean final state size over layers."""
        return float(np.mean(self.final_dims)) if self.final_dims else float("nan")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunResult:
        """The result stored by :meth:`to_dict`, by this or another version of ssmred.

        Derived entries (``mean_final_dim``) and fields this version does not know (written by a newer
        one) are left out; fields added since the file was written take their defaults.

        Parameters
        ----------
        d
            A mapping as written by :meth:`to_dict` (e.g. ``metrics.json`` loaded); it must hold at least
            ``name`` and ``config``.

        Returns
        -------
        RunResult
            A new result (the values are taken as they are, not copied or converted).
        """
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping, with ``mean_final_dim`` added.

        Returns
        -------
        dict
            Every field (deep-copied by :func:`dataclasses.asdict`) plus ``mean_final_dim``.
        """
        d = asdict(self)
        d["mean_final_dim"] = self.mean_final_dim
        return d


def resolve_device(name: str) -> str:
    """``auto`` -> ``cuda`` when available else ``cpu``; otherwise check that CUDA is there for a CUDA device.

    Parameters
    ----------
    name
        ``"auto"``, or a torch device string (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...). For a CUDA device
        the availability of CUDA and the index of ``cuda:N`` are checked; other device types are passed on.

    Returns
    -------
    str
        The device to use: ``name`` itself unless it is ``"auto"``.

    Raises
    ------
    ~ssmred_app.config.ConfigError
        If ``name`` starts with ``cuda`` and CUDA is not available, or ``cuda:N`` names a device that
        is not there.
    """
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device: {name!r} requested but CUDA is not available")
    if name.startswith("cuda:") and name[5:].isdigit() and int(name[5:]) >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise ConfigError(
            f"device: {name!r} requested but there are {count} CUDA device(s) (cuda:0 to cuda:{count - 1})"
        )
    return name


def environment() -> dict[str, Any]:
    """Versions and machine facts recorded in ``metrics.json``.

    Returns
    -------
    dict
        ``python``, ``torch`` and ``ssmred`` versions, ``platform`` (:func:`platform.platform`),
        ``cpu_count``, ``torch_threads`` (:func:`torch.get_num_threads`) and ``cuda`` (whether CUDA is
        available).
    """
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
