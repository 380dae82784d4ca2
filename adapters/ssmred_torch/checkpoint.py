"""The one checkpoint format of ssmred: weights plus the state size of every SSM layer.

A checkpoint records each SSM layer's state sizes next to the ``state_dict`` s, so that :func:`load`
can first resize the layers of a freshly built model (through their adapters) and then load the
weights — a run resumes after a reduction, and a reduced model is rebuilt from a file. Optimizer and
controller state and plain ``extra`` data are optional. Files are written atomically (a per-process
temporary file, then ``os.replace``) and read with ``torch.load(weights_only=True)``.

Integrity: :func:`read_checkpoint` verifies the zip CRC-32 of every member of the archive
``torch.save`` writes (``torch.load`` itself checks none: overwritten bytes would load silently) and
that every floating-point tensor is finite; :func:`save` refuses to write a non-finite model or
optimizer state (so a diverged run can never overwrite the last good checkpoint). Failures raise
:class:`~ssmred_torch.errors.CheckpointError` naming the file and the cause.

Payload (format ``"ssmred"``, version 2): ``state_sizes`` ``{layer name: [sizes]}``, ``model``,
``optimizer`` (or ``None``), ``controller`` (or ``None``), ``extra`` (or ``None``).
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ssmred._require import require

require("torch")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from ssmred_torch._adapter import ssm_layers  # noqa: E402
from ssmred_torch.errors import CheckpointError  # noqa: E402

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "load",
    "nonfinite_entries",
    "read_checkpoint",
    "save",
    "state_sizes",
    "verify_archive",
]

CHECKPOINT_FORMAT = "ssmred"
CHECKPOINT_VERSION = 2


def _tensors(obj: Any, prefix: str) -> Iterator[tuple[str, torch.Tensor]]:
    if isinstance(obj, torch.Tensor):
        yield prefix, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _tensors(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _tensors(v, f"{prefix}[{i}]")


def nonfinite_entries(obj: Any, *, prefix: str = "") -> list[str]:
    """Paths of the floating-point tensors in ``obj`` (nested dicts/lists) that hold NaN or inf.

    Parameters
    ----------
    obj
        A tensor, or nested dicts / lists / tuples of them (other values are ignored).
    prefix
        Path prefix for the names.

    Returns
    -------
    list of str
        Dotted paths, e.g. ``["model.blocks.0.ssm.B_re"]``.

    Examples
    --------
    >>> nonfinite_entries({"a": torch.ones(2), "b": [torch.tensor([float("nan")])]})
    ['b[0]']
    """
    return [
        name
        for name, t in _tensors(obj, prefix)
        if (t.is_floating_point() or t.is_complex()) and not bool(torch.isfinite(t).all())
    ]


def verify_archive(path: str | os.PathLike[str]) -> None:
    """Check that ``path`` is a complete torch zip archive whose members all match their CRC-32.

    Parameters
    ----------
    path
        The file.

    Returns
    -------
    None
        When the archive is intact.

    Raises
    ------
    CheckpointError
        For an empty, truncated or non-zip file, or a member whose data do not match its checksum.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = pathlib.Path(d) / "t.pt"; torch.save({"x": torch.ones(3)}, p)
    ...     verify_archive(p)
    ...     _ = p.write_bytes(p.read_bytes()[:-100])   # a truncated write
    ...     verify_archive(p)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ssmred_torch.errors.CheckpointError: '...t.pt' is damaged or truncated: not a complete torch archive (...)
    """
    p = Path(path)
    if p.stat().st_size == 0:
        raise CheckpointError(f"{str(p)!r} is empty (an interrupted write?)")
    try:
        with zipfile.ZipFile(p) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise CheckpointError(f"{str(p)!r} is damaged or truncated: not a complete torch archive ({exc})") from exc
    except Exception as exc:  # zlib errors and friends from a corrupted stream
        raise CheckpointError(f"{str(p)!r} is damaged: {type(exc).__name__}: {exc}") from exc
    if bad is not None:
        raise CheckpointError(f"{str(p)!r} is damaged: the checksum of its member {bad!r} does not match its data")


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
    allow_nonfinite: bool = False,
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
    allow_nonfinite
        Write even if the model or optimizer state holds NaN/inf (for post-mortems; such a file is
        refused by :func:`read_checkpoint` unless it is asked to allow it too).

    Returns
    -------
    None
        The file is written.

    Raises
    ------
    CheckpointError
        If the model or optimizer state is not finite (and ``allow_nonfinite`` is false); nothing is
        written then.

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
    if not allow_nonfinite:
        bad = nonfinite_entries({"model": payload["model"], "optimizer": payload["optimizer"]})
        if bad:
            shown = ", ".join(bad[:4]) + (f" and {len(bad) - 4} more" if len(bad) > 4 else "")
            raise CheckpointError(f"refusing to save a non-finite state to {os.fspath(path)!r}: NaN/inf in {shown}")
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def read_checkpoint(
    path: str | os.PathLike[str], *, map_location: str | torch.device | None = None, allow_nonfinite: bool = False
) -> dict[str, Any]:
    """Read and check a checkpoint written by :func:`save` (without a model).

    Parameters
    ----------
    path
        The file.
    map_location
        Passed to ``torch.load``.
    allow_nonfinite
        Accept NaN/inf in the model or optimizer state.

    Returns
    -------
    dict
        The payload (see the module docstring).

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    CheckpointError
        If it is damaged (CRC, truncation), not an ssmred checkpoint of this version, or not finite.

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
    verify_archive(p)
    try:
        payload = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for damaged or foreign files
        raise CheckpointError(f"{str(p)!r} is not a readable torch checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{str(p)!r} is not an ssmred checkpoint")
    if payload.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{str(p)!r}: unsupported checkpoint version {payload.get('version')!r}; expected {CHECKPOINT_VERSION}"
        )
    missing = {"state_sizes", "model", "optimizer", "controller", "extra"} - set(payload)
    if missing:
        raise CheckpointError(f"{str(p)!r} lacks the entries {sorted(missing)}")
    if not allow_nonfinite:
        bad = nonfinite_entries({"model": payload["model"], "optimizer": payload["optimizer"]})
        if bad:
            raise CheckpointError(f"{str(p)!r} holds non-finite values (NaN/inf) in {', '.join(bad[:4])}")
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
    CheckpointError
        If the file is damaged, not an ssmred checkpoint, or not finite.
    ValueError
        If the SSM layers do not match, or an optimizer / controller state is requested but absent.

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
