"""Typed errors and warnings of the torch adapter (subclassing the core's hierarchy)."""

from __future__ import annotations

from ssmred.errors import AccuracyWarning, DiagonalizationError

__all__ = ["CheckpointError", "DiagonalizationError", "ReductionWarning"]


class ReductionWarning(AccuracyWarning):
    """A layer's reduction was refused (non-finite values, unstable or non-diagonalisable result).

    The layer is left untouched; the reason is also recorded in the reduction report / history.
    """


class CheckpointError(ValueError):
    """A checkpoint cannot be trusted: unreadable, damaged (zip CRC mismatch, truncated), of another
    format or version, or holding non-finite values; or a non-finite state was about to be saved.
    """
