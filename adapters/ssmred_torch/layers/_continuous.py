r"""Continuous-time diagonal modes shared by the S4D and S5 families: discretisation and its inverse.

A continuous-time diagonal mode :math:`\dot x = a x + \tilde b u` (:math:`\mathrm{Re}\,a < 0`) sampled
with step :math:`\Delta` becomes the recurrence :math:`x_k = \lambda x_{k-1} + \varphi\,\tilde b\,u_k`:

* **ZOH**: :math:`\lambda = e^{\Delta a}`, :math:`\varphi = (e^{\Delta a} - 1)/a`, and
  :math:`\log\lambda = \Delta a` exactly (also when :math:`|\mathrm{Im}\,\Delta a| > \pi`);
* **bilinear**: :math:`\lambda = (1 + z)/(1 - z)` with :math:`z = \Delta a/2`,
  :math:`\varphi = \Delta/(1 - z) = \Delta(1 + \lambda)/2`, and
  :math:`\log\lambda = \tfrac12\mathrm{log1p}(4\,\mathrm{Re}\,z/|1-z|^2) + i(\arg(1+z) - \arg(1-z))`
  (the real part without the cancellation of :math:`\log|1+z| - \log|1-z|` at large :math:`|z|`, where
  high-frequency modes crowd towards :math:`\lambda = -1` on the unit circle).

**The inverse** (:func:`continuous_from_discrete`, used by every write-back): given a reduced discrete
eigenvalue :math:`\mu` and the step :math:`\Delta` that is kept, the continuous eigenvalue is

* bilinear: :math:`a = \tfrac{2}{\Delta}\,\tfrac{\mu - 1}{\mu + 1}` — unique;
* ZOH: :math:`a = (\log|\mu| + i(\arg\mu + 2\pi m))/\Delta` — any integer :math:`m` gives the same
  :math:`\mu`. The principal branch (:math:`m = 0`, :math:`|\mathrm{Im}\,\Delta a| \le \pi`) would
  silently fold every mode the layer had placed beyond the Nyquist limit (S4D-Lin puts
  :math:`\mathrm{Im}\,a = \pi n`, so :math:`\mathrm{Im}\,\Delta a` reaches ~10 at initialisation) onto
  a low frequency: the discrete system is the same, but the layer's later response to a change of
  :math:`\Delta` (training it, or resampling) is not, since :math:`\partial\lambda/\partial\Delta = a\lambda`.
  **Aliasing guard:** the branch is chosen to be the one nearest to a reference log-eigenvalue — the
  old mode nearest to :math:`\mu` (:func:`nearest_modes`) — so a mode that survives the truncation
  keeps its frequency branch, and one that crosses :math:`\arg\mu = \pm\pi` during the truncation
  stays on its side. A branch that would make the input gain :math:`|\varphi|` more than
  :math:`10^3` times smaller than the principal branch's (a mode at :math:`\mu \approx 1` mapped to a
  multiple of :math:`2\pi/\Delta`) is rejected in favour of the principal branch: the stored
  :math:`\tilde b = \bar b/\varphi` would be needlessly large.

Both inverses return :math:`\varphi` for the recovered :math:`a`, so the stored input vector
:math:`\tilde b = \bar b/\varphi` reproduces the reduced :math:`\bar b` exactly whatever branch was
chosen; the recovered mode is stable by construction (:math:`|\mu| \ge 1` from round-off is pulled to
:math:`e^{-\epsilon}`; a modulus above :math:`1 + 10^{-8}` is reported as unstable).

:func:`half_states_from_real` turns a real system into a conjugate half-state realization (one member
of each conjugate pair; a real pole becomes one half-state with half its residue), which is how a real
input/output system (``to_statespace(layer, exact=True)``, a system from elsewhere) becomes S4D / S5
parameters.
"""

from __future__ import annotations

import math
from typing import Literal

from ssmred._require import require

require("torch")

import torch  # noqa: E402

from ssmred.transforms import half_states_from_real  # noqa: E402  (the adapters' shared host step)

__all__ = [
    "DISCRETIZATIONS",
    "Discretization",
    "check_discretization",
    "continuous_from_discrete",
    "discretize_diagonal",
    "half_states_from_real",
    "nearest_modes",
]

Discretization = Literal["zoh", "bilinear"]
DISCRETIZATIONS: tuple[str, ...] = ("zoh", "bilinear")
#: a non-principal ZOH branch is rejected when it shrinks |phi| by more than this factor
_BRANCH_GAIN_LIMIT = 1e-3
_TWO_PI = 2.0 * math.pi


def check_discretization(value: object) -> str:
    """``value`` if it is ``"zoh"`` or ``"bilinear"``, else a ``ValueError`` naming the choices."""
    if not isinstance(value, str) or value not in DISCRETIZATIONS:
        raise ValueError(f"discretization must be one of 'zoh', 'bilinear'; got {value!r}")
    return value


