r"""What the equinox layers of every family share: argument checks, the dtype rule, building a layer from its arrays.

A family declares its fields' shapes with symbols, e.g. the LRU's ``{"nu_log": ("n",), "B_re": ("n", "H"),
...}``, and names the vector fields that define the symbols (``{"n": "nu_log", "H": "D"}``);
:func:`check_field_shapes` checks every field against them. :func:`check_float_dtype` and
:func:`new_module` are the tail of every ``from_parameters``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ssmred._require import require

require("jax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from ssmred.errors import DimensionError  # noqa: E402

__all__ = ["check_field_shapes", "check_float_dtype", "new_module"]


def _check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < 1:
        raise ValueError(f"{name} must be an int >= 1; got {value!r}")
    return int(value)


def _real_dtype(dtype: Any) -> jnp.dtype:
    if dtype is None:
        return jnp.dtype(jax.dtypes.canonicalize_dtype(jnp.float64))  # float32 unless x64 is enabled
    try:
        dt = jnp.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"dtype must be float32 or float64; got {dtype!r}") from exc
    if dt not in (jnp.dtype(jnp.float32), jnp.dtype(jnp.float64)):
        raise TypeError(f"dtype must be float32 or float64; got {dtype!r}")
    if dt == jnp.float64 and not jax.config.x64_enabled:
        raise ValueError("dtype=float64 needs 64-bit types: create the layer inside `with jax.enable_x64(True):`")
    return dt


def check_field_shapes(
    arrays: Mapping[str, jax.Array], shapes: Mapping[str, tuple[str | int, ...]], *, sizes: Mapping[str, str]
) -> None:
    """Check every field of ``shapes`` (in its order) against its declared shape.

    Parameters
    ----------
    arrays
        Field name -> array.
    shapes
        Field name -> shape, each entry a size symbol or a fixed int.
    sizes
        Size symbol -> the vector field whose length defines it.

    Raises
    ------
    DimensionError
        If a defining field is not a non-empty vector, or a field's shape differs from its declaration.
    """
    values = {sym: int(arrays[f].shape[0]) if arrays[f].ndim == 1 else -1 for sym, f in sizes.items()}
    if any(v < 1 for v in values.values()):
        raise DimensionError(
            f"{' and '.join(sizes.values())} must be non-empty vectors; got shapes "
            + " and ".join(str(tuple(arrays[f].shape)) for f in sizes.values())
        )
    where = ", ".join(f"{sym}={v}" for sym, v in values.items())
    for name, dims in shapes.items():
        shape = tuple(values[d] if isinstance(d, str) else d for d in dims)
        if tuple(arrays[name].shape) != shape:
            raise DimensionError(f"{name} must have shape {shape} ({where}); got {tuple(arrays[name].shape)}")


def check_float_dtype(arrays: Mapping[str, jax.Array], family: str) -> None:
    """Check that the arrays share one floating dtype.

    Parameters
    ----------
    arrays
        Field name -> array.
    family
        The family's name, for the message.

    Raises
    ------
    TypeError
        If the dtypes differ or are not floating.
    """
    dtypes = {a.dtype for a in arrays.values()}
    if len(dtypes) != 1 or not jnp.issubdtype(next(iter(dtypes)), jnp.floating):
        raise TypeError(f"the {family} parameters must share one float dtype; got {sorted(str(d) for d in dtypes)}")


def new_module(cls: type, values: Mapping[str, Any]) -> Any:
    """An instance of the equinox module ``cls`` holding ``values``, without running its ``__init__``.

    Parameters
    ----------
    cls
        The module class.
    values
        Every field (arrays and static settings), set in this order.

    Returns
    -------
    object
        The module.
    """
    layer = object.__new__(cls)  # how equinox itself rebuilds a module from its leaves
    for name, value in values.items():
        object.__setattr__(layer, name, value)
    return layer
