r"""S4D (Gu et al. 2022): per-channel SISO diagonal continuous-time systems with a conjugate half-state.

Channel :math:`h = 1..H` of one layer is the continuous-time system
:math:`\dot x = \mathrm{diag}(a_h)\,x + \tilde b_h u_h`, :math:`y_h = 2\,\mathrm{Re}(c_h x) + D_h u_h` with
``d_state / 2`` stored complex states (the other half are their conjugates, which the factor 2 of the
real part accounts for), sampled with one step :math:`\Delta_h = e^{\log\Delta_h}` per channel by
ZOH or bilinear (:mod:`ssmred_torch.layers._continuous`):

.. math::

    x_k = \mathrm{diag}(\lambda_h)\,x_{k-1} + \bar b_h u_{h,k},\qquad
    y_{h,k} = 2\,\mathrm{Re}(c_h x_k) + D_h u_{h,k},\qquad \bar b_h = \varphi_h \odot \tilde b_h,

with :math:`a = -e^{\text{log\_A\_real}} + i\,\text{A\_imag}`. Parameters (all real, shapes with
``n = d_state / 2``): ``log_dt`` ``(H,)``, ``log_A_real``, ``A_imag``, ``B_re``, ``B_im``, ``C_re``,
``C_im`` ``(H, n)``, ``D`` ``(H,)``; with ``learn_B=False``, ``B_re``/``B_im`` are buffers fixed at
:math:`\tilde b = 1` (the minimal S4D of state-spaces/s4, where :math:`B` is folded into :math:`C`).

Initialisation follows state-spaces/s4's S4D: :math:`\log\Delta \sim U[\log\Delta_{min}, \log\Delta_{max}]`,
:math:`\mathrm{Re}\,a = -\tfrac12`, and :math:`\mathrm{Im}\,a_n = \pi n` (S4D-Lin) or
:math:`\tfrac{N}{\pi}(\tfrac{N}{2n+1} - 1)` (S4D-Inv), :math:`n = 0..N/2-1`, :math:`N` = ``d_state``;
``init="real"`` is S4D-Real, :math:`a_n = -(n+1)`; :math:`\tilde b = 1`; :math:`c` standard complex
normal (variance :math:`\tfrac12` per part); :math:`D \sim N(0, 1)`.

**Forward.** ``mode="conv"``: the kernel :math:`K_{h,l} = 2\,\mathrm{Re}\sum_n c_{h,n}\bar b_{h,n}
e^{l \log\lambda_{h,n}}` (a Vandermonde product, :math:`l = 0..L-1`) convolved with the input by FFT;
its cost barely depends on ``n`` (the kernel generation does). ``mode="scan"``: the recurrence by the
parallel scan of :mod:`ssmred_torch.scan`, cost :math:`O(LHn)`. Both compute the same map (to
:math:`10^{-10}` in float64, tested).

**The analysed system and the exact one.** :class:`~ssmred_torch.S4DAdapter` analyses ``G = H``
SISO complex systems :math:`\Sigma_h = (\mathrm{diag}\lambda_h, \bar b_h, c_h)` (``dt = 1``) with output
rule ``"two_real"``; ``to_statespace(layer)`` is their block-diagonal union (``H·n`` complex states,
``H`` inputs and outputs, ``D = diag(D)``). As for the LRU the layer reads its state after the update,
so channel ``h`` realises :math:`G_h(z) = D_h + 2\,\mathrm{Re}^\star[z\,(G_{\Sigma_h}(z) - D_h)]`, where
:math:`\mathrm{Re}^\star F(z) = \tfrac12(F(z) + \overline{F(\bar z)})` is the real part of a transfer
function. ``to_statespace(layer, exact=True)`` is the real ``2Hn``-state system
:math:`\mathrm{realify}(\Lambda, \Lambda\bar B, 2C, \mathrm{diag}(D) + 2\,\mathrm{Re}\,C\bar B)` — the
conjugate pairs made explicit — whose impulse response is the layer's forward pass. Since
:math:`|z| = 1` on the unit circle and :math:`\|\mathrm{Re}^\star F\|_\infty \le \|F\|_\infty`, a
truncation of :math:`\Sigma_h` with :math:`\|G_{\Sigma_h} - G_{\Sigma_h,r}\|_\infty \le \beta` changes the
layer's real map by at most :math:`2\beta`; the reduction reports that bound (the factor 2 of the
``"two_real"`` rule). Like the LRU's, these HSVs are those of the complex proxy, not of the real map.

**Orders.** A layer has one state size: every channel keeps the same number ``r`` of half-states,
:math:`r = \max_h r_h` (each channel's order by the selection mode), capped at the smallest numerical
rank among the channels — the generic rule of :mod:`ssmred_torch.reduce` for ``G > 1``. Per-channel
orders padded to the largest would cost exactly as much (the kernel, the scan and the parameters are
``(H, r_{max})``) while truncating the other channels further, so they are strictly less accurate at
the same cost. Consequently the layer shrinks only as far as its hardest channel allows (the paper's
"more modest gains for per-channel SISO models").

**Write-back.** The reduced systems are already diagonal complex half-state systems: each reduced mode
:math:`(\mu, \bar b, c)` of channel ``h`` becomes one half-state, with :math:`\Delta_h` kept,
:math:`a = \lambda^{-1}(\mu; \Delta_h)` (bilinear: unique; ZOH: the branch of the old mode nearest to
:math:`\mu`, the aliasing guard of :mod:`~ssmred_torch.layers._continuous`), :math:`\tilde b = \bar b/\varphi`
(with ``learn_B=False``: :math:`\tilde b = 1` and :math:`c \leftarrow c\,\bar b/\varphi`), stored as
``log_A_real = log(-Re a)``, ``A_imag = Im a`` and real pairs. No mode is conjugated (the analysed
system of the reduced layer *is* the balanced truncation). A real system — the exact one, or one from
elsewhere — is converted with one member per conjugate pair and real poles as one half-state with half
their residue (:func:`~ssmred_torch.layers._continuous.half_states_from_real`,
``S4DAdapter.from_statespace(..., exact=True)``).

**Layout.** The convolution path (``kernel``, ``forward_conv``) is a mixin in
:mod:`~ssmred_torch.layers.s4d_kernel`; the state-spaces/s4 importer :func:`s4d_from_reference` lives in
:mod:`~ssmred_torch.layers.s4d_reference` and is re-exported here.

References
----------
gu2022s4d
"""