def discretize_diagonal(
    a: torch.Tensor, step: torch.Tensor, method: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Discretise diagonal continuous-time modes: :math:`(\lambda, \log\lambda, \varphi)` (see the module docstring).

    Parameters
    ----------
    a
        Continuous eigenvalues (complex), any shape.
    step
        Steps :math:`\Delta > 0` (real), broadcastable to ``a``.
    method
        ``"zoh"`` or ``"bilinear"``.

    Returns
    -------
    tuple of torch.Tensor
        ``(lam, log_lam, phi)``, complex, the shape of ``a``; differentiable.

    Examples
    --------
    >>> a = torch.tensor([-0.5 + 3.0j], dtype=torch.complex128)
    >>> lam, log_lam, phi = discretize_diagonal(a, torch.tensor([0.1], dtype=torch.float64), "zoh")
    >>> bool(torch.allclose(lam, torch.exp(0.1 * a))), bool(torch.allclose(log_lam, 0.1 * a))
    (True, True)
    """
    ell = a * step
    if method == "zoh":
        lam = torch.exp(ell)
        small = ell.abs() == 0
        safe = torch.where(small, torch.ones_like(ell), ell)
        phi = torch.where(small, step * torch.ones_like(ell), step * torch.expm1(safe) / safe)
        return lam, ell, phi
    if method == "bilinear":
        z = 0.5 * ell
        lam = (1.0 + z) / (1.0 - z)
        # Re log(lam) = log(|1+z| / |1-z|) = log1p(4 Re z / |1-z|^2) / 2 (|1+z|^2 - |1-z|^2 = 4 Re z): no
        # cancellation when |z| is large and lam nears the unit circle at -1
        one_minus = 1.0 - z
        re = 0.5 * torch.log1p(4.0 * z.real / (one_minus.real**2 + one_minus.imag**2))
        log_lam = torch.complex(re, torch.angle(1.0 + z) - torch.angle(one_minus))
        phi = step / one_minus
        return lam, log_lam, phi
    raise ValueError(f"discretization must be one of 'zoh', 'bilinear'; got {method!r}")


def nearest_modes(mu: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    r"""For every new eigenvalue, the index of the nearest old one: :math:`\arg\min_j |\mu_k - \lambda_j|`.

    Parameters
    ----------
    mu
        New eigenvalues, ``(..., r)``.
    lam
        Old eigenvalues, ``(..., n)`` (same leading shape).

    Returns
    -------
    torch.Tensor
        int64 indices, ``(..., r)``.

    Examples
    --------
    >>> nearest_modes(torch.tensor([0.1, 0.9]), torch.tensor([1.0, 0.0])).tolist()
    [1, 0]
    """
    return (mu[..., :, None] - lam[..., None, :]).abs().argmin(-1)


def continuous_from_discrete(
    mu: torch.Tensor,
    step: torch.Tensor,
    method: str,
    *,
    ref_log: torch.Tensor | None = None,
    dtype: torch.dtype = torch.float64,
    instability_tol: float = 1e-8,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Continuous eigenvalues :math:`a` with :math:`\lambda(a, \Delta) = \mu`, and their input gains :math:`\varphi`.

    Parameters
    ----------
    mu
        Discrete eigenvalues (complex128), any shape.
    step
        The steps :math:`\Delta` to keep (float64), broadcastable to ``mu``.
    method
        ``"zoh"`` or ``"bilinear"``.
    ref_log
        ZOH only: reference log-eigenvalues (shape of ``mu``) whose imaginary part selects the branch
        of :math:`\mathrm{Im}\,\Delta a` (the aliasing guard of the module docstring); ``None``: the
        principal branch.
    dtype
        Real dtype of the target parameters: the decay :math:`-\log|\mu|` is floored at its machine
        epsilon (a round-off modulus :math:`\ge 1` becomes representable and stable).
    instability_tol
        Moduli above ``1 + instability_tol`` (or non-finite values) are flagged.

    Returns
    -------
    tuple of torch.Tensor
        ``(a, phi, unstable)``: complex128 ``a`` and ``phi`` of the shape of ``mu`` (with
        :math:`\varphi` computed from the returned ``a``, so :math:`\bar b/\varphi` round-trips exactly),
        and a bool tensor of that shape.

    Examples
    --------
    >>> step = torch.tensor(0.5, dtype=torch.float64)
    >>> a0 = torch.tensor([-0.2 + 7.0j], dtype=torch.complex128)          # Im(step * a) = 3.5 > pi
    >>> mu = torch.exp(step * a0)
    >>> a, phi, bad = continuous_from_discrete(mu, step, "zoh", ref_log=step * a0)
    >>> bool(torch.allclose(a, a0)), bool(bad.any())
    (True, False)
    >>> continuous_from_discrete(mu, step, "zoh")[0].imag.item() < 0       # principal branch: folded
    True
    """
    mu = mu.to(torch.complex128)
    step = torch.as_tensor(step, dtype=torch.float64, device=mu.device)
    finfo = torch.finfo(dtype)
    modulus = mu.abs()
    unstable = (modulus > 1.0 + instability_tol) | ~torch.isfinite(modulus)
    if method == "zoh":
        re = torch.log(modulus).clamp(min=math.log(finfo.tiny), max=-finfo.eps)
        im = torch.angle(mu)
        if ref_log is not None:
            shift = torch.round((ref_log.to(torch.complex128).imag - im) / _TWO_PI)
            branch = im + _TWO_PI * shift
            principal = torch.complex(re, im).abs()
            shifted = torch.complex(re, branch).abs()
            im = torch.where(principal >= _BRANCH_GAIN_LIMIT * shifted, branch, im)
        ell = torch.complex(re, im)
        a = ell / step
        phi = torch.expm1(ell) / a
        return a, phi, unstable
    if method == "bilinear":
        limit = 1.0 - finfo.eps
        shrink = torch.where(modulus > limit, limit / modulus.clamp_min(finfo.tiny), torch.ones_like(modulus))
        m = mu * shrink
        a = (2.0 / step) * (m - 1.0) / (m + 1.0)
        phi = 0.5 * step * (1.0 + m)
        unstable = unstable | ~torch.isfinite(torch.view_as_real(a)).all(-1)
        return a, phi, unstable
    raise ValueError(f"discretization must be one of 'zoh', 'bilinear'; got {method!r}")
