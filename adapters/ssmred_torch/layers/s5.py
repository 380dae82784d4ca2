r"""S5 (Smith, Warrington & Linderman 2023): one MIMO diagonal continuous-time system per layer.

One S5 layer is the continuous-time system :math:`\dot x = \mathrm{diag}(\Lambda)x + \tilde B u`,
:math:`y = \mathrm{Re}^{(2)}(\tilde C x) + D \odot u` driven by all ``H`` channels, sampled with one step
:math:`\Delta_p = e^{\text{log\_step}_p}` per state by ZOH or bilinear
(:mod:`ssmred_torch.layers._continuous`):

.. math::

    x_k = \mathrm{diag}(\bar\Lambda)\,x_{k-1} + \bar B u_k,\qquad
    y_k = 2\,\mathrm{Re}(\tilde C x_k) + D \odot u_k \;\;(\text{conj\_sym}),\qquad
    y_k = \mathrm{Re}(\tilde C x_k) + D \odot u_k \;\;(\text{otherwise}),

with :math:`\bar B = \mathrm{diag}(\varphi)\tilde B`. With ``conj_sym`` (the default) only ``P / 2``
states are stored, the other half being their conjugates. Parameters (real): ``Lambda_re``,
``Lambda_im``, ``log_step`` ``(n,)``, ``B_re``, ``B_im`` ``(n, H)``, ``C_re``, ``C_im`` ``(H, n)``, ``D``
``(H,)`` with ``n`` stored states (lindermanlab/S5 keeps :math:`\tilde B`, :math:`\tilde C` as
trailing real/imaginary pairs and ``log_step`` as ``(P, 1)``; :func:`s5_from_reference` reads that
layout). The recurrence is evaluated by the parallel scan of :mod:`ssmred_torch.scan`.

Initialisation follows lindermanlab/S5: HiPPO-N — the eigen-decomposition
:math:`S = V\mathrm{diag}(\Lambda)V^H` of the normal part :math:`S = A_{LegS} + pp^T` of the HiPPO-LegS
matrix (:math:`\Lambda = -\tfrac12 + i\omega`), on each of ``blocks`` diagonal blocks of size
``P / blocks``, keeping the first half of each block's eigenvalues (negative :math:`\omega`) under
``conj_sym``; :math:`\tilde B = V^{-1}B` and :math:`\tilde C = CV` with real
:math:`B \sim N(0, 1/P)` ``(P, H)`` and complex :math:`C` ``(H, P)``, :math:`N(0, 1/P)` per part (S5 uses
LeCun-normal, i.e. *truncated* normal draws; plain normal draws here);
:math:`\log\Delta \sim U[\log\Delta_{min}, \log\Delta_{max}]`; :math:`D \sim N(0, 1)`.

**The analysed system and the exact one.** :class:`~ssmred_torch.S5Adapter` analyses one MIMO system
:math:`\Sigma = (\mathrm{diag}\bar\Lambda, \bar B, \tilde C, \mathrm{diag}D)` (``dt = 1``, the output of
``to_statespace(layer)``) with output rule ``"two_real"`` (``conj_sym``) or ``"real"``. The layer reads
its state after the update (as the LRU), so it realises
:math:`G(z) = D + \kappa\,\mathrm{Re}^\star[z\,(G_\Sigma(z) - D)]` with :math:`\kappa = 2` (``conj_sym``)
or 1, :math:`\mathrm{Re}^\star F(z) = \tfrac12(F(z) + \overline{F(\bar z)})`.
``to_statespace(layer, exact=True)`` is the real ``2n``-state system
:math:`\mathrm{realify}(\bar\Lambda, \bar\Lambda\bar B, \kappa\tilde C,
\mathrm{diag}D + \kappa\,\mathrm{Re}\,\tilde C\bar B)` (conjugate pairs explicit) whose impulse
response is the forward pass. A truncation of :math:`\Sigma` with error :math:`\beta` changes the
layer's real map by at most :math:`\kappa\beta` (reported).

**Write-back.** The reduced system is re-diagonalised (by the reduction) into modes
:math:`(\mu_k, \bar b_k, \tilde c_k)`; each becomes one stored state. Its step is the step of the old
state nearest to :math:`\mu_k` (one step per state is kept, none is invented), its continuous
eigenvalue :math:`a_k = \lambda^{-1}(\mu_k; \Delta_k)` (bilinear: unique; ZOH: the branch of that old
state — the aliasing guard), :math:`\tilde b_k = \bar b_k/\varphi_k`, and ``Lambda_re``,
``Lambda_im`` = real and imaginary parts. No mode is conjugated, so the analysed system of the reduced
layer is the balanced truncation. A real system (the exact one, or one from elsewhere) is turned into
half-states with one member per conjugate pair and real poles as one state with half their residue
(``S5Adapter.from_statespace(..., exact=True)``, ``conj_sym`` layers).

Bidirectional S5 layers (two output matrices) are not supported.

**Layout.** The lindermanlab/S5 importer :func:`s5_from_reference` lives in
:mod:`~ssmred_torch.layers.s5_reference` and is re-exported here.

References
----------
smith2023s5
"""

