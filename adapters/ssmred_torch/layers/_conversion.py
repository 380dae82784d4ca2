"""Shared by the LTI family adapters' ``from_statespace``: argument checks and the system's diagonal modes."""

from __future__ import annotations

from typing import Any

from ssmred._require import require

require("torch")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from ssmred.errors import DimensionError  # noqa: E402
from ssmred.statespace import StateSpace  # noqa: E402
from ssmred_torch.errors import DiagonalizationError  # noqa: E402
from ssmred_torch.kernels import diagonalize  # noqa: E402


def is_diagonal(M: np.ndarray) -> bool:
    """Whether ``M`` has no nonzero entry off its diagonal."""
    return bool(np.count_nonzero(M - np.diag(np.diag(M))) == 0)


def check_conversion(sys: Any, like: Any, layer_type: type, *, discrete: str) -> None:
    """Raise unless ``sys`` is a discrete-time StateSpace with ``like.d_model`` inputs and outputs.

    ``discrete`` says why the layer needs a discrete-time system; ``like`` must be a ``layer_type``.
    """
    if not isinstance(sys, StateSpace):
        raise TypeError(f"sys must be a ssmred.StateSpace; got {type(sys).__name__}")
    if not isinstance(like, layer_type):
        raise TypeError(f"like must be an ssmred_torch.{layer_type.__name__}; got {type(like).__name__}")
    if not sys.is_discrete:
        raise ValueError(f"sys must be a discrete-time system (dt > 0): {discrete}")
    H = like.d_model
    if sys.n_inputs != H or sys.n_outputs != H:
        raise DimensionError(
            f"sys must have n_inputs = n_outputs = like.d_model = {H}; got n_inputs={sys.n_inputs}, "
            f"n_outputs={sys.n_outputs}"
        )


def diagonal_modes(
    A: np.ndarray, B: np.ndarray, C: np.ndarray, *, max_condition: float, where: str = ""
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mu (n,), B (n, m), C (p, n))`` complex128 of a diagonal realization of ``(A, B, C)``.

    ``A`` as it is when diagonal, else re-diagonalised; :class:`DiagonalizationError` (prefixed by
    ``where``) when its eigenvector matrix is defective or its condition number above ``max_condition``.
    """
    if is_diagonal(A):
        return np.diag(A).astype(np.complex128), B.astype(np.complex128), C.astype(np.complex128)
    form = diagonalize(*(torch.from_numpy(np.array(x, dtype=np.complex128))[None] for x in (A, B, C)))
    cond = float(form.cond[0])
    if not np.isfinite(cond) or cond > max_condition:
        raise DiagonalizationError(
            f"{where}the state matrix is defective or nearly so: cond(V) = {cond:.3g} > max_condition = "
            f"{max_condition:.3g}; its diagonal realization would not reproduce the transfer function"
        )
    return form.mu[0].numpy(), form.B[0].numpy(), form.C[0].numpy()