from __future__ import annotations

import math
from typing import Literal

from ssmred._require import require

require("torch")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from ssmred.errors import DimensionError  # noqa: E402
from ssmred_torch._adapter import replace_parameter_  # noqa: E402
from ssmred_torch.layers._continuous import check_discretization, discretize_diagonal  # noqa: E402
from ssmred_torch.layers.s4d_kernel import _S4DConvolution  # noqa: E402
from ssmred_torch.layers.s4d_reference import s4d_from_reference as s4d_from_reference  # noqa: E402
from ssmred_torch.scan import diagonal_scan, diagonal_scan_sequential  # noqa: E402

__all__ = ["S4D", "s4d_from_reference", "s4d_matrices"]

_S4D_PARAMETERS = ("log_dt", "log_A_real", "A_imag", "B_re", "B_im", "C_re", "C_im", "D")
_STATE_NAMES = ("log_A_real", "A_imag", "B_re", "B_im", "C_re", "C_im")
_INITS = ("lin", "inv", "real")
_MODES = ("conv", "scan")


def _check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1; got {value!r}")
    return int(value)


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(repr(c) for c in choices)}; got {value!r}")
    return value


def _check_dt_range(dt_min: object, dt_max: object) -> tuple[float, float]:
    lo, hi = float(dt_min), float(dt_max)  # type: ignore[arg-type]
    if not (math.isfinite(lo) and math.isfinite(hi) and 0.0 < lo <= hi):
        raise ValueError(f"need 0 < dt_min <= dt_max (finite); got dt_min={dt_min!r}, dt_max={dt_max!r}")
    return lo, hi


def _check_dtype(dtype: torch.dtype | None) -> torch.dtype:
    dtype = dtype if dtype is not None else torch.get_default_dtype()
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"dtype must be torch.float32 or torch.float64; got {dtype}")
    return dtype


