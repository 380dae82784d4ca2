r"""The Linear Recurrent Unit (Orvieto et al. 2023) and its adapter (the first registered layer family).

One LRU layer is a complex diagonal, discrete-time MIMO system driven by all ``H`` channels:

.. math::

    x_k = \mathrm{diag}(\lambda)\, x_{k-1} + \mathrm{diag}(\gamma)(B_{re} + i B_{im})\, u_k,\qquad
    y_k = \mathrm{Re}\big((C_{re} + i C_{im})\, x_k\big) + D \odot u_k,

with :math:`\lambda_j = \exp(-e^{\nu_j} + i e^{\theta_j})` and :math:`\gamma_j = e^{\gamma^{log}_j}`.
The parameters are named ``nu_log``, ``theta_log``, ``gamma_log`` (shape ``(n,)``), ``B_re``,
``B_im`` (``(n, H)``), ``C_re``, ``C_im`` (``(H, n)``) and ``D`` (``(H,)``). The recurrence is
evaluated by the parallel scan of :mod:`ssmred_torch.scan`.

**The analysed system and the exact one.** :class:`~ssmred_torch.LRUAdapter` analyses (and ``to_statespace``
returns) the complex system (``dt = 1``)
:math:`\Sigma = (\mathrm{diag}\lambda,\ \tilde B = \mathrm{diag}(\gamma)(B_{re}+iB_{im}),\ C,\ \mathrm{diag}D)`.
The layer reads its state *after* the update, whereas a :class:`~ssmred.StateSpace` means
:math:`x_{k+1} = Ax_k + Bu_k`, :math:`y_k = Cx_k + Du_k`; hence

.. math::

    G_{\text{layer}}(z) = z\,\big(G_\Sigma(z) - D\big) + D,\qquad
    h^{\text{layer}}_k = \mathrm{Re}\,h^{\Sigma}_{k+1} + D\,\delta_k .

Since :math:`|z| = 1` on the unit circle, :math:`\|G_{\text{layer}} - G_{\text{layer},r}\|_\infty =
\|G_\Sigma - G_{\Sigma,r}\|_\infty`, so every bound on :math:`\Sigma` holds verbatim for the layer.
``to_statespace(layer, exact=True)`` returns
:math:`(\Lambda, \Lambda\tilde B, C, \mathrm{diag}(D) + C\tilde B)`, whose transfer function *is* the
layer's; its :meth:`~ssmred.StateSpace.to_real` is the layer's exact real input/output system
(``2n`` states). The real output's error is bounded by the complex system's,
:math:`|\mathrm{Re}\,v| \le |v|`.

References
----------
orvieto2023
"""

from __future__ import annotations

import math

from ssmred._require import require

require("torch")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from ssmred.errors import DimensionError  # noqa: E402
from ssmred_torch._adapter import replace_parameter_  # noqa: E402
from ssmred_torch.scan import diagonal_scan, diagonal_scan_sequential  # noqa: E402

__all__ = ["LRU", "layer_matrices", "lru_parameters_from_diagonal"]

_LRU_PARAMETERS = ("nu_log", "theta_log", "gamma_log", "B_re", "B_im", "C_re", "C_im", "D")


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

        The :class:`torch.nn.Parameter` objects are kept (see
        :func:`ssmred_torch.replace_parameter_`), so optimizers and hooks holding them stay valid and a
        graph still alive from the last step does not break the next ``backward()``.

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
            replace_parameter_(getattr(self, name), value)

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