from __future__ import annotations

import math
from typing import Literal

from ssmred._require import require

require("torch")

import numpy as np  # noqa: E402
import scipy.linalg as spla  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from ssmred.errors import DimensionError  # noqa: E402
from ssmred_torch._adapter import replace_parameter_  # noqa: E402
from ssmred_torch.layers._continuous import check_discretization, discretize_diagonal  # noqa: E402
from ssmred_torch.layers.s5_reference import s5_from_reference as s5_from_reference  # noqa: E402
from ssmred_torch.scan import diagonal_scan, diagonal_scan_sequential  # noqa: E402

__all__ = ["S5", "hippo_n", "s5_from_reference", "s5_matrices"]

_S5_PARAMETERS = ("Lambda_re", "Lambda_im", "log_step", "B_re", "B_im", "C_re", "C_im", "D")
_STATE_NAMES = _S5_PARAMETERS[:-1]


def _check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1; got {value!r}")
    return int(value)


def hippo_n(size: int) -> tuple[np.ndarray, np.ndarray]:
    r"""HiPPO-N: eigenvalues and unitary eigenvectors of the normal part of the HiPPO-LegS matrix.

    :math:`A_{nk} = -\sqrt{(2n+1)(2k+1)}` for :math:`n > k`, :math:`A_{nn} = -(n+1)`, :math:`p_n = \sqrt{n + 1/2}`;
    :math:`S = A + pp^T = -\tfrac12 I + K` with :math:`K` skew-symmetric, so
    :math:`S = V\mathrm{diag}(-\tfrac12 + i\omega)V^H` with :math:`\omega` the (ascending) eigenvalues of the
    Hermitian :math:`-iK` and :math:`V` unitary.

    Parameters
    ----------
    size
        Matrix size ``N``.

    Returns
    -------
    tuple of numpy.ndarray
        ``(Lambda, V)``: complex128 ``(N,)`` and ``(N, N)``.

    Examples
    --------
    >>> lam, V = hippo_n(4)
    >>> np.allclose(lam.real, -0.5), bool(np.allclose(V.conj().T @ V, np.eye(4)))
    (True, True)
    """
    N = _check_positive_int("size", size)
    k = np.arange(N, dtype=np.float64)
    s = np.sqrt(np.outer(k + 0.5, k + 0.5))
    K = np.triu(s, 1) - np.tril(s, -1)  # S - diag(S): +s above, -s below the diagonal
    omega, V = spla.eigh(-1j * K)
    return -0.5 + 1j * omega, V


