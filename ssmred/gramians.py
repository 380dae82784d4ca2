r"""Controllability and observability Gramians and their square-root factors.

For a stable system the Gramians solve

.. math::

    \text{CT:}\quad A P + P A^H + B B^H = 0,\qquad A^H Q + Q A + C^H C = 0,

    \text{DT:}\quad A P A^H - P + B B^H = 0,\qquad A^H Q A - Q + C^H C = 0.

ssmred works with factors :math:`P = L_c L_c^H`, :math:`Q = L_o L_o^H` computed *directly*
(Hammarling's method after an exact power-of-two equilibration), never by factoring a computed
``P`` with ``eigh``. For diagonal :math:`A = \mathrm{diag}(\lambda)` the Gramians have the closed form

.. math::

    P_{ij} = \frac{(B B^H)_{ij}}{1 - \lambda_i \bar\lambda_j}\ (\text{DT}),\qquad
    P_{ij} = -\frac{(B B^H)_{ij}}{\lambda_i + \bar\lambda_j}\ (\text{CT}),

and likewise for ``Q`` with :math:`C^H C` and :math:`\bar\lambda_i \lambda_j`; its entries are accurate
to a few ulps relative to :math:`\sqrt{P_{ii} P_{jj}}`, and a pivoted Cholesky factorisation turns
them into factors.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ssmred._require import require
from ssmred._threads import kernel
from ssmred._typing import ArrayLike
from ssmred.backends import GRAMIAN_METHODS, GramianMethod, check_choice
from ssmred.backends import scipy as scipy_backend
from ssmred.errors import DimensionError, NotStableError
from ssmred.statespace import StateSpace, _is_diagonal, stability_slack

__all__ = [
    "GramianFactors",
    "controllability_gramian",
    "diagonal_gramian_factors",
    "diagonal_gramians",
    "gramian_factors",
    "observability_gramian",
    "check_stable_poles",
    "check_system",
    "require_stable",
]


class GramianFactors(NamedTuple):
    r"""Square-root factors :math:`P = L_c L_c^H` and :math:`Q = L_o L_o^H` (both ``(n, n)``).

    Attributes
    ----------
    Lc
        Controllability factor, :math:`P = L_c L_c^H`.
    Lo
        Observability factor, :math:`Q = L_o L_o^H`.
    """

    Lc: np.ndarray
    Lo: np.ndarray


def require_stable(sys: StateSpace, what: str = "Gramians") -> None:
    """Raise :class:`NotStableError` unless ``sys`` is asymptotically stable.

    Parameters
    ----------
    sys
        The system.
    what
        What is undefined for an unstable system (for the message).

    Raises
    ------
    NotStableError
        If a pole lies on or outside the stability boundary.

    Examples
    --------
    >>> require_stable(StateSpace([[-1.0]], [[1.0]], [[1.0]]))
    """
    check_system(sys)
    check_stable_poles(sys.poles(), discrete=sys.is_discrete, what=what, slack=stability_slack(sys.A))


def check_system(sys: object, name: str = "sys") -> None:
    """Raise ``TypeError`` unless ``sys`` is a :class:`~ssmred.StateSpace`.

    Parameters
    ----------
    sys
        The object to check.
    name
        Argument name for the message.

    Raises
    ------
    TypeError
        If ``sys`` is not a StateSpace.

    Examples
    --------
    >>> check_system(StateSpace([[-1.0]], [[1.0]], [[1.0]]))
    """
    if not isinstance(sys, StateSpace):
        raise TypeError(f"{name} must be a ssmred.StateSpace; got {type(sys).__name__}")


def check_stable_poles(poles: np.ndarray, *, discrete: bool, what: str = "Gramians", slack: float = 0.0) -> None:
    """Raise :class:`NotStableError` unless all ``poles`` lie inside the stability region by ``slack``.

    Parameters
    ----------
    poles
        Eigenvalues of ``A`` (e.g. the diagonal of a Schur form).
    discrete
        Unit disc (``True``) or open left half-plane (``False``).
    what
        What is undefined for an unstable system (for the message).
    slack
        Poles closer than this to the boundary count as on it (rounding makes a pole at
        ``|λ| = 1`` come out as ``1 - 1e-16``; see :func:`ssmred.statespace.stability_slack`).

    Raises
    ------
    NotStableError
        If a pole lies on, outside, or within ``slack`` of the boundary.

    Examples
    --------
    >>> check_stable_poles(np.array([0.5, -0.2j]), discrete=True)
    """
    if discrete:
        margin = float(np.max(np.abs(poles)))
        if not margin < 1.0 - slack:
            near = " (within rounding distance of the unit circle)" if margin < 1.0 else ""
            raise NotStableError(
                f"{what}: needs a stable discrete-time system (all |poles| < 1); "
                f"its spectral radius is {margin:.6g}{near}"
            )
    else:
        margin = float(np.max(np.real(poles)))
        if not margin < -slack:
            near = " (within rounding distance of the imaginary axis)" if margin < 0.0 else ""
            raise NotStableError(
                f"{what}: needs a stable continuous-time system (all Re(poles) < 0); "
                f"its spectral abscissa is {margin:.6g}{near}"
            )


def _slycot_usable() -> bool:
    """Whether slycot imports (checked once; a broken install counts as absent)."""
    global _SLYCOT_OK
    if _SLYCOT_OK is None:
        try:
            import slycot

            _SLYCOT_OK = hasattr(slycot, "_wrapper") and hasattr(slycot._wrapper, "sb03od")
            from ssmred._threads import library_loaded

            library_loaded()  # slycot's own OpenBLAS joins the thread limit of a running kernel
        except Exception:  # ImportError, or a binary that fails to load
            _SLYCOT_OK = False
    return _SLYCOT_OK


_SLYCOT_OK: bool | None = None


def _resolve(sys: StateSpace, method: str) -> str:
    """The concrete backend for ``method``: ``"auto"`` picks the closed form for a diagonal ``A``, SLICOT
    (SB03OD on ssmred's own Schur form) for other real systems when slycot is installed, else ``"scipy"``.
    """
    check_system(sys)
    check_choice("method", method, GRAMIAN_METHODS)
    if method == "auto":
        if _is_diagonal(sys.A):
            return "diagonal"
        return "slycot" if (not sys.is_complex and _slycot_usable()) else "scipy"
    if method == "diagonal" and not _is_diagonal(sys.A):
        raise ValueError("method='diagonal' needs a diagonal A; use method='scipy' for a dense A")
    if method == "slycot" and sys.is_complex:
        raise TypeError(
            "method='slycot' is real-only (SLICOT would silently drop imaginary parts); use method='scipy' "
            "or the real realization sys.to_real()"
        )
    return method


def _diag_size(lam: object, *args: object, **kwargs: object) -> int:
    return int(np.shape(lam)[-1]) if np.ndim(lam) else 0


@kernel(_diag_size)
def diagonal_gramians(lam: ArrayLike, B: ArrayLike, C: ArrayLike, *, dt: float | None) -> tuple[np.ndarray, np.ndarray]:
    r"""Closed-form Gramians of diagonal systems, batched over leading dimensions.

    Parameters
    ----------
    lam
        Eigenvalues, shape ``(..., n)``.
    B
        Input matrices, shape ``(..., n, m)``.
    C
        Output matrices, shape ``(..., p, n)``.
    dt
        Required: ``None`` for continuous time, anything ``> 0`` for discrete time (the value itself
        does not enter the formula; no default, so a CT eigenvalue set is never analysed as DT).

    Returns
    -------
    tuple of numpy.ndarray
        ``(P, Q)``, each of shape ``(..., n, n)``, complex128 (Hermitian).

    Raises
    ------
    DimensionError
        If the shapes do not fit.
    NotStableError
        If some ``|λ| >= 1`` (DT) or ``Re λ >= 0`` (CT).

    Notes
    -----
    DT: :math:`P_{ij} = (BB^H)_{ij} / (1-\lambda_i\bar\lambda_j)`,
    :math:`Q_{ij} = (C^HC)_{ij} / (1-\bar\lambda_i\lambda_j)`. CT: :math:`P_{ij} = -(BB^H)_{ij} /
    (\lambda_i+\bar\lambda_j)`, :math:`Q_{ij} = -(C^HC)_{ij} / (\bar\lambda_i+\lambda_j)`. Cost
    :math:`O(n^2(m+p))`.

    Examples
    --------
    >>> P, Q = diagonal_gramians([0.5], [[1.0]], [[1.0]], dt=1.0)
    >>> P.real.round(4)
    array([[1.3333]])
    """
    lam_, B_, C_ = _check_diagonal_inputs(lam, B, C, dt=dt)
    BBh = B_ @ np.conj(np.swapaxes(B_, -1, -2))
    ChC = np.conj(np.swapaxes(C_, -1, -2)) @ C_
    li = lam_[..., :, None]
    lj = lam_[..., None, :]
    if dt is None:
        P = -BBh / (li + np.conj(lj))
        Q = -ChC / (np.conj(li) + lj)
    else:
        P = BBh / (1.0 - li * np.conj(lj))
        Q = ChC / (1.0 - np.conj(li) * lj)
    return P, Q


def _check_diagonal_inputs(
    lam: ArrayLike, B: ArrayLike, C: ArrayLike, *, dt: float | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from ssmred.statespace import validate_dt

    validate_dt(dt)
    lam_ = np.asarray(lam, dtype=np.complex128)
    B_ = np.asarray(B, dtype=np.complex128)
    C_ = np.asarray(C, dtype=np.complex128)
    if lam_.ndim < 1 or lam_.shape[-1] == 0:
        raise DimensionError(f"lam must have shape (..., n_states) with n_states >= 1; got {lam_.shape}")
    n = lam_.shape[-1]
    batch = lam_.shape[:-1]
    if B_.ndim != lam_.ndim + 1 or B_.shape[:-2] != batch or B_.shape[-2] != n:
        raise DimensionError(f"B must have shape {(*batch, n, 'n_inputs')} to match lam {lam_.shape}; got {B_.shape}")
    if C_.ndim != lam_.ndim + 1 or C_.shape[:-2] != batch or C_.shape[-1] != n:
        raise DimensionError(f"C must have shape {(*batch, 'n_outputs', n)} to match lam {lam_.shape}; got {C_.shape}")
    for name, arr in (("lam", lam_), ("B", B_), ("C", C_)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite (no NaN/Inf)")
    if dt is None:
        worst = float(np.max(lam_.real))
        if worst >= 0.0:
            raise NotStableError(f"continuous-time lam must satisfy Re(lam) < 0; max Re(lam) = {worst:.6g}")
    else:
        worst = float(np.max(np.abs(lam_)))
        if worst >= 1.0:
            raise NotStableError(f"discrete-time lam must satisfy |lam| < 1; max |lam| = {worst:.6g}")
    return lam_, B_, C_


#: Systems with n * n * max(m, p) up to this size use Hammarling's recursion on diag(lambda)
#: (accurate to ~1e-14 sigma_1); larger ones the BLAS-3 closed form + pivoted Cholesky (~1e-10 sigma_1).
DIAGONAL_RECURSION_MAX_WORK = 2**22


def diagonal_gramian_factors(lam: np.ndarray, B: np.ndarray, C: np.ndarray, *, dt: float | None) -> GramianFactors:
    r"""Gramian factors of one diagonal system :math:`(\mathrm{diag}(\lambda), B, C)`.

    Small and medium systems use Hammarling's recursion specialised to a diagonal ``A``
    (:func:`ssmred.backends.scipy.diagonal_lyapunov_factor`, :math:`O(n^2 m)`, no Schur form,
    HSVs accurate to ~1e-14 :math:`\sigma_1`). Above ``DIAGONAL_RECURSION_MAX_WORK`` (LRU-sized
    layers with hundreds of states and channels) the closed-form Gramians are formed with BLAS-3
    products and factored by a pivoted Cholesky decomposition: several times faster, HSVs accurate to
    ~1e-10 :math:`\sigma_1`.

    Parameters
    ----------
    lam
        Eigenvalues ``(n,)``, stable.
    B
        Input matrix ``(n, m)``.
    C
        Output matrix ``(p, n)``.
    dt
        ``None`` for continuous time, a float for discrete time.

    Returns
    -------
    GramianFactors
        ``(Lc, Lo)``, real when all inputs are real.

    Examples
    --------
    >>> Lc, Lo = diagonal_gramian_factors(np.array([0.5]), np.ones((1, 1)), np.ones((1, 1)), dt=1.0)
    >>> round(float((Lc @ Lc.T)[0, 0]), 12)
    1.333333333333
    """
    lam = np.asarray(lam)
    n = lam.size
    discrete = dt is not None
    if n * n * max(B.shape[1], C.shape[0]) <= DIAGONAL_RECURSION_MAX_WORK:
        Lc = scipy_backend.diagonal_lyapunov_factor(lam, B, discrete=discrete)
        Lo = scipy_backend.diagonal_lyapunov_factor(np.conj(lam), np.conj(C).T, discrete=discrete)
        return GramianFactors(Lc, Lo)
    P, Q = diagonal_gramians(lam, B, C, dt=dt)
    Lc, Lo = scipy_backend.psd_factor(P), scipy_backend.psd_factor(Q)
    if not (np.iscomplexobj(lam) or np.iscomplexobj(B) or np.iscomplexobj(C)):
        Lc, Lo = scipy_backend.realify_factor(Lc), scipy_backend.realify_factor(Lo)
    return GramianFactors(Lc, Lo)


def _factors(sys: StateSpace, method: str, what: str = "Gramians") -> GramianFactors:
    """Gramian factors in the original coordinates (validated ``sys``; stability checked on its Schur form)."""
    from ssmred._dense import square_root

    if method == "slycot":
        require("slycot")
    sr = square_root(sys, method, what=what, svd=False)
    return GramianFactors(*sr.factors_original())


@kernel()
def gramian_factors(sys: StateSpace, *, method: GramianMethod = "auto") -> GramianFactors:
    r"""Square-root factors :math:`L_c, L_o` with :math:`P = L_c L_c^H` and :math:`Q = L_o L_o^H`.

    Parameters
    ----------
    sys
        A stable system (real or complex, continuous or discrete).
    method
        ``"scipy"``: ssmred's Hammarling recursion on the complex Schur form after power-of-two
        scaling (any system, numpy/scipy only). ``"slycot"``: SLICOT SB03OD on ssmred's real Schur
        form (real systems only). ``"diagonal"``: closed form / Hammarling on the diagonal (diagonal
        ``A`` only). ``"auto"``: ``"diagonal"`` when ``A`` is diagonal; for other real systems
        ``"slycot"`` when slycot is installed (faster at every size, same accuracy), else ``"scipy"``;
        complex systems always ``"scipy"``.

    Returns
    -------
    GramianFactors
        Named tuple ``(Lc, Lo)``; real arrays for real systems.

    Raises
    ------
    NotStableError
        If ``sys`` is not asymptotically stable.
    ValueError
        For an unknown ``method`` or ``"diagonal"`` with a non-diagonal ``A``.
    TypeError
        For ``method="slycot"`` with a complex system.

    Examples
    --------
    >>> sys = StateSpace([[-1.0, 0.0], [0.0, -2.0]], [[1.0], [1.0]], [[1.0, 1.0]])
    >>> Lc, Lo = gramian_factors(sys)
    >>> bool(np.allclose(Lc @ Lc.T, controllability_gramian(sys)))
    True
    """
    return _factors(sys, _resolve(sys, method))


@kernel()
def controllability_gramian(sys: StateSpace, *, method: GramianMethod = "auto") -> np.ndarray:
    r"""Controllability Gramian :math:`P` (``AP + PA^H + BB^H = 0`` or ``APA^H - P + BB^H = 0``).

    Parameters
    ----------
    sys
        A stable system.
    method
        See :func:`gramian_factors`.

    Returns
    -------
    numpy.ndarray
        Hermitian positive semidefinite ``(n, n)`` matrix.

    Raises
    ------
    NotStableError
        If ``sys`` is not asymptotically stable.

    Examples
    --------
    >>> controllability_gramian(StateSpace([[-1.0]], [[1.0]], [[1.0]]))
    array([[0.5]])
    """
    resolved = _resolve(sys, method)
    if resolved == "diagonal":
        require_stable(sys)
        P, _ = diagonal_gramians(np.diag(sys.A), sys.B, sys.C, dt=sys.dt)
        return P if sys.is_complex else P.real
    Lc = _factors(sys, resolved).Lc
    return _hermitian(Lc @ Lc.conj().T)


@kernel()
def observability_gramian(sys: StateSpace, *, method: GramianMethod = "auto") -> np.ndarray:
    r"""Observability Gramian :math:`Q` (``A^HQ + QA + C^HC = 0`` or ``A^HQA - Q + C^HC = 0``).

    Parameters
    ----------
    sys
        A stable system.
    method
        See :func:`gramian_factors`.

    Returns
    -------
    numpy.ndarray
        Hermitian positive semidefinite ``(n, n)`` matrix.

    Raises
    ------
    NotStableError
        If ``sys`` is not asymptotically stable.

    Examples
    --------
    >>> observability_gramian(StateSpace([[0.5]], [[1.0]], [[1.0]], dt=1.0)).round(4)
    array([[1.3333]])
    """
    resolved = _resolve(sys, method)
    if resolved == "diagonal":
        require_stable(sys)
        _, Q = diagonal_gramians(np.diag(sys.A), sys.B, sys.C, dt=sys.dt)
        return Q if sys.is_complex else Q.real
    Lo = _factors(sys, resolved).Lo
    return _hermitian(Lo @ Lo.conj().T)


def _hermitian(M: np.ndarray) -> np.ndarray:
    return 0.5 * (M + M.conj().T)
