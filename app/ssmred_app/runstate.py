"""A run folder's resumable state: its lock, its checkpoints, and falling back when one is damaged.

Layout of a run folder ``out/``:

* ``.ssmred.lock`` — held (``fcntl.flock``, exclusive) by the process training into the folder; it
  holds that process's pid. The kernel drops the lock when the process dies, even by ``kill -9``.
* ``checkpoints/last.pt`` — the newest resumable state (model, optimizer, scheduler, controller with
  a pending pragmatic snapshot, RNG state, position in the epoch, the result so far), in the one
  checkpoint format of :mod:`ssmred_torch.checkpoint` (zip CRCs and finiteness verified on read).
  ``previous.pt`` is the state before it. A new state is written to ``next.pt`` first and only then
  rotated in, so an interruption at any moment leaves at least one intact state.
* ``checkpoints/epoch_NNN.pt`` — model weights after each epoch (for analysis).

:func:`read_run_state` takes the intact candidate with the highest step, says which files it skipped
and why, and refuses to go on when every candidate is damaged.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ssmred_app.errors import RunError, RunFolderBusy

__all__ = ["RUN_FILES", "RunLock", "clear_run_folder", "read_run_state", "run_folder_has_state", "save_run_state"]

LOCK_NAME = ".ssmred.lock"
#: what a run writes into its folder (removed by ``--no-resume --force``)
RUN_FILES = ("checkpoints", "result.json", "metrics.json", "report.md", "report.html", "plots")
_CANDIDATES = ("last.pt", "next.pt", "previous.pt")


class RunLock:
    """Exclusive lock on a run folder for the lifetime of a ``with`` block.

    Parameters
    ----------
    folder
        The run folder (created if missing).

    Raises
    ------
    RunFolderBusy
        On entry, when another process holds the lock.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunFolderBusy(
                f"run folder {str(self.folder)!r} is in use by another ssmred process (pid {holder}); wait for it to "
                "finish or choose another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def run_folder_has_state(folder: str | os.PathLike[str]) -> bool:
    """Whether ``folder`` holds anything a run writes (checkpoints, results, reports).

    Parameters
    ----------
    folder
        The run folder (need not exist).

    Returns
    -------
    bool
        True when any entry of :data:`RUN_FILES` exists in ``folder`` (the lock file does not count).
    """
    return any((Path(folder) / name).exists() for name in RUN_FILES)


def clear_run_folder(folder: str | os.PathLike[str]) -> None:
    """Remove what an earlier run wrote into ``folder`` (the lock file stays).

    Parameters
    ----------
    folder
        The run folder: every entry of :data:`RUN_FILES` in it is deleted (folders recursively); anything
        else, the lock file included, is left alone. A missing entry (or folder) is no error.
    """
    for name in RUN_FILES:
        path = Path(folder) / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def save_run_state(ckpt_dir: Path, model: Any, *, optimizer: Any, controller: Any, extra: dict[str, Any]) -> Path:
    """Write a resumable state as ``next.pt``, then rotate it to ``last.pt`` (the old one to ``previous.pt``).

    Parameters
    ----------
    ckpt_dir
        The run's ``checkpoints/`` folder (created if missing).
    model
        The model (``torch.nn.Module``) whose weights and per-layer state sizes are saved.
    optimizer
        Its optimizer (``state_dict`` saved), or ``None``.
    controller
        Anything with ``state_dict()`` (the training method's progress), or ``None``.
    extra
        Plain data of the run state (``kind="run"``, ``step``, RNG states, the result so far, ...):
        :func:`read_run_state` accepts only a file whose ``extra`` has ``kind == "run"`` and an integer
        ``step``.

    Returns
    -------
    pathlib.Path
        ``ckpt_dir / "last.pt"``, the state just written.

    Raises
    ------
    ssmred_torch.errors.CheckpointError
        If the model or optimizer state holds NaN/inf (nothing is written; ``last.pt`` stays as it was).
    """
    from ssmred_torch import save

    ckpt_dir.mkdir(parents=True, exist_ok=True)
    nxt, last, prev = (ckpt_dir / name for name in ("next.pt", "last.pt", "previous.pt"))
    save(nxt, model, optimizer=optimizer, controller=controller, extra=extra)
    if last.exists():
        os.replace(last, prev)
    os.replace(nxt, last)
    return last


def read_run_state(
    ckpt_dir: Path, *, map_location: Any, log: Callable[[str], None]
) -> tuple[Path, dict[str, Any]] | None:
    """The newest intact resumable state in ``ckpt_dir`` (``None`` when there is none to resume from).

    The candidates are ``last.pt``, ``next.pt`` and ``previous.pt``; the intact one with the highest
    ``step`` wins (``last.pt`` on a tie). Damaged candidates are skipped with a message; when candidates
    exist but none is intact the run must not start over silently.

    Parameters
    ----------
    ckpt_dir
        The run's ``checkpoints/`` folder (need not exist).
    map_location
        Passed to :func:`ssmred_torch.read_checkpoint` (``torch.load``): where the tensors go, e.g. ``"cpu"``.
    log
        Called with one line per skipped file, and with the file resumed from when it is not ``last.pt``
        or something was skipped.

    Returns
    -------
    tuple of (pathlib.Path, dict) or None
        The file chosen and its checkpoint payload (``state_sizes``, ``model``, ``optimizer``,
        ``controller``, ``extra``), or ``None`` when there is no candidate at all.

    Raises
    ------
    ~ssmred_app.errors.RunError
        If candidates exist but every one is damaged or not a run state (model files, ``kind != "run"``).
    """
    from ssmred_torch import CheckpointError, read_checkpoint

    found: list[tuple[int, Path, dict[str, Any]]] = []
    problems: list[str] = []
    for name in _CANDIDATES:
        path = ckpt_dir / name
        if not path.exists():
            continue
        try:
            payload = read_checkpoint(path, map_location=map_location)
            extra = payload["extra"] or {}
            if extra.get("kind") != "run":
                raise CheckpointError(f"{str(path)!r} is a model file, not a resumable run state")
            step = extra.get("step")
            if isinstance(step, bool) or not isinstance(step, int) or step < 0:
                raise CheckpointError(f"{str(path)!r} is a run state without a valid step ({step!r})")
        except (CheckpointError, FileNotFoundError) as exc:
            problems.append(str(exc))
            continue
        found.append((step, path, payload))
    if not found:
        if problems:
            raise RunError(
                "no intact checkpoint to resume from:\n  - "
                + "\n  - ".join(problems)
                + "\nstart over with --no-resume --force (this deletes the run's checkpoints) or choose another --out"
            )
        return None
    step, path, payload = max(found, key=lambda item: (item[0], item[1].name == "last.pt"))
    for p in problems:
        log(f"skipped a damaged checkpoint: {p}")
    if problems or path.name != "last.pt":
        log(f"resuming from {path} (step {step})")
    return path, payload
