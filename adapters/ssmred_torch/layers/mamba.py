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

**Layout.** This module holds the ``nn.Module`` (construction, initialisation, ``forward``); its other
methods come from one mixin per concern, each in its own module: :mod:`~ssmred_torch.layers.mamba_scan`
(``selection``, the selective scan ``core``, ``frozen_core``), :mod:`~ssmred_torch.layers.mamba_calibration`
(the statistics buffers, :func:`recording`, :func:`calibrate_`), :mod:`~ssmred_torch.layers.mamba_surgery`
(``keep_modes_``, ``project_``, ``resize_``) and :mod:`~ssmred_torch.layers.mamba_reference`
(``from_reference_state_dict``); :mod:`~ssmred_torch.layers.mamba_surrogate` holds
:func:`surrogate_matrices` and :func:`frozen_time_hsvs`, :mod:`~ssmred_torch.layers.mamba_options` the
rule names and argument checks. Every public name is re-exported here.

References
----------
gu2023mamba
"""

from __future__ import annotations

import math
from typing import Literal, get_args

from ssmred._require import require

require("torch")

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from ssmred_torch.layers.mamba_calibration import CalibrationError as CalibrationError  # noqa: E402
from ssmred_torch.layers.mamba_calibration import CalibrationStatistics as CalibrationStatistics  # noqa: E402
from ssmred_torch.layers.mamba_calibration import _CalibrationBuffers  # noqa: E402
from ssmred_torch.layers.mamba_calibration import calibrate_ as calibrate_  # noqa: E402
from ssmred_torch.layers.mamba_calibration import recording as recording  # noqa: E402
from ssmred_torch.layers.mamba_options import MambaRule as MambaRule  # noqa: E402
from ssmred_torch.layers.mamba_options import SurrogateDrive as SurrogateDrive  # noqa: E402
from ssmred_torch.layers.mamba_options import SurrogateTransition as SurrogateTransition  # noqa: E402
from ssmred_torch.layers.mamba_options import _choice, _positive_int, _uniform  # noqa: E402
from ssmred_torch.layers.mamba_reference import _ReferenceWeights  # noqa: E402
from ssmred_torch.layers.mamba_scan import Selection as Selection  # noqa: E402
from ssmred_torch.layers.mamba_scan import _SelectiveScan  # noqa: E402
from ssmred_torch.layers.mamba_surgery import _MambaSurgery  # noqa: E402
from ssmred_torch.layers.mamba_surrogate import HSVSpread as HSVSpread  # noqa: E402
from ssmred_torch.layers.mamba_surrogate import frozen_time_hsvs as frozen_time_hsvs  # noqa: E402
from ssmred_torch.layers.mamba_surrogate import surrogate_matrices as surrogate_matrices  # noqa: E402

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


class Mamba(_SelectiveScan, _CalibrationBuffers, _MambaSurgery, _ReferenceWeights, nn.Module):
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
