"""Typed errors and warnings of the JAX adapter (subclassing the core's hierarchy)."""

from __future__ import annotations

from ssmred.errors import AccuracyWarning, DiagonalizationError

__all__ = ["DiagonalizationError", "ReductionWarning"]


class ReductionWarning(AccuracyWarning):
    """A layer's reduction was refused (non-finite values, unstable or non-diagonalisable result).

    The layer is left unchanged in the new model; the reason is also recorded in the report.
    """
