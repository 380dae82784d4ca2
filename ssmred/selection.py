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
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Union

import numpy as np

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


# ---------------------------------------------------------------------------------------------- validation
def _real(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite float; got {value!r}")
    return float(value)


def _unit_interval(name: str, value: object, *, closed_low: bool) -> float:
    v = _real(name, value)
    if not ((0.0 <= v) if closed_low else (0.0 < v)) or not v < 1.0:
        raise ValueError(f"{name} must be in {'[0, 1)' if closed_low else '(0, 1)'}; got {value!r}")
    return v


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 1:
        raise ValueError(f"{name} must be an int >= 1; got {value!r}")
    return int(value)


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


# ---------------------------------------------------------------------------------------------- modes
@dataclass(frozen=True)
class Tolerance:
    r"""Energy rule: discard the fraction ``tau`` of the plain HSV sum.

    Parameters
    ----------
    tau
        Discarded fraction of :math:`\sum_i\sigma_i`, in ``[0, 1)`` (published values 0.01–0.15);
        ``tau = 0`` keeps every state above the numerical rank.

    Raises
    ------
    ValueError
        If ``tau`` is not in ``[0, 1)``.

    Examples
    --------
    >>> Tolerance(0.05)
    Tolerance(tau=0.05)
    """

    tau: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "tau", _unit_interval("tau", self.tau, closed_low=True))


@dataclass(frozen=True)
class Fraction:
    """Fixed fraction: drop ``f`` of the states, ``r = max(1, floor(n (1 - f)))``.

    Parameters
    ----------
    f
        Fraction of states removed per attempt, in ``(0, 1)`` (published: 0.1).

    Raises
    ------
    ValueError
        If ``f`` is not in ``(0, 1)``.

    Examples
    --------
    >>> Fraction(0.1)
    Fraction(f=0.1)
    """

    f: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "f", _unit_interval("f", self.f, closed_low=False))


@dataclass(frozen=True)
class Rank:
    r"""Explicit orders: ``r`` (all systems, or one per system) or a ``total`` budget.

    Parameters
    ----------
    r
        One order for every system (capped at its size), or a sequence with one order per system.
    total
        Total number of states over all systems, shared by keeping the ``total`` largest values of
        :math:`\sigma_i/\sum_j\sigma_j` over all systems (at least one state each).

    Raises
    ------
    ValueError
        If not exactly one of ``r`` / ``total`` is given or a value is not a positive int.

    Examples
    --------
    >>> Rank(16), Rank([8, 4]), Rank(total=24)
    (Rank(r=16, total=None), Rank(r=(8, 4), total=None), Rank(r=None, total=24))
    """

    r: int | tuple[int, ...] | None = None
    total: int | None = None

    def __post_init__(self) -> None:
        r, total = self.r, self.total
        if (r is None) == (total is None):
            raise ValueError(f"give exactly one of r (per system) and total (budget); got r={r!r}, total={total!r}")
        if total is not None:
            object.__setattr__(self, "total", _positive_int("total", total))
        elif isinstance(r, Sequence) and not isinstance(r, (str, bytes)):
            values = tuple(_positive_int(f"r[{i}]", v) for i, v in enumerate(r))
            if not values:
                raise ValueError("r must not be an empty sequence")
            object.__setattr__(self, "r", values)
        else:
            object.__setattr__(self, "r", _positive_int("r", r))


