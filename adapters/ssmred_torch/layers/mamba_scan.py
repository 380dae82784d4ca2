r"""The selective map of the Mamba layer: :math:`\tilde x, z, \Delta, B_t, C_t` from the input, and the scan.

:class:`Selection` holds the input-dependent quantities of one forward pass; ``_SelectiveScan`` (a
mixin of :class:`~ssmred_torch.Mamba`) computes them (``selection``) and runs the recurrence

.. math::

    h_{t,d} = \exp(\Delta_{t,d} a_d) \odot h_{t-1,d} + \Delta_{t,d} \tilde B_{t,d} \tilde x_{t,d},\qquad
    y_{t,d} = \mathrm{Re}(\tilde C_{t,d}^T h_{t,d}) + D_d \tilde x_{t,d}

through :func:`~ssmred_torch.diagonal_scan_varying` (``core``), also with :math:`\Delta, B_t, C_t`
frozen at their calibration means (``frozen_core``).
"""

from __future__ import annotations

from typing import NamedTuple

from ssmred._require import require

require("torch")

import torch  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from ssmred.errors import DimensionError  # noqa: E402
from ssmred_torch.scan import diagonal_scan_varying, diagonal_scan_varying_sequential  # noqa: E402

__all__ = ["Selection"]


class Selection(NamedTuple):
    r"""The input-dependent quantities of one forward pass (all ``(batch, length, ...)``).

    Attributes
    ----------
    u
        SSM input :math:`\tilde x = \mathrm{silu}(\mathrm{conv}(x))`, ``(b, l, d_inner)``.
    z
        Gate branch, ``(b, l, d_inner)``.
    delta
        Step sizes :math:`\Delta > 0`, ``(b, l, d_inner)``.
    B, C
        Selected input and output vectors, ``(b, l, n_features)``.
    """

    u: torch.Tensor
    z: torch.Tensor
    delta: torch.Tensor
    B: torch.Tensor
    C: torch.Tensor


