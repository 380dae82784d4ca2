r"""The options of the Mamba layer: its rule names, the argument checks and the uniform initialiser.

Shared by the layer (:mod:`ssmred_torch.layers.mamba`) and the modules split from it.
"""

from __future__ import annotations

from typing import Literal

from ssmred._require import require

require("torch")

import torch  # noqa: E402

__all__ = ["MambaRule", "SurrogateDrive", "SurrogateTransition"]

MambaRule = Literal["modal_shared", "modal_channel", "balanced"]
SurrogateTransition = Literal["exp_mean", "mean_exp"]
SurrogateDrive = Literal["mean_product", "product_of_means"]


def _positive_int(name: str, value: object, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}")
    return int(value)


def _choice(name: str, value: object, options: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {', '.join(repr(o) for o in options)}; got {value!r}")
    return value


def _uniform(shape: tuple[int, ...], bound: float, generator: torch.Generator | None) -> torch.Tensor:
    return (2.0 * torch.rand(shape, generator=generator, dtype=torch.float64) - 1.0) * bound
