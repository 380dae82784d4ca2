"""Lazy availability checks for optional dependencies."""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

from ssmred.errors import BackendUnavailableError

# import name -> the pip extra of ssmred that installs it
_EXTRAS = {
    "slycot": "slycot",
    "control": "slycot",
    "torch": "torch",
    "jax": "jax",
    "sympy": "theory",
    "matplotlib": "plot",
}


def require(module: str) -> ModuleType:
    """Import an optional dependency or raise :class:`BackendUnavailableError` naming the extra.

    Parameters
    ----------
    module
        Import name, e.g. ``"slycot"``.

    Returns
    -------
    ModuleType
        The imported module.

    Raises
    ------
    BackendUnavailableError
        If the module cannot be imported.

    Examples
    --------
    >>> require("numpy").__name__
    'numpy'
    """
    mod = sys.modules.get(module)
    if mod is not None:  # imported before (the library hook below has already run then)
        return mod
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        extra = _EXTRAS.get(module)
        hint = f" Install it with: pip install 'ssmred[{extra}]'." if extra else ""
        raise BackendUnavailableError(f"optional dependency {module!r} is not installed.{hint}") from exc
    if module == "slycot":  # its own OpenBLAS joins the thread limit of a running ssmred kernel
        from ssmred._threads import library_loaded

        library_loaded()
    return mod


def is_available(module: str) -> bool:
    """Return whether an optional dependency can be imported (without raising).

    Parameters
    ----------
    module
        Import name.

    Returns
    -------
    bool
        ``True`` when ``import module`` succeeds.

    Examples
    --------
    >>> is_available("numpy")
    True
    """
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True
