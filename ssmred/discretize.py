r"""Discretisation of continuous-time systems (zero-order hold and bilinear), as used by S4D/S5/LRU.

* **ZOH**: :math:`A_d = e^{A\Delta}`, :math:`B_d = \int_0^\Delta e^{A\tau}d\tau\,B` (computed from the
  exponential of the block matrix :math:`[[A, B],[0, 0]]\Delta`), :math:`C_d = C`, :math:`D_d = D`.
* **bilinear** (the S4/S5 convention): :math:`A_d = (I - \tfrac\Delta2 A)^{-1}(I + \tfrac\Delta2 A)`,
  :math:`B_d = (I - \tfrac\Delta2 A)^{-1} B\,\Delta`, :math:`C_d = C`, :math:`D_d = D`. This is not
  the Tustin transform of the transfer function: with :math:`s = \tfrac2\Delta\tfrac{z-1}{z+1}`,
  :math:`G_d(z) = \tfrac{2}{z+1}\,(G_c(s) - D) + D` (a frequency-dependent factor), so Hankel
  singular values change; :func:`ssmred.norms.bilinear_to_continuous` is the HSV-preserving map.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.linalg as spla

from ssmred._threads import kernel
from ssmred.backends import check_choice
from ssmred.statespace import StateSpace, validate_dt

__all__ = ["discretize"]


@kernel()
def discretize(sys: StateSpace, dt: float, *, method: Literal["zoh", "bilinear"] = "zoh") -> StateSpace:
    r"""Discretise a continuous-time system with sampling time ``dt``.

    Parameters
    ----------
    sys
        A continuous-time system (real or complex).
    dt
        Sampling time ``> 0``.
    method
        ``"zoh"`` (zero-order hold, exact for piecewise-constant inputs) or ``"bilinear"``
        (S4/S5 convention, see the module docstring).

    Returns
    -------
    StateSpace
        The discrete-time system with ``dt``.

    Raises
    ------
    ValueError
        If ``sys`` is already discrete or ``method`` is unknown.

    Examples
    --------
    >>> d = discretize(StateSpace([[-1.0]], [[1.0]], [[1.0]]), 0.1)
    >>> round(float(d.A[0, 0]), 6), round(float(d.B[0, 0]), 6)
    (0.904837, 0.095163)
    """
    if sys.is_discrete:
        raise ValueError(f"sys is already discrete (dt={sys.dt}); discretize needs a continuous-time system")
    step = validate_dt(dt)
    assert step is not None
    check_choice("method", method, ("zoh", "bilinear"))
    n, m = sys.n_states, sys.n_inputs
    if method == "zoh":
        M = np.zeros((n + m, n + m), dtype=sys.dtype)
        M[:n, :n] = sys.A * step
        M[:n, n:] = sys.B * step
        E = spla.expm(M)
        return StateSpace(E[:n, :n], E[:n, n:], sys.C, sys.D, dt=step)
    I = np.eye(n)
    lu = spla.lu_factor(I - 0.5 * step * sys.A)
    Ad = spla.lu_solve(lu, I + 0.5 * step * sys.A)
    Bd = spla.lu_solve(lu, sys.B) * step
    return StateSpace(Ad, Bd, sys.C, sys.D, dt=step)
