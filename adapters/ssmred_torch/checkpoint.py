"""The one checkpoint format of ssmred: weights plus the state size of every SSM layer.

A checkpoint records each SSM layer's state sizes next to the ``state_dict`` s, so that :func:`load`
can first resize the layers of a freshly built model (through their adapters) and then load the
weights — a run resumes after a reduction, and a reduced model is rebuilt from a file. Optimizer and
controller state and plain ``extra`` data are optional. Files are written atomically (a per-process
temporary file, then ``os.replace``) and read with ``torch.load(weights_only=True)``.

Payload (format ``"ssmred"``, version 2): ``state_sizes`` ``{layer name: [sizes]}``, ``model``,
``optimizer`` (or ``None``), ``controller`` (or ``None``), ``extra`` (or ``None``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ssmred._require import require

require("torch")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from ssmred_torch._adapter import ssm_layers  # noqa: E402

__all__ = ["CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "load", "read_checkpoint", "save", "state_sizes"]

CHECKPOINT_FORMAT = "ssmred"
CHECKPOINT_VERSION = 2


def state_sizes(model: nn.Module) -> dict[str, list[int]]:
    """The state sizes of every SSM layer of ``model``, by module name.

    Parameters
    ----------
    model
        Any module.

    Returns
    -------
    dict
        ``{name: [sizes]}`` (one entry per size block of the layer; one for the LRU).

    Examples
    --------
    >>> from ssmred_torch import LRUModel
    >>> state_sizes(LRUModel(1, 4, [8, 6], 2, 2))
    {'blocks.0.ssm': [8], 'blocks.1.ssm': [6]}
    """
    return {e.name: [int(s) for s in e.adapter.state_sizes(e.module)] for e in ssm_layers(model)}


def save(
    path: str | os.PathLike[str],
    model: nn.Module,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    controller: Any = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Save a model with its per-layer state sizes, optionally optimizer, controller progress and extras.

    Parameters
    ----------
    path
        File to write (atomically: written beside it under a per-process name, then renamed).
    model
        The model.
    optimizer
        Its optimizer (``state_dict`` saved).
    controller
        A :class:`~ssmred_torch.CompreSSM` (anything with ``state_dict()``) whose progress is saved.
    extra
        Further plain data (numbers, strings, lists, dicts, tensors), loadable with ``weights_only=True``.

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
    ({'epoch': 3}, {'blocks.0.ssm': [8]})
    """
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "state_sizes": state_sizes(model),
        "model": model.state_dict(),
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "controller": None if controller is None else controller.state_dict(),
        "extra": extra,
    }
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def read_checkpoint(path: str | os.PathLike[str], *, map_location: str | torch.device | None = None) -> dict[str, Any]:
    """Read and check a checkpoint written by :func:`save` (without a model).

    Parameters
    ----------
    path
        The file.
    map_location
        Passed to ``torch.load``.

    Returns
    -------
    dict
        The payload (see the module docstring).

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If it is not a readable ssmred checkpoint of this version.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from ssmred_torch import LRUModel
    >>> with tempfile.TemporaryDirectory() as d:
    ...     save(pathlib.Path(d) / "m.pt", LRUModel(1, 4, 8, 1, 2))
    ...     sorted(read_checkpoint(pathlib.Path(d) / "m.pt"))
    ['controller', 'extra', 'format', 'model', 'optimizer', 'state_sizes', 'version']
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"checkpoint {str(p)!r} does not exist")
    try:
        payload = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for damaged or foreign files
        raise ValueError(f"{str(p)!r} is not a readable torch checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{str(p)!r} is not an ssmred checkpoint")
    if payload.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"unsupported checkpoint version {payload.get('version')!r}; expected {CHECKPOINT_VERSION}")
    missing = {"state_sizes", "model", "optimizer", "controller", "extra"} - set(payload)
    if missing:
        raise ValueError(f"{str(p)!r} lacks the entries {sorted(missing)}")
    return payload


def load(
    path: str | os.PathLike[str] | dict[str, Any],
    model: nn.Module,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    controller: Any = None,
    map_location: str | torch.device | None = None,
) -> dict[str, Any]:
    """Load a checkpoint into ``model`` (resizing its SSM layers first), optionally optimizer and controller.

    Parameters
    ----------
    path
        File to read, or a payload returned by :func:`read_checkpoint`.
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
        If the file is not an ssmred checkpoint, the SSM layers do not match, or an optimizer /
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
    payload = path if isinstance(path, dict) else read_checkpoint(path, map_location=map_location)
    sizes: dict[str, list[int]] = {k: [int(s) for s in v] for k, v in payload["state_sizes"].items()}
    layers = {e.name: e for e in ssm_layers(model)}
    if set(layers) != set(sizes):
        raise ValueError(f"the checkpoint's SSM layers {sorted(sizes)} do not match the model's {sorted(layers)}")
    for name, e in layers.items():
        e.adapter.resize_(e.module, tuple(sizes[name]))
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
