r"""The convolution path of the S4D layer: its kernel and the FFT convolution.

``_S4DConvolution`` (a mixin of :class:`~ssmred_torch.S4D`) computes the kernel
:math:`K_{h,l} = 2\,\mathrm{Re}\sum_n c_{h,n}\bar b_{h,n}e^{l\log\lambda_{h,n}}` (a Vandermonde product,
:math:`l = 0..L-1`) and applies :math:`y = K * u + D \odot u` by FFTs of length ``2L``
(``mode="conv"``; the scan path stays with the layer in :mod:`ssmred_torch.layers.s4d`).
"""

from __future__ import annotations

from ssmred._require import require

require("torch")

import torch  # noqa: E402

__all__: list[str] = []


class _S4DConvolution:
    """The convolution kernel and FFT forward of :class:`~ssmred_torch.S4D` (a mixin; the layer holds the state)."""

    def kernel(self, length: int) -> torch.Tensor:
        r"""The convolution kernel :math:`K_{h,l} = 2\,\mathrm{Re}\sum_n c_{h,n}\bar b_{h,n}\lambda_{h,n}^l`.

        Parameters
        ----------
        length
            Kernel length ``L``.

        Returns
        -------
        torch.Tensor
            Real, shape ``(d_model, L)``; differentiable.

        Examples
        --------
        >>> from ssmred_torch import S4D
        >>> S4D(3, 8).kernel(20).shape
        torch.Size([3, 20])
        """
        _, log_lam, Bbar, C = self.discrete_system()
        ell = torch.arange(int(length), dtype=self.log_dt.dtype, device=self.log_dt.device)
        vandermonde = torch.exp(log_lam[..., None] * ell)  # (H, n, L)
        return 2.0 * torch.einsum("hn,hnl->hl", C * Bbar, vandermonde).real

    def forward_conv(self, u: torch.Tensor) -> torch.Tensor:
        """The layer by its convolution kernel and FFTs of length ``2L``.

        Parameters
        ----------
        u
            Input ``(batch, length, d_model)``.

        Returns
        -------
        torch.Tensor
            Output ``(batch, length, d_model)``.

        Raises
        ------
        DimensionError
            If ``u`` does not have shape ``(batch, length, d_model)``.
        """
        self._check_input(u)
        length = u.shape[1]
        if length == 0:
            return u.clone()
        K = self.kernel(length)
        u_f = torch.fft.rfft(u.transpose(1, 2), n=2 * length)
        y = torch.fft.irfft(u_f * torch.fft.rfft(K, n=2 * length), n=2 * length)[..., :length]
        return y.transpose(1, 2) + self.D * u