class _SelectiveScan:
    """The selective map and scan of :class:`~ssmred_torch.Mamba` (a mixin; the layer holds the state)."""

    def rates(self) -> torch.Tensor:
        r"""The continuous rates :math:`a_{d,k}` (real :math:`-e^{A^{log}}`, complex once ``balanced``-reduced).

        Returns
        -------
        torch.Tensor
            Shape ``(d_inner, d_state)``, differentiable in ``A_log``.

        Examples
        --------
        >>> from ssmred_torch import Mamba
        >>> Mamba(2, 3).rates()[0]
        tensor([-1.0000, -2.0000, -3.0000], grad_fn=<SelectBackward0>)
        """
        a = -torch.exp(self.A_log)
        if self.projected:
            return torch.complex(a, self.A_imag)
        return a

    def _maps(self) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.complex(self.B_map_re, self.B_map_im), torch.complex(self.C_map_re, self.C_map_im)

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 3 or x.shape[-1] != self.d_model:
            raise DimensionError(f"x must have shape (batch, length, d_model={self.d_model}); got {tuple(x.shape)}")

    def selection(self, x: torch.Tensor) -> Selection:
        r"""The input-dependent quantities :math:`\tilde x, z, \Delta, B_t, C_t` for a block input ``x``.

        Parameters
        ----------
        x
            ``(batch, length, d_model)``.

        Returns
        -------
        Selection
            See :class:`Selection`.

        Raises
        ------
        DimensionError
            For a wrong input shape.

        Examples
        --------
        >>> from ssmred_torch import Mamba
        >>> s = Mamba(4, 6).selection(torch.randn(2, 5, 4))
        >>> tuple(s.delta.shape), tuple(s.B.shape), bool((s.delta > 0).all())
        ((2, 5, 8), (2, 5, 6), True)
        """
        self._check_input(x)
        L, d, R, n = x.shape[1], self.d_inner, self.dt_rank, self.n_features
        xs, z = self.in_proj(x).split([d, d], dim=-1)
        u = F.silu(self.conv1d(xs.transpose(1, 2))[..., :L].transpose(1, 2))
        low, B, C = self.x_proj(u).split([R, n, n], dim=-1)
        delta = F.softplus(self.dt_proj(low))
        return Selection(u, z, delta, B, C)

    def core(
        self,
        u: torch.Tensor,
        delta: torch.Tensor,
        B: torch.Tensor,
        C: torch.Tensor,
        *,
        sequential: bool = False,
    ) -> torch.Tensor:
        r"""The selective scan for given :math:`\tilde x, \Delta, B_t, C_t` (linear in ``u`` for fixed rest).

        :math:`h_{t,d} = \exp(\Delta_{t,d} a_d)\odot h_{t-1,d} + \Delta_{t,d}\tilde B_{t,d}u_{t,d}`,
        :math:`y_{t,d} = \mathrm{Re}(\tilde C_{t,d}^T h_{t,d}) + D_d u_{t,d}` with
        :math:`\tilde B_{t,d}, \tilde C_{t,d}` the vectors :math:`B_t, C_t` as channel ``d`` reads them
        (all of them; its modes; or mapped by its transforms). With constant :math:`\Delta, B, C`
        ("frozen") this is an LTI system per channel — exactly the surrogate of those constants.

        Parameters
        ----------
        u
            ``(b, l, d_inner)``.
        delta
            ``(b, l, d_inner)``, positive.
        B, C
            ``(b, l, n_features)``.
        sequential
            Use the step-by-step reference recurrence instead of the parallel scan.

        Returns
        -------
        torch.Tensor
            ``(b, l, d_inner)``.

        Examples
        --------
        >>> from ssmred_torch import Mamba
        >>> layer = Mamba(2, 3, dtype=torch.float64)
        >>> s = layer.selection(torch.randn(1, 7, 2, dtype=torch.float64))
        >>> bool(torch.allclose(layer.core(*s[:1], *s[2:]), layer.core(*s[:1], *s[2:], sequential=True)))
        True
        """
        a = self.rates()
        dt = delta.unsqueeze(-1)
        if a.is_complex():  # polar form: ~4x cheaper than the complex exp on CPU (forward), ~2x with backward
            dA = torch.polar(torch.exp(dt * a.real), dt * a.imag)  # (b, l, d, r)
        else:
            dA = torch.exp(dt * a)
        du = (delta * u).unsqueeze(-1)
        if self.projected:
            Bm, Cm = self._maps()
            Bt = torch.complex(
                torch.einsum("bln,drn->bldr", B, Bm.real.to(B.dtype)),
                torch.einsum("bln,drn->bldr", B, Bm.imag.to(B.dtype)),
            )
            Ct = torch.complex(
                torch.einsum("bln,dnr->bldr", C, Cm.real.to(C.dtype)),
                torch.einsum("bln,dnr->bldr", C, Cm.imag.to(C.dtype)),
            )
        elif self.indexed:
            Bt, Ct = B[..., self.mode_index], C[..., self.mode_index]  # (b, l, d, r)
        else:
            Bt, Ct = B.unsqueeze(-2), C.unsqueeze(-2)  # shared by every channel
        scan = diagonal_scan_varying_sequential if sequential else diagonal_scan_varying
        h = scan(dA, du * Bt, dim=-3)
        if Ct.shape[-2] == 1 and not h.is_complex():
            y = torch.matmul(h, Ct.squeeze(-2).unsqueeze(-1)).squeeze(-1)
        else:
            y = (h * Ct).sum(-1)
            y = y.real if y.is_complex() else y
        if self._accumulator is not None or (self.training and self.calibration_batches > 0):
            self._record(delta, B, C, dA)
        return y + self.D * u

    def frozen_core(self, u: torch.Tensor, *, sequential: bool = False) -> torch.Tensor:
        r"""The core with :math:`\Delta, B_t, C_t` frozen at their calibration means: an LTI map of ``u``.

        Per channel this is the system :math:`(\exp(\mathbb E[\Delta_d]a_d),\ \mathbb E[\Delta_d]\mathbb E[B],
        \ \mathbb E[C])` (vectors as channel ``d`` reads them), the surrogate under ``transition="exp_mean"``,
        ``drive="product_of_means"``; when the statistics were recorded from constant
        :math:`\Delta, B, C` (every rule then gives the same surrogate) it is the layer's surrogate and
        ``to_statespace(layer, exact=True)`` is its exact realization. Nothing is recorded.

        Parameters
        ----------
        u
            ``(b, l, d_inner)``.
        sequential
            Use the reference recurrence.

        Returns
        -------
        torch.Tensor
            ``(b, l, d_inner)``.

        Raises
        ------
        CalibrationError
            Without calibration statistics.

        Examples
        --------
        >>> from ssmred_torch import Mamba, calibrate_
        >>> layer = Mamba(2, 3); calibrate_(layer, torch.randn(2, 6, 2))
        >>> layer.frozen_core(torch.randn(1, 5, 4)).shape
        torch.Size([1, 5, 4])
        """
        st = self.statistics()
        b, L, d = u.shape
        dt = self.A_log.dtype
        delta = st.delta.to(dt).expand(b, L, d)
        B = st.B.to(dt).expand(b, L, -1)
        C = st.C.to(dt).expand(b, L, -1)
        acc, self._accumulator = self._accumulator, None
        was_training = self.training
        self.train(False)
        try:
            return self.core(u, delta, B, C, sequential=sequential)
        finally:
            self._accumulator = acc
            self.train(was_training)
