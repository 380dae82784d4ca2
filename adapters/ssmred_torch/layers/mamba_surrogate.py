r"""The mean-LTI surrogate of a calibrated Mamba layer, and the spread of its frozen-time systems.

:func:`surrogate_matrices` builds, per channel, the discrete diagonal system
:math:`(\bar\lambda, \bar B, \bar C)` of :mod:`ssmred_torch.layers.mamba` from the calibration means
(:mod:`ssmred_torch.layers.mamba_calibration`); :func:`frozen_time_hsvs` compares its Hankel singular
values with those of the systems frozen at sampled positions (:class:`HSVSpread`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ssmred._require import require

require("torch")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from ssmred_torch._adapter import ssm_layers  # noqa: E402
from ssmred_torch.kernels import hsv_diagonal  # noqa: E402
from ssmred_torch.layers.mamba_calibration import CalibrationError, _mamba_layers  # noqa: E402
from ssmred_torch.layers.mamba_options import _positive_int  # noqa: E402

if TYPE_CHECKING:
    from ssmred_torch.layers.mamba import Mamba

__all__ = ["HSVSpread", "frozen_time_hsvs", "surrogate_matrices"]


def surrogate_matrices(layer: Mamba) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""The per-channel surrogate :math:`(\bar\lambda, \log\bar\lambda, \bar B, \bar C)` (complex128).

    Built from the layer's calibration statistics with its ``transition`` and ``drive`` rules (see
    :mod:`ssmred_torch.layers.mamba`) and its current rates and mode maps; differentiable in ``A_log``
    under ``"exp_mean"``.

    Parameters
    ----------
    layer
        A calibrated Mamba layer.

    Returns
    -------
    tuple of torch.Tensor
        Each ``(d_inner, d_state)``: eigenvalues, their logarithms, input and output vectors.

    Raises
    ------
    CalibrationError
        Without statistics, or for ``"mean_exp"`` when the transition was not recorded since the
        rates last changed.

    Examples
    --------
    >>> from ssmred_torch import Mamba, calibrate_, surrogate_matrices
    >>> layer = Mamba(2, 3); calibrate_(layer, torch.randn(4, 8, 2))
    >>> lam, log_lam, B, C = surrogate_matrices(layer)
    >>> lam.shape, bool((lam.abs() < 1).all())
    (torch.Size([4, 3]), True)
    """
    st = layer.statistics()
    c128 = torch.complex128
    A_log = layer.A_log.to(torch.float64)
    a = -torch.exp(A_log)
    if layer.projected:
        a = torch.complex(a, layer.A_imag.to(torch.float64))
    a = a.to(c128)
    if layer.transition == "exp_mean":
        log_lam = st.delta[:, None].to(c128) * a
        lam = torch.exp(log_lam)
    else:
        if st.transition is None:
            raise CalibrationError(
                "transition='mean_exp' needs E[exp(delta a)] for the current rates, not recorded since the "
                "last reduction: call calibrate_ (or train a few steps) first"
            )
        lam = st.transition.to(c128)
        log_lam = torch.log(lam)
    v = st.delta_B if layer.drive == "mean_product" else st.delta[:, None] * st.B[None, :]
    v, Cf = v.to(c128), st.C.to(c128)
    if layer.indexed:
        B, C = v.gather(1, layer.mode_index), Cf[layer.mode_index]
    elif layer.projected:
        Bm, Cm = layer._maps()
        B = torch.einsum("drn,dn->dr", Bm.to(c128), v)
        C = torch.einsum("n,dnr->dr", Cf, Cm.to(c128))
    else:
        B, C = v, Cf[None, :].expand(layer.d_inner, -1)
    return lam, log_lam, B, C


@dataclass(frozen=True)
class HSVSpread:
    """Frozen-time Hankel singular values of one Mamba layer across calibration inputs, next to the surrogate's.

    Attributes
    ----------
    name
        Module path of the layer.
    surrogate
        HSVs of the surrogate, ``(d_inner, d_state)`` (float64, host).
    quantiles
        The probabilities ``q``.
    frozen
        Quantiles over the sampled positions of the frozen-time HSVs, ``(len(q), d_inner, d_state)``.
    positions
        Number of sampled ``(sequence, time)`` positions.
    """

    name: str
    surrogate: torch.Tensor
    quantiles: tuple[float, ...]
    frozen: torch.Tensor
    positions: int


