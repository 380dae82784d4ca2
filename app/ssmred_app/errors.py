"""Errors of the application that end a command with one clear message (and an exit status).

:class:`~ssmred_app.config.ConfigError` (exit 2) covers invalid configurations; the errors here cover
what goes wrong with a run itself. The CLI prints ``ssmred <command>: <message>`` and exits with
:attr:`RunError.exit_code`; nothing is left half-written.
"""

from __future__ import annotations

__all__ = ["DataError", "RunError", "RunFolderBusy", "TrainingDiverged"]


class RunError(Exception):
    """A run cannot go on; the message says why and what to do (exit status 2)."""

    exit_code = 2


class RunFolderBusy(RunError):
    """Another process holds the run folder's lock (its pid is in the message)."""


class DataError(RunError, ValueError):
    """The data set is unusable (non-finite features, bad labels or token ids, wrong shapes)."""


class TrainingDiverged(RunError):
    """The loss or the gradients became NaN/inf; the last good checkpoint was kept (exit status 3)."""

    exit_code = 3
