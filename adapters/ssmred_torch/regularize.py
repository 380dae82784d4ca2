r"""Differentiable Hankel nuclear norm of the LRU layers of a model (the regularisation baseline, SPEC §8).

.. math::

    \mathcal R(\text{model}) = \sum_{\text{layers}} \sum_i \sigma_i = \sum_{\text{layers}} \|L_o^H L_c\|_*,

with closed-form Gramians and factors as in :mod:`ssmred_torch.batched`; gradients flow through the
Gramians, the (pivoted) Cholesky factors and ``torch.linalg.svdvals`` into ``nu_log``, ``theta_log``,
``gamma_log``, ``B_*`` and ``C_*``.
"""

from __future__ import annotations

from ssmred._require import require

require("torch")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from ssmred_torch.batched import diagonal_gramians, psd_factor  # noqa: E402
from ssmred_torch.convert import layer_matrices  # noqa: E402
from ssmred_torch.lru import LRU  # noqa: E402

__all__ = ["hankel_nuclear_norm"]


def hankel_nuclear_norm(model: nn.Module) -> torch.Tensor:
    r"""Sum of the Hankel singular values of all LRU layers of ``model`` (differentiable).

    Layers with the same state size are evaluated in one batch, in complex128, on their device.

    Parameters
    ----------
    model
        A module containing :class:`~ssmred_torch.LRU` layers (or an LRU).

    Returns
    -------
    torch.Tensor
        A scalar in the dtype of the first layer's parameters (0 if there is no LRU layer).

    Examples
    --------
    >>> layer = LRU(2, 4, dtype=torch.float64)
    >>> value = hankel_nuclear_norm(layer)
    >>> value.backward()
    >>> bool(value > 0), layer.B_re.grad.shape
    (True, torch.Size([4, 2]))
    """
    layers = [m for m in model.modules() if isinstance(m, LRU)]
    if not layers:
        return torch.zeros(())
    groups: dict[tuple[int, int, torch.device], list[LRU]] = {}
    for layer in layers:
        groups.setdefault((layer.d_state, layer.d_model, layer.D.device), []).append(layer)
    dtype = layers[0].D.dtype
    total = None
    for members in groups.values():
        mats = [layer_matrices(layer) for layer in members]
        lam = torch.stack([m[0] for m in mats])
        log_lam = torch.stack([m[1] for m in mats])
        B = torch.stack([m[2] for m in mats])
        C = torch.stack([m[3] for m in mats])
        P, Q = diagonal_gramians(lam, B, C, log_lam=log_lam)
        value = torch.linalg.svdvals(psd_factor(Q).mH @ psd_factor(P)).sum()
        value = value.to(members[0].D.device)
        total = value if total is None else total + value.to(total.device)
    assert total is not None
    return total.to(dtype)
