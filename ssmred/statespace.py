r"""The immutable :class:`StateSpace` value object.

A state-space system is

.. math::

    \dot x = A x + B u,\; y = C x + D u \quad (\text{continuous, } dt=\text{None}),\qquad
    x_{k+1} = A x_k + B u_k,\; y_k = C x_k + D u_k \quad (\text{discrete, } dt>0).

Matrices are real (float64) or complex (complex128); a system is complex as soon as one matrix is.
"""

from __future__ import annotations

import dataclasses
import numbers
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.linalg as spla

from ssmred._require import require
from ssmred._threads import kernel
from ssmred._typing import ArrayLike, FrequencyResponse
from ssmred.errors import DimensionError

__all__ = ["StateSpace", "stability_slack", "validate_dt"]


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


@dataclass(frozen=True, eq=False)
class StateSpace:
    r"""An immutable LTI system :math:`(A, B, C, D)` in continuous (``dt=None``) or discrete time.

    Parameters
    ----------
    A
        State matrix, shape ``(n_states, n_states)``.
    B
        Input matrix, shape ``(n_states, n_inputs)``.
    C
        Output matrix, shape ``(n_outputs, n_states)``.
    D
        Feedthrough, shape ``(n_outputs, n_inputs)``; ``None`` means zero.
    dt
        ``None`` for continuous time, a float ``> 0`` (the sampling time) for discrete time.

    Raises
    ------
    DimensionError
        If a matrix is not 2-D or the shapes do not fit together.
    ValueError
        If an entry is NaN/Inf or ``dt`` is not positive.
    TypeError
        If ``dt`` is a bool or a matrix is not numeric.

    Notes
    -----
    All matrices are copied, promoted to one dtype (complex128 if any input is complex, float64
    otherwise) and made read-only. Derive modified systems with :meth:`with_`.

    Transfer function: :math:`G(s) = C (sI - A)^{-1} B + D`.

    Examples
    --------
    >>> sys = StateSpace([[-1.0]], [[1.0]], [[2.0]])
    >>> sys.n_states, sys.is_discrete, sys.is_stable()
    (1, False, True)
    >>> complex(sys(0.0)[0, 0])
    (2+0j)
    """

    A: np.ndarray
    B: np.ndarray
    C: np.ndarray
    D: np.ndarray = field(default=None)  # type: ignore[assignment]
    dt: float | None = field(default=None, kw_only=True)

    @classmethod
    def _from_computed(cls, A: np.ndarray, B: np.ndarray, C: np.ndarray, D: np.ndarray, dt: float | None) -> StateSpace:
        """Internal fast constructor for matrices ssmred computed itself (2-D, conforming shapes).

        Skips the shape inference and copies of ``__post_init__`` but keeps its guarantees: one
        dtype (complex128 or float64), C-contiguous private read-only arrays, finite entries (else
        the full validation runs and reports the bad entry), a validated ``dt``.
        """
        arrays = [np.asarray(x) for x in (A, B, C, D)]
        n = arrays[0].shape[0]
        if not (
            n >= 1
            and arrays[0].shape == (n, n)
            and arrays[1].ndim == 2
            and arrays[1].shape[0] == n
            and arrays[2].ndim == 2
            and arrays[2].shape[1] == n
            and arrays[3].shape == (arrays[2].shape[0], arrays[1].shape[1])
            and all(np.isfinite(x).all() for x in arrays)
        ):
            return cls(A, B, C, D, dt=dt)
        dtype = np.complex128 if any(x.dtype.kind == "c" for x in arrays) else np.float64
        out = object.__new__(cls)
        for name, x in zip(("A", "B", "C", "D"), arrays, strict=True):
            # read-only arrays of the right kind are shared (e.g. the original D); fresh results are frozen
            # in place (they have no other owner); anything else is copied
            if x.dtype != dtype or not x.flags.c_contiguous or (x.flags.writeable and x.base is not None):
                x = np.array(x, dtype=dtype, order="C", copy=True)
            x.setflags(write=False)
            object.__setattr__(out, name, x)
        object.__setattr__(out, "dt", validate_dt(dt))
        return out

    def __post_init__(self) -> None:
        A, B, C, D = _normalize_abcd(self.A, self.B, self.C, self.D)
        object.__setattr__(self, "A", A)
        object.__setattr__(self, "B", B)
        object.__setattr__(self, "C", C)
        object.__setattr__(self, "D", D)
        object.__setattr__(self, "dt", validate_dt(self.dt))

    # ------------------------------------------------------------------ basic properties
    @property
    def n_states(self) -> int:
        """Number of states ``n``."""
        return self.A.shape[0]

    @property
    def n_inputs(self) -> int:
        """Number of inputs ``m`` (columns of B)."""
        return self.B.shape[1]

    @property
    def n_outputs(self) -> int:
        """Number of outputs ``p`` (rows of C)."""
        return self.C.shape[0]

    @property
    def is_discrete(self) -> bool:
        """``True`` for a discrete-time system (``dt`` is a float)."""
        return self.dt is not None

    @property
    def is_complex(self) -> bool:
        """``True`` if the matrices are complex128."""
        return np.iscomplexobj(self.A)

    @property
    def dtype(self) -> np.dtype:
        """The common dtype of A, B, C, D."""
        return self.A.dtype

    def __repr__(self) -> str:
        kind = f"discrete, dt={self.dt:g}" if self.is_discrete else "continuous"
        return (
            f"StateSpace(n_states={self.n_states}, n_inputs={self.n_inputs}, "
            f"n_outputs={self.n_outputs}, {kind}, dtype={self.dtype})"
        )

    def with_(self, **changes: Any) -> StateSpace:
        """Return a copy with some fields replaced (``A``, ``B``, ``C``, ``D``, ``dt``).

        Parameters
        ----------
        **changes
            Field names and new values.

        Returns
        -------
        StateSpace
            The new, validated system.

        Examples
        --------
        >>> StateSpace([[-1.0]], [[1.0]], [[1.0]]).with_(D=[[3.0]]).D
        array([[3.]])
        """
        unknown = set(changes) - {"A", "B", "C", "D", "dt"}
        if unknown:
            raise TypeError(f"with_() got unknown field(s) {sorted(unknown)}; valid: A, B, C, D, dt")
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ poles and stability
    @kernel()
    def poles(self) -> np.ndarray:
        """Eigenvalues of ``A``.

        Returns
        -------
        numpy.ndarray
            Complex array of shape ``(n_states,)``.

        Examples
        --------
        >>> StateSpace([[-2.0, 0], [0, -1]], [[1.0], [1]], [[1.0, 1]]).poles().real
        array([-2., -1.])
        """
        if _is_diagonal(self.A):
            return np.diag(self.A).astype(np.complex128)
        return spla.eigvals(self.A).astype(np.complex128)

    def spectral_abscissa(self) -> float:
        """Stability margin measure: ``max Re λ`` (continuous) or ``max |λ|`` (discrete).

        Returns
        -------
        float
            The spectral abscissa (continuous) or spectral radius (discrete).

        Examples
        --------
        >>> StateSpace([[0.5]], [[1.0]], [[1.0]], dt=1.0).spectral_abscissa()
        0.5
        """
        lam = self.poles()
        return float(np.max(np.abs(lam))) if self.is_discrete else float(np.max(lam.real))

    def is_stable(self) -> bool:
        """Asymptotic stability: all ``Re λ < 0`` (continuous) or all ``|λ| < 1`` (discrete).

        Returns
        -------
        bool
            Whether every pole lies strictly inside the stability region, by more than the
            rounding slack :func:`stability_slack` (a rotation matrix is not stable in discrete
            time even if ``eigvals`` returns ``|λ| = 1 - 1e-16``).

        Examples
        --------
        >>> StateSpace([[1.5]], [[1.0]], [[1.0]], dt=1.0).is_stable()
        False
        """
        margin = self.spectral_abscissa()
        slack = stability_slack(self.A)
        return bool(margin < 1.0 - slack) if self.is_discrete else bool(margin < -slack)

    # ------------------------------------------------------------------ evaluation
    @kernel()
    def __call__(self, s: complex | ArrayLike) -> np.ndarray:
        r"""Evaluate the transfer function :math:`G(s) = C (sI-A)^{-1} B + D` at complex point(s).

        Parameters
        ----------
        s
            A complex scalar or a 1-D array of points (Laplace ``s`` or ``z``, depending on time base).

        Returns
        -------
        numpy.ndarray
            Shape ``(n_outputs, n_inputs)`` for a scalar, ``(len(s), n_outputs, n_inputs)`` otherwise.

        Examples
        --------
        >>> StateSpace([[-1.0]], [[1.0]], [[1.0]])(1.0)
        array([[0.5+0.j]])
        """
        points = np.asarray(s, dtype=np.complex128)
        values = _evaluate(self, np.atleast_1d(points).ravel())
        return values[0] if points.ndim == 0 else values

    @kernel()
    def frequency_response(self, omega: ArrayLike) -> FrequencyResponse:
        r"""Frequency response at angular frequencies ``omega`` (rad per time unit).

        Continuous time evaluates :math:`G(i\omega)`; discrete time evaluates
        :math:`G(e^{i\omega\,dt})` (with ``dt = 1``, ``omega`` is in rad/sample).

        Parameters
        ----------
        omega
            Real frequencies, 1-D. Negative frequencies are allowed (complex systems are not
            conjugate-symmetric).

        Returns
        -------
        numpy.ndarray
            Complex array of shape ``(len(omega), n_outputs, n_inputs)``.

        Raises
        ------
        ValueError
            If ``omega`` is not a finite real 1-D array.

        Examples
        --------
        >>> sys = StateSpace([[-1.0]], [[1.0]], [[1.0]])
        >>> abs(sys.frequency_response([0.0, 1.0])[:, 0, 0]).round(4)
        array([1.    , 0.7071])
        """
        w = np.asarray(omega)
        if w.ndim == 0:
            w = w.reshape(1)
        if w.ndim != 1 or np.iscomplexobj(w) or not np.all(np.isfinite(w)):
            raise ValueError(f"omega must be a finite real 1-D array; got shape {w.shape}, dtype {w.dtype}")
        w = w.astype(np.float64)
        points = np.exp(1j * w * self.dt) if self.is_discrete else 1j * w
        return _evaluate(self, points)

    def impulse_response(self, steps: int) -> np.ndarray:
        r"""Markov parameters :math:`h_0 = D,\; h_k = C A^{k-1} B` of a discrete-time system.

        Parameters
        ----------
        steps
            Number of samples ``K >= 1``.

        Returns
        -------
        numpy.ndarray
            Shape ``(steps, n_outputs, n_inputs)``.

        Raises
        ------
        NotImplementedError
            For continuous-time systems (discretise first).
        ValueError
            If ``steps`` is not a positive integer.

        Examples
        --------
        >>> StateSpace([[0.5]], [[1.0]], [[1.0]], dt=1.0).impulse_response(4)[:, 0, 0]
        array([0.  , 1.  , 0.5 , 0.25])
        """
        if not self.is_discrete:
            raise NotImplementedError(
                "impulse_response is defined for discrete-time systems (Markov parameters); "
                "this system is continuous (dt=None) - discretise it first"
            )
        if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1:
            raise ValueError(f"steps must be a positive integer; got {steps!r}")
        out = np.empty((int(steps), self.n_outputs, self.n_inputs), dtype=self.dtype)
        out[0] = self.D
        x = np.array(self.B)
        for k in range(1, int(steps)):
            out[k] = self.C @ x
            x = self.A @ x
        return out

    # ------------------------------------------------------------------ transformations
    def similarity(self, T: ArrayLike) -> StateSpace:
        r"""State coordinate change :math:`x = T \tilde x`: :math:`(T^{-1} A T, T^{-1} B, C T, D)`.

        Parameters
        ----------
        T
            Invertible ``(n_states, n_states)`` matrix.

        Returns
        -------
        StateSpace
            The equivalent system (same transfer function, same HSVs).

        Raises
        ------
        DimensionError
            If ``T`` has the wrong shape.
        ValueError
            If ``T`` is singular.

        Examples
        --------
        >>> sys = StateSpace([[-1.0]], [[1.0]], [[1.0]])
        >>> sys.similarity([[2.0]]).B
        array([[0.5]])
        """
        T_ = _as_matrix("T", T, f"({self.n_states}, {self.n_states})")
        if T_.shape != (self.n_states, self.n_states):
            raise DimensionError(f"T must have shape ({self.n_states}, {self.n_states}); got {T_.shape}")
        with warnings.catch_warnings():
            # an exactly singular T is reported below as a ValueError, not as a LinAlgWarning
            warnings.simplefilter("ignore", spla.LinAlgWarning)
            lu = spla.lu_factor(T_, check_finite=False)
        if np.any(np.abs(np.diag(lu[0])) == 0):
            raise ValueError("T is singular; a similarity transformation needs an invertible T")
        AT = self.A @ T_
        return StateSpace(
            spla.lu_solve(lu, AT, check_finite=False),
            spla.lu_solve(lu, self.B, check_finite=False),
            self.C @ T_,
            self.D,
            dt=self.dt,
        )

    def dual(self) -> StateSpace:
        r"""The transposed (dual) system :math:`(A^T, C^T, B^T, D^T)` with :math:`G_d(s) = G(s)^T`.

        Its controllability Gramian is the conjugate of the original observability Gramian, so the
        Hankel singular values are identical.

        Returns
        -------
        StateSpace
            The dual system (inputs and outputs swapped).

        Examples
        --------
        >>> d = StateSpace([[-1.0]], [[1.0, 2.0]], [[3.0]]).dual()
        >>> d.n_inputs, d.n_outputs
        (1, 2)
        """
        return StateSpace(self.A.T, self.C.T, self.B.T, self.D.T, dt=self.dt)

    def to_real(self) -> StateSpace:
        r"""Exact real realization of the real-output system :math:`y = \mathrm{Re}(C x + D u)`.

        For real inputs ``u``, writing :math:`x = x_r + i x_i` gives the real system of dimension
        ``2n``

        .. math::

            A_r = \begin{bmatrix} \mathrm{Re}A & -\mathrm{Im}A \\ \mathrm{Im}A & \mathrm{Re}A \end{bmatrix},\;
            B_r = \begin{bmatrix} \mathrm{Re}B \\ \mathrm{Im}B \end{bmatrix},\;
            C_r = [\mathrm{Re}C,\; -\mathrm{Im}C],\; D_r = \mathrm{Re}D,

        which is similar to the conjugate-augmented form
        :math:`(\mathrm{diag}(A, \bar A), [B; \bar B], \tfrac12 [C, \bar C])`. A real system is
        returned unchanged (its output is already real).

        Returns
        -------
        StateSpace
            A float64 system with ``2 n_states`` states (or ``self`` when already real).

        Examples
        --------
        >>> sys = StateSpace([[-1 + 2j]], [[1.0]], [[1.0]])
        >>> r = sys.to_real()
        >>> r.n_states, r.is_complex
        (2, False)
        """
        if not self.is_complex:
            return self
        A, B, C = self.A, self.B, self.C
        Ar = np.block([[A.real, -A.imag], [A.imag, A.real]])
        Br = np.vstack([B.real, B.imag])
        Cr = np.hstack([C.real, -C.imag])
        return StateSpace(Ar, Br, Cr, self.D.real, dt=self.dt)

    # ------------------------------------------------------------------ arithmetic
    def _check_compatible(self, other: object, op: str) -> StateSpace:
        if not isinstance(other, StateSpace):
            raise TypeError(f"cannot {op} StateSpace and {type(other).__name__}")
        if other.dt != self.dt:
            raise ValueError(f"cannot {op} systems with different time bases: dt={self.dt} and dt={other.dt}")
        if (other.n_outputs, other.n_inputs) != (self.n_outputs, self.n_inputs):
            raise DimensionError(
                f"cannot {op} systems of different I/O sizes: (n_outputs, n_inputs) = "
                f"{(self.n_outputs, self.n_inputs)} and {(other.n_outputs, other.n_inputs)}"
            )
        return other

    def __add__(self, other: StateSpace) -> StateSpace:
        """Parallel connection :math:`G_1 + G_2` (block-diagonal state)."""
        other = self._check_compatible(other, "add")
        return StateSpace(
            spla.block_diag(self.A, other.A),
            np.vstack([self.B, other.B]),
            np.hstack([self.C, other.C]),
            self.D + other.D,
            dt=self.dt,
        )

    def __neg__(self) -> StateSpace:
        """The system :math:`-G`."""
        return StateSpace(self.A, self.B, -self.C, -self.D, dt=self.dt)

    def __sub__(self, other: StateSpace) -> StateSpace:
        """The error system :math:`G_1 - G_2` (dimension ``n_1 + n_2``)."""
        other = self._check_compatible(other, "subtract")
        return self + (-other)

    # ------------------------------------------------------------------ conversions
    @classmethod
    def from_control(cls, sys: Any) -> StateSpace:
        """Build from a ``control.StateSpace`` (python-control).

        Parameters
        ----------
        sys
            A python-control state-space system. ``dt=0`` maps to continuous time; ``dt=True``
            (unspecified sampling time) is rejected.

        Returns
        -------
        StateSpace
            The same system.

        Raises
        ------
        TypeError
            If ``sys`` is not a ``control.StateSpace``.
        ValueError
            If its ``dt`` is ``True``.

        Examples
        --------
        >>> import control
        >>> StateSpace.from_control(control.ss([[-1.0]], [[1.0]], [[1.0]], [[0.0]])).n_states
        1
        """
        control = require("control")
        if not isinstance(sys, control.StateSpace):
            raise TypeError(f"sys must be a control.StateSpace; got {type(sys).__name__}")
        dt = sys.dt
        if dt is True:
            raise ValueError("python-control system has dt=True (unspecified sampling time); set a numeric dt")
        return cls(sys.A, sys.B, sys.C, sys.D, dt=None if (dt is None or dt == 0) else float(dt))

    def to_control(self) -> Any:
        """Convert to a ``control.StateSpace`` (real systems only).

        Returns
        -------
        control.StateSpace
            The same system (``dt=0`` for continuous time).

        Raises
        ------
        TypeError
            For complex systems: python-control would silently discard the imaginary parts. Use
            :meth:`to_real` first if the real-output system is meant.

        Examples
        --------
        >>> StateSpace([[-1.0]], [[1.0]], [[1.0]]).to_control().nstates
        1
        """
        control = require("control")
        if self.is_complex:
            raise TypeError(
                "python-control is real-only and would silently drop imaginary parts; "
                "convert the real-output system with .to_real() first"
            )
        return control.ss(self.A, self.B, self.C, self.D, 0 if self.dt is None else self.dt)

    @classmethod
    def from_scipy(cls, sys: Any, *, dt: float | None = None) -> StateSpace:
        """Build from a ``scipy.signal`` LTI object (converted to state space if needed).

        Parameters
        ----------
        sys
            A ``scipy.signal.lti`` or ``dlti`` instance.
        dt
            Sampling time to use when ``sys.dt`` is ``True`` (scipy's "unspecified").

        Returns
        -------
        StateSpace
            The same system.

        Raises
        ------
        TypeError
            If ``sys`` is not a scipy LTI object.
        ValueError
            If the sampling time is unspecified and ``dt`` is not given.

        Examples
        --------
        >>> import scipy.signal as sig
        >>> StateSpace.from_scipy(sig.StateSpace([[-1.0]], [[1.0]], [[1.0]], [[0.0]])).is_discrete
        False
        """
        import scipy.signal as sig

        if not isinstance(sys, (sig.lti, sig.dlti)):
            raise TypeError(f"sys must be a scipy.signal lti/dlti object; got {type(sys).__name__}")
        ss = sys.to_ss()
        sys_dt = getattr(ss, "dt", None)
        if sys_dt is True:
            if dt is None:
                raise ValueError("scipy system has dt=True (unspecified sampling time); pass dt=...")
            sys_dt = dt
        elif dt is not None and sys_dt is not None and float(dt) != float(sys_dt):
            raise ValueError(f"dt={dt} disagrees with the scipy system's dt={sys_dt}")
        return cls(ss.A, ss.B, ss.C, ss.D, dt=sys_dt)

    def to_scipy(self) -> Any:
        """Convert to ``scipy.signal.StateSpace`` (continuous or discrete).

        Returns
        -------
        scipy.signal.StateSpace
            The same system.

        Examples
        --------
        >>> StateSpace([[0.5]], [[1.0]], [[1.0]], dt=0.1).to_scipy().dt
        0.1
        """
        import scipy.signal as sig

        if self.is_discrete:
            return sig.StateSpace(self.A, self.B, self.C, self.D, dt=self.dt)
        return sig.StateSpace(self.A, self.B, self.C, self.D)


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
