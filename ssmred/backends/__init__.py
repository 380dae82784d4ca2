"""Backend selection for the dense Gramian-factor computation.

``"scipy"`` (always available) is ssmred's own square-root solver on top of ``scipy.linalg``: real and
complex, continuous and discrete. ``"slycot"`` runs SLICOT's Hammarling solvers (SB03OD, AB09AX; real
arithmetic only) on ssmred's own scaling and Schur form, imported lazily. ``"diagonal"`` is the closed
form for diagonal ``A``. ``"auto"`` picks the closed form when ``A`` is diagonal, ``"slycot"`` for other
real systems when slycot is installed (faster at every size, HSVs equal to ~1e-14 sigma_1) and
``"scipy"`` otherwise; complex systems always use ``"scipy"``. Results therefore depend on the installed
packages only at the rounding level.
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
