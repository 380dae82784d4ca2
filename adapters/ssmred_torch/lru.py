r"""The Linear Recurrent Unit (Orvieto et al. 2023) as a PyTorch module, and a sequence classifier.

One LRU layer is a complex diagonal, discrete-time MIMO system driven by all ``H`` channels:

.. math::

    x_k = \mathrm{diag}(\lambda)\, x_{k-1} + \mathrm{diag}(\gamma)(B_{re} + i B_{im})\, u_k,\qquad
    y_k = \mathrm{Re}\big((C_{re} + i C_{im})\, x_k\big) + D \odot u_k,

with :math:`\lambda_j = \exp(-e^{\nu_j} + i e^{\theta_j})` and :math:`\gamma_j = e^{\gamma^{log}_j}`.
The parameters are named ``nu_log``, ``theta_log``, ``gamma_log`` (shape ``(n,)``), ``B_re``,
``B_im`` (``(n, H)``), ``C_re``, ``C_im`` (``(H, n)``) and ``D`` (``(H,)``).

The recurrence is evaluated by a parallel associative scan of depth :math:`O(\log L)` and work
:math:`O(L)` (:func:`diagonal_scan`); :func:`diagonal_scan_sequential` is the plain loop used as the
reference in tests.

References
----------
orvieto2023, blelloch1990
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ssmred._require import require

require("torch")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from ssmred.errors import DimensionError  # noqa: E402

__all__ = ["LRU", "LRUBlock", "LRUModel", "diagonal_scan", "diagonal_scan_sequential"]

_LRU_PARAMETERS = ("nu_log", "theta_log", "gamma_log", "B_re", "B_im", "C_re", "C_im", "D")


# ---------------------------------------------------------------------------------------------- scans
def _check_scan_inputs(lam: torch.Tensor, x: torch.Tensor) -> None:
    if lam.ndim != 1:
        raise DimensionError(f"lam must have shape (n_states,); got {tuple(lam.shape)}")
    if x.ndim < 2 or x.shape[-1] != lam.shape[0]:
        raise DimensionError(f"x must have shape (..., length, n_states={lam.shape[0]}); got {tuple(x.shape)}")


def _scan(lam: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    # split/unbind/cat/stack only: their backward passes are cat/stack/split, whereas strided slices
    # would allocate and zero-fill a full-size gradient per slice
    length = x.shape[-2]
    if length == 1:
        return x
    half = length // 2
    pairs, tail = x.split([2 * half, length - 2 * half], dim=-2)
    x_even, x_odd = pairs.unflatten(-2, (half, 2)).unbind(-2)  # positions 2i and 2i + 1
    # combine neighbouring pairs: (2i, 2i+1) contributes lam x_{2i} + x_{2i+1} at 2i+1
    z = _scan(lam * lam, lam * x_even + x_odd)  # z_i = h_{2i+1}
    # h_0 = x_0, h_{2i} = lam h_{2i-1} + x_{2i}
    x_first, x_rest = x_even.split([1, half - 1], dim=-2)
    z_head, z_last = z.split([half - 1, 1], dim=-2)
    h_even = torch.cat([x_first, lam * z_head + x_rest], dim=-2)
    h = torch.stack([h_even, z], dim=-2).flatten(-3, -2)
    if length % 2:
        h = torch.cat([h, lam * z_last + tail], dim=-2)
    return h


def diagonal_scan(lam: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    r"""All states of :math:`h_k = \lambda \odot h_{k-1} + x_k`, :math:`h_{-1} = 0`, by a parallel scan.

    The elements :math:`(\lambda, x_k)` are combined with the associative operator
    :math:`(a, b) \bullet (a', b') = (a a', a' b + b')`; neighbouring pairs are combined, the half-length
    problem (with :math:`\lambda^2`) is solved recursively and the even positions are filled in
    (Blelloch 1990). Depth :math:`O(\log L)`, work :math:`O(L n)`, differentiable.

    Parameters
    ----------
    lam
        Diagonal of the state matrix, complex, shape ``(n_states,)``.
    x
        Inputs :math:`x_k`, complex, shape ``(..., length, n_states)``.

    Returns
    -------
    torch.Tensor
        The states :math:`h_k`, same shape and dtype as ``x``.

    Raises
    ------
    DimensionError
        If the shapes do not fit.

    Examples
    --------
    >>> lam = torch.tensor([0.5 + 0.0j])
    >>> x = torch.ones(4, 1, dtype=torch.complex64)
    >>> diagonal_scan(lam, x)[:, 0].real
    tensor([1.0000, 1.5000, 1.7500, 1.8750])
    """
    _check_scan_inputs(lam, x)
    if x.shape[-2] == 0:
        return x
    return _scan(lam.to(x.dtype), x)


def diagonal_scan_sequential(lam: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    r"""Reference loop for :func:`diagonal_scan`: :math:`h_k = \lambda \odot h_{k-1} + x_k`, one step at a time.

    Parameters
    ----------
    lam
        Diagonal of the state matrix, shape ``(n_states,)``.
    x
        Inputs, shape ``(..., length, n_states)``.

    Returns
    -------
    torch.Tensor
        The states, same shape as ``x``.

    Raises
    ------
    DimensionError
        If the shapes do not fit.

    Examples
    --------
    >>> lam = torch.tensor([0.5 + 0.0j])
    >>> diagonal_scan_sequential(lam, torch.ones(3, 1, dtype=torch.complex64))[:, 0].real
    tensor([1.0000, 1.5000, 1.7500])
    """
    _check_scan_inputs(lam, x)
    lam = lam.to(x.dtype)
    h = torch.zeros_like(x[..., 0, :])
    out = []
    for k in range(x.shape[-2]):
        h = lam * h + x[..., k, :]
        out.append(h)
    if not out:
        return x
    return torch.stack(out, dim=-2)


# ---------------------------------------------------------------------------------------------- LRU
def _check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1; got {value!r}")
    return int(value)


class LRU(nn.Module):
    r"""Linear Recurrent Unit: a complex diagonal discrete-time MIMO state-space layer.

    Parameters
    ----------
    d_model
        Number of channels ``H`` (inputs = outputs).
    d_state
        Number of complex states ``n``.
    r_min, r_max
        Initial eigenvalue moduli lie on the ring ``[r_min, r_max]`` with :math:`|\lambda|^2` uniform,
        ``0 <= r_min < r_max < 1``.
    max_phase
        Initial phases are uniform on ``[0, max_phase]``.
    dtype
        Real parameter dtype (``torch.float32`` or ``torch.float64``); default: torch's default.
    device
        Parameter device.
    generator
        Optional ``torch.Generator`` for the initialisation.

    Raises
    ------
    ValueError
        For non-positive sizes or an invalid ring.

    Notes
    -----
    Initialisation (SPEC §1): :math:`\nu = \log(-\tfrac12\log(u_1 (r_{max}^2 - r_{min}^2) + r_{min}^2))`,
    :math:`\theta = \log(\phi_{max} u_2)`, :math:`\gamma = \sqrt{1-|\lambda|^2}`,
    :math:`B_{re}, B_{im} \sim N(0, 1/(2H))`, :math:`C_{re}, C_{im} \sim N(0, 1/n)`,
    :math:`D \sim N(0, 1)`.

    The exact input/output system is returned by :func:`ssmred_torch.to_statespace`; the layer
    realises :math:`\mathrm{Re}(G(z)) u` of the complex system
    :math:`G = (\mathrm{diag}\lambda, \mathrm{diag}(\gamma)(B_{re}+iB_{im}), C_{re}+iC_{im}, \mathrm{diag}D)`.

    Examples
    --------
    >>> _ = torch.manual_seed(0)
    >>> layer = LRU(4, 8)
    >>> layer(torch.randn(2, 10, 4)).shape
    torch.Size([2, 10, 4])
    >>> bool((layer.eigenvalues().abs() < 1).all())
    True
    """

    def __init__(
        self,
        d_model: int,
        d_state: int,
        *,
        r_min: float = 0.9,
        r_max: float = 0.999,
        max_phase: float = 2 * math.pi,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        H = _check_positive_int("d_model", d_model)
        n = _check_positive_int("d_state", d_state)
        if not 0.0 <= float(r_min) < float(r_max) < 1.0:
            raise ValueError(f"need 0 <= r_min < r_max < 1; got r_min={r_min}, r_max={r_max}")
        if not (math.isfinite(float(max_phase)) and float(max_phase) > 0.0):
            raise ValueError(f"max_phase must be a finite float > 0; got {max_phase!r}")
        self.r_min, self.r_max, self.max_phase = float(r_min), float(r_max), float(max_phase)
        kw = {"dtype": dtype if dtype is not None else torch.get_default_dtype(), "device": device}
        if kw["dtype"] not in (torch.float32, torch.float64):
            raise TypeError(f"dtype must be torch.float32 or torch.float64; got {kw['dtype']}")
        with torch.no_grad():
            u1 = torch.rand(n, generator=generator, dtype=torch.float64)
            u2 = torch.rand(n, generator=generator, dtype=torch.float64)
            mod2 = u1 * (self.r_max**2 - self.r_min**2) + self.r_min**2
            nu_log = torch.log(-0.5 * torch.log(mod2))
            theta_log = torch.log(self.max_phase * u2.clamp_min(torch.finfo(torch.float64).tiny))
            gamma_log = 0.5 * torch.log1p(-mod2)
            B_re = torch.randn(n, H, generator=generator, dtype=torch.float64) / math.sqrt(2 * H)
            B_im = torch.randn(n, H, generator=generator, dtype=torch.float64) / math.sqrt(2 * H)
            C_re = torch.randn(H, n, generator=generator, dtype=torch.float64) / math.sqrt(n)
            C_im = torch.randn(H, n, generator=generator, dtype=torch.float64) / math.sqrt(n)
            D = torch.randn(H, generator=generator, dtype=torch.float64)
        init = {
            "nu_log": nu_log,
            "theta_log": theta_log,
            "gamma_log": gamma_log,
            "B_re": B_re,
            "B_im": B_im,
            "C_re": C_re,
            "C_im": C_im,
            "D": D,
        }
        for name in _LRU_PARAMETERS:
            self.register_parameter(name, nn.Parameter(init[name].to(**kw)))

    # ------------------------------------------------------------------ sizes and matrices
    @property
    def d_model(self) -> int:
        """Number of channels ``H``."""
        return int(self.D.shape[0])

    @property
    def d_state(self) -> int:
        """Current number of complex states ``n`` (changes when the layer is reduced)."""
        return int(self.nu_log.shape[0])

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, d_state={self.d_state}"

    def eigenvalues(self) -> torch.Tensor:
        r"""The diagonal :math:`\lambda_j = \exp(-e^{\nu_j} + i e^{\theta_j})` (complex, differentiable).

        Returns
        -------
        torch.Tensor
            Shape ``(d_state,)``, complex64 or complex128.

        Examples
        --------
        >>> bool(LRU(2, 3).eigenvalues().abs().max() < 1)
        True
        """
        return torch.polar(torch.exp(-torch.exp(self.nu_log)), torch.exp(self.theta_log))

    def input_matrix(self) -> torch.Tensor:
        r"""The effective input matrix :math:`\tilde B = \mathrm{diag}(\gamma)(B_{re} + i B_{im})`.

        Returns
        -------
        torch.Tensor
            Complex, shape ``(d_state, d_model)``.

        Examples
        --------
        >>> LRU(2, 3).input_matrix().shape
        torch.Size([3, 2])
        """
        return torch.exp(self.gamma_log)[:, None] * torch.complex(self.B_re, self.B_im)

    def output_matrix(self) -> torch.Tensor:
        r"""The output matrix :math:`C = C_{re} + i C_{im}`.

        Returns
        -------
        torch.Tensor
            Complex, shape ``(d_model, d_state)``.

        Examples
        --------
        >>> LRU(2, 3).output_matrix().shape
        torch.Size([2, 3])
        """
        return torch.complex(self.C_re, self.C_im)

    # ------------------------------------------------------------------ forward
    def _check_input(self, u: torch.Tensor) -> None:
        if u.ndim != 3 or u.shape[-1] != self.d_model:
            raise DimensionError(f"u must have shape (batch, length, d_model={self.d_model}); got {tuple(u.shape)}")

    def _drive(self, u: torch.Tensor) -> torch.Tensor:
        gamma = torch.exp(self.gamma_log)
        return torch.complex(u @ (gamma[:, None] * self.B_re).T, u @ (gamma[:, None] * self.B_im).T)

    def _read(self, h: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return h.real @ self.C_re.T - h.imag @ self.C_im.T + self.D * u

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        r"""Apply the layer: :math:`y_k = \mathrm{Re}(C x_k) + D \odot u_k` (zero initial state).

        Parameters
        ----------
        u
            Real input of shape ``(batch, length, d_model)``, same dtype as the parameters.

        Returns
        -------
        torch.Tensor
            Output of shape ``(batch, length, d_model)``.

        Raises
        ------
        DimensionError
            If ``u`` does not have shape ``(batch, length, d_model)``.
        """
        self._check_input(u)
        return self._read(diagonal_scan(self.eigenvalues(), self._drive(u)), u)

    def forward_sequential(self, u: torch.Tensor) -> torch.Tensor:
        """The same map as :meth:`forward`, by the step-by-step recurrence (reference; slow).

        Parameters
        ----------
        u
            Input of shape ``(batch, length, d_model)``.

        Returns
        -------
        torch.Tensor
            Output of shape ``(batch, length, d_model)``.

        Raises
        ------
        DimensionError
            If ``u`` does not have shape ``(batch, length, d_model)``.
        """
        self._check_input(u)
        return self._read(diagonal_scan_sequential(self.eigenvalues(), self._drive(u)), u)

    # ------------------------------------------------------------------ in-place surgery
    @torch.no_grad()
    def replace_parameters_(self, **values: torch.Tensor) -> None:
        """Replace the data of the LRU parameters in place (shapes may change; used by reductions).

        The :class:`torch.nn.Parameter` objects are kept (``param.data`` is swapped), so optimizers
        and hooks holding them stay valid; stale ``.grad`` tensors are cleared.

        Parameters
        ----------
        **values
            New tensors for ``nu_log``, ``theta_log``, ``gamma_log``, ``B_re``, ``B_im``, ``C_re``,
            ``C_im`` and optionally ``D``; all state-dependent ones must be given together.

        Raises
        ------
        TypeError
            For unknown names or a missing state parameter.
        DimensionError
            If the new shapes are inconsistent.

        Examples
        --------
        >>> layer = LRU(2, 4)
        >>> layer.replace_parameters_(**{k: getattr(layer, k)[..., :3] if k.startswith("C") else
        ...     getattr(layer, k)[:3] for k in ("nu_log", "theta_log", "gamma_log", "B_re", "B_im", "C_re", "C_im")})
        >>> layer.d_state
        3
        """
        unknown = set(values) - set(_LRU_PARAMETERS)
        if unknown:
            raise TypeError(f"unknown LRU parameter(s) {sorted(unknown)}; valid: {', '.join(_LRU_PARAMETERS)}")
        state_names = _LRU_PARAMETERS[:-1]
        missing = [k for k in state_names if k not in values]
        if missing:
            raise TypeError(f"replace_parameters_ needs all state parameters; missing {missing}")
        n = int(values["nu_log"].shape[0])
        H = int(values["D"].shape[0]) if "D" in values else self.d_model
        expected = {
            "nu_log": (n,),
            "theta_log": (n,),
            "gamma_log": (n,),
            "B_re": (n, H),
            "B_im": (n, H),
            "C_re": (H, n),
            "C_im": (H, n),
            "D": (H,),
        }
        for name, value in values.items():
            if tuple(value.shape) != expected[name]:
                raise DimensionError(f"{name} must have shape {expected[name]}; got {tuple(value.shape)}")
        for name, value in values.items():
            param = getattr(self, name)
            new = value.detach().to(dtype=param.dtype, device=param.device).clone()
            if new.shape != param.shape:
                # autograd caches a leaf's gradient accumulator together with the leaf's shape, and
                # ``Tensor.data = ...`` (set_data) renews it only when dtype or device change: a graph
                # still alive from the last step (e.g. a ``loss`` variable not yet overwritten) would
                # make the next backward fail with a shape mismatch. Switching the dtype through an
                # empty tensor drops the stale accumulator.
                flip = torch.float64 if param.dtype != torch.float64 else torch.float32
                param.data = torch.empty(0, dtype=flip, device=param.device)
            param.data = new
            param.grad = None

    @torch.no_grad()
    def resize_(self, d_state: int) -> None:
        """Reshape the state parameters to ``d_state`` states (zeros; to be overwritten by a load).

        Parameters
        ----------
        d_state
            New number of states.

        Raises
        ------
        ValueError
            If ``d_state < 1``.

        Examples
        --------
        >>> layer = LRU(2, 4)
        >>> layer.resize_(3); layer.d_state
        3
        """
        n = _check_positive_int("d_state", d_state)
        if n == self.d_state:
            return
        H = self.d_model
        kw = {"dtype": self.D.dtype, "device": self.D.device}
        self.replace_parameters_(
            nu_log=torch.zeros(n, **kw),
            theta_log=torch.zeros(n, **kw),
            gamma_log=torch.zeros(n, **kw),
            B_re=torch.zeros(n, H, **kw),
            B_im=torch.zeros(n, H, **kw),
            C_re=torch.zeros(H, n, **kw),
            C_im=torch.zeros(H, n, **kw),
        )


# ---------------------------------------------------------------------------------------------- blocks
class LRUBlock(nn.Module):
    r"""Residual block ``x -> x + Dropout(GLU(Dropout(GELU(LRU(BatchNorm(x))))))`` (SPEC §1).

    The GLU is :math:`W_1 z \odot \sigma(W_2 z)`.

    Parameters
    ----------
    d_model
        Channels ``H``.
    d_state
        States ``n`` of the LRU.
    dropout
        Dropout probability.
    r_min, r_max, max_phase
        LRU initialisation, see :class:`LRU`.
    dtype, device
        Parameter dtype and device.
    generator
        Optional generator for the LRU initialisation.

    Examples
    --------
    >>> LRUBlock(4, 8)(torch.randn(2, 5, 4)).shape
    torch.Size([2, 5, 4])
    """

    def __init__(
        self,
        d_model: int,
        d_state: int,
        *,
        dropout: float = 0.0,
        r_min: float = 0.9,
        r_max: float = 0.999,
        max_phase: float = 2 * math.pi,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {dropout!r}")
        kw = {"dtype": dtype, "device": device}
        self.norm = nn.BatchNorm1d(d_model, **kw)
        self.lru = LRU(d_model, d_state, r_min=r_min, r_max=r_max, max_phase=max_phase, generator=generator, **kw)
        self.glu_value = nn.Linear(d_model, d_model, **kw)
        self.glu_gate = nn.Linear(d_model, d_model, **kw)
        self.dropout = nn.Dropout(float(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block to ``x`` of shape ``(batch, length, d_model)``.

        Parameters
        ----------
        x
            Input sequence.

        Returns
        -------
        torch.Tensor
            Same shape as ``x``.
        """
        z = self.norm(x.transpose(1, 2)).transpose(1, 2)
        z = self.dropout(nn.functional.gelu(self.lru(z)))
        z = self.dropout(self.glu_value(z) * torch.sigmoid(self.glu_gate(z)))
        return x + z