class S5(nn.Module):
    r"""S5 layer: one MIMO diagonal continuous-time system (HiPPO-N initialised), one step per state.

    Parameters
    ----------
    d_model
        Number of channels ``H`` (inputs = outputs).
    d_state
        State size ``P`` (S5's ``ssm_size``); with ``conj_sym`` ``P / 2`` states are stored.
    discretization
        ``"zoh"`` or ``"bilinear"``.
    conj_sym
        Store half the states and read :math:`2\,\mathrm{Re}(\tilde C x)` (conjugate symmetry).
    blocks
        Number of HiPPO-N blocks of the initial state matrix (must divide ``P``, each block of even size
        under ``conj_sym``).
    clip_eigs
        Use :math:`\min(\text{Lambda\_re}, -10^{-4})` as the real part (S5's ``clip_eigs``): the
        stored real part is unconstrained, and training can push it above 0 (an unstable layer, which
        a reduction refuses); off by default, as in S5.
    dt_min, dt_max
        Range of the log-uniform initial steps, ``0 < dt_min <= dt_max``.
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
    >>> layer = S5(4, 16, blocks=2)
    >>> layer(torch.randn(2, 10, 4)).shape, layer.n_states, layer.d_state
    (torch.Size([2, 10, 4]), 8, 16)
    """

    def __init__(
        self,
        d_model: int,
        d_state: int,
        *,
        discretization: Literal["zoh", "bilinear"] = "zoh",
        conj_sym: bool = True,
        blocks: int = 1,
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        clip_eigs: bool = False,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        H = _check_positive_int("d_model", d_model)
        P = _check_positive_int("d_state", d_state)
        J = _check_positive_int("blocks", blocks)
        if not isinstance(conj_sym, bool):
            raise TypeError(f"conj_sym must be a bool; got {conj_sym!r}")
        if not isinstance(clip_eigs, bool):
            raise TypeError(f"clip_eigs must be a bool; got {clip_eigs!r}")
        self.clip_eigs = clip_eigs
        if P % J or (conj_sym and (P // J) % 2):
            raise ValueError(
                f"blocks must divide d_state into blocks of {'even ' if conj_sym else ''}size; got d_state={P}, "
                f"blocks={J}"
            )
        self.discretization = check_discretization(discretization)
        self.conj_sym = conj_sym
        self.blocks = J
        lo, hi = float(dt_min), float(dt_max)
        if not (math.isfinite(lo) and math.isfinite(hi) and 0.0 < lo <= hi):
            raise ValueError(f"need 0 < dt_min <= dt_max (finite); got dt_min={dt_min!r}, dt_max={dt_max!r}")
        self.dt_min, self.dt_max = lo, hi
        dtype = dtype if dtype is not None else torch.get_default_dtype()
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"dtype must be torch.float32 or torch.float64; got {dtype}")
        block = P // J
        keep = block // 2 if conj_sym else block
        lam, V = hippo_n(block)
        lam, V = lam[:keep], V[:, :keep]
        Lambda = np.tile(lam, J)
        Vfull = spla.block_diag(*([V] * J))  # (P, n)
        f64 = torch.float64
        with torch.no_grad():
            B = torch.randn(P, H, generator=generator, dtype=f64) / math.sqrt(P)
            C = torch.complex(
                torch.randn(H, P, generator=generator, dtype=f64), torch.randn(H, P, generator=generator, dtype=f64)
            ) / math.sqrt(P)
            D = torch.randn(H, generator=generator, dtype=f64)
            u = torch.rand(Lambda.size, generator=generator, dtype=f64)
            log_step = u * (math.log(hi) - math.log(lo)) + math.log(lo)
        Vt = torch.from_numpy(Vfull)
        Bt = Vt.mH @ B.to(torch.complex128)  # V^{-1} B, V unitary
        Ct = C @ Vt
        values = {
            "Lambda_re": torch.from_numpy(Lambda.real.copy()),
            "Lambda_im": torch.from_numpy(Lambda.imag.copy()),
            "log_step": log_step,
            "B_re": Bt.real,
            "B_im": Bt.imag,
            "C_re": Ct.real,
            "C_im": Ct.imag,
            "D": D,
        }
        for name in _S5_PARAMETERS:
            self.register_parameter(name, nn.Parameter(values[name].to(dtype=dtype, device=device)))

    # ------------------------------------------------------------------ sizes
    @property
    def d_model(self) -> int:
        """Number of channels ``H``."""
        return int(self.D.shape[0])

    @property
    def n_states(self) -> int:
        """Stored complex states ``n`` (``P / 2`` under ``conj_sym``; changes when the layer is reduced)."""
        return int(self.Lambda_re.shape[0])

    @property
    def d_state(self) -> int:
        """The state size ``P`` in S5's convention: ``2 * n_states`` under ``conj_sym``, else ``n_states``."""
        return 2 * self.n_states if self.conj_sym else self.n_states

    def extra_repr(self) -> str:
        return (
            f"d_model={self.d_model}, d_state={self.d_state}, discretization={self.discretization!r}, "
            f"conj_sym={self.conj_sym}, clip_eigs={self.clip_eigs}"
        )

    # ------------------------------------------------------------------ system data
    def continuous_eigenvalues(self) -> torch.Tensor:
        r"""The continuous-time diagonal :math:`\Lambda = \text{Lambda\_re} + i\,\text{Lambda\_im}` (clipped real part).

        Returns
        -------
        torch.Tensor
            Complex, shape ``(n_states,)``.

        Examples
        --------
        >>> float(S5(2, 8).continuous_eigenvalues().real.max().detach())
        -0.5
        """
        return _eigenvalues(self, self.Lambda_re.dtype)

    def discrete_system(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        r"""The discrete data :math:`(\bar\Lambda, \log\bar\Lambda, \bar B, \tilde C)` in the parameter precision.

        Returns
        -------
        tuple of torch.Tensor
            Complex, shapes ``(n,)``, ``(n,)``, ``(n, H)``, ``(H, n)``; differentiable.

        Examples
        --------
        >>> lam, log_lam, Bbar, C = S5(3, 8).discrete_system()
        >>> Bbar.shape, C.shape
        (torch.Size([4, 3]), torch.Size([3, 4]))
        """
        return _discrete(self, self.D.dtype)

    # ------------------------------------------------------------------ forward
    def _check_input(self, u: torch.Tensor) -> None:
        if u.ndim != 3 or u.shape[-1] != self.d_model:
            raise DimensionError(f"u must have shape (batch, length, d_model={self.d_model}); got {tuple(u.shape)}")

    def _drive(self, u: torch.Tensor, Bbar: torch.Tensor) -> torch.Tensor:
        return torch.complex(u @ Bbar.real.T, u @ Bbar.imag.T)

    def _read(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        y = x.real @ self.C_re.T - x.imag @ self.C_im.T
        return (2.0 * y if self.conj_sym else y) + self.D * u

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        r"""Apply the layer by the parallel scan: :math:`y_k = \kappa\,\mathrm{Re}(\tilde C x_k) + D \odot u_k`.

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
        self._check_input(u)
        lam, _, Bbar, _ = self.discrete_system()
        return self._read(diagonal_scan(lam, self._drive(u, Bbar)), u)

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
        return self._read(diagonal_scan_sequential(lam, self._drive(u, Bbar)), u)

    # ------------------------------------------------------------------ in-place surgery
    @torch.no_grad()
    def replace_parameters_(self, **values: torch.Tensor) -> None:
        """Replace the data of the S5 parameters in place (shapes may change; used by reductions).

        The :class:`torch.nn.Parameter` objects are kept (see :func:`ssmred_torch.replace_parameter_`).

        Parameters
        ----------
        **values
            New tensors for ``Lambda_re``, ``Lambda_im``, ``log_step``, ``B_re``, ``B_im``, ``C_re``,
            ``C_im`` (all together) and optionally ``D``.

        Raises
        ------
        TypeError
            For unknown names or a missing state parameter.
        DimensionError
            If the new shapes are inconsistent.

        Examples
        --------
        >>> layer = S5(2, 8)
        >>> layer.replace_parameters_(**{k: getattr(layer, k)[..., :3] if k.startswith("C") else
        ...     getattr(layer, k)[:3] for k in ("Lambda_re", "Lambda_im", "log_step", "B_re", "B_im", "C_re", "C_im")})
        >>> layer.n_states
        3
        """
        unknown = set(values) - set(_S5_PARAMETERS)
        if unknown:
            raise TypeError(f"unknown S5 parameter(s) {sorted(unknown)}; valid: {', '.join(_S5_PARAMETERS)}")
        if any(k in values for k in _STATE_NAMES):
            missing = [k for k in _STATE_NAMES if k not in values]
            if missing:
                raise TypeError(f"replace_parameters_ needs all state parameters; missing {missing}")
        n = int(values["Lambda_re"].shape[0]) if "Lambda_re" in values else self.n_states
        H = self.d_model
        expected = {
            "Lambda_re": (n,),
            "Lambda_im": (n,),
            "log_step": (n,),
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
    def resize_(self, n_states: int) -> None:
        """Reshape the state parameters to ``n_states`` stored states (placeholder values; then load weights).

        Parameters
        ----------
        n_states
            New number of stored states.

        Raises
        ------
        ValueError
            If ``n_states < 1``.

        Examples
        --------
        >>> layer = S5(2, 8)
        >>> layer.resize_(3); layer.n_states
        3
        """
        n = _check_positive_int("n_states", n_states)
        if n == self.n_states:
            return
        H = self.d_model
        kw = {"dtype": self.D.dtype, "device": self.D.device}
        self.replace_parameters_(
            Lambda_re=torch.full((n,), -0.5, **kw),
            Lambda_im=torch.zeros(n, **kw),
            log_step=torch.zeros(n, **kw),
            B_re=torch.zeros(n, H, **kw),
            B_im=torch.zeros(n, H, **kw),
            C_re=torch.zeros(H, n, **kw),
            C_im=torch.zeros(H, n, **kw),
        )


# ---------------------------------------------------------------------------------------------- system data
_CLIP = -1e-4  # S5's clip_eigs bound on the real part


def _eigenvalues(layer: S5, dtype: torch.dtype) -> torch.Tensor:
    re = layer.Lambda_re.to(dtype)
    if layer.clip_eigs:
        re = re.clamp(max=_CLIP)
    return torch.complex(re, layer.Lambda_im.to(dtype))


def _discrete(layer: S5, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    a = _eigenvalues(layer, dtype)
    lam, log_lam, phi = discretize_diagonal(a, torch.exp(layer.log_step.to(dtype)), layer.discretization)
    Bbar = phi[:, None] * torch.complex(layer.B_re.to(dtype), layer.B_im.to(dtype))
    return lam, log_lam, Bbar, torch.complex(layer.C_re.to(dtype), layer.C_im.to(dtype))


def s5_matrices(layer: S5) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""The layer's discrete data in complex128 on its device: :math:`(\bar\Lambda, \log\bar\Lambda, \bar B, \tilde C)`.

    Differentiable; computed from the float64-cast parameters (:math:`\log\bar\Lambda = \Delta\Lambda`
    exactly for ZOH).

    Parameters
    ----------
    layer
        An S5 layer.

    Returns
    -------
    tuple of torch.Tensor
        ``(lam, log_lam, Bbar, C)`` with shapes ``(n,)``, ``(n,)``, ``(n, H)``, ``(H, n)``.

    Raises
    ------
    TypeError
        If ``layer`` is not an :class:`S5`.

    Examples
    --------
    >>> lam, log_lam, Bbar, C = s5_matrices(S5(2, 8))
    >>> lam.dtype, Bbar.shape
    (torch.complex128, torch.Size([4, 2]))
    """
    if not isinstance(layer, S5):
        raise TypeError(f"layer must be an ssmred_torch.S5; got {type(layer).__name__}")
    return _discrete(layer, torch.float64)
