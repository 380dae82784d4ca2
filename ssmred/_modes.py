r"""The selection modes of :mod:`ssmred.selection`: what each one is and the values it accepts.

This module owns the four mode value types — :class:`Tolerance`, :class:`Fraction`, :class:`Rank`,
:class:`Pragmatic` (frozen dataclasses validated in ``__post_init__``) — their union
:data:`SelectionMode`, the lowercase factories :func:`tolerance`, :func:`fraction`, :func:`rank`,
:func:`pragmatic`, :func:`check_mode`, and the scalar validators they share with the order and
schedule rules. Applying a mode (orders, gate, schedule) is :mod:`ssmred.selection`, which re-exports
every name here; import them from there.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Union

import numpy as np

__all__ = [
    "Fraction",
    "Pragmatic",
    "Rank",
    "SelectionMode",
    "Tolerance",
    "check_mode",
    "fraction",
    "pragmatic",
    "rank",
    "tolerance",
]


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
