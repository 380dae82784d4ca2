r"""The matrix-level helpers behind :class:`~ssmred.statespace.StateSpace` (no class of their own).

This module owns the time-base check (:func:`validate_dt`), the rounding slack of the stability test
(:func:`stability_slack`), the validation and dtype promotion of ``(A, B, C, D)``
(``_as_matrix`` / ``_normalize_abcd``), the exact-diagonal test and the transfer-function evaluation
through a Schur form. :mod:`ssmred.statespace` re-exports the public names; import them from there.
"""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING

import numpy as np
import scipy.linalg as spla

from ssmred.errors import DimensionError

if TYPE_CHECKING:
    from ssmred.statespace import StateSpace

__all__ = ["stability_slack", "validate_dt"]


def validate_dt(dt: object, *, name: str = "dt") -> float | None:
    """Check a time base: ``None`` (continuous time) or a finite float ``> 0`` (sampling time).

    Parameters
    ----------
    dt
        The value to check.
    name
        Argument name used in error messages.

    Returns
    -------
    float or None
        The validated sampling time.

    Raises
    ------
    TypeError
        If ``dt`` is a bool or not a real number.
    ValueError
        If ``dt`` is not finite or not positive.

    Examples
    --------
    >>> validate_dt(0.5), validate_dt(None)
    (0.5, None)
    """
    if dt is None:
        return None
    if isinstance(dt, (bool, np.bool_)) or not isinstance(dt, numbers.Real):
        raise TypeError(
            f"{name} must be None (continuous time) or a float > 0 (sampling time); got {dt!r} "
            f"of type {type(dt).__name__}"
        )
    value = float(dt)
    if not np.isfinite(value) or value <= 0.0:
        raise ValueError(f"{name} must be None (continuous time) or a finite float > 0 (sampling time); got {dt!r}")
    return value


def stability_slack(A: np.ndarray) -> float:
    r"""Distance from the stability boundary below which a pole counts as on it: :math:`64\,\epsilon\,\|\hat A\|_1`.

    Eigenvalues are computed with errors of order :math:`\epsilon\|\hat A\|`, where :math:`\hat A =
    D^{-1} A D` is ``A`` balanced by an exact diagonal scaling (LAPACK ``gebal``, as ``eigvals`` does
    internally), so a pole on the boundary can come out just inside it; Gramians and HSVs of such a
    system are ~1e15 and meaningless. The slack is relative to the balanced norm, so neither a time
    scale (``A * 1e-150``) nor a graded state scaling (``D^{-1} A D`` with ``D`` spanning 1e60) turns a
    stable system into an unstable one.

    Parameters
    ----------
    A
        State matrix.

    Returns
    -------
    float
        The slack.

    Examples
    --------
    >>> stability_slack(np.eye(2)) < 1e-13
    True
    """
    return float(64.0 * np.finfo(float).eps * _balanced_norm1(A))


def _balanced_norm1(A: np.ndarray) -> float:
    """1-norm of ``A`` after LAPACK's diagonal balancing (the norm its eigenvalue errors scale with)."""
    if A.size == 0:
        return 0.0
    if _is_diagonal(A):
        return float(np.max(np.abs(np.diag(A))))
    norm1 = float(np.abs(A).sum(axis=0).max())
    from scipy.linalg import lapack

    gebal = lapack.get_lapack_funcs("gebal", dtype=A.dtype)
    Ab, _lo, _hi, _scale, info = gebal(A, scale=1, permute=0)
    if info != 0:  # pragma: no cover - only for illegal arguments
        return norm1
    return min(norm1, float(np.abs(Ab).sum(axis=0).max()))


def _as_matrix(name: str, value: object, expected: str) -> np.ndarray:
    """Convert one of A, B, C, D to a 2-D finite float64/complex128 array."""
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged nested lists etc.
        raise DimensionError(f"{name} could not be converted to an array ({exc}); expected {expected}") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise TypeError(f"{name} must be a numeric array of shape {expected}; got dtype {arr.dtype}")
    if arr.ndim == 0:
        arr = arr.reshape(1, 1)
    if arr.ndim != 2:
        raise DimensionError(
            f"{name} must be a 2-D array of shape {expected}; got {arr.ndim}-D array of shape {arr.shape}"
            + (" (reshape a vector to a column or row explicitly)" if arr.ndim == 1 else "")
        )
    dtype = np.complex128 if np.iscomplexobj(arr) else np.float64
    arr = np.array(arr, dtype=dtype, order="C", copy=True)
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(f"{name} must be finite; entry {tuple(int(i) for i in bad)} is {arr[tuple(bad)]}")
    return arr


def _normalize_abcd(
    A: object, B: object, C: object, D: object | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validate shapes, reject NaN/Inf and promote all four matrices to one dtype."""
    A_ = _as_matrix("A", A, "(n_states, n_states)")
    n = A_.shape[0]
    if A_.shape[1] != n:
        raise DimensionError(f"A must be square (n_states, n_states); got shape {A_.shape}")
    if n == 0:
        raise DimensionError("A must have at least one state; got shape (0, 0)")
    B_ = _as_matrix("B", B, f"(n_states={n}, n_inputs)")
    if B_.shape[0] != n or B_.shape[1] == 0:
        raise DimensionError(f"B must have shape (n_states={n}, n_inputs>=1); got {B_.shape}")
    C_ = _as_matrix("C", C, f"(n_outputs, n_states={n})")
    if C_.shape[1] != n or C_.shape[0] == 0:
        raise DimensionError(f"C must have shape (n_outputs>=1, n_states={n}); got {C_.shape}")
    m, p = B_.shape[1], C_.shape[0]
    if D is None:
        D_ = np.zeros((p, m))
    else:
        D_ = _as_matrix("D", D, f"(n_outputs={p}, n_inputs={m})")
        if D_.shape != (p, m):
            if D_.shape == (1, 1) and np.all(D_ == 0):
                D_ = np.zeros((p, m), dtype=D_.dtype)
            else:
                raise DimensionError(f"D must have shape (n_outputs={p}, n_inputs={m}); got {D_.shape}")
    dtype = np.result_type(A_, B_, C_, D_)
    out = []
    for arr in (A_, B_, C_, D_):
        arr = arr.astype(dtype, copy=False)
        arr.setflags(write=False)
        out.append(arr)
    return out[0], out[1], out[2], out[3]


def _is_diagonal(A: np.ndarray) -> bool:
    """Exactly diagonal (no off-diagonal nonzeros): every nonzero of ``A`` lies on its diagonal."""
    return bool(np.count_nonzero(A) == np.count_nonzero(np.diagonal(A)))


def _evaluate(sys: StateSpace, points: np.ndarray) -> np.ndarray:
    """G at complex points, through a (complex) Schur form: backward-stable triangular solves."""
    n, k = sys.n_states, points.size
    out = np.empty((k, sys.n_outputs, sys.n_inputs), dtype=np.complex128)
    if _is_diagonal(sys.A):
        lam = np.diag(sys.A)
        resolvent = 1.0 / (points[:, None] - lam[None, :])  # (k, n)
        out[:] = np.einsum("pn,kn,nm->kpm", sys.C, resolvent, sys.B) + sys.D
        return out
    T, Z = spla.schur(sys.A.astype(np.complex128), output="complex")
    CZ = sys.C @ Z
    ZB = Z.conj().T @ sys.B
    eye = np.eye(n)
    for i, s in enumerate(points):
        X = spla.solve_triangular(s * eye - T, ZB, check_finite=False)
        out[i] = CZ @ X + sys.D
    return out