class LRUModel(nn.Module):
    r"""Sequence classifier: encoder, ``n_layers`` :class:`LRUBlock`, mean pooling over time, linear head.

    Parameters
    ----------
    d_input
        Input features per time step (linear encoder). Ignored when ``vocab_size`` is given.
    d_model
        Channels ``H``.
    d_state
        States per layer: one int for all layers, or one per layer.
    n_layers
        Number of blocks ``L``.
    n_classes
        Number of output classes.
    vocab_size
        If given, inputs are integer tokens ``(batch, length)`` and the encoder is an embedding.
    dropout
        Dropout probability in the blocks.
    r_min, r_max, max_phase
        LRU initialisation, see :class:`LRU`.
    dtype, device
        Parameter dtype and device.
    generator
        Optional generator for the LRU initialisations.

    Raises
    ------
    ValueError
        For invalid sizes.

    Examples
    --------
    >>> model = LRUModel(1, 8, 16, 2, 10)
    >>> model(torch.randn(3, 20, 1)).shape
    torch.Size([3, 10])
    >>> model.state_sizes
    [16, 16]
    """

    def __init__(
        self,
        d_input: int,
        d_model: int,
        d_state: int | Sequence[int],
        n_layers: int,
        n_classes: int,
        *,
        vocab_size: int | None = None,
        dropout: float = 0.0,
        r_min: float = 0.9,
        r_max: float = 0.999,
        max_phase: float = 2 * math.pi,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        n_layers = _check_positive_int("n_layers", n_layers)
        _check_positive_int("n_classes", n_classes)
        if isinstance(d_state, int):
            sizes = [d_state] * n_layers
        else:
            sizes = list(d_state)
            if len(sizes) != n_layers:
                raise ValueError(f"d_state has {len(sizes)} entries but n_layers={n_layers}")
        kw = {"dtype": dtype, "device": device}
        if vocab_size is not None:
            self.encoder: nn.Module = nn.Embedding(_check_positive_int("vocab_size", vocab_size), d_model, **kw)
        else:
            self.encoder = nn.Linear(_check_positive_int("d_input", d_input), d_model, **kw)
        self.vocab_size = vocab_size
        self.blocks = nn.ModuleList(
            [
                LRUBlock(
                    d_model,
                    n,
                    dropout=dropout,
                    r_min=r_min,
                    r_max=r_max,
                    max_phase=max_phase,
                    generator=generator,
                    **kw,
                )
                for n in sizes
            ]
        )
        self.head = nn.Linear(d_model, n_classes, **kw)

    @property
    def state_sizes(self) -> list[int]:
        """Current state size of every LRU layer, in order."""
        return [block.lru.d_state for block in self.blocks]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits for a batch of sequences.

        Parameters
        ----------
        x
            ``(batch, length, d_input)`` real features, or ``(batch, length)`` integer tokens when the
            model has a vocabulary.

        Returns
        -------
        torch.Tensor
            Logits of shape ``(batch, n_classes)``.
        """
        z = self.encoder(x)
        for block in self.blocks:
            z = block(z)
        return self.head(z.mean(dim=1))
