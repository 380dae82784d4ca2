r"""One process decides, every process applies: the decision hook of multi-process (DDP) training.

Every reduction decision — the plan of :func:`~ssmred_torch.reduce_model` (HSVs, orders, reduced
systems) and a pragmatic check's verdict in :class:`~ssmred_torch.CompreSSM` — is made through
:func:`decide`. Outside :func:`shared_decisions` that is a plain call; inside it, the hook given there
makes the decision on one process and hands its result to every process (the application's DDP trainer:
``broadcast_object_list`` from rank 0), so every rank applies the same plan to its own copy of the
model. Both names are re-exported by :mod:`ssmred_torch.reduce` and the top-level package.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

__all__ = ["decide", "shared_decisions"]

_T = TypeVar("_T")
#: the active hook of shared_decisions (None: decide locally)
_DECIDER: contextvars.ContextVar[Callable[[Callable[[], Any]], Any] | None] = contextvars.ContextVar(
    "ssmred_torch_decider", default=None
)


def decide(thunk: Callable[[], _T]) -> _T:
    """Make one reduction decision: ``thunk()``, or through the hook of the enclosing :func:`shared_decisions`.

    Parameters
    ----------
    thunk
        Computes the decision (a :class:`ReductionPlan`, a verdict) from the local model.

    Returns
    -------
    object
        What ``thunk`` returned (on the deciding process) or its copy (on the others).

    Examples
    --------
    >>> decide(lambda: 42)
    42
    """
    hook = _DECIDER.get()
    return thunk() if hook is None else hook(thunk)


@contextlib.contextmanager
def shared_decisions(hook: Callable[[Callable[[], Any]], Any]) -> Iterator[None]:
    """Within the block, every :func:`decide` goes through ``hook`` (one process decides for all).

    Parameters
    ----------
    hook
        ``hook(thunk)`` must call ``thunk`` on exactly one process and return its result on every
        process, e.g. with ``torch.distributed.broadcast_object_list`` from rank 0 (tensors moved to
        the CPU before sending and to each process's device after). Every process must reach every
        decision (they do: reductions happen at the same steps on all ranks).

    Yields
    ------
    None
        The block runs with ``hook`` in place (restored on exit, also on an exception).

    Examples
    --------
    >>> import torch
    >>> from ssmred_torch import LRUModel, rank, reduce_model
    >>> model = LRUModel(1, 4, 16, 2, 3, dtype=torch.float64)
    >>> calls = []
    >>> def hook(thunk):          # a one-process stand-in for "rank 0 decides, the plan is broadcast"
    ...     calls.append(1)
    ...     return thunk()
    >>> with shared_decisions(hook):
    ...     _ = reduce_model(model, rank(6))
    >>> len(calls), model.state_sizes
    (1, [6, 6])
    """
    token = _DECIDER.set(hook)
    try:
        yield
    finally:
        _DECIDER.reset(token)
