r"""The optimizer and learning-rate schedule of a run (SPEC §6).

:func:`build_optimizer` makes AdamW with three parameter groups — the SSM parameters at
``lr * ssm_lr_factor`` without weight decay, the other weights with ``weight_decay``, the rest without
— and a :class:`torch.optim.lr_scheduler.LambdaLR` over :func:`lr_lambda`: linear warm-up over the first
``warmup_fraction`` of the steps, cosine decay to 0 after it. :class:`~ssmred_app.trainer.Trainer` builds
both before it loads any state (and again after a resume rebuilds the model).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ssmred_app.config import OptimConfig
from ssmred_app.models import param_groups

__all__ = ["build_optimizer", "lr_lambda"]


def lr_lambda(total_steps: int, warmup_fraction: float) -> Callable[[int], float]:
    r"""Linear warm-up over ``warmup_fraction`` of the steps, then cosine decay to 0.

    With :math:`w = \max(1, \mathrm{round}(f\,T))` warm-up steps (:math:`f` = ``warmup_fraction``,
    :math:`T` = ``total_steps``) the factor at step :math:`s` is :math:`(s+1)/w` for :math:`s < w` and
    :math:`\tfrac12\bigl(1 + \cos(\pi t)\bigr)`, :math:`t = \min\bigl(1, (s-w)/\max(1, T-w)\bigr)`,
    after it.

    Parameters
    ----------
    total_steps
        Number of optimizer steps of the whole run, :math:`T \ge 1`.
    warmup_fraction
        Share of the steps spent warming up, in :math:`[0, 1)` as ``optim.warmup_fraction`` requires
        (at least one step either way).

    Returns
    -------
    Callable[[int], float]
        The factor multiplying each group's base learning rate at a step (0-based), in :math:`[0, 1]`,
        for :class:`torch.optim.lr_scheduler.LambdaLR`.

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


def build_optimizer(model: Any, o: OptimConfig, total_steps: int) -> tuple[Any, Any]:
    """AdamW with the SPEC §6 groups and its warm-up/cosine scheduler.

    Parameters
    ----------
    model
        The classifier (its parameters are grouped by :func:`ssmred_app.models.param_groups`).
    o
        The ``optim`` section of the run configuration.
    total_steps
        Number of optimizer steps of the whole run (the length of the schedule).

    Returns
    -------
    optimizer : torch.optim.AdamW
        The optimizer; groups without parameters are left out.
    scheduler : torch.optim.lr_scheduler.LambdaLR
        The learning-rate schedule (:func:`lr_lambda`).
    """
    import torch

    ssm, decay, no_decay = param_groups(model)
    groups = [
        {"params": ssm, "lr": o.lr * o.ssm_lr_factor, "weight_decay": 0.0, "name": "ssm"},
        {"params": decay, "lr": o.lr, "weight_decay": o.weight_decay, "name": "decay"},
        {"params": no_decay, "lr": o.lr, "weight_decay": 0.0, "name": "no_decay"},
    ]
    optimizer = torch.optim.AdamW([g for g in groups if g["params"]], lr=o.lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(total_steps, o.warmup_fraction))
    return optimizer, scheduler
