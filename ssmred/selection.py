r"""Order-selection rules of CompreSSM, shared by every framework adapter (host side, numpy only).

A *selection mode* says how many states each analysed system keeps, given its Hankel singular values
:math:`\sigma_1 \ge \dots \ge \sigma_n`:

* :class:`Tolerance` ``(tau)``: the smallest ``r`` with
  :math:`\sum_{i\le r}\sigma_i \ge (1-\tau)\sum_i\sigma_i` — τ is the *discarded* fraction of the
  *plain* HSV sum (:func:`ssmred.order_from_energy`; SPEC §6). τ applies per attempt: ``k``
  attempts keep about :math:`(1-\tau)^k` of the original :math:`\sum_i\sigma_i`.
* :class:`Fraction` ``(f)``: :math:`r = \max(1, \lfloor n(1-f)\rfloor)`.
* :class:`Rank` ``(r)`` / ``Rank(total=R)``: explicit orders (one for all systems or one per
  system), or a total budget shared by one common threshold on the normalised values
  :math:`\sigma_i/\sum_j\sigma_j` (at least one state per system).
* :class:`Pragmatic` ``(f, tolerance)``: a fixed fraction; a training controller adds the checkpoint /
  validation / rollback logic around it.

Every mode is a frozen dataclass validated in ``__post_init__`` (``Tolerance(5.0)`` raises); the
lowercase factories :func:`tolerance`, :func:`fraction`, :func:`rank`, :func:`pragmatic` are the same
constructors. :func:`select_orders` applies a mode to a list of HSV vectors and caps every order at
the numerical Hankel rank (:func:`numerical_rank`), below which the square-root projection would be
singular. The *gate* — reduce only if :math:`r < \text{gate}\cdot n` — is checked by
:func:`check_gate` and applied by the adapters; the reduction *schedule* (steps or fractions of the
training) by :func:`check_schedule` / :func:`resolve_schedule`, so that every framework and the
application's config accept exactly the same values.

The mode value types, their factories and :func:`check_mode` live in ``ssmred._modes`` and are
re-exported here (``ssmred.selection`` is where to import every name above from).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np

from ssmred._modes import (
    Fraction,
    Pragmatic,
    Rank,
    SelectionMode,
    Tolerance,
    _positive_int,
    _real,
    check_mode,
    fraction,
    pragmatic,
    rank,
    tolerance,
)
from ssmred._typing import ArrayLike
from ssmred.bounds import _hsv_array, order_from_energy

__all__ = [
    "Fraction",
    "Pragmatic",
    "Rank",
    "SelectionMode",
    "Tolerance",
    "DEFAULT_SCHEDULE",
    "check_gate",
    "check_mode",
    "check_schedule",
    "fraction",
    "numerical_rank",
    "pragmatic",
    "rank",
    "resolve_schedule",
    "select_orders",
    "tolerance",
]

#: CompreSSM's default: four equally spaced attempts in the first 10 % of training (SPEC §6)
DEFAULT_SCHEDULE: tuple[float, ...] = (0.025, 0.05, 0.075, 0.10)


# ---------------------------------------------------------------------------------------------- gate
def check_gate(gate: object) -> float:
    r"""Validate the gate: a system is reduced only if its chosen :math:`r < \text{gate}\cdot n`.

    Parameters
    ----------
    gate
        A float in ``(0, 1]`` (published: 0.95; 1.0 reduces whenever ``r < n``).

    Returns
    -------
    float
        The gate.

    Raises
    ------
    ValueError
        If ``gate`` is not a finite float in ``(0, 1]``.

    Examples
    --------
    >>> check_gate(0.95)
    0.95
    """
    g = _real("gate", gate)
    if not 0.0 < g <= 1.0:
        raise ValueError(f"gate must be a float in (0, 1]; got {gate!r}")
    return g


# ---------------------------------------------------------------------------------------------- orders
def numerical_rank(hsv: ArrayLike, *, rtol: float | None = None) -> int:
    r"""The numerical rank of a Hankel operator: the number of :math:`\sigma_i > \text{rtol}\cdot\sigma_1`.

    Parameters
    ----------
    hsv
        Hankel singular values, descending.
    rtol
        Relative threshold; default :math:`n\,\epsilon` (float64).

    Returns
    -------
    int
        The rank (0 when every value is 0).

    Examples
    --------
    >>> numerical_rank([1.0, 1e-3, 1e-20])
    2
    """
    s = _hsv_array(hsv)
    if s[0] == 0.0:
        return 0
    threshold = (s.size * np.finfo(np.float64).eps if rtol is None else _real("rtol", rtol)) * s[0]
    return int(np.count_nonzero(s > threshold))


def _budget(hsvs: list[np.ndarray], total: int) -> list[int]:
    """Share ``total`` states: one per system, then the largest normalised HSVs beyond the first."""
    k = len(hsvs)
    if total < k:
        raise ValueError(f"rank(total={total}) is smaller than the number of systems ({k}): each keeps one state")
    values, owners = [], []
    for i, s in enumerate(hsvs):
        norm = s / s.sum() if s.sum() > 0 else np.zeros_like(s)
        values.append(norm[1:])
        owners.append(np.full(s.size - 1, i))
    flat, owner = np.concatenate(values), np.concatenate(owners)
    extra = min(total - k, flat.size)
    counts = np.ones(k, dtype=np.int64)
    if extra > 0:
        top = np.argsort(-flat, kind="stable")[:extra]
        np.add.at(counts, owner[top], 1)
    return [int(c) for c in counts]


def select_orders(mode: SelectionMode, hsvs: Sequence[ArrayLike], *, rtol: float | None = None) -> tuple[int, ...]:
    r"""Apply a selection mode to the HSVs of several systems (e.g. every SSM layer of a model).

    Each order is in ``[1, n]`` and capped at ``max(1, numerical_rank(hsv))``.

    Parameters
    ----------
    mode
        :class:`Tolerance`, :class:`Fraction`, :class:`Rank` or :class:`Pragmatic`.
    hsvs
        One descending HSV vector per system (any sizes).
    rtol
        Relative threshold of the numerical-rank cap (see :func:`numerical_rank`).

    Returns
    -------
    tuple of int
        One order per system.

    Raises
    ------
    TypeError
        For an invalid mode.
    ValueError
        If a per-system ``Rank`` has the wrong length, a budget is smaller than the number of systems,
        or an HSV vector is invalid (empty, not finite, negative, not descending).

    Examples
    --------
    >>> select_orders(tolerance(0.1), [[5.0, 3.0, 1.5, 0.5], [1.0, 1e-30]])
    (3, 1)
    >>> select_orders(rank(total=4), [[4.0, 3.0, 2.0], [1.0, 0.1, 0.01]])
    (3, 1)
    """
    check_mode(mode)
    arrays = [_hsv_array(h) for h in hsvs]
    if isinstance(mode, Tolerance):
        raw = [order_from_energy(s, mode.tau) for s in arrays]
    elif isinstance(mode, (Fraction, Pragmatic)):
        raw = [max(1, math.floor(s.size * (1.0 - mode.f))) for s in arrays]
    elif mode.total is not None:
        raw = _budget(arrays, mode.total) if arrays else []
    elif isinstance(mode.r, tuple):
        if len(mode.r) != len(arrays):
            raise ValueError(f"rank(r) has {len(mode.r)} entries but there are {len(arrays)} systems")
        raw = list(mode.r)
    else:
        raw = [int(mode.r)] * len(arrays)  # type: ignore[arg-type]
    return tuple(
        min(max(1, min(int(r), s.size)), max(1, numerical_rank(s, rtol=rtol))) for r, s in zip(raw, arrays, strict=True)
    )


# ---------------------------------------------------------------------------------------------- schedule
def check_schedule(schedule: Sequence[int | float]) -> tuple[int | float, ...]:
    """Validate a reduction schedule without knowing the run length.

    Parameters
    ----------
    schedule
        A non-empty sequence of attempt times: ints are step numbers (``>= 0``; step 0 reduces at
        initialisation), floats are fractions of the training in ``(0, 1]``.

    Returns
    -------
    tuple
        The items.

    Raises
    ------
    ValueError
        For an empty schedule or an item that is not a step ``>= 0`` or a fraction in ``(0, 1]``.

    Examples
    --------
    >>> check_schedule([0.025, 0.05, 100])
    (0.025, 0.05, 100)
    """
    if isinstance(schedule, (str, bytes)) or not isinstance(schedule, Sequence) or len(schedule) == 0:
        raise ValueError(f"schedule must be a non-empty list of steps (int) or fractions (float); got {schedule!r}")
    for k, item in enumerate(schedule):
        if isinstance(item, bool) or not isinstance(item, numbers.Real):
            raise ValueError(f"schedule[{k}] must be an int step or a float fraction; got {item!r}")
        if isinstance(item, numbers.Integral):
            if int(item) < 0:
                raise ValueError(f"schedule[{k}] = {item}: a step number must be >= 0")
        elif not (math.isfinite(float(item)) and 0.0 < float(item) <= 1.0):
            raise ValueError(f"schedule[{k}] = {item!r}: a fraction must be in (0, 1]")
    return tuple(schedule)


def resolve_schedule(total_steps: int, schedule: Sequence[int | float] | None = None) -> tuple[int, ...]:
    r"""The attempt steps of a schedule for a run of ``total_steps`` steps, ascending.

    A fraction ``f`` becomes step :math:`\lfloor f\cdot\text{total} + 1/2\rfloor` (half-up).

    Parameters
    ----------
    total_steps
        Number of training steps, ``>= 1``.
    schedule
        See :func:`check_schedule`; ``None`` for :data:`DEFAULT_SCHEDULE`.

    Returns
    -------
    tuple of int
        Distinct steps in ``[0, total_steps]``.

    Raises
    ------
    ValueError
        For an invalid schedule, a step beyond ``total_steps``, a fraction rounding to step 0, or
        duplicate steps.

    Examples
    --------
    >>> resolve_schedule(1000), resolve_schedule(300)
    ((25, 50, 75, 100), (8, 15, 23, 30))
    """
    total = _positive_int("total_steps", total_steps)
    items = check_schedule(DEFAULT_SCHEDULE if schedule is None else schedule)
    steps = []
    for k, item in enumerate(items):
        if isinstance(item, numbers.Integral):
            step = int(item)
            if step > total:
                raise ValueError(f"schedule[{k}] = {step} is not a step in [0, total_steps={total}]")
        else:
            step = math.floor(float(item) * total + 0.5)
            if step < 1:
                raise ValueError(f"schedule[{k}] = {item!r} of total_steps={total} rounds to step 0; use more steps")
        steps.append(step)
    if len(set(steps)) != len(steps):
        raise ValueError(f"schedule resolves to duplicate steps {steps} (total_steps={total}); give distinct steps")
    return tuple(sorted(steps))
