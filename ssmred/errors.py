"""Typed errors and warnings raised by ssmred.

Every error subclasses a builtin so that ``except ValueError`` keeps working for callers that do not
know ssmred, while callers that do can be precise.
"""

from __future__ import annotations

__all__ = [
    "AccuracyWarning",
    "BackendUnavailableError",
    "DiagonalizationError",
    "DimensionError",
    "NotStableError",
]


class DimensionError(ValueError):
    """An array has the wrong number of dimensions or a shape that does not fit the system."""


class NotStableError(ValueError):
    """The system is not asymptotically stable, so Gramians / HSVs / H-infinity norms are undefined."""


class DiagonalizationError(ValueError):
    """A state matrix could not be brought to (or back to) a diagonal form.

    Raised when its eigenvector matrix is singular (a defective matrix) or so ill-conditioned that the
    diagonal realization would not reproduce the transfer function.
    """


class BackendUnavailableError(ImportError):
    """An optional backend (slycot, python-control, torch, jax, matplotlib, ...) is not installed."""


class AccuracyWarning(UserWarning):
    """A result was computed but may have lost accuracy (ill-conditioning, equal HSVs at a cut, ...)."""