@dataclass(frozen=True)
class Pragmatic:
    """Fixed fraction ``f`` per attempt, rolled back by a controller when validation drops beyond ``tolerance``.

    Parameters
    ----------
    f
        Fraction of states removed per attempt, in ``(0, 1)``.
    tolerance
        Admissible drop of the validation metric (absolute, finite, ``>= 0``; published: 0.02 accuracy).
    higher_is_better
        ``True`` for accuracy-like metrics, ``False`` for losses.

    Raises
    ------
    ValueError
        For ``f`` outside ``(0, 1)`` or a negative / non-finite ``tolerance``.

    Examples
    --------
    >>> Pragmatic(0.1, 0.02)
    Pragmatic(f=0.1, tolerance=0.02, higher_is_better=True)
    """

    f: float
    tolerance: float = 0.02
    higher_is_better: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "f", _unit_interval("f", self.f, closed_low=False))
        tol = _real("tolerance", self.tolerance)
        if tol < 0.0:
            raise ValueError(f"tolerance must be a finite float >= 0; got {self.tolerance!r}")
        object.__setattr__(self, "tolerance", tol)
        if not isinstance(self.higher_is_better, (bool, np.bool_)):
            raise ValueError(f"higher_is_better must be a bool; got {self.higher_is_better!r}")
        object.__setattr__(self, "higher_is_better", bool(self.higher_is_better))


SelectionMode = Union[Tolerance, Fraction, Rank, Pragmatic]  # noqa: UP007 (a runtime alias for isinstance docs)


def tolerance(tau: float) -> Tolerance:
    r"""Tolerance (energy) mode: the smallest ``r`` keeping a fraction ``1 - tau`` of :math:`\sum_i\sigma_i`.

    Parameters
    ----------
    tau
        Discarded fraction of the plain HSV sum, in ``[0, 1)``.

    Returns
    -------
    Tolerance
        The mode.

    Examples
    --------
    >>> tolerance(0.05)
    Tolerance(tau=0.05)
    """
    return Tolerance(tau)


def fraction(f: float) -> Fraction:
    r"""Fixed-fraction mode: :math:`r = \max(1, \lfloor n(1-f)\rfloor)` per system.

    Parameters
    ----------
    f
        Fraction of states removed per attempt, in ``(0, 1)``.

    Returns
    -------
    Fraction
        The mode.

    Examples
    --------
    >>> fraction(0.1)
    Fraction(f=0.1)
    """
    return Fraction(f)


def rank(r: int | Sequence[int] | None = None, *, total: int | None = None) -> Rank:
    """Explicit-order mode: one ``r`` for all systems, one per system, or a total state budget.

    Parameters
    ----------
    r
        See :class:`Rank`.
    total
        See :class:`Rank`.

    Returns
    -------
    Rank
        The mode.

    Examples
    --------
    >>> rank(16), rank([8, 4]), rank(total=24)
    (Rank(r=16, total=None), Rank(r=(8, 4), total=None), Rank(r=None, total=24))
    """
    return Rank(r=r, total=total)  # type: ignore[arg-type]


def pragmatic(f: float = 0.1, tolerance: float = 0.02, *, higher_is_better: bool = True) -> Pragmatic:
    """Pragmatic mode (SPEC §6): checkpoint, truncate a fraction ``f``, roll back on a validation drop.

    Outside a training controller it acts as :func:`fraction`.

    Parameters
    ----------
    f
        Fraction of states removed per attempt, in ``(0, 1)``.
    tolerance
        Admissible drop of the validation metric.
    higher_is_better
        Direction of the metric.

    Returns
    -------
    Pragmatic
        The mode.

    Examples
    --------
    >>> pragmatic(0.1, 0.02)
    Pragmatic(f=0.1, tolerance=0.02, higher_is_better=True)
    """
    return Pragmatic(f, tolerance, higher_is_better)


def check_mode(mode: object) -> SelectionMode:
    """Check that ``mode`` is a selection mode.

    Parameters
    ----------
    mode
        The object to check.

    Returns
    -------
    Tolerance, Fraction, Rank or Pragmatic
        ``mode`` itself.

    Raises
    ------
    TypeError
        If it is not one of the four mode classes.

    Examples
    --------
    >>> check_mode(tolerance(0.1))
    Tolerance(tau=0.1)
    """
    if not isinstance(mode, (Tolerance, Fraction, Rank, Pragmatic)):
        raise TypeError(
            "mode must be a selection mode made by tolerance(tau), fraction(f), rank(r) / rank(total=...) or "
            f"pragmatic(f, tolerance); got {mode!r}"
        )
    return mode


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
