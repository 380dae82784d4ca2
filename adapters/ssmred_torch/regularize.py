r"""Differentiable Hankel nuclear norm of the SSM layers of a model (the regularisation baseline, SPEC §8).

.. math::

    \mathcal R(\text{model}) = \sum_{\text{layers}} \sum_i \sigma_i = \sum_{\text{layers}} \|L_o^H L_c\|_*,

summed over every system of every layer (:meth:`~ssmred_torch.AbstractAdapter.systems`), with
closed-form Gramians and factors as in :mod:`ssmred_torch.kernels`; gradients flow through the
Gramians, the (pivoted) Cholesky factors and ``torch.linalg.svdvals`` into the layer parameters.
"""

from __future__ import annotations

from ssmred._require import require

require("torch")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from ssmred_torch._adapter import ssm_layers  # noqa: E402
from ssmred_torch.kernels import diagonal_gramians, psd_factor  # noqa: E402

__all__ = ["hankel_nuclear_norm"]


def hankel_nuclear_norm(model: nn.Module) -> torch.Tensor:
    r"""Sum of the Hankel singular values of all SSM layers of ``model`` (differentiable).

    Every layer's systems are evaluated in one batch, in complex128, on the layer's device.

    Parameters
    ----------
    model
        A module containing registered SSM layers (or such a layer).

    Returns
    -------
    torch.Tensor
        A scalar in the dtype of the first layer's parameters (0 if there is no SSM layer).

    Examples
    --------
    >>> from ssmred_torch import LRU
    >>> layer = LRU(2, 4, dtype=torch.float64)
    >>> value = hankel_nuclear_norm(layer)
    >>> value.backward()
    >>> bool(value > 0), layer.B_re.grad.shape
    (True, torch.Size([4, 2]))
    """
    entries = ssm_layers(model)
    if not entries:
        return torch.zeros(())
    total = None
    for e in entries:
        s = e.adapter.systems(e.module)
        P, Q = diagonal_gramians(s.lam, s.B, s.C, log_lam=s.log_lam)
        value = torch.linalg.svdvals(psd_factor(Q).mH @ psd_factor(P)).sum()
        total = value if total is None else total + value.to(total.device)
    assert total is not None
    dtype = next(entries[0].module.parameters()).dtype
    return total.to(dtype)
