"""Checkpoints of models whose LRU layers were reduced to different sizes.

A checkpoint records the state size of every LRU layer next to the ``state_dict`` s, so that
:func:`load` can first resize the layers of a freshly constructed model and then load the weights —
a run resumes after a reduction. Files are read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
from typing import Any

from ssmred._require import require

require("torch")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from ssmred_torch.lru import LRU  # noqa: E402

__all__ = ["load", "save"]

_FORMAT = "ssmred_torch.checkpoint"
_VERSION = 1


def _state_sizes(model: nn.Module) -> dict[str, int]:
    return {name: m.d_state for name, m in model.named_modules() if isinstance(m, LRU)}


def save(
    path: str | os.PathLike[str],
    model: nn.Module,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    controller: Any = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Save model (with its per-layer state sizes), optionally optimizer, controller progress and extras.

    Parameters
    ----------
    path
        File to write.
    model
        The model.
    optimizer
        Its optimizer (``state_dict`` saved).
    controller
        A :class:`~ssmred_torch.CompreSSM` whose progress is saved.
    extra
        Further plain data (numbers, strings, lists, dicts, tensors) — must be loadable with
        ``weights_only=True``.

    Returns
    -------
    None
        The file is written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from ssmred_torch import LRUModel
    >>> model = LRUModel(1, 4, 8, 1, 2)
    >>> with tempfile.TemporaryDirectory() as d:
    ...     save(pathlib.Path(d) / "ckpt.pt", model, extra={"epoch": 3})
    ...     info = load(pathlib.Path(d) / "ckpt.pt", LRUModel(1, 4, 8, 1, 2))
    >>> info["extra"], info["state_sizes"]
    ({'epoch': 3}, {'blocks.0.lru': 8})
    """
    payload = {
        "format": _FORMAT,
        "version": _VERSION,
        "state_sizes": _state_sizes(model),
        "model": model.state_dict(),
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "controller": None if controller is None else controller.state_dict(),
        "extra": extra,
    }
    torch.save(payload, path)


def load(
    path: str | os.PathLike[str],
    model: nn.Module,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    controller: Any = None,
    map_location: str | torch.device | None = None,
) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save` into ``model`` (resizing its LRU layers first).

    Parameters
    ----------
    path
        File to read (``torch.load(weights_only=True)``).
    model
        A model of the same architecture (any current state sizes).
    optimizer
        If given, its state is loaded too (the checkpoint must contain one). Build it over
        ``model.parameters()`` before calling: the parameter objects are kept, only resized.
    controller
        If given, a :class:`~ssmred_torch.CompreSSM` whose progress is restored.
    map_location
        Passed to ``torch.load``.

    Returns
    -------
    dict
        ``{"state_sizes": ..., "extra": ...}``.

    Raises
    ------
    ValueError
        If the file is not an ssmred_torch checkpoint, the LRU layers do not match, or an optimizer /
        controller state is requested but absent.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from ssmred_torch import LRUModel, rank, reduce_model
    >>> model = LRUModel(1, 4, 8, 2, 2)
    >>> _ = reduce_model(model, rank([5, 3]))
    >>> with tempfile.TemporaryDirectory() as d:
    ...     save(pathlib.Path(d) / "reduced.pt", model)
    ...     fresh = LRUModel(1, 4, 8, 2, 2)            # built with the original sizes
    ...     _ = load(pathlib.Path(d) / "reduced.pt", fresh)
    >>> fresh.state_sizes
    [5, 3]
    """
    payload = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise ValueError(f"{os.fspath(path)!r} is not an ssmred_torch checkpoint")
    if payload.get("version") != _VERSION:
        raise ValueError(f"unsupported checkpoint version {payload.get('version')!r}; expected {_VERSION}")
    sizes: dict[str, int] = dict(payload["state_sizes"])
    layers = {name: m for name, m in model.named_modules() if isinstance(m, LRU)}
    if set(layers) != set(sizes):
        raise ValueError(f"the checkpoint's LRU layers {sorted(sizes)} do not match the model's {sorted(layers)}")
    for name, layer in layers.items():
        layer.resize_(int(sizes[name]))
    model.load_state_dict(payload["model"])
    if optimizer is not None:
        if payload["optimizer"] is None:
            raise ValueError("the checkpoint contains no optimizer state")
        optimizer.load_state_dict(payload["optimizer"])
    if controller is not None:
        if payload["controller"] is None:
            raise ValueError("the checkpoint contains no controller state")
        controller.load_state_dict(payload["controller"])
    return {"state_sizes": sizes, "extra": payload["extra"]}
