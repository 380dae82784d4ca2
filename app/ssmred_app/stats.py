r"""Paired statistics of per-seed results (scipy.stats): is method A better than method B on the same seeds?

:func:`paired` compares two lists of per-seed numbers (the same seeds in the same order): the mean and
standard deviation of the differences :math:`d_k = a_k - b_k`, how many seeds favour each side, a
paired t-test (:func:`scipy.stats.ttest_rel`) and the exact sign-flip permutation test of the mean
difference (:func:`scipy.stats.permutation_test` with ``permutation_type="samples"`` over all
:math:`2^n` sign patterns — exact, free of the normality assumption, valid with ties and zeros).

With ``n`` seeds the exact test cannot go below :math:`2/2^n` (0.0625 for 5 seeds, 0.031 for 6):
:func:`paired` reports that floor next to the p-value.

Examples
--------
>>> r = paired([3.0, 5.0, 4.0, 6.0], [1.0, 2.0, 3.0, 4.0])
>>> r["mean"], r["better"], r["worse"], r["p_exact"]
(2.0, 4, 0, 0.125)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["paired", "speedup"]


def paired(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    r"""Paired comparison of ``a`` and ``b`` (one value per seed, same seeds in the same order).

    Parameters
    ----------
    a, b
        Per-seed values (e.g. test accuracy in points).

    Returns
    -------
    dict
        ``n``; ``mean`` and ``sd`` (``ddof = 1``) of ``a - b``; ``diffs`` (per seed); ``better`` /
        ``equal`` / ``worse`` (seeds with ``a > b`` / ``a == b`` / ``a < b``); ``t`` and ``p_t`` (paired
        t-test, two-sided; NaN when undefined: fewer than 2 seeds, or all differences equal to within
        :math:`10^{-9}\max(1, \max_k |d_k|)`);
        ``p_exact`` (exact two-sided sign-flip permutation test of the mean difference; NaN for
        ``n = 0``) and ``p_floor`` (:math:`2/2^n`, the smallest value it can take).

    Raises
    ------
    ValueError
        If the lengths differ.
    """
    from scipy import stats

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"paired needs two 1-D sequences of the same length; got {x.shape} and {y.shape}")
    d = x - y
    n = int(d.size)
    out: dict[str, Any] = {
        "n": n,
        "mean": float(d.mean()) if n else math.nan,
        "sd": float(d.std(ddof=1)) if n > 1 else math.nan,
        "diffs": d.tolist(),
        "better": int((d > 0).sum()),
        "equal": int((d == 0).sum()),
        "worse": int((d < 0).sum()),
        "t": math.nan,
        "p_t": math.nan,
        "p_exact": math.nan,
        "p_floor": 2.0 / 2**n if n else math.nan,
    }
    if n == 0:
        return out
    if n > 1 and float(np.ptp(d)) > 1e-9 * max(1.0, float(np.abs(d).max())):
        with warnings.catch_warnings():  # scipy warns about precision for nearly equal differences
            warnings.simplefilter("ignore", RuntimeWarning)
            res = stats.ttest_rel(x, y)
        out["t"], out["p_t"] = float(res.statistic), float(res.pvalue)
    if not np.any(d) or n < 2:  # one seed: both sign patterns give the same |mean|
        out["p_exact"] = 1.0
        return out
    perm = stats.permutation_test(
        (x, y),
        lambda u, v, axis: np.mean(u - v, axis=axis),
        permutation_type="samples",
        vectorized=True,
        n_resamples=np.inf,
        alternative="two-sided",
    )
    out["p_exact"] = float(min(1.0, perm.pvalue))
    return out


def speedup(reference: Sequence[float], values: Sequence[float]) -> dict[str, float]:
    r"""Per-seed ratios ``reference / value`` (e.g. full-model CPU time / method CPU time): mean, min, max.

    Parameters
    ----------
    reference
        Per-seed reference values (e.g. the full model's CPU times in seconds).
    values
        Per-seed values of the method, same seeds in the same order and same length (non-zero: a zero
        gives an infinite or NaN ratio).

    Returns
    -------
    dict
        ``mean``, ``min`` and ``max`` of the ratios :math:`r_k = \mathrm{reference}_k / \mathrm{value}_k`
        (the mean of the ratios, not the ratio of the means).

    Examples
    --------
    >>> speedup([10.0, 12.0], [5.0, 4.0])
    {'mean': 2.5, 'min': 2.0, 'max': 3.0}
    """
    r = np.asarray(reference, dtype=float) / np.asarray(values, dtype=float)
    return {"mean": float(r.mean()), "min": float(r.min()), "max": float(r.max())}