# ---------------------------------------------------------------------------------------------- system data
def layer_matrices(layer: LRU) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""The layer's complex128 system data on its device: :math:`(\lambda, \log\lambda, \tilde B, C)`.

    Differentiable (call under ``torch.no_grad()`` when not needed). Computed from the float64-cast
    parameters: :math:`\log\lambda = -e^{\nu} + i e^{\theta}`,
    :math:`\tilde B = \mathrm{diag}(e^{\gamma^{log}})(B_{re} + iB_{im})`.

    Parameters
    ----------
    layer
        An LRU layer.

    Returns
    -------
    tuple of torch.Tensor
        ``(lam, log_lam, B, C)`` with shapes ``(n,)``, ``(n,)``, ``(n, H)``, ``(H, n)``.

    Raises
    ------
    TypeError
        If ``layer`` is not an :class:`LRU`.

    Examples
    --------
    >>> lam, log_lam, B, C = layer_matrices(LRU(2, 3))
    >>> lam.dtype, B.shape
    (torch.complex128, torch.Size([3, 2]))
    """
    if not isinstance(layer, LRU):
        raise TypeError(f"layer must be an ssmred_torch.LRU; got {type(layer).__name__}")
    f64 = torch.float64
    log_lam = torch.complex(-torch.exp(layer.nu_log.to(f64)), torch.exp(layer.theta_log.to(f64)))
    lam = torch.exp(log_lam)
    gamma = torch.exp(layer.gamma_log.to(f64))
    B = gamma[:, None] * torch.complex(layer.B_re.to(f64), layer.B_im.to(f64))
    C = torch.complex(layer.C_re.to(f64), layer.C_im.to(f64))
    return lam, log_lam, B, C


def lru_parameters_from_diagonal(
    mu: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    *,
    dtype: torch.dtype,
    instability_tol: float = 1e-8,
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    r"""LRU parameters (SPEC §4) for diagonal systems :math:`(\mathrm{diag}\mu, B, C)`, batched.

    .. math::

        \nu = \log(-\log|\mu|),\quad \theta = \log(\arg\mu \bmod 2\pi),\quad
        \gamma = \sqrt{1-|\mu|^2},\quad B_{re} + iB_{im} = B/\gamma,\quad C_{re} + iC_{im} = C.

    Edge cases, handled explicitly:

    * :math:`\arg\mu = 0` exactly (a real eigenvalue) would give :math:`\theta = -\infty`; the
      equivalent phase :math:`2\pi` is stored instead (same :math:`\mu`, finite and trainable).
    * :math:`|\mu| \ge 1` from round-off: the decay rate :math:`-\log|\mu|` is floored at the machine
      epsilon of ``dtype`` (so :math:`|\mu| = e^{-\epsilon} < 1` is representable); a modulus above
      ``1 + instability_tol`` is a genuinely unstable result and is reported in ``unstable``.
    * :math:`\mu = 0`: the decay rate is capped at :math:`-\log(\text{tiny})` of ``dtype``.

    Parameters
    ----------
    mu
        Eigenvalues, shape ``(batch, r)``.
    B
        Input matrices, shape ``(batch, r, H)``.
    C
        Output matrices, shape ``(batch, H, r)``.
    dtype
        Real dtype of the target layer (sets the floors above).
    instability_tol
        Moduli above ``1 + instability_tol`` are flagged as unstable.

    Returns
    -------
    tuple
        ``(params, unstable)``: a dict of float64 tensors ``nu_log``, ``theta_log``, ``gamma_log``
        ``(batch, r)``, ``B_re``, ``B_im`` ``(batch, r, H)``, ``C_re``, ``C_im`` ``(batch, H, r)``, and a
        bool tensor ``(batch,)``.

    Examples
    --------
    >>> mu = torch.tensor([[0.5 + 0j]], dtype=torch.complex128)
    >>> p, bad = lru_parameters_from_diagonal(mu, torch.ones(1, 1, 1), torch.ones(1, 1, 1), dtype=torch.float32)
    >>> round(p["theta_log"].exp().item(), 6), bool(bad.item())
    (6.283185, False)
    """
    mu, B, C = (x.to(torch.complex128) for x in (mu, B, C))
    finfo = torch.finfo(dtype)
    modulus = mu.abs()
    unstable = (modulus > 1.0 + instability_tol).any(-1) | ~torch.isfinite(modulus).all(-1)
    decay = (-torch.log(modulus)).clamp(min=finfo.eps, max=-math.log(finfo.tiny))
    two_pi = 2.0 * math.pi
    phase = torch.remainder(torch.angle(mu), two_pi)
    phase = torch.where(phase > 0.0, phase, torch.full_like(phase, two_pi))
    gamma_log = 0.5 * torch.log(-torch.expm1(-2.0 * decay))
    Bs = B * torch.exp(-gamma_log)[..., :, None]
    params = {
        "nu_log": torch.log(decay),
        "theta_log": torch.log(phase),
        "gamma_log": gamma_log,
        "B_re": Bs.real,
        "B_im": Bs.imag,
        "C_re": C.real,
        "C_im": C.imag,
    }
    return params, unstable