@torch.no_grad()
def frozen_time_hsvs(
    model: nn.Module,
    inputs: torch.Tensor,
    *,
    positions: int = 64,
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9),
    generator: torch.Generator | None = None,
) -> list[HSVSpread]:
    r"""How much the frozen-time systems of each Mamba layer vary across inputs, against its surrogate.

    At a position :math:`(b, t)` channel ``d`` is frozen into the LTI system
    :math:`(\exp(\Delta_{b,t,d}a_d),\ \Delta_{b,t,d}\tilde B_{b,t,d},\ \tilde C_{b,t,d})`; its HSVs are
    computed for ``positions`` random positions of ``inputs`` and summarised by quantiles, next to
    the HSVs of the layer's current surrogate (which must be calibrated).

    Parameters
    ----------
    model
        A module containing Mamba layers (or one), called as ``model(inputs)``.
    inputs
        Model inputs.
    positions
        Sampled positions per layer.
    quantiles
        Probabilities of the reported quantiles.
    generator
        For the position sample.

    Returns
    -------
    list of HSVSpread
        One per Mamba layer, in module order.

    Examples
    --------
    >>> from ssmred_torch import Mamba, calibrate_, frozen_time_hsvs
    >>> layer = Mamba(2, 4, dtype=torch.float64); x = torch.randn(8, 12, 2, dtype=torch.float64)
    >>> calibrate_(layer, x)
    >>> (spread,) = frozen_time_hsvs(layer, x, positions=16)
    >>> tuple(spread.frozen.shape), tuple(spread.surrogate.shape)
    ((3, 4, 4), (4, 4))
    """
    positions = _positive_int("positions", positions)
    names = {id(e.module): e.name for e in ssm_layers(model)}
    captured: dict[int, torch.Tensor] = {}
    hooks = [
        layer.register_forward_pre_hook(lambda m, args: captured.__setitem__(id(m), args[0].detach()))
        for layer in _mamba_layers(model)
    ]
    was_training = model.training
    model.eval()
    try:
        model(inputs)
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    out = []
    for layer in _mamba_layers(model):
        x = captured[id(layer)]
        s = layer.selection(x)
        b, L = s.delta.shape[:2]
        pick = torch.randint(0, b * L, (positions,), generator=generator)
        delta = s.delta.reshape(b * L, -1)[pick].to(torch.float64)  # (P, d)
        Bf = s.B.reshape(b * L, -1)[pick].to(torch.float64)
        Cf = s.C.reshape(b * L, -1)[pick].to(torch.float64)
        a = layer.rates().detach().to(torch.complex128)  # (d, r)
        lam = torch.exp(delta[..., None] * a)  # (P, d, r)
        if layer.projected:
            Bm, Cm = layer._maps()
            Bt = torch.einsum("pn,drn->pdr", Bf.to(torch.complex128), Bm.to(torch.complex128))
            Ct = torch.einsum("pn,dnr->pdr", Cf.to(torch.complex128), Cm.to(torch.complex128))
        elif layer.indexed:
            Bt, Ct = Bf[:, layer.mode_index], Cf[:, layer.mode_index]
        else:
            Bt = Bf[:, None, :].expand(-1, layer.d_inner, -1)
            Ct = Cf[:, None, :].expand(-1, layer.d_inner, -1)
        Bt = delta[..., None] * Bt
        P, d, r = lam.shape
        hsv = hsv_diagonal(lam.reshape(P * d, r), Bt.reshape(P * d, r, 1), Ct.reshape(P * d, 1, r)).reshape(P, d, r)
        q = torch.tensor(quantiles, dtype=torch.float64)
        lam_s, log_s, B_s, C_s = surrogate_matrices(layer)
        sur = hsv_diagonal(lam_s, B_s[..., None], C_s[:, None, :], log_lam=log_s)
        out.append(
            HSVSpread(
                names[id(layer)],
                sur.cpu(),
                tuple(float(v) for v in quantiles),
                torch.quantile(hsv.cpu(), q, dim=0),
                positions,
            )
        )
    return out
