r"""Shared by the JAX adapters' conversions: host copies, ``from_statespace``'s argument checks, the condition guard.

The counterpart of ``ssmred_torch.layers._conversion``: every family's ``from_statespace`` takes a
discrete-time :class:`ssmred.StateSpace` with ``n_inputs = n_outputs = like.d_model``
(:func:`check_target`) and refuses a re-diagonalisation whose eigenvector matrix :math:`V` has
:math:`\kappa(V) > \text{max\_condition}` (:func:`check_condition`), since the diagonal realization
would then not reproduce the transfer function.
"""

from __future__ import annotations

from ssmred._require import require

require("jax")

import jax  # noqa: E402
import numpy as np  # noqa: E402

from ssmred.errors import DimensionError  # noqa: E402
from ssmred.statespace import StateSpace  # noqa: E402
from ssmred_jax.errors import DiagonalizationError  # noqa: E402

__all__ = ["check_condition", "check_target", "host_f64", "is_diagonal"]


def host_f64(x: jax.Array) -> np.ndarray:
    """A float64 host copy of ``x``.

    Parameters
    ----------
    x
        A real array.

    Returns
    -------
    numpy.ndarray
        ``float64``.
    """
    return np.asarray(jax.device_get(x), dtype=np.float64)


def is_diagonal(M: np.ndarray) -> bool:
    """Whether every off-diagonal entry of ``M`` is exactly zero.

    Parameters
    ----------
    M
        A square matrix.

    Returns
    -------
    bool
        ``True`` for a diagonal matrix.
    """
    return bool(np.count_nonzero(M - np.diag(np.diag(M))) == 0)


def check_target(sys: object, like: object, layer_type: type, *, discrete_reason: str) -> None:
    """The argument checks of ``from_statespace(sys, like=...)`` for a ``layer_type`` with ``d_model`` channels.

    Parameters
    ----------
    sys
        Should be a discrete-time :class:`ssmred.StateSpace` with ``n_inputs = n_outputs = like.d_model``.
    like
        Should be a ``layer_type`` instance.
    layer_type
        The family's layer class.
    discrete_reason
        Why the family needs a discrete-time system (ends the ``ValueError`` message).

    Raises
    ------
    TypeError
        For wrong argument types.
    ValueError
        For a continuous-time system.
    DimensionError
        If the input or output size differs from ``like.d_model``.
    """
    if not isinstance(sys, StateSpace):
        raise TypeError(f"sys must be a ssmred.StateSpace; got {type(sys).__name__}")
    if not isinstance(like, layer_type):
        raise TypeError(f"like must be an ssmred_jax.{layer_type.__name__}; got {type(like).__name__}")
    if not sys.is_discrete:
        raise ValueError(f"sys must be a discrete-time system (dt > 0): {discrete_reason}")
    H = like.d_model  # type: ignore[attr-defined]
    if sys.n_inputs != H or sys.n_outputs != H:
        raise DimensionError(
            f"sys must have n_inputs = n_outputs = like.d_model = {H}; got n_inputs={sys.n_inputs}, "
            f"n_outputs={sys.n_outputs}"
        )


def check_condition(cond: float, max_condition: float) -> None:
    r"""Refuse a re-diagonalisation with :math:`\kappa(V) > \text{max\_condition}` (or a non-finite one).

    Parameters
    ----------
    cond
        The condition number of the eigenvector matrix.
    max_condition
        The largest accepted one.

    Raises
    ------
    DiagonalizationError
        If ``cond`` is not finite or exceeds ``max_condition``.
    """
    if not np.isfinite(cond) or cond > max_condition:
        raise DiagonalizationError(
            f"the state matrix is defective or nearly so: cond(V) = {cond:.3g} > max_condition = "
            f"{max_condition:.3g}; its diagonal realization would not reproduce the transfer function"
        )
