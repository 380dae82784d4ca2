r"""The selective state-space block of Mamba (Gu & Dao 2023) in plain PyTorch, and its mean-LTI surrogate.

**The block.** With ``d_inner = expand * d_model`` channels and ``n = d_state`` states per channel,

.. math::

    [x; z] = W_{in} u,\quad \tilde x = \mathrm{silu}(\mathrm{conv}(x)),\quad
    [\delta; B_t; C_t] = W_x \tilde x_t,\quad \Delta_t = \mathrm{softplus}(W_\Delta \delta_t + b_\Delta),

    h_{t,d} = \exp(\Delta_{t,d} A_d) \odot h_{t-1,d} + \Delta_{t,d} B_t \tilde x_{t,d},\qquad
    y_{t,d} = C_t^T h_{t,d} + D_d \tilde x_{t,d},\qquad
    \text{out} = W_{out}(y \odot \mathrm{silu}(z)),

with :math:`A_d = -\exp(A^{log}_d)` real and diagonal per channel (S4D-Real initialisation
:math:`A_{d,k} = -(k+1)`), zero-order-hold transition :math:`\exp(\Delta A)` and the simplified drive
:math:`\Delta B`. The parameters carry the reference names and layout of ``mamba_ssm`` /
mamba-minimal: ``in_proj`` (``2 d_inner x d_model``), ``conv1d`` (depthwise, ``d_inner x 1 x d_conv``,
causal), ``x_proj`` (``dt_rank + 2n x d_inner``, rows :math:`[\delta; B; C]`), ``dt_proj``
(``d_inner x dt_rank`` with the inverse-softplus bias), ``A_log`` (``d_inner x n``), ``D``
(``d_inner``), ``out_proj``; :meth:`Mamba.from_reference_state_dict` reads such a state dict. The
recurrence runs through :func:`~ssmred_torch.diagonal_scan_varying`, a parallel scan whose work is
proportional to ``d_inner * n``, so a smaller state trains faster.

**The mean-LTI surrogate** (SPEC §7). Mamba is SISO per channel: channel ``d`` is the time-varying
system :math:`(\exp(\Delta_{t,d}A_d),\ \Delta_{t,d}B_t,\ C_t)`. CompreSSM analyses, per channel, the
discrete diagonal LTI system :math:`(\bar A_d, \bar B_d, \bar C)` averaged over a *calibration set*
of inputs, with an explicit averaging rule:

* transition ``"exp_mean"`` (default) :math:`\bar A_d = \exp(\mathbb E[\Delta_d] A_d)` or
  ``"mean_exp"`` :math:`\bar A_d = \mathbb E[\exp(\Delta_d A_d)]` (larger, by Jensen);
* drive ``"mean_product"`` (default) :math:`\bar B_d = \mathbb E[\Delta_d B]` or
  ``"product_of_means"`` :math:`\bar B_d = \mathbb E[\Delta_d]\,\mathbb E[B]`;
* :math:`\bar C = \mathbb E[C]`.

The expectations are over every position of every calibration sequence. They are kept as buffers
of the layer (so they travel with ``state_dict``, checkpoints, DDP and rollbacks), in a ring of
``calibration_batches`` slots of per-batch means. They get there in one of two ways:

1. :func:`calibrate_` (or the :func:`recording` context) runs inputs through a model and stores the
   exact mean over all of them (slot 0, the other slots cleared) — the calibration set, of any size;
2. in training mode every forward pass writes its batch means into the next slot, so the surrogate
   always describes the last ``calibration_batches`` training batches (the CompreSSM controller needs
   nothing else); ``calibration_batches=0`` turns this off.

The surrogate's transfer function reads the state after the update, like the LRU:
:math:`G_d(z) = z\bar C(zI-\bar A_d)^{-1}\bar B_d + D_d`.

**Reduction rules** (``rule``; see :class:`~ssmred_torch.MambaAdapter` for the details):
``"modal_shared"`` keeps one set of the original diagonal modes for all channels (the reduced block
is a plain smaller Mamba), ``"modal_channel"`` keeps each channel's own modes (a per-channel index
buffer ``mode_index`` into :math:`B_t, C_t`), ``"balanced"`` balanced-truncates every channel's
surrogate and stores the per-channel transforms (buffers ``B_map``, ``C_map``) that act on the fresh
:math:`B_t, C_t`, with complex continuous rates :math:`a = \log\mu/\mathbb E[\Delta]`
(``A_log`` for :math:`\log(-\mathrm{Re}\,a)`, buffer ``A_imag`` for :math:`\mathrm{Im}\,a`).

References
----------
gu2023mamba
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal, NamedTuple, get_args

from ssmred._require import require

require("torch")

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from ssmred.errors import DimensionError  # noqa: E402
from ssmred_torch._adapter import replace_parameter_, ssm_layers  # noqa: E402
from ssmred_torch.kernels import hsv_diagonal  # noqa: E402
from ssmred_torch.scan import diagonal_scan_varying, diagonal_scan_varying_sequential  # noqa: E402

__all__ = [
    "CalibrationError",
    "CalibrationStatistics",
    "HSVSpread",
    "Mamba",
    "MambaRule",
    "Selection",
    "SurrogateDrive",
    "SurrogateTransition",
    "calibrate_",
    "frozen_time_hsvs",
    "recording",
    "surrogate_matrices",
]

MambaRule = Literal["modal_shared", "modal_channel", "balanced"]
SurrogateTransition = Literal["exp_mean", "mean_exp"]
SurrogateDrive = Literal["mean_product", "product_of_means"]
_REFERENCE_KEYS = (
    "in_proj.weight",
    "conv1d.weight",
    "x_proj.weight",
    "dt_proj.weight",
    "dt_proj.bias",
    "A_log",
    "D",
    "out_proj.weight",
)
_OPTIONAL_REFERENCE_KEYS = ("in_proj.bias", "conv1d.bias", "out_proj.bias")


class CalibrationError(RuntimeError):
    """A selective layer has no (or no usable) calibration statistics for its surrogate.

    Run :func:`calibrate_` on a calibration set, or train a few steps with ``calibration_batches > 0``.
    """


def _positive_int(name: str, value: object, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}")
    return int(value)


def _choice(name: str, value: object, options: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {', '.join(repr(o) for o in options)}; got {value!r}")
    return value


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


@dataclass(frozen=True)
class CalibrationStatistics:
    r"""The calibration means a surrogate is built from (float64, on the layer's device).

    Attributes
    ----------
    delta
        :math:`\mathbb E[\Delta_d]`, ``(d_inner,)``.
    delta_B
        :math:`\mathbb E[\Delta_d B]`, ``(d_inner, n_features)``.
    B, C
        :math:`\mathbb E[B]`, :math:`\mathbb E[C]`, ``(n_features,)``.
    transition
        :math:`\mathbb E[\exp(\Delta_d a_{d,k})]` for the layer's current rates, complex128
        ``(d_inner, d_state)``, or ``None`` when not recorded since the last change of the rates.
    weight
        Number of positions averaged.
    """

    delta: torch.Tensor
    delta_B: torch.Tensor
    B: torch.Tensor
    C: torch.Tensor
    transition: torch.Tensor | None
    weight: float


def _uniform(shape: tuple[int, ...], bound: float, generator: torch.Generator | None) -> torch.Tensor:
    return (2.0 * torch.rand(shape, generator=generator, dtype=torch.float64) - 1.0) * bound


class Mamba(nn.Module):
    r"""The Mamba selective SSM block (``mamba_ssm.Mamba`` layout), reducible by ssmred.

    Parameters
    ----------
    d_model
        Channels of the block input and output.
    d_state
        States per inner channel ``n``.
    expand
        ``d_inner = expand * d_model``.
    d_conv
        Width of the causal depthwise convolution.
    dt_rank
        Rank of the :math:`\Delta` projection; ``"auto"``: :math:`\lceil d_{model}/16\rceil`.
    dt_min, dt_max
        Initial :math:`\Delta` is log-uniform on ``[dt_min, dt_max]`` (through the bias of ``dt_proj``).
    dt_init_floor
        Lower clamp of the initial :math:`\Delta`.
    dt_scale
        ``dt_proj.weight`` is uniform on :math:`\pm\,\text{dt\_scale}/\sqrt{\text{dt\_rank}}`.
    conv_bias, bias
        Bias of ``conv1d``; bias of ``in_proj`` and ``out_proj``.
    rule
        Reduction rule: ``"modal_shared"``, ``"modal_channel"`` or ``"balanced"`` (module docstring).
    transition
        Surrogate transition average: ``"exp_mean"`` or ``"mean_exp"``.
    drive
        Surrogate input average: ``"mean_product"`` or ``"product_of_means"``.
    calibration_batches
        Training batches the running surrogate statistics cover (0: only :func:`calibrate_`).
    dtype
        Parameter dtype (``torch.float32`` or ``torch.float64``); default: torch's default.
    device
        Parameter device.
    generator
        Optional ``torch.Generator`` for the initialisation (the global RNG is not used).

    Raises
    ------
    ValueError
        For invalid sizes, ranges or rule names.
    TypeError
        For an unsupported dtype.

    Notes
    -----
    Initialisation as in ``mamba_ssm``: the linear maps and the convolution uniform on
    :math:`\pm 1/\sqrt{\text{fan-in}}` (PyTorch's default), ``A_log`` :math:`= \log(k+1)` for every
    channel (S4D-Real), ``D = 1``, :math:`\Delta_0 = \exp(\mathcal U[\log dt_{min}, \log dt_{max}])`
    clamped at ``dt_init_floor`` and ``dt_proj.bias`` :math:`= \Delta_0 + \log(-\mathrm{expm1}(-\Delta_0))`
    (the inverse of softplus).

    Examples
    --------
    >>> layer = Mamba(8, 16, generator=torch.Generator().manual_seed(0))
    >>> layer(torch.randn(2, 10, 8)).shape, tuple(layer.A_log.shape)
    (torch.Size([2, 10, 8]), (16, 16))
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 16,
        *,
        expand: int = 2,
        d_conv: int = 4,
        dt_rank: int | Literal["auto"] = "auto",
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        dt_init_floor: float = 1e-4,
        dt_scale: float = 1.0,
        conv_bias: bool = True,
        bias: bool = False,
        rule: MambaRule = "modal_shared",
        transition: SurrogateTransition = "exp_mean",
        drive: SurrogateDrive = "mean_product",
        calibration_batches: int = 8,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        H = _positive_int("d_model", d_model)
        n = _positive_int("d_state", d_state)
        d = H * _positive_int("expand", expand)
        k_conv = _positive_int("d_conv", d_conv)
        R = math.ceil(H / 16) if dt_rank == "auto" else _positive_int("dt_rank", dt_rank)
        if not (0.0 < float(dt_min) <= float(dt_max) and math.isfinite(float(dt_max))):
            raise ValueError(f"need 0 < dt_min <= dt_max < inf; got dt_min={dt_min!r}, dt_max={dt_max!r}")
        self.rule: MambaRule = _choice("rule", rule, get_args(MambaRule))  # type: ignore[assignment]
        self.transition: SurrogateTransition = _choice(  # type: ignore[assignment]
            "transition", transition, get_args(SurrogateTransition)
        )
        self.drive: SurrogateDrive = _choice("drive", drive, get_args(SurrogateDrive))  # type: ignore[assignment]
        self.calibration_batches = _positive_int("calibration_batches", calibration_batches, minimum=0)
        self.d_model, self.d_inner, self.dt_rank, self.d_conv = H, d, R, k_conv
        self.n_features_init = n
        dtype = dtype if dtype is not None else torch.get_default_dtype()
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"dtype must be torch.float32 or torch.float64; got {dtype}")
        device = torch.device(device) if device is not None else torch.get_default_device()
        kw = {"dtype": dtype, "device": device}
        self.in_proj = nn.utils.skip_init(nn.Linear, H, 2 * d, bias=bias, **kw)
        self.conv1d = nn.utils.skip_init(
            nn.Conv1d, d, d, kernel_size=k_conv, groups=d, padding=k_conv - 1, bias=conv_bias, **kw
        )
        self.x_proj = nn.utils.skip_init(nn.Linear, d, R + 2 * n, bias=False, **kw)
        self.dt_proj = nn.utils.skip_init(nn.Linear, R, d, bias=True, **kw)
        self.out_proj = nn.utils.skip_init(nn.Linear, d, H, bias=bias, **kw)
        with torch.no_grad():
            g = generator
            self.in_proj.weight.copy_(_uniform((2 * d, H), H**-0.5, g))
            if bias:
                self.in_proj.bias.copy_(_uniform((2 * d,), H**-0.5, g))
            self.conv1d.weight.copy_(_uniform((d, 1, k_conv), k_conv**-0.5, g))
            if conv_bias:
                self.conv1d.bias.copy_(_uniform((d,), k_conv**-0.5, g))
            self.x_proj.weight.copy_(_uniform((R + 2 * n, d), d**-0.5, g))
            self.dt_proj.weight.copy_(_uniform((d, R), float(dt_scale) * R**-0.5, g))
            u = torch.rand(d, generator=g, dtype=torch.float64)
            dt = torch.exp(u * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)).clamp_min(dt_init_floor)
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
            self.out_proj.weight.copy_(_uniform((H, d), d**-0.5, g))
            if bias:
                self.out_proj.bias.copy_(_uniform((H,), d**-0.5, g))
        A = torch.arange(1, n + 1, dtype=torch.float64).repeat(d, 1)
        self.A_log = nn.Parameter(torch.log(A).to(**kw))
        self.D = nn.Parameter(torch.ones(d, **kw))
        # rule-specific state (buffers: never in an optimizer); empty = the identity (not reduced yet)
        if self.rule == "modal_channel":
            self.register_buffer("mode_index", torch.zeros(d, 0, dtype=torch.int64, device=device))
        elif self.rule == "balanced":
            self.register_buffer("A_imag", torch.zeros(d, 0, **kw))
            self.register_buffer("B_map_re", torch.zeros(d, 0, n, **kw))
            self.register_buffer("B_map_im", torch.zeros(d, 0, n, **kw))
            self.register_buffer("C_map_re", torch.zeros(d, n, 0, **kw))
            self.register_buffer("C_map_im", torch.zeros(d, n, 0, **kw))
        K = max(1, self.calibration_batches)
        self.register_buffer("calib_weight", torch.zeros(K, **kw))
        self.register_buffer("calib_weight_a", torch.zeros(K, **kw))
        self.register_buffer("calib_delta", torch.zeros(K, d, **kw))
        self.register_buffer("calib_delta_B", torch.zeros(K, d, n, **kw))
        self.register_buffer("calib_B", torch.zeros(K, n, **kw))
        self.register_buffer("calib_C", torch.zeros(K, n, **kw))
        self.register_buffer("calib_transition", torch.zeros(K, d, n, 2, **kw))
        self.register_buffer("calib_next", torch.zeros((), dtype=torch.int64, device=device))
        self._accumulator: dict[str, torch.Tensor] | None = None

    # ------------------------------------------------------------------ sizes
    @property
    def d_state(self) -> int:
        """Current number of states per channel (changes when the layer is reduced)."""
        return int(self.A_log.shape[1])

    @property
    def n_features(self) -> int:
        r"""Length of the selected vectors :math:`B_t, C_t` (rows of ``x_proj`` after :math:`\delta`)."""
        return (int(self.x_proj.weight.shape[0]) - self.dt_rank) // 2

    @property
    def indexed(self) -> bool:
        """Whether channels read their own modes of :math:`B_t, C_t` (``modal_channel`` after a reduction)."""
        return self.rule == "modal_channel" and self.mode_index.shape[1] > 0

    @property
    def projected(self) -> bool:
        """Whether per-channel transforms act on :math:`B_t, C_t` (``balanced`` after a reduction)."""
        return self.rule == "balanced" and self.B_map_re.shape[1] > 0

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, d_state={self.d_state}, d_inner={self.d_inner}, rule={self.rule!r}"

    # ------------------------------------------------------------------ the selective map
    def rates(self) -> torch.Tensor:
        r"""The continuous rates :math:`a_{d,k}` (real :math:`-e^{A^{log}}`, complex once ``balanced``-reduced).

        Returns
        -------
        torch.Tensor
            Shape ``(d_inner, d_state)``, differentiable in ``A_log``.

        Examples
        --------
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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block (zero initial state).

        Parameters
        ----------
        x
            ``(batch, length, d_model)``, the parameters' dtype.

        Returns
        -------
        torch.Tensor
            ``(batch, length, d_model)``.

        Raises
        ------
        DimensionError
            For a wrong input shape.
        """
        s = self.selection(x)
        y = self.core(s.u, s.delta, s.B, s.C)
        return self.out_proj(y * F.silu(s.z))

    def forward_sequential(self, x: torch.Tensor) -> torch.Tensor:
        """The same map as :meth:`forward` by the step-by-step recurrence (reference; slow).

        Parameters
        ----------
        x
            ``(batch, length, d_model)``.

        Returns
        -------
        torch.Tensor
            ``(batch, length, d_model)``.

        Raises
        ------
        DimensionError
            For a wrong input shape.
        """
        s = self.selection(x)
        y = self.core(s.u, s.delta, s.B, s.C, sequential=True)
        return self.out_proj(y * F.silu(s.z))

    # ------------------------------------------------------------------ calibration statistics
    @torch.no_grad()
    def _record(self, delta: torch.Tensor, B: torch.Tensor, C: torch.Tensor, dA: torch.Tensor) -> None:
        w = float(delta.shape[0] * delta.shape[1])
        exact = self._accumulator is not None
        want_a = exact or self.transition == "mean_exp"
        f = torch.float64 if exact else self.calib_delta.dtype
        sums = {
            "delta": delta.to(f).sum((0, 1)),
            "delta_B": torch.einsum("bld,bln->dn", delta.to(f), B.to(f)),
            "B": B.to(f).sum((0, 1)),
            "C": C.to(f).sum((0, 1)),
        }
        if want_a:
            t = dA.sum((0, 1))
            t = t.to(torch.complex128) if exact else t
            sums["transition"] = torch.view_as_real(t) if t.is_complex() else torch.stack([t, torch.zeros_like(t)], -1)
        if exact:
            acc = self._accumulator
            assert acc is not None
            for k, v in sums.items():
                acc[k] = acc[k] + v.to(torch.float64) if k in acc else v.to(torch.float64)
            acc["weight"] = acc.get("weight", torch.zeros((), dtype=torch.float64)) + w
            return
        slot = int(self.calib_next) % self.calib_weight.shape[0]
        self.calib_weight[slot] = w
        self.calib_delta[slot] = sums["delta"] / w
        self.calib_delta_B[slot] = sums["delta_B"] / w
        self.calib_B[slot] = sums["B"] / w
        self.calib_C[slot] = sums["C"] / w
        if want_a:
            self.calib_transition[slot] = sums["transition"] / w
            self.calib_weight_a[slot] = w
        else:
            self.calib_weight_a[slot] = 0.0
        self.calib_next += 1

    @torch.no_grad()
    def _store_accumulated(self, acc: Mapping[str, torch.Tensor]) -> None:
        for name in ("calib_weight", "calib_weight_a", "calib_delta", "calib_delta_B", "calib_B", "calib_C"):
            getattr(self, name).zero_()
        self.calib_transition.zero_()
        self.calib_next.zero_()
        w = float(acc["weight"])
        self.calib_weight[0] = w
        self.calib_weight_a[0] = w
        self.calib_delta[0] = acc["delta"] / w
        self.calib_delta_B[0] = acc["delta_B"] / w
        self.calib_B[0] = acc["B"] / w
        self.calib_C[0] = acc["C"] / w
        self.calib_transition[0] = acc["transition"] / w
        self.calib_next.fill_(1)

    @torch.no_grad()
    def statistics(self) -> CalibrationStatistics:
        """The calibration means (weighted over the filled slots).

        Returns
        -------
        CalibrationStatistics
            The means in float64.

        Raises
        ------
        CalibrationError
            If nothing was recorded yet.

        Examples
        --------
        >>> from ssmred_torch import Mamba, calibrate_
        >>> layer = Mamba(2, 3)
        >>> calibrate_(layer, torch.randn(4, 9, 2))
        >>> stats = layer.statistics()
        >>> stats.weight, tuple(stats.delta_B.shape)
        (36.0, (4, 3))
        """
        f = torch.float64
        w = self.calib_weight.to(f)
        total = float(w.sum())
        if not total > 0.0:
            raise CalibrationError(
                "the Mamba layer has no calibration statistics: call ssmred_torch.calibrate_(model, inputs) "
                "or train with calibration_batches > 0"
            )

        def mean(buf: torch.Tensor, weights: torch.Tensor, norm: float) -> torch.Tensor:
            return torch.tensordot(weights, buf.to(f), dims=1) / norm

        wa = self.calib_weight_a.to(f)
        total_a = float(wa.sum())
        transition = None
        if total_a > 0.0:
            transition = torch.view_as_complex(mean(self.calib_transition, wa, total_a).contiguous())
        return CalibrationStatistics(
            mean(self.calib_delta, w, total),
            mean(self.calib_delta_B, w, total),
            mean(self.calib_B, w, total),
            mean(self.calib_C, w, total),
            transition,
            total,
        )

    @torch.no_grad()
    def clear_statistics_(self) -> None:
        """Forget every calibration statistic.

        Examples
        --------
        >>> from ssmred_torch import Mamba, calibrate_
        >>> layer = Mamba(2, 3); calibrate_(layer, torch.randn(1, 4, 2)); layer.clear_statistics_()
        >>> float(layer.calib_weight.sum())
        0.0
        """
        for name in ("calib_weight", "calib_weight_a", "calib_next"):
            getattr(self, name).zero_()

    # ------------------------------------------------------------------ in-place surgery (used by the adapter)
    def _set_buffer(self, name: str, value: torch.Tensor) -> None:
        old = getattr(self, name)
        setattr(self, name, value.detach().to(dtype=old.dtype, device=old.device).clone())

    def _feature_rows(self, idx: torch.Tensor) -> torch.Tensor:
        R, n = self.dt_rank, self.n_features
        head = torch.arange(R, device=idx.device)
        return torch.cat([head, R + idx, R + n + idx])

    @torch.no_grad()
    def keep_modes_(self, index: torch.Tensor) -> None:
        r"""Keep some of the current diagonal modes (modal reduction), in place.

        ``modal_shared``: ``index`` ``(r,)`` — the same modes for every channel; ``A_log`` columns,
        the :math:`B, C` rows of ``x_proj`` and the statistics are sliced (a plain smaller Mamba).
        ``modal_channel``: ``index`` ``(d_inner, r)`` — per channel; ``A_log`` and ``mode_index``
        are gathered, ``x_proj`` is kept.

        Parameters
        ----------
        index
            Indices of the modes to keep (in the current numbering).

        Raises
        ------
        ValueError
            If the rule is not modal or ``index`` has the wrong shape or range.

        Examples
        --------
        >>> layer = Mamba(2, 4)
        >>> layer.keep_modes_(torch.tensor([0, 2]))
        >>> layer.d_state, tuple(layer.x_proj.weight.shape)
        (2, (5, 4))
        """
        n, d = self.d_state, self.d_inner
        index = index.to(device=self.A_log.device, dtype=torch.int64)
        if index.numel() and (int(index.min()) < 0 or int(index.max()) >= n):
            raise ValueError(f"mode indices must lie in [0, {n}); got {index.tolist()}")
        if self.rule == "modal_shared":
            if index.ndim != 1 or not 1 <= index.numel() <= n:
                raise ValueError(f"modal_shared keeps one index vector (r,) with 1 <= r <= {n}")
            rows = self._feature_rows(index)
            replace_parameter_(self.A_log, self.A_log[:, index])
            replace_parameter_(self.x_proj.weight, self.x_proj.weight[rows])
            self._set_buffer("calib_delta_B", self.calib_delta_B[:, :, index])
            self._set_buffer("calib_B", self.calib_B[:, index])
            self._set_buffer("calib_C", self.calib_C[:, index])
            self._set_buffer("calib_transition", self.calib_transition[:, :, index])
        elif self.rule == "modal_channel":
            if index.ndim != 2 or index.shape[0] != d or not 1 <= index.shape[1] <= n:
                raise ValueError(f"modal_channel keeps one index row per channel: shape ({d}, r), 1 <= r <= {n}")
            old = self.mode_index if self.indexed else torch.arange(n, device=index.device).expand(d, n)
            replace_parameter_(self.A_log, self.A_log.gather(1, index))
            self._set_buffer("mode_index", old.gather(1, index))
            t = self.calib_transition
            self._set_buffer("calib_transition", t.gather(2, index[None, :, :, None].expand(t.shape[0], d, -1, 2)))
        else:
            raise ValueError(f"keep_modes_ needs a modal rule; this layer's rule is {self.rule!r}")

    @torch.no_grad()
    def project_(self, rates: torch.Tensor, N: torch.Tensor, M: torch.Tensor) -> None:
        r"""Replace the state by a per-channel projected one (``balanced`` reduction), in place.

        The new state of channel ``d`` is :math:`x' = N_d x` with rates :math:`a'`;
        ``B_map`` :math:`\leftarrow N_d\,B_{map}` and ``C_map`` :math:`\leftarrow C_{map} M_d` (the
        identity before the first reduction). The transition statistics are dropped (they depend on
        the rates).

        Parameters
        ----------
        rates
            Complex continuous rates ``(d_inner, r)`` with negative real parts.
        N
            ``(d_inner, r, d_state)``.
        M
            ``(d_inner, d_state, r)``.

        Raises
        ------
        ValueError
            If the rule is not ``balanced``, for wrong shapes, or rates with a real part ``>= 0``.

        Examples
        --------
        >>> layer = Mamba(1, 3, rule="balanced")
        >>> N = torch.eye(3, dtype=torch.complex128)[:2].expand(2, 2, 3)
        >>> layer.project_(torch.full((2, 2), -1.0 + 0.5j), N, N.mT)
        >>> layer.d_state, layer.projected
        (2, True)
        """
        if self.rule != "balanced":
            raise ValueError(f"project_ needs rule='balanced'; this layer's rule is {self.rule!r}")
        d, n = self.d_inner, self.d_state
        r = int(rates.shape[-1])
        if tuple(rates.shape) != (d, r) or tuple(N.shape) != (d, r, n) or tuple(M.shape) != (d, n, r):
            raise ValueError(
                f"need rates (d_inner={d}, r), N ({d}, r, {n}), M ({d}, {n}, r); got {tuple(rates.shape)}, "
                f"{tuple(N.shape)}, {tuple(M.shape)}"
            )
        rates = rates.to(torch.complex128)
        if not bool((rates.real < 0).all()) or not bool(torch.isfinite(torch.view_as_real(rates)).all()):
            raise ValueError("the rates must be finite with negative real parts")
        N, M = N.to(torch.complex128), M.to(torch.complex128)
        if self.projected:
            Bm, Cm = self._maps()
            Bm, Cm = N @ Bm.to(torch.complex128), Cm.to(torch.complex128) @ M
        else:
            Bm, Cm = N, M
        replace_parameter_(self.A_log, torch.log(-rates.real))
        self._set_buffer("A_imag", rates.imag)
        self._set_buffer("B_map_re", Bm.real)
        self._set_buffer("B_map_im", Bm.imag)
        self._set_buffer("C_map_re", Cm.real)
        self._set_buffer("C_map_im", Cm.imag)
        K = self.calib_weight.shape[0]
        self._set_buffer("calib_transition", self.calib_transition.new_zeros(K, d, r, 2))
        self.calib_weight_a.zero_()

    @torch.no_grad()
    def resize_(self, d_state: int) -> None:
        """Reshape every state-sized tensor to ``d_state`` states (zeros; to be overwritten by a load).

        Parameters
        ----------
        d_state
            New number of states per channel.

        Raises
        ------
        ValueError
            If ``d_state < 1``, or larger than the feature size for a rule that keeps ``x_proj``.

        Examples
        --------
        >>> layer = Mamba(2, 8, rule="modal_channel")
        >>> layer.resize_(3); layer.d_state, tuple(layer.mode_index.shape)
        (3, (4, 3))
        """
        r = _positive_int("d_state", d_state)
        d, R, K = self.d_inner, self.dt_rank, self.calib_weight.shape[0]
        kw = {"dtype": self.A_log.dtype, "device": self.A_log.device}
        if self.rule == "modal_shared":
            nf = r
            replace_parameter_(self.x_proj.weight, torch.zeros(R + 2 * r, d, **kw))
        else:
            nf = self.n_features
            if r > nf:
                raise ValueError(f"d_state={r} exceeds the {nf} selected features of this {self.rule!r} layer")
            reduced = r < nf
            if self.rule == "modal_channel":
                self._set_buffer("mode_index", torch.zeros(d, r if reduced else 0, dtype=torch.int64))
            else:
                k = r if reduced else 0
                self._set_buffer("A_imag", torch.zeros(d, k, **kw))
                self._set_buffer("B_map_re", torch.zeros(d, k, nf, **kw))
                self._set_buffer("B_map_im", torch.zeros(d, k, nf, **kw))
                self._set_buffer("C_map_re", torch.zeros(d, nf, k, **kw))
                self._set_buffer("C_map_im", torch.zeros(d, nf, k, **kw))
        replace_parameter_(self.A_log, torch.zeros(d, r, **kw))
        self._set_buffer("calib_delta_B", torch.zeros(K, d, nf, **kw))
        self._set_buffer("calib_B", torch.zeros(K, nf, **kw))
        self._set_buffer("calib_C", torch.zeros(K, nf, **kw))
        self._set_buffer("calib_transition", torch.zeros(K, d, r, 2, **kw))
        self.clear_statistics_()

    # ------------------------------------------------------------------ reference weights
    @classmethod
    def from_reference_state_dict(
        cls,
        state_dict: Mapping[str, torch.Tensor],
        *,
        prefix: str = "",
        rule: MambaRule = "modal_shared",
        transition: SurrogateTransition = "exp_mean",
        drive: SurrogateDrive = "mean_product",
        calibration_batches: int = 8,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> Mamba:
        """A layer with the weights of a ``mamba_ssm`` / mamba-minimal Mamba block (sizes read from them).

        Keys (after ``prefix``): ``in_proj.weight``, ``conv1d.weight``, ``x_proj.weight``,
        ``dt_proj.weight``, ``dt_proj.bias``, ``A_log``, ``D``, ``out_proj.weight`` and optionally
        ``in_proj.bias``, ``conv1d.bias``, ``out_proj.bias``. In a ``mamba_ssm`` language model the
        block of layer ``i`` has the prefix ``"backbone.layers.{i}.mixer."``, in mamba-minimal
        ``"layers.{i}.mixer."``; other keys are ignored.

        Parameters
        ----------
        state_dict
            The reference state dict.
        prefix
            Key prefix of the block.
        rule, transition, drive, calibration_batches, dtype, device
            As for :class:`Mamba`.

        Returns
        -------
        Mamba
            The layer (no calibration statistics yet).

        Raises
        ------
        KeyError
            If a required key is missing.
        DimensionError
            If the shapes are inconsistent.

        Examples
        --------
        >>> ref = Mamba(8, 4)
        >>> sd = {"layers.0.mixer." + k: v for k, v in ref.state_dict().items() if not k.startswith("calib")}
        >>> layer = Mamba.from_reference_state_dict(sd, prefix="layers.0.mixer.")
        >>> x = torch.randn(1, 5, 8)
        >>> torch.equal(layer(x), ref(x))
        True
        """
        missing = [prefix + k for k in _REFERENCE_KEYS if prefix + k not in state_dict]
        if missing:
            raise KeyError(f"reference Mamba state dict lacks {missing}")
        sd = {k: state_dict[prefix + k] for k in _REFERENCE_KEYS + _OPTIONAL_REFERENCE_KEYS if prefix + k in state_dict}
        d, n = (int(s) for s in sd["A_log"].shape)
        two_d, H = (int(s) for s in sd["in_proj.weight"].shape)
        R = int(sd["dt_proj.weight"].shape[1])
        k_conv = int(sd["conv1d.weight"].shape[-1])
        if two_d != 2 * d or d % H:
            raise DimensionError(f"in_proj.weight {tuple(sd['in_proj.weight'].shape)} does not fit A_log ({d}, {n})")
        expected = {
            "conv1d.weight": (d, 1, k_conv),
            "x_proj.weight": (R + 2 * n, d),
            "dt_proj.weight": (d, R),
            "dt_proj.bias": (d,),
            "D": (d,),
            "out_proj.weight": (H, d),
            "in_proj.bias": (2 * d,),
            "conv1d.bias": (d,),
            "out_proj.bias": (H,),
        }
        for k, shape in expected.items():
            if k in sd and tuple(sd[k].shape) != shape:
                raise DimensionError(f"{prefix}{k} must have shape {shape}; got {tuple(sd[k].shape)}")
        layer = cls(
            H,
            n,
            expand=d // H,
            d_conv=k_conv,
            dt_rank=R,
            conv_bias="conv1d.bias" in sd,
            bias="in_proj.bias" in sd,
            rule=rule,
            transition=transition,
            drive=drive,
            calibration_batches=calibration_batches,
            dtype=dtype,
            device=device,
            generator=torch.Generator().manual_seed(0),  # overwritten below
        )
        own = layer.state_dict()
        own.update({k: v.to(own[k].dtype) for k, v in sd.items()})
        layer.load_state_dict(own)
        return layer


# ---------------------------------------------------------------------------------------------- calibration
def _mamba_layers(model: nn.Module) -> list[Mamba]:
    return [e.module for e in ssm_layers(model) if isinstance(e.module, Mamba)]


@contextlib.contextmanager
def recording(model: nn.Module) -> Iterator[list[Mamba]]:
    """Record exact calibration means of every Mamba layer of ``model`` over the forward passes inside.

    On normal exit each layer that saw at least one position stores the mean over all of them (its
    previous statistics are replaced); on an exception nothing is stored.

    Parameters
    ----------
    model
        A module containing Mamba layers (or one).

    Yields
    ------
    list of Mamba
        The layers being recorded.

    Examples
    --------
    >>> from ssmred_torch import Mamba, recording
    >>> layer = Mamba(2, 3)
    >>> with recording(layer), torch.no_grad():
    ...     _ = layer(torch.randn(2, 5, 2)); _ = layer(torch.randn(1, 5, 2))
    >>> layer.statistics().weight
    15.0
    """
    layers = _mamba_layers(model)
    for layer in layers:
        layer._accumulator = {}
    ok = False
    try:
        yield layers
        ok = True
    finally:
        for layer in layers:
            acc, layer._accumulator = layer._accumulator, None
            if ok and acc:
                layer._store_accumulated(acc)


@torch.no_grad()
def calibrate_(model: nn.Module, inputs: torch.Tensor, *, batch_size: int = 256) -> None:
    """Set the surrogate statistics of every Mamba layer of ``model`` from a calibration set.

    Runs ``inputs`` through ``model`` in evaluation mode (no dropout; normalisation layers use their
    running statistics) without gradients, in batches, and stores in every Mamba layer the exact means
    over all positions of all inputs (see the module docstring). The training mode is restored.

    Parameters
    ----------
    model
        A module containing Mamba layers (or one); it is called as ``model(batch)``.
    inputs
        Calibration inputs of the model, batch first (any number: the calibration-set size).
    batch_size
        Sequences per forward pass.

    Returns
    -------
    None
        The layers' statistics buffers are set in place.

    Raises
    ------
    ValueError
        For an empty input or a non-positive batch size.

    Examples
    --------
    >>> from ssmred_torch import Mamba, calibrate_
    >>> layer = Mamba(2, 3)
    >>> calibrate_(layer, torch.randn(10, 6, 2), batch_size=4)
    >>> layer.statistics().weight
    60.0
    """
    batch_size = _positive_int("batch_size", batch_size)
    if len(inputs) == 0:
        raise ValueError("inputs must hold at least one calibration sequence")
    was_training = model.training
    model.eval()
    try:
        with recording(model):
            for start in range(0, len(inputs), batch_size):
                model(inputs[start : start + batch_size])
    finally:
        model.train(was_training)


# ---------------------------------------------------------------------------------------------- surrogate
def surrogate_matrices(layer: Mamba) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""The per-channel surrogate :math:`(\bar\lambda, \log\bar\lambda, \bar B, \bar C)` (complex128).

    Built from the layer's calibration statistics with its ``transition`` and ``drive`` rules (module
    docstring) and its current rates and mode maps; differentiable in ``A_log`` under ``"exp_mean"``.

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
