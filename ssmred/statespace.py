r"""The immutable :class:`StateSpace` value object.

A state-space system is

.. math::

    \dot x = A x + B u,\; y = C x + D u \quad (\text{continuous, } dt=\text{None}),\qquad
    x_{k+1} = A x_k + B u_k,\; y_k = C x_k + D u_k \quad (\text{discrete, } dt>0).

Matrices are real (float64) or complex (complex128); a system is complex as soon as one matrix is.

The matrix-level helpers (:func:`validate_dt`, :func:`stability_slack`, the normalisation of
``(A, B, C, D)``, the transfer-function evaluation) live in ``ssmred._matrices`` and are re-exported
here; the conversions to and from python-control and ``scipy.signal`` live in ``ssmred._interop`` and
are bound as methods of :class:`StateSpace`.
"""

from __future__ import annotations

import dataclasses
import numbers
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.linalg as spla

from ssmred import _interop
from ssmred._matrices import _as_matrix, _evaluate, _is_diagonal, _normalize_abcd, stability_slack, validate_dt
from ssmred._threads import kernel
from ssmred._typing import ArrayLike, FrequencyResponse
from ssmred.errors import DimensionError

__all__ = ["StateSpace", "stability_slack", "validate_dt"]


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
    # the bodies and docstrings live in ssmred._interop (bound here: same names, signatures and docs)
    from_control = classmethod(_interop.from_control)
    to_control = _interop.to_control
    from_scipy = classmethod(_interop.from_scipy)
    to_scipy = _interop.to_scipy