class S4D(_S4DConvolution, nn.Module):
    r"""S4D layer: ``H`` SISO diagonal continuous-time systems with conjugate half-states, discretised per channel.

    Parameters
    ----------
    d_model
        Number of channels ``H``.
    d_state
        State size ``N`` per channel (even); ``N / 2`` complex half-states are stored.
    discretization
        ``"zoh"`` or ``"bilinear"``.
    init
        ``"lin"`` (S4D-Lin), ``"inv"`` (S4D-Inv) or ``"real"`` (S4D-Real), see the module docstring.
    dt_min, dt_max
        Range of the log-uniform initial steps, ``0 < dt_min <= dt_max``.
    learn_B
        Train :math:`\tilde b` (``False``: buffers fixed at 1).
    mode
        Forward algorithm: ``"conv"`` (kernel + FFT) or ``"scan"`` (parallel scan); the attribute
        ``mode`` may be changed later.
    dtype
        Real parameter dtype (``torch.float32`` or ``torch.float64``); default: torch's default.
    device
        Parameter device.
    generator
        Optional ``torch.Generator`` for the initialisation.

    Raises
    ------
    ValueError
        For invalid sizes, steps or choices.
    TypeError
        For an unsupported dtype.

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> layer = S4D(4, 16, dtype=torch.float64)
    >>> u = torch.randn(2, 50, 4, dtype=torch.float64)
    >>> layer(u).shape, layer.n_states
    (torch.Size([2, 50, 4]), 8)
    >>> bool(torch.allclose(layer.forward_conv(u), layer.forward_scan(u), rtol=1e-10, atol=1e-10))
    True
    """

    def __init__(
        self,
        d_model: int,
        d_state: int,
        *,
        discretization: Literal["zoh", "bilinear"] = "zoh",
        init: Literal["lin", "inv", "real"] = "lin",
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        learn_B: bool = True,
        mode: Literal["conv", "scan"] = "conv",
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        H = _check_positive_int("d_model", d_model)
        N = _check_positive_int("d_state", d_state)
        if N % 2:
            raise ValueError(f"d_state must be even (N / 2 conjugate half-states are stored); got {d_state!r}")
        n = N // 2
        self.discretization = check_discretization(discretization)
        self.init = _check_choice("init", init, _INITS)
        self.mode = _check_choice("mode", mode, _MODES)
        self.dt_min, self.dt_max = _check_dt_range(dt_min, dt_max)
        if not isinstance(learn_B, bool):
            raise TypeError(f"learn_B must be a bool; got {learn_B!r}")
        self.learn_B = learn_B
        kw = {"dtype": _check_dtype(dtype), "device": device}
        f64 = torch.float64
        with torch.no_grad():
            u = torch.rand(H, generator=generator, dtype=f64)
            log_dt = u * (math.log(self.dt_max) - math.log(self.dt_min)) + math.log(self.dt_min)
            k = torch.arange(n, dtype=f64).expand(H, n)
            if self.init == "real":
                re, im = 1.0 + k, torch.zeros(H, n, dtype=f64)
            else:
                re = torch.full((H, n), 0.5, dtype=f64)
                im = math.pi * k if self.init == "lin" else (N / math.pi) * (N / (2.0 * k + 1.0) - 1.0)
            C_re = torch.randn(H, n, generator=generator, dtype=f64) / math.sqrt(2.0)
            C_im = torch.randn(H, n, generator=generator, dtype=f64) / math.sqrt(2.0)
            D = torch.randn(H, generator=generator, dtype=f64)
        values = {
            "log_dt": log_dt,
            "log_A_real": torch.log(re),
            "A_imag": im.clone(),
            "B_re": torch.ones(H, n, dtype=f64),
            "B_im": torch.zeros(H, n, dtype=f64),
            "C_re": C_re,
            "C_im": C_im,
            "D": D,
        }
        for name in _S4D_PARAMETERS:
            if name in ("B_re", "B_im") and not learn_B:
                self.register_buffer(name, values[name].to(**kw))
            else:
                self.register_parameter(name, nn.Parameter(values[name].to(**kw)))

    # ------------------------------------------------------------------ sizes
    @property
    def d_model(self) -> int:
        """Number of channels ``H``."""
        return int(self.D.shape[0])

    @property
    def n_states(self) -> int:
        """Stored complex half-states per channel, ``N / 2`` (changes when the layer is reduced)."""
        return int(self.log_A_real.shape[1])

    @property
    def d_state(self) -> int:
        """The real state size per channel, ``N = 2 * n_states`` (state-spaces/s4's ``d_state``)."""
        return 2 * self.n_states

    def extra_repr(self) -> str:
        return (
            f"d_model={self.d_model}, d_state={self.d_state}, discretization={self.discretization!r}, "
            f"mode={self.mode!r}, learn_B={self.learn_B}"
        )

    # ------------------------------------------------------------------ system data
    def continuous_eigenvalues(self) -> torch.Tensor:
        r"""The continuous-time diagonal :math:`a = -e^{\text{log\_A\_real}} + i\,\text{A\_imag}` (differentiable).

        Returns
        -------
        torch.Tensor
            Complex, shape ``(d_model, n_states)``.

        Examples
        --------
        >>> bool((S4D(2, 8).continuous_eigenvalues().real < 0).all())
        True
        """
        return torch.complex(-torch.exp(self.log_A_real), self.A_imag)

    def discrete_system(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        r"""The per-channel discrete data :math:`(\lambda, \log\lambda, \bar b, c)` in the parameter precision.

        Returns
        -------
        tuple of torch.Tensor
            Complex ``(d_model, n_states)`` each; differentiable. :func:`s4d_matrices` gives the same in
            complex128.

        Examples
        --------
        >>> lam, log_lam, Bbar, C = S4D(2, 8).discrete_system()
        >>> lam.shape, bool((lam.abs() < 1).all())
        (torch.Size([2, 4]), True)
        """
        return _discrete(self, self.log_dt.dtype)

    # ------------------------------------------------------------------ forward
    def _check_input(self, u: torch.Tensor) -> None:
        if u.ndim != 3 or u.shape[-1] != self.d_model:
            raise DimensionError(f"u must have shape (batch, length, d_model={self.d_model}); got {tuple(u.shape)}")

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        r"""Apply the layer by ``self.mode``: :math:`y = K * u + D \odot u` (zero initial state).

        Parameters
        ----------
        u
            Real input ``(batch, length, d_model)``, the parameters' dtype.

        Returns
        -------
        torch.Tensor
            Output ``(batch, length, d_model)``.

        Raises
        ------
        DimensionError
            If ``u`` does not have shape ``(batch, length, d_model)``.
        """
        return self.forward_conv(u) if self.mode == "conv" else self.forward_scan(u)

    def _drive(self, u: torch.Tensor, Bbar: torch.Tensor) -> torch.Tensor:
        return u[..., None] * Bbar  # (batch, L, H, n), complex

    def _read(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return 2.0 * (x.real * self.C_re - x.imag * self.C_im).sum(-1) + self.D * u

    def forward_scan(self, u: torch.Tensor) -> torch.Tensor:
        """The layer by the parallel scan of the recurrence (cost proportional to ``n_states``).

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
        lam, _, Bbar, _ = self.discrete_system()
        drive = self._drive(u, Bbar)
        batch, length, H, n = drive.shape
        x = diagonal_scan(lam.reshape(H * n), drive.reshape(batch, length, H * n)).reshape(batch, length, H, n)
        return self._read(x, u)

    def forward_sequential(self, u: torch.Tensor) -> torch.Tensor:
        """The same map by the step-by-step recurrence (reference; slow).

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
        lam, _, Bbar, _ = self.discrete_system()
        drive = self._drive(u, Bbar)
        batch, length, H, n = drive.shape
        x = diagonal_scan_sequential(lam.reshape(H * n), drive.reshape(batch, length, H * n))
        return self._read(x.reshape(batch, length, H, n), u)

    # ------------------------------------------------------------------ in-place surgery
    @torch.no_grad()
    def replace_parameters_(self, **values: torch.Tensor) -> None:
        """Replace the data of the S4D parameters (and the fixed ``B`` buffers) in place; shapes may change.

        The :class:`torch.nn.Parameter` objects are kept (see :func:`ssmred_torch.replace_parameter_`).

        Parameters
        ----------
        **values
            New tensors for ``log_A_real``, ``A_imag``, ``B_re``, ``B_im``, ``C_re``, ``C_im`` (all
            together: they carry the state axis) and optionally ``log_dt`` and ``D``.

        Raises
        ------
        TypeError
            For unknown names or a missing state parameter.
        DimensionError
            If the new shapes are inconsistent.

        Examples
        --------
        >>> layer = S4D(2, 8)
        >>> layer.replace_parameters_(**{k: getattr(layer, k)[:, :3] for k in
        ...     ("log_A_real", "A_imag", "B_re", "B_im", "C_re", "C_im")})
        >>> layer.n_states, layer.d_state
        (3, 6)
        """
        unknown = set(values) - set(_S4D_PARAMETERS)
        if unknown:
            raise TypeError(f"unknown S4D parameter(s) {sorted(unknown)}; valid: {', '.join(_S4D_PARAMETERS)}")
        if any(k in values for k in _STATE_NAMES):
            missing = [k for k in _STATE_NAMES if k not in values]
            if missing:
                raise TypeError(f"replace_parameters_ needs all state parameters; missing {missing}")
        n = int(values["log_A_real"].shape[-1]) if "log_A_real" in values else self.n_states
        H = self.d_model
        for name, value in values.items():
            expected = (H,) if name in ("log_dt", "D") else (H, n)
            if tuple(value.shape) != expected:
                raise DimensionError(f"{name} must have shape {expected}; got {tuple(value.shape)}")
        for name, value in values.items():
            if name in self._buffers:
                old = self._buffers[name]
                assert old is not None
                self._buffers[name] = value.detach().to(dtype=old.dtype, device=old.device).clone()
            else:
                replace_parameter_(getattr(self, name), value)

    @torch.no_grad()
    def resize_(self, n_states: int) -> None:
        """Reshape the state parameters to ``n_states`` half-states (placeholder values; then load weights).

        Parameters
        ----------
        n_states
            New number of stored half-states per channel.

        Raises
        ------
        ValueError
            If ``n_states < 1``.

        Examples
        --------
        >>> layer = S4D(2, 8)
        >>> layer.resize_(3); layer.n_states
        3
        """
        n = _check_positive_int("n_states", n_states)
        if n == self.n_states:
            return
        kw = {"dtype": self.D.dtype, "device": self.D.device}
        H = self.d_model
        zeros = torch.zeros(H, n, **kw)
        self.replace_parameters_(
            log_A_real=zeros,
            A_imag=zeros,
            B_re=torch.ones(H, n, **kw),
            B_im=zeros,
            C_re=zeros,
            C_im=zeros,
        )


# ---------------------------------------------------------------------------------------------- system data
def _discrete(layer: S4D, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    a = torch.complex(-torch.exp(layer.log_A_real.to(dtype)), layer.A_imag.to(dtype))
    step = torch.exp(layer.log_dt.to(dtype))[:, None]
    lam, log_lam, phi = discretize_diagonal(a, step, layer.discretization)
    Bbar = phi * torch.complex(layer.B_re.to(dtype), layer.B_im.to(dtype))
    return lam, log_lam, Bbar, torch.complex(layer.C_re.to(dtype), layer.C_im.to(dtype))


def s4d_matrices(layer: S4D) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""The layer's per-channel discrete data in complex128 on its device: :math:`(\lambda, \log\lambda, \bar b, c)`.

    Differentiable (call under ``torch.no_grad()`` when not needed); computed from the float64-cast
    parameters, :math:`\log\lambda = \Delta a` exactly for ZOH.

    Parameters
    ----------
    layer
        An S4D layer.

    Returns
    -------
    tuple of torch.Tensor
        ``(lam, log_lam, Bbar, C)``, each ``(d_model, n_states)``.

    Raises
    ------
    TypeError
        If ``layer`` is not an :class:`S4D`.

    Examples
    --------
    >>> lam, log_lam, Bbar, C = s4d_matrices(S4D(2, 6))
    >>> lam.dtype, C.shape
    (torch.complex128, torch.Size([2, 3]))
    """
    if not isinstance(layer, S4D):
        raise TypeError(f"layer must be an ssmred_torch.S4D; got {type(layer).__name__}")
    return _discrete(layer, torch.float64)
