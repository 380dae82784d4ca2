r"""Multi-process training with torch DistributedDataParallel (DDP): the same reductions on every rank.

``ssmred train --nproc N`` starts ``N`` processes through torchrun's launcher (``--standalone``); a plain
``torchrun ... -m ssmred_app train ...`` (one machine or several) does the same. In every process the
``train`` command initialises the default process group (gloo on CPU; NCCL for CUDA tensors when CUDA
is present, with gloo beside it for the small host-side messages; ``SSMRED_DIST_BACKEND`` overrides)
and the :class:`~ssmred_app.trainer.Trainer` finds it (:func:`active`). What changes under DDP:

* **Who writes.** Rank 0 only: it holds the run lock, writes the run folder, the logs, the reports and
  every checkpoint. Other ranks never touch the folder; what they need from it (the resumable state,
  a refusal) rank 0 reads and broadcasts.
* **Data.** Every epoch the trainer's permutation of the training set (seed, epoch) is sharded the way
  ``torch.utils.data.DistributedSampler(shuffle=False, drop_last=False)`` shards a list: padded with
  its first indices to a multiple of ``N``, rank ``r`` takes positions ``r, r + N, ...``, then batches
  of ``optim.batch_size``. ``optim.batch_size`` is the **per-rank** batch: an optimizer step sees
  ``N × optim.batch_size`` samples, the batch of a single-process run with ``optim.batch_size × N``
  (the same samples, when ``N × batch`` divides the training set; otherwise the last step of an epoch
  repeats a few samples). The number of steps per epoch is that single-process run's.
* **Metrics.** Per-step loss sums, correct counts and sample counts are all-reduced (the epoch log is
  global); evaluation is sharded into contiguous blocks and the correct counts are all-reduced, so
  every rank sees the same accuracy (pragmatic checks compare the same numbers everywhere).
* **Reductions.** Every method hook runs inside :func:`ssmred_torch.reduce.shared_decisions` with
  :meth:`Distributed.broadcast`: rank 0 plans (HSVs, orders, reduced systems) and the plan is broadcast
  (tensors sent from the CPU, placed on each rank's device); every rank applies it to the unwrapped
  module through the same adapters, with the same optimizer surgery on the moments (the optimizer and
  the LR scheduler hold the same Parameter objects and stay valid). A pragmatic rollback's verdict is
  rank 0's, broadcast the same way. When parameter shapes changed, the old DDP wrapper is dropped (its
  autograd hooks removed) and a new one built (which checks the shapes agree across ranks).
* **Agreement.** A stop request (SIGINT/SIGTERM reaching any rank) and a non-finite loss on any rank are
  all-reduced with the step's metrics, so every rank stops at the same step; rank 0 saves.
* **Resume.** Checkpoints hold every rank's torch RNG state and the world size; resuming needs the same
  number of processes (the schedule in steps depends on it).

FSDP, tensor/pipeline parallelism, several GPUs per process and ``ssmred experiment`` / ``ssmred demo``
under torchrun are not supported. See ``docs/distributed.md``. The ``train`` command's launching (``--nproc``,
the ranks of a torchrun job) is :mod:`ssmred_app.distributed_launch`.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ssmred_app.errors import RunError

__all__ = [
    "BACKEND_ENV",
    "Distributed",
    "active",
    "launched_by_torchrun",
    "shard_indices",
    "sync_batch_norms_",
]

#: environment variable overriding the process-group backend (e.g. ``gloo``, ``nccl``, ``cpu:gloo,cuda:nccl``)
BACKEND_ENV = "SSMRED_DIST_BACKEND"
_T = TypeVar("_T")


# ---------------------------------------------------------------------------------------------- data
def shard_indices(indices: Sequence[int] | Any, rank: int, world_size: int) -> Any:
    """The share of ``indices`` of rank ``rank``, as ``DistributedSampler(shuffle=False, drop_last=False)`` deals them.

    The list is padded with its first elements to a multiple of ``world_size``; rank ``r`` takes the
    positions ``r, r + world_size, ...``; the ``k``-th block of ``b`` of every rank together are the
    ``k``-th block of ``b * world_size`` of the (padded) list.

    Parameters
    ----------
    indices
        The list to deal (1-D: a sequence or an array, taken with :func:`numpy.asarray`).
    rank, world_size
        This process's rank, ``0 <= rank < world_size``, and the number of processes (``>= 1``).

    Returns
    -------
    numpy.ndarray
        The ``ceil(len(indices) / world_size)`` indices of rank ``rank`` (none for an empty list).

    Examples
    --------
    >>> import numpy as np
    >>> [shard_indices(np.arange(5), r, 2).tolist() for r in (0, 1)]
    [[0, 2, 4], [1, 3, 0]]
    """
    import numpy as np

    idx = np.asarray(indices)
    total = math.ceil(len(idx) / world_size) * world_size
    if total > len(idx):
        reps = math.ceil((total - len(idx)) / max(1, len(idx)))
        idx = np.concatenate([idx, np.tile(idx, reps)[: total - len(idx)]])
    return idx[rank:total:world_size]


# ---------------------------------------------------------------------------------------------- batch norm
_ALL_SUM: dict[str, Any] = {}
_GLOBAL_BN: dict[type, type] = {}


def _all_sum(t: Any) -> Any:
    """``all_reduce(SUM)`` with autograd: the gradient of the sum is the sum of the gradients."""
    fn = _ALL_SUM.get("fn")
    if fn is None:
        import torch
        import torch.distributed as dist

        class _AllSum(torch.autograd.Function):
            @staticmethod
            def forward(ctx: Any, x: Any) -> Any:
                out = x.clone(memory_format=torch.contiguous_format)
                dist.all_reduce(out, op=dist.ReduceOp.SUM)
                return out

            @staticmethod
            def backward(ctx: Any, grad: Any) -> Any:
                return _AllSum.apply(grad)

        fn = _ALL_SUM["fn"] = _AllSum
    return fn.apply(t)


class _GlobalBatchNorm:
    """Mixed into a BatchNorm class: in training, normalise with the statistics of every rank's batch
    together (what :class:`torch.nn.SyncBatchNorm` does on GPUs; this works on the CPU too), so a DDP step
    is the single-process step of the global batch. One float64 all-reduce of (sum, sum of squares,
    count) per layer and step, differentiable; the running statistics are the global ones (the same on
    every rank). Outside training, or with one process, the layer is the plain BatchNorm.
    """

    def forward(self, input: Any) -> Any:
        import torch
        import torch.distributed as dist

        bn: Any = self
        if not (bn.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(input)  # type: ignore[misc]
        bn._check_input_dim(input)
        c = input.shape[1]
        dims = [0, *range(2, input.dim())]
        x64 = input.to(torch.float64)
        count = torch.full((1,), input.numel() // max(1, c), dtype=torch.float64, device=input.device)
        total = _all_sum(torch.cat([x64.sum(dims), (x64 * x64).sum(dims), count]))
        n = total[-1]
        mean = total[:c] / n
        var = (total[c : 2 * c] / n - mean * mean).clamp_min(0.0)
        if bn.track_running_stats and bn.running_mean is not None:
            with torch.no_grad():
                bn.num_batches_tracked.add_(1)
                f = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
                unbiased = var * (n / torch.clamp(n - 1, min=1.0))
                bn.running_mean.mul_(1 - f).add_(mean.to(bn.running_mean.dtype), alpha=f)
                bn.running_var.mul_(1 - f).add_(unbiased.to(bn.running_var.dtype), alpha=f)
        shape = [1, c] + [1] * (input.dim() - 2)
        y = (input - mean.to(input.dtype).view(shape)) * torch.rsqrt(var.to(input.dtype).view(shape) + bn.eps)
        if bn.affine:
            y = y * bn.weight.view(shape) + bn.bias.view(shape)
        return y


def sync_batch_norms_(model: Any) -> int:
    """Make every BatchNorm layer of ``model`` use global-batch statistics under DDP.

    The layers keep their parameters, buffers and state-dict keys (only their class changes to a
    subclass), so optimizers, checkpoints and ``isinstance(m, nn.BatchNorm1d)`` are unaffected.

    Parameters
    ----------
    model
        A ``torch.nn.Module``; its ``BatchNorm1d/2d/3d`` submodules are changed in place.

    Returns
    -------
    int
        How many layers were converted (those converted before are not counted again).
    """
    from torch import nn

    n = 0
    for m in model.modules():
        cls = type(m)
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)) and not isinstance(m, _GlobalBatchNorm):
            if cls not in _GLOBAL_BN:
                _GLOBAL_BN[cls] = type(f"Global{cls.__name__}", (_GlobalBatchNorm, cls), {"__module__": __name__})
            m.__class__ = _GLOBAL_BN[cls]
            n += 1
    return n


# ---------------------------------------------------------------------------------------------- errors across ranks
def _describe(exc: BaseException) -> tuple[str, str, str]:
    return type(exc).__module__, type(exc).__qualname__, str(exc)


def _mirror(desc: tuple[str, str, str]) -> BaseException:
    """An exception of the same class and message as the one rank 0 raised (for the same exit status)."""
    module, qualname, message = desc
    try:
        cls: Any = importlib.import_module(module)
        for part in qualname.split("."):
            cls = getattr(cls, part)
        if isinstance(cls, type) and issubclass(cls, BaseException):
            exc = cls.__new__(cls)
            BaseException.__init__(exc, message)
            return exc
    except Exception:  # an exception class that cannot be rebuilt: the message is what matters
        pass
    return RunError(f"rank 0 failed: {qualname}: {message}")


# ---------------------------------------------------------------------------------------------- tensors across ranks
def _map_tensors(obj: Any, fn: Callable[[Any], Any]) -> Any:
    """``obj`` with every tensor replaced by ``fn(tensor)`` (dicts, lists, tuples, named tuples, dataclasses)."""
    import torch

    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, dict):
        return type(obj)((k, _map_tensors(v, fn)) for k, v in obj.items())
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(_map_tensors(v, fn) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(_map_tensors(v, fn) for v in obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        changes = {f.name: _map_tensors(getattr(obj, f.name), fn) for f in dataclasses.fields(obj) if f.init}
        return dataclasses.replace(obj, **changes)
    return obj


# ---------------------------------------------------------------------------------------------- the context
class Distributed:
    """The place of this process in a torch.distributed job, and the collectives the trainer needs.

    The default process group must be initialised. ``stats`` counts the time spent in :meth:`broadcast`
    (``broadcast_s``, ``broadcasts``) and in re-wrapping (``rewrap_s``, ``rewraps``).

    Parameters
    ----------
    rank, world_size, local_rank
        Global rank, number of processes, rank on this machine (the CUDA device index).
    owns_group
        Whether :meth:`close` destroys the default process group (it was created by :meth:`from_env`).
    """

    def __init__(self, rank: int, world_size: int, local_rank: int, *, owns_group: bool = False) -> None:
        import torch
        import torch.distributed as dist

        self.rank, self.world_size, self.local_rank = int(rank), int(world_size), int(local_rank)
        self.owns_group = owns_group
        self.backend = str(dist.get_backend())
        # small host-side messages (plans, flags, metrics) go through gloo when the group has it
        cpu_ok = "gloo" in self.backend or self.backend in ("mpi", "ucc")
        self.collective_device = (
            torch.device("cpu") if cpu_ok or not torch.cuda.is_available() else torch.device("cuda", self.local_rank)
        )
        self.device = "cpu"  # set by the trainer (device_for)
        self.stats: dict[str, float] = {"broadcast_s": 0.0, "broadcasts": 0, "rewrap_s": 0.0}
        self.stats["rewraps"] = 0

    # -- construction ------------------------------------------------------------------------------
    @classmethod
    def from_env(cls, backend: str | None = None) -> Distributed:
        """Join the job torchrun started (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR/PORT``).

        Parameters
        ----------
        backend
            A torch.distributed backend string; default ``SSMRED_DIST_BACKEND``, else
            ``cpu:gloo,cuda:nccl`` when CUDA is available, else ``gloo``. Ignored when the default
            process group exists already: then the context of :func:`active` is returned.
        """
        import torch
        import torch.distributed as dist

        if dist.is_initialized():
            ctx = active()
            assert ctx is not None
            return ctx
        default = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
        backend = backend or os.environ.get(BACKEND_ENV) or default
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if torch.cuda.is_available() and "nccl" in backend:
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend)
        return cls(dist.get_rank(), dist.get_world_size(), local_rank, owns_group=True)

    def close(self) -> None:
        """Leave the job (destroys the process group when :meth:`from_env` created it)."""
        import torch.distributed as dist

        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0 (the one that writes)."""
        return self.rank == 0

    def device_for(self, name: str) -> str:
        """The device of this rank for a resolved device name: ``cuda``/``cuda:N`` -> ``cuda:LOCAL_RANK``.

        Parameters
        ----------
        name
            A device of :func:`~ssmred_app.runresult.resolve_device`; the result is stored as ``device``
            (where :meth:`broadcast` places tensors) and, for CUDA, made the current device.
        """
        import torch

        if name.startswith("cuda"):
            torch.cuda.set_device(self.local_rank)
            name = f"cuda:{self.local_rank}"
        self.device = name
        return name

    # -- collectives -------------------------------------------------------------------------------
    def broadcast(self, thunk: Callable[[], _T]) -> _T:
        """Call ``thunk`` on rank 0 and return its result on every rank (tensors on this rank's device).

        An exception raised by ``thunk`` on rank 0 is raised on every rank (same class and message),
        so no rank waits for a message that never comes. The hook of
        :func:`ssmred_torch.reduce.shared_decisions`; a collective: every rank must call it.

        Parameters
        ----------
        thunk
            A callable without arguments, called on rank 0 only; its result must be picklable (tensors
            are sent from the CPU, inside dicts, lists, tuples, named tuples and dataclasses).
        """
        import torch.distributed as dist

        t0 = time.perf_counter()
        if self.is_main:
            try:
                value = thunk()
            except BaseException as exc:
                dist.broadcast_object_list([("error", _describe(exc))], src=0, device=self.collective_device)
                raise
            message: list[Any] = [("ok", _map_tensors(value, lambda t: t.detach().cpu()))]
        else:
            value, message = None, [None]  # type: ignore[assignment]
        dist.broadcast_object_list(message, src=0, device=self.collective_device)
        self.stats["broadcast_s"] += time.perf_counter() - t0
        self.stats["broadcasts"] += 1
        if self.is_main:
            return value  # type: ignore[return-value]
        kind, payload = message[0]
        if kind == "error":
            raise _mirror(payload)
        return _map_tensors(payload, lambda t: t.to(self.device))  # type: ignore[no-any-return]

    def all_sum(self, values: Sequence[float]) -> list[float]:
        """Element-wise sums over the ranks (float64), on every rank.

        Parameters
        ----------
        values
            This rank's numbers (the same count on every rank).
        """
        import torch
        import torch.distributed as dist

        t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=self.collective_device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t.tolist()

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` is true on any rank (a collective: every rank must call it).

        Parameters
        ----------
        flag
            This rank's flag.
        """
        return self.all_sum([1.0 if flag else 0.0])[0] > 0

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order, on every rank.

        Parameters
        ----------
        obj
            This rank's object (picklable).
        """
        import torch.distributed as dist

        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    # -- the DDP wrapper ---------------------------------------------------------------------------
    def wrap(self, model: Any) -> Any:
        """A new DDP wrapper of ``model`` (real, contiguous parameters; shapes checked across ranks; batch
        norms over the global batch, :func:`sync_batch_norms_`).

        Parameters
        ----------
        model
            The unwrapped module, on this rank's ``device``; non-contiguous parameters are made contiguous
            in place.

        Raises
        ------
        ~ssmred_app.errors.RunError
            If a parameter is complex (DDP would lose the imaginary part of its gradient).
        """
        import torch
        from torch.nn.parallel import DistributedDataParallel

        for name, p in model.named_parameters():
            if p.is_complex():
                raise RunError(
                    f"parameter {name} is complex: DistributedDataParallel loses the imaginary part of its "
                    "gradient; store it as real pairs (torch.view_as_real)"
                )
            if not p.is_contiguous():
                with torch.no_grad():
                    p.data = p.data.contiguous()  # same shape: the gradient accumulator stays valid
        sync_batch_norms_(model)
        cuda = str(self.device).startswith("cuda")
        return DistributedDataParallel(model, device_ids=[self.local_rank] if cuda else None)

    def rewrap(self, old: Any, model: Any) -> Any:
        """Drop ``old`` (its autograd hooks removed at once) and wrap ``model`` anew (:meth:`wrap`).

        Parameters
        ----------
        old
            The previous DDP wrapper, or ``None``.
        model
            The unwrapped module (its parameter shapes may have changed).
        """
        t0 = time.perf_counter()
        if old is not None and hasattr(old, "_remove_autograd_hooks"):
            old._remove_autograd_hooks()
        del old
        new = self.wrap(model)
        self.stats["rewrap_s"] += time.perf_counter() - t0
        self.stats["rewraps"] += 1
        return new


def active() -> Distributed | None:
    """The running job (``None`` unless torch.distributed's default process group is initialised).

    Returns
    -------
    Distributed or None
        The context of this process (one per process, rebuilt when rank or world size changed).
    """
    try:
        import torch.distributed as dist
    except ImportError:  # pragma: no cover
        return None
    if not (dist.is_available() and dist.is_initialized()):
        return None
    global _ACTIVE
    if _ACTIVE is None or _ACTIVE.rank != dist.get_rank() or _ACTIVE.world_size != dist.get_world_size():
        _ACTIVE = Distributed(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    return _ACTIVE


_ACTIVE: Distributed | None = None


def launched_by_torchrun() -> bool:
    """Whether this process was started by torchrun (or another launcher setting its variables).

    Returns
    -------
    bool
        True when ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` are all set.
    """
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"))
