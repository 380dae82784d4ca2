"""Conversions of :class:`~ssmred.statespace.StateSpace` to and from python-control and ``scipy.signal``.

The four functions here are the bodies (and docstrings) of the methods ``StateSpace.from_control``,
``StateSpace.to_control``, ``StateSpace.from_scipy`` and ``StateSpace.to_scipy``, which bind them in the
class body; call them through the class. python-control is imported lazily (``require("control")``),
``scipy.signal`` inside the call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ssmred._require import require

if TYPE_CHECKING:
    from ssmred.statespace import StateSpace

__all__ = ["from_control", "from_scipy", "to_control", "to_scipy"]


def from_control(cls: type[StateSpace], sys: Any) -> StateSpace:
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
    >>> from ssmred import StateSpace
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


def to_control(self: StateSpace) -> Any:
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
    >>> from ssmred import StateSpace
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


def from_scipy(cls: type[StateSpace], sys: Any, *, dt: float | None = None) -> StateSpace:
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
    >>> from ssmred import StateSpace
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


def to_scipy(self: StateSpace) -> Any:
    """Convert to ``scipy.signal.StateSpace`` (continuous or discrete).

    Returns
    -------
    scipy.signal.StateSpace
        The same system.

    Examples
    --------
    >>> from ssmred import StateSpace
    >>> StateSpace([[0.5]], [[1.0]], [[1.0]], dt=0.1).to_scipy().dt
    0.1
    """
    import scipy.signal as sig

    if self.is_discrete:
        return sig.StateSpace(self.A, self.B, self.C, self.D, dt=self.dt)
    return sig.StateSpace(self.A, self.B, self.C, self.D)
