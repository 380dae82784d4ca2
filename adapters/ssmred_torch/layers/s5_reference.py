r"""The lindermanlab/S5 importer of the S5 layer: :func:`s5_from_reference`.

Reads the parameters of one ``S5SSM`` (a flax parameter dict; jax or numpy arrays, or torch tensors)
into an :class:`~ssmred_torch.S5` with the same transfer function (the layer's parametrisation is
described in :mod:`ssmred_torch.layers.s5`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from ssmred._require import require

require("torch")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from ssmred.errors import DimensionError  # noqa: E402
from ssmred_torch.layers._continuous import check_discretization  # noqa: E402

if TYPE_CHECKING:
    from ssmred_torch.layers.s5 import S5

__all__ = ["s5_from_reference"]


def _array(params: Mapping[str, Any], name: str) -> torch.Tensor:
    if name not in params:
        raise ValueError(f"the S5 parameters lack {name!r} (expected Lambda_re, Lambda_im, B, C, D, log_step)")
    value = params[name]
    try:
        if isinstance(value, torch.Tensor):
            return value.detach().to(torch.float64).cpu()
        return torch.from_numpy(np.array(value, dtype=np.float64, copy=True))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a real array; got {type(value).__name__}") from exc


def s5_from_reference(
    params: Mapping[str, Any],
    *,
    discretization: Literal["zoh", "bilinear"] = "zoh",
    conj_sym: bool = True,
    clip_eigs: bool = False,
    step_rescale: float = 1.0,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> S5:
    r"""An :class:`S5` layer with the parameters of one lindermanlab/S5 ``S5SSM`` (arrays by name).

    The layout of that module's parameters (a flax parameter dict; its arrays may be jax or numpy
    arrays, or torch tensors): ``Lambda_re``, ``Lambda_im`` ``(P,)``; ``B`` ``(P, H, 2)`` and ``C``
    ``(H, P, 2)`` — :math:`\tilde B` and :math:`\tilde C` as trailing real/imaginary pairs; ``D``
    ``(H,)``; ``log_step`` ``(P, 1)`` (or ``(P,)``). ``P`` is the number of *stored* states (half of
    ``ssm_size`` under ``conj_sym``). The S5 output is :math:`2\,\mathrm{Re}(\tilde C x)` with
    ``conj_sym`` and :math:`\mathrm{Re}(\tilde C x)` without, plus :math:`D \odot u`, as here.

    Parameters
    ----------
    params
        The arrays by name (extra names are ignored).
    discretization
        The model's ``discretization`` (``"zoh"`` or ``"bilinear"``).
    conj_sym
        The model's ``conj_sym``.
    clip_eigs
        The model's ``clip_eigs``.
    step_rescale
        S5's ``step_rescale``: the steps used are :math:`\text{step\_rescale}\cdot e^{\text{log\_step}}`
        (folded into the imported ``log_step``).
    dtype, device
        Parameter dtype and device of the new layer.

    Returns
    -------
    S5
        The layer (same transfer function).

    Raises
    ------
    ValueError
        For missing names, a bidirectional layer (``C1``/``C2``) or an invalid ``step_rescale``.
    DimensionError
        If the shapes do not fit.

    Examples
    --------
    >>> P, H = 4, 3                                                      # synthetic parameters
    >>> params = {"Lambda_re": -0.5 * np.ones(P), "Lambda_im": np.arange(P, dtype=float),
    ...           "B": np.random.default_rng(0).normal(size=(P, H, 2)),
    ...           "C": np.random.default_rng(1).normal(size=(H, P, 2)),
    ...           "D": np.ones(H), "log_step": np.full((P, 1), np.log(0.01))}
    >>> layer = s5_from_reference(params)
    >>> layer.n_states, layer.d_state, layer.d_model
    (4, 8, 3)
    """
    from ssmred_torch.layers.s5 import S5  # at call time: that module imports this one

    check_discretization(discretization)
    if "C1" in params or "C2" in params:
        raise ValueError("bidirectional S5 layers (C1, C2) are not supported")
    scale = float(step_rescale)
    if not (math.isfinite(scale) and scale > 0.0):
        raise ValueError(f"step_rescale must be a finite float > 0; got {step_rescale!r}")
    lam_re, lam_im, B, C, D, log_step = (
        _array(params, k) for k in ("Lambda_re", "Lambda_im", "B", "C", "D", "log_step")
    )
    if lam_re.ndim != 1 or tuple(lam_im.shape) != tuple(lam_re.shape):
        raise DimensionError(
            f"Lambda_re, Lambda_im must have shape (P,); got {tuple(lam_re.shape)}, {tuple(lam_im.shape)}"
        )
    n = int(lam_re.shape[0])
    if D.ndim != 1:
        raise DimensionError(f"D must have shape (H,); got {tuple(D.shape)}")
    H = int(D.shape[0])
    if log_step.ndim == 2 and log_step.shape[1] == 1:
        log_step = log_step[:, 0]
    if tuple(B.shape) != (n, H, 2) or tuple(C.shape) != (H, n, 2) or tuple(log_step.shape) != (n,):
        raise DimensionError(
            f"expected B (P, H, 2) = {(n, H, 2)}, C (H, P, 2) = {(H, n, 2)}, log_step (P, 1); got "
            f"{tuple(B.shape)}, {tuple(C.shape)}, {tuple(log_step.shape)}"
        )
    layer = S5(
        H,
        2 * n if conj_sym else n,
        discretization=discretization,
        conj_sym=conj_sym,
        clip_eigs=clip_eigs,
        dtype=dtype,
        device=device,
        generator=torch.Generator().manual_seed(0),  # values are overwritten; keep the global RNG untouched
    )
    layer.replace_parameters_(
        Lambda_re=lam_re,
        Lambda_im=lam_im,
        log_step=log_step + math.log(scale),
        B_re=B[..., 0],
        B_im=B[..., 1],
        C_re=C[..., 0],
        C_im=C[..., 1],
        D=D,
    )
    return layer
