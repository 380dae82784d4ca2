"""Array aliases with jaxtyping shape annotations (framework-agnostic, no JAX needed)."""

from __future__ import annotations

from typing import TypeAlias

import numpy as np
from jaxtyping import Float, Inexact, Shaped

ArrayLike: TypeAlias = "np.ndarray | list | tuple | float | complex | int"

Matrix: TypeAlias = Inexact[np.ndarray, "rows cols"]
SquareMatrix: TypeAlias = Inexact[np.ndarray, "n n"]
InputMatrix: TypeAlias = Inexact[np.ndarray, "n m"]
OutputMatrix: TypeAlias = Inexact[np.ndarray, "p n"]
FeedthroughMatrix: TypeAlias = Inexact[np.ndarray, "p m"]
HSVArray: TypeAlias = Float[np.ndarray, " n"]
FrequencyResponse: TypeAlias = Inexact[np.ndarray, "k p m"]
Any1D: TypeAlias = Shaped[np.ndarray, " k"]
