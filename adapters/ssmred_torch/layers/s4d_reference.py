r"""The state-spaces/s4 importer of the S4D layer: :func:`s4d_from_reference`.

Reads the minimal ``models/s4/s4d.py`` kernel or the full ``SSMKernelDiag`` layout of a state-spaces/s4
state dict into an :class:`~ssmred_torch.S4D` with the same transfer function per channel (the layer's
parametrisation is described in :mod:`ssmred_torch.layers.s4d`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from ssmred._require import require

require("torch")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from ssmred.errors import DimensionError  # noqa: E402
from ssmred_torch.layers._continuous import check_discretization  # noqa: E402

if TYPE_CHECKING:
    from ssmred_torch.layers.s4d import S4D

__all__ = ["s4d_from_reference"]


def _as_tensor(value: Any, name: str) -> torch.Tensor:
    try:
        if isinstance(value, torch.Tensor):
            return value.detach().to(torch.float64).cpu()
        return torch.from_numpy(np.array(value, dtype=np.float64, copy=True))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a real array; got {type(value).__name__}") from exc


def _positive(param: torch.Tensor, transform: str, name: str) -> torch.Tensor:
    if transform == "exp":
        return torch.exp(param)
    if transform == "none":
        return param
    if transform == "softplus":
        return torch.nn.functional.softplus(param)
    if transform == "relu":
        return torch.relu(param) + 1e-4
    if transform == "sigmoid":
        return torch.sigmoid(param)
    raise ValueError(f"{name} must be one of 'exp', 'none', 'softplus', 'relu', 'sigmoid'; got {transform!r}")


def _find_prefix(keys: list[str], prefix: str | None) -> str:
    if prefix is not None:
        return prefix
    found = sorted({k[: -len(leaf)] for k in keys for leaf in ("kernel.log_dt", "kernel.inv_dt") if k.endswith(leaf)})
    if len(found) != 1:
        what = "no S4D kernel (…kernel.log_dt or …kernel.inv_dt)" if not found else f"several S4D kernels {found}"
        raise ValueError(f"the state dict holds {what}; pass prefix= to choose one")
    return found[0]


def s4d_from_reference(
    state_dict: Mapping[str, Any],
    *,
    prefix: str | None = None,
    discretization: Literal["zoh", "bilinear"] = "zoh",
    dt_transform: str = "exp",
    real_transform: str = "exp",
    imag_transform: str = "none",
    mode: Literal["conv", "scan"] = "conv",
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> S4D:
    r"""An :class:`S4D` layer with the parameters of a state-spaces/s4 S4D kernel state dict.

    Two layouts are recognised by their key names (under a common ``prefix``, found automatically
    when the dict holds one kernel):

    * the minimal ``models/s4/s4d.py`` (``S4D`` / ``S4DKernel``): ``kernel.log_dt`` ``(H,)``,
      ``kernel.log_A_real`` and ``kernel.A_imag`` ``(H, N/2)``, ``kernel.C`` ``(H, N/2, 2)`` (real and
      imaginary parts), ``D`` ``(H,)``; :math:`a = -e^{\text{log\_A\_real}} + i\,\text{A\_imag}`,
      :math:`\tilde b = 1`, ZOH (that module's kernel);
    * the full ``SSMKernelDiag`` (``FFTConv(mode="diag")``, S4 v4): ``kernel.inv_dt`` ``(H,)`` or
      ``(H, 1)``, ``kernel.A_real`` and ``kernel.A_imag`` ``(S, N/2)`` (``S`` trainable copies repeated
      over the ``H`` channels, channel ``h`` uses copy ``h mod S``), ``kernel.B`` ``(1, S, N/2, 2)``,
      ``kernel.C`` ``(channels, H, N/2, 2)`` with ``channels = 1``, ``D`` ``(channels, H)``;
      :math:`\Delta = f_{dt}(\text{inv\_dt})`, :math:`a = -f_{re}(\text{A\_real}) - i f_{im}(\text{A\_imag})`.

    The layer's output :math:`2\,\mathrm{Re}(\ldots)` matches both (their Vandermonde kernels take twice
    the real part). A learnable ``B`` is imported with ``learn_B=True``; the minimal layout gives
    ``learn_B=False``.

    Parameters
    ----------
    state_dict
        Arrays by name (torch tensors or anything ``numpy.asarray`` accepts).
    prefix
        Key prefix of the kernel's module (e.g. ``"layers.0.layer."``); default: found automatically.
    discretization
        The kernel's ``disc`` (full layout; the minimal layout is ZOH).
    dt_transform, real_transform, imag_transform
        The full layout's parameter transforms (``"exp"``, ``"none"``, ``"softplus"``, ``"relu"``,
        ``"sigmoid"``; state-spaces/s4 defaults).
    mode
        Forward algorithm of the new layer.
    dtype, device
        Parameter dtype and device of the new layer.

    Returns
    -------
    S4D
        The layer (same transfer function per channel).

    Raises
    ------
    ValueError
        If the keys do not identify one kernel, or for ``channels > 1``, per-state steps
        (``dt_tie=False``) or a real-valued (``is_real``) kernel.
    DimensionError
        If the shapes do not fit.

    Examples
    --------
    >>> import math
    >>> H, n = 3, 4                                             # the minimal layout, synthetic values
    >>> sd = {"D": torch.randn(H), "kernel.log_dt": torch.full((H,), -3.0),
    ...       "kernel.C": torch.randn(H, n, 2), "kernel.log_A_real": torch.full((H, n), math.log(0.5)),
    ...       "kernel.A_imag": math.pi * torch.arange(n).repeat(H, 1).float()}
    >>> layer = s4d_from_reference(sd)
    >>> layer.d_model, layer.d_state, layer.learn_B
    (3, 8, False)
    """
    from ssmred_torch.layers.s4d import S4D  # at call time: that module imports this one

    check_discretization(discretization)
    keys = [str(k) for k in state_dict]
    p = _find_prefix(keys, prefix)

    def get(name: str) -> torch.Tensor:
        if p + name not in state_dict:
            raise ValueError(f"the state dict lacks {p + name!r}")
        return _as_tensor(state_dict[p + name], p + name)

    minimal = p + "kernel.log_dt" in state_dict
    if minimal:
        log_dt, log_A_real, A_imag, Cr = (
            get("kernel.log_dt"),
            get("kernel.log_A_real"),
            get("kernel.A_imag"),
            get("kernel.C"),
        )
        D = get("D")
        if log_A_real.ndim != 2:
            raise DimensionError(f"kernel.log_A_real must have shape (H, N/2); got {tuple(log_A_real.shape)}")
        H, n = log_A_real.shape
        if discretization != "zoh":
            raise ValueError("the minimal models/s4/s4d.py kernel is ZOH; discretization must be 'zoh'")
        if tuple(Cr.shape) != (H, n, 2) or tuple(A_imag.shape) != (H, n) or tuple(log_dt.shape) != (H,):
            raise DimensionError(
                f"expected kernel.C (H, N/2, 2) = {(H, n, 2)}, kernel.A_imag {(H, n)}, kernel.log_dt {(H,)}; got "
                f"{tuple(Cr.shape)}, {tuple(A_imag.shape)}, {tuple(log_dt.shape)}"
            )
        B_re, B_im = torch.ones(H, n, dtype=torch.float64), torch.zeros(H, n, dtype=torch.float64)
        learn_B = False
    else:
        if p + "kernel.B" not in state_dict or p + "kernel.A_imag" not in state_dict:
            raise ValueError(
                "a real-valued (is_real) or non-diagonal kernel is not supported; expected kernel.A_imag and kernel.B"
            )
        inv_dt, A_re_p, A_im_p, Bp, Cp, D = (
            get("kernel.inv_dt"),
            get("kernel.A_real"),
            get("kernel.A_imag"),
            get("kernel.B"),
            get("kernel.C"),
            get("D"),
        )
        if Cp.ndim != 4 or Cp.shape[-1] != 2:
            raise DimensionError(f"kernel.C must have shape (channels, H, N/2, 2); got {tuple(Cp.shape)}")
        if Cp.shape[0] != 1:
            raise ValueError(f"only channels = 1 kernels are SISO per channel; got channels = {Cp.shape[0]}")
        H, n = int(Cp.shape[1]), int(Cp.shape[2])
        if inv_dt.ndim == 2 and inv_dt.shape[1] == 1:
            inv_dt = inv_dt[:, 0]
        if tuple(inv_dt.shape) != (H,):
            raise ValueError(
                f"kernel.inv_dt must have shape (H,) or (H, 1) (dt_tie=True); got {tuple(inv_dt.shape)}: one step per "
                "state is not representable by this S4D (one log_dt per channel)"
            )
        S = int(A_re_p.shape[0]) if A_re_p.ndim == 2 else -1
        if S < 1 or H % S or tuple(A_re_p.shape) != (S, n) or tuple(A_im_p.shape) != (S, n):
            raise DimensionError(
                f"kernel.A_real / A_imag must have shape (S, N/2) with S dividing H = {H}; got "
                f"{tuple(A_re_p.shape)}, {tuple(A_im_p.shape)}"
            )
        if tuple(Bp.shape) != (1, S, n, 2):
            raise DimensionError(f"kernel.B must have shape (1, S, N/2, 2) = {(1, S, n, 2)}; got {tuple(Bp.shape)}")
        copy = torch.arange(H) % S
        step = _positive(inv_dt, dt_transform, "dt_transform")
        log_dt = torch.log(step)
        log_A_real = torch.log(_positive(A_re_p, real_transform, "real_transform"))[copy]
        A_imag = -_positive(A_im_p, imag_transform, "imag_transform")[copy]
        B_re, B_im = Bp[0, :, :, 0][copy], Bp[0, :, :, 1][copy]
        Cr = Cp[0]
        D = D.reshape(-1)
        learn_B = True
    if tuple(D.shape) != (H,):
        raise DimensionError(f"D must have H = {H} entries; got shape {tuple(D.shape)}")
    layer = S4D(
        H,
        2 * n,
        discretization=discretization,
        learn_B=learn_B,
        mode=mode,
        dtype=dtype,
        device=device,
        generator=torch.Generator().manual_seed(0),  # values are overwritten; keep the global RNG untouched
    )
    layer.replace_parameters_(
        log_dt=log_dt,
        log_A_real=log_A_real,
        A_imag=A_imag,
        B_re=B_re,
        B_im=B_im,
        C_re=Cr[..., 0],
        C_im=Cr[..., 1],
        D=D,
    )
    return layer
