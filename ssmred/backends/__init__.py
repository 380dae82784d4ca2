"""Backend selection for the dense Gramian-factor computation.

``"scipy"`` (always available) is ssmred's own square-root solver on top of ``scipy.linalg``: real and
complex, continuous and discrete. ``"slycot"`` wraps SLICOT (real arithmetic only) and is imported
lazily. ``"diagonal"`` is the closed form for diagonal ``A``. ``"auto"`` picks the closed form when
``A`` is diagonal and ``"scipy"`` otherwise, so results never depend on which optional packages are
installed.
"""

from __future__ import annotations

from typing import Literal

GramianMethod = Literal["auto", "scipy", "slycot", "diagonal"]
GRAMIAN_METHODS: tuple[str, ...] = ("auto", "scipy", "slycot", "diagonal")


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    """Validate a string option, raising ``ValueError`` that lists the valid choices.

    Parameters
    ----------
    name
        Argument name for the message.
    value
        The value passed by the user.
    choices
        Valid values.

    Returns
    -------
    str
        ``value`` (validated).

    Examples
    --------
    >>> check_choice("method", "sr", ("sr", "bfsr"))
    'sr'
    """
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(repr(c) for c in choices)}; got {value!r}")
    return value
