r"""A-priori error bounds of balanced truncation and order-selection rules.

For a stable system with Hankel singular values :math:`\sigma_1 \ge \dots \ge \sigma_n` and a reduced
order ``r`` with :math:`\sigma_r > \sigma_{r+1}`, balanced truncation (and singular perturbation)
satisfy, in continuous and discrete time,

.. math::

    \sigma_{r+1} \;\le\; \|G - G_r\|_{\mathcal H_\infty} \;\le\; 2 \sum_{i > r} \sigma_i .

ssmred reports the upper bound with the *plain* sum over all discarded values (repeated values
counted each time); this is looser than the sum over distinct values and therefore always valid.
"""

from __future__ import annotations

import numbers

import numpy as np

from ssmred._typing import ArrayLike

__all__ = ["bt_error_bounds", "bt_lower_bounds", "order_from_energy", "order_from_tolerance", "select_order"]


def _hsv_array(hsv: ArrayLike) -> np.ndarray:
    s = np.asarray(hsv, dtype=np.float64)
    if s.ndim != 1 or s.size == 0:
        raise ValueError(f"hsv must be a non-empty 1-D array; got shape {s.shape}")
    if not np.all(np.isfinite(s)) or np.any(s < 0):
        raise ValueError("hsv must be finite and non-negative")
    if np.any(np.diff(s) > 0):
        raise ValueError("hsv must be sorted in descending order")
    return s


def bt_error_bounds(hsv: ArrayLike) -> np.ndarray:
    r"""Upper bounds :math:`2\sum_{i>r}\sigma_i` for every order ``r = 0, ..., n``.

    Parameters
    ----------
    hsv
        Hankel singular values, descending.

    Returns
    -------
    numpy.ndarray
        Shape ``(n + 1,)``; entry ``r`` bounds the error of the order-``r`` model (entry ``n`` is 0).

    Examples
    --------
    >>> bt_error_bounds([3.0, 2.0, 1.0])
    array([12.,  6.,  2.,  0.])
    """
    s = _hsv_array(hsv)
    tail = np.concatenate([np.cumsum(s[::-1])[::-1], [0.0]])
    return 2.0 * tail


def bt_lower_bounds(hsv: ArrayLike) -> np.ndarray:
    r"""Lower bounds :math:`\sigma_{r+1}` on the error of any order-``r`` approximation, ``r = 0..n``.

    Parameters
    ----------
    hsv
        Hankel singular values, descending.

    Returns
    -------
    numpy.ndarray
        Shape ``(n + 1,)`` (entry ``n`` is 0).

    Examples
    --------
    >>> bt_lower_bounds([3.0, 2.0, 1.0])
    array([3., 2., 1., 0.])
    """
    s = _hsv_array(hsv)
    return np.concatenate([s, [0.0]])


def order_from_energy(hsv: ArrayLike, energy: float) -> int:
    r"""CompreSSM's tolerance rule: the smallest ``r`` keeping a fraction ``1 - τ`` of :math:`\sum\sigma_i`.

    .. math::  r = \min\{k \ge 1 : \textstyle\sum_{i\le k}\sigma_i \ge (1-\tau)\sum_i \sigma_i\}

    ``energy`` is τ, the fraction of the *plain* (not squared) sum of HSVs that is **discarded**
    (the convention of SPEC §6; the published code sums plain HSVs although its docstring says
    squared).

    Parameters
    ----------
    hsv
        Hankel singular values, descending.
    energy
        τ in ``[0, 1)``.

    Returns
    -------
    int
        The order ``r`` (at least 1).

    Raises
    ------
    ValueError
        If τ is outside ``[0, 1)``.

    Examples
    --------
    >>> order_from_energy([5.0, 3.0, 1.5, 0.5], 0.1)
    3
    """
    s = _hsv_array(hsv)
    if isinstance(energy, bool) or not isinstance(energy, numbers.Real) or not 0.0 <= float(energy) < 1.0:
        raise ValueError(f"energy (τ, the discarded fraction of the HSV sum) must be in [0, 1); got {energy!r}")
    cum = np.cumsum(s)
    total = cum[-1]
    if total == 0.0:
        return 1
    r = int(np.searchsorted(cum, (1.0 - float(energy)) * total, side="left")) + 1
    return min(max(r, 1), s.size)


def order_from_tolerance(hsv: ArrayLike, tol: float) -> int:
    r"""The smallest ``r >= 1`` whose a-priori bound :math:`2\sum_{i>r}\sigma_i` is at most ``tol``.

    Parameters
    ----------
    hsv
        Hankel singular values, descending.
    tol
        Admissible H-infinity error, ``> 0``.

    Returns
    -------
    int
        The order ``r``.

    Raises
    ------
    ValueError
        If ``tol`` is not a positive finite number.

    Examples
    --------
    >>> order_from_tolerance([3.0, 2.0, 1.0], 2.5)
    2
    """
    s = _hsv_array(hsv)
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real) or not (0.0 < float(tol) < np.inf):
        raise ValueError(f"tol (admissible H-infinity error) must be a finite number > 0; got {tol!r}")
    bounds = bt_error_bounds(s)
    ok = np.nonzero(bounds <= float(tol))[0]
    return max(int(ok[0]), 1)


def select_order(hsv: ArrayLike, *, r: int | None = None, tol: float | None = None, energy: float | None = None) -> int:
    """Resolve exactly one of ``r`` / ``tol`` / ``energy`` to a reduced order.

    Parameters
    ----------
    hsv
        Hankel singular values, descending.
    r
        Explicit order, ``1 <= r <= n``.
    tol
        See :func:`order_from_tolerance`.
    energy
        See :func:`order_from_energy`.

    Returns
    -------
    int
        The reduced order.

    Raises
    ------
    ValueError
        If not exactly one selector is given or it is out of range.

    Examples
    --------
    >>> select_order([3.0, 2.0, 1.0], r=2)
    2
    """
    return _select_order(_hsv_array(hsv), r, tol, energy)


def _select_order(s: np.ndarray, r: int | None, tol: float | None, energy: float | None) -> int:
    """:func:`select_order` for HSVs that ssmred computed itself (already validated)."""
    given = [name for name, v in (("r", r), ("tol", tol), ("energy", energy)) if v is not None]
    if len(given) != 1:
        raise ValueError(f"give exactly one of r, tol, energy; got {given or 'none'}")
    if r is not None:
        if type(r) is not int and (isinstance(r, bool) or not isinstance(r, numbers.Integral)):
            raise TypeError(f"r must be an int; got {type(r).__name__}")
        if not 1 <= int(r) <= s.size:
            raise ValueError(f"r must satisfy 1 <= r <= n_states={s.size}; got r={r}")
        return int(r)
    if tol is not None:
        return order_from_tolerance(s, tol)
    return order_from_energy(s, energy)  # type: ignore[arg-type]
