"""Typed errors and warnings of the JAX adapter (subclassing the core's hierarchy)."""

from __future__ import annotations

from ssmred.errors import AccuracyWarning

__all__ = ["DiagonalizationError", "ReductionWarning"]


class DiagonalizationError(ValueError):
    """A state matrix could not be brought back to the diagonal LRU form.

    Raised when the eigenvector matrix of a (reduced) state matrix is singular (defective matrix) or
    so ill-conditioned that the diagonal realization would not reproduce the transfer function.
    """


class ReductionWarning(AccuracyWarning):
    """A layer's reduction was refused (non-finite values, unstable or non-diagonalisable result).

    The layer is left unchanged in the new model; the reason is also recorded in the report.
    """
