r"""Batched kernels of every layer family: square-root balanced truncation of diagonal discrete-time systems.

Every function works on a stack of ``G`` systems :math:`(\mathrm{diag}\lambda_g, B_g, C_g)` with the
same state size ``n``, in complex128, on the tensors' device, without copying matrices to the host:

1. closed-form Gramians (SPEC §2)

   .. math::

       P_{ij} = \frac{(BB^H)_{ij}}{1-\lambda_i\bar\lambda_j},\qquad
       Q_{ij} = \frac{(C^HC)_{ij}}{1-\bar\lambda_i\lambda_j},

   where the denominators are evaluated from the log-eigenvalues
   :math:`\ell = \log\lambda = -e^\nu + i e^\theta` when those are known, as
   :math:`1 - e^{x+iy} = -\mathrm{expm1}(x) + 2e^x\sin^2(y/2) - i e^x \sin y` with
   :math:`x = \mathrm{Re}(\ell_i + \bar\ell_j)`, :math:`y = \mathrm{Im}(\ell_i - \ell_j)` (no cancellation
   for :math:`|\lambda| \to 1`);
2. factors :math:`P = L_c L_c^H`, :math:`Q = L_o L_o^H` (:func:`psd_factor`: Cholesky, and for the
   batch members where it fails because the Gramian is numerically semidefinite, a rank-revealing
   pivoted Cholesky — the outer-product form of LAPACK ``?pstrf``, stopping at pivots
   :math:`\le n\epsilon\max_i P_{ii}` — never a jitter); the resulting HSVs agree with the numpy
   core's :func:`ssmred.hsv_diagonal` to :math:`10^{-10}\sigma_1`;
3. Hankel singular values :math:`\sigma = \mathrm{svd}(L_o^H L_c)` (square-root method);
4. SR projections :math:`T = L_c V_r\Sigma_r^{-1/2}`, :math:`T_i = \Sigma_r^{-1/2}U_r^H L_o^H` and the
   reduced :math:`(T_i\,\mathrm{diag}(\lambda)\,T,\ T_i B,\ C T)`;
5. re-diagonalisation :math:`A_r = V\mathrm{diag}(\mu)V^{-1}` (the layer adapters map
   :math:`(\mu, B, C)` to their own parameters).

The only host transfers are small: one flag per group when a Cholesky factorisation fails, the chosen
orders (one int per layer) and the reports' HSV vectors.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from ssmred._require import require

require("torch")

import torch  # noqa: E402

from ssmred.errors import DimensionError  # noqa: E402

__all__ = [
    "DiagonalForm",
    "HankelSVD",
    "diagonal_gramians",
    "diagonalize",
    "hankel_svd_diagonal",
    "hsv_diagonal",
    "pivoted_cholesky",
    "psd_factor",
    "truncate_diagonal",
]

_CDTYPE = torch.complex128


def _as_complex(x: torch.Tensor) -> torch.Tensor:
    return x.to(_CDTYPE)


def _check_batch(lam: torch.Tensor, B: torch.Tensor, C: torch.Tensor) -> None:
    if lam.ndim != 2 or lam.shape[-1] == 0:
        raise DimensionError(f"lam must have shape (batch, n_states); got {tuple(lam.shape)}")
    G, n = lam.shape
    if B.ndim != 3 or B.shape[:2] != (G, n):
        raise DimensionError(f"B must have shape (batch={G}, n_states={n}, n_inputs); got {tuple(B.shape)}")
    if C.ndim != 3 or C.shape[0] != G or C.shape[2] != n:
        raise DimensionError(f"C must have shape (batch={G}, n_outputs, n_states={n}); got {tuple(C.shape)}")


# ---------------------------------------------------------------------------------------------- Gramians
def diagonal_gramians(
    lam: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    *,
    log_lam: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Closed-form Gramians of a batch of stable diagonal discrete-time systems.

    Parameters
    ----------
    lam
        Eigenvalues, shape ``(batch, n)``, all :math:`|\lambda| < 1`.
    B
        Input matrices, shape ``(batch, n, m)``.
    C
        Output matrices, shape ``(batch, p, n)``.
    log_lam
        Optional :math:`\log\lambda` (shape ``(batch, n)``); when given the denominators
        :math:`1 - \lambda_i\bar\lambda_j` are evaluated without cancellation (see the module
        docstring), accurate also for :math:`|\lambda| \to 1`.

    Returns
    -------
    tuple of torch.Tensor
        ``(P, Q)``, complex128, shape ``(batch, n, n)``, Hermitian.

    Raises
    ------
    DimensionError
        If the shapes do not fit.

    Notes
    -----
    :math:`P_{ij} = (BB^H)_{ij}/(1-\lambda_i\bar\lambda_j)`, :math:`Q_{ij} = (C^HC)_{ij}/(1-\bar\lambda_i\lambda_j)`;
    cost :math:`O(n^2(m+p))`. Differentiable.

    Examples
    --------
    >>> P, Q = diagonal_gramians(torch.tensor([[0.5 + 0j]]), torch.ones(1, 1, 1), torch.ones(1, 1, 1))
    >>> round(P.real.item(), 4)
    1.3333
    """
    _check_batch(lam, B, C)
    lam, B, C = _as_complex(lam), _as_complex(B), _as_complex(C)
    BBh = B @ B.mH
    ChC = C.mH @ C
    if log_lam is not None:
        # 1 - exp(x + iy) with x = Re(l_i + conj l_j) <= 0, y = Im(l_i - l_j), free of cancellation:
        # real part -expm1(x) + e^x 2 sin^2(y/2) (both terms >= 0), imaginary part -e^x sin(y)
        ll = _as_complex(log_lam)
        x = ll.real[..., :, None] + ll.real[..., None, :]
        y = ll.imag[..., :, None] - ll.imag[..., None, :]
        em = torch.expm1(x)
        half = torch.sin(0.5 * y)
        den_p = torch.complex(-em + 2.0 * (1.0 + em) * half * half, -(1.0 + em) * torch.sin(y))
    else:
        den_p = 1.0 - lam[..., :, None] * lam.conj()[..., None, :]
    # (1 - conj(l_i) l_j) is the conjugate of (1 - l_i conj(l_j))
    return BBh / den_p, ChC / den_p.conj()


# ---------------------------------------------------------------------------------------------- factors
def pivoted_cholesky(P: torch.Tensor, *, rtol: float | None = None) -> torch.Tensor:
    r"""Rank-revealing pivoted Cholesky factor :math:`L` (``n x n``) with :math:`LL^H \approx P`, batched.

    The outer-product form of LAPACK ``?pstrf``: at step ``k`` the largest remaining diagonal entry
    :math:`d_p` is the pivot, column ``k`` of ``L`` is :math:`(P_{:,p} - L_{:,<k}\bar L_{p,<k}^T)/\sqrt{d_p}`
    (zero in the rows already pivoted) and :math:`d \leftarrow d - |L_{:,k}|^2`. A member stops when
    :math:`\max d \le \text{rtol}\cdot\max_i P_{ii}` (default ``rtol = n·eps``); its
    remaining columns are zero. Then :math:`L = \Pi R^H` with ``R`` the ``?pstrf`` factor.
    Differentiable (the pivot order is piecewise constant).

    Parameters
    ----------
    P
        Hermitian positive semidefinite matrices, shape ``(batch, n, n)``.
    rtol
        Relative stopping tolerance.

    Returns
    -------
    torch.Tensor
        Factors, shape ``(batch, n, n)``, dtype of ``P``.

    Examples
    --------
    >>> P = torch.tensor([[[4.0, 2.0], [2.0, 1.0]]], dtype=torch.float64)  # rank 1
    >>> L = pivoted_cholesky(P)
    >>> torch.allclose(L @ L.mT, P), int((L.abs().sum(-2) > 0).sum())
    (True, 1)
    """
    if P.ndim != 3 or P.shape[-1] != P.shape[-2]:
        raise DimensionError(f"P must have shape (batch, n, n); got {tuple(P.shape)}")
    G, n = P.shape[0], P.shape[-1]
    eps = torch.finfo(P.real.dtype if P.is_complex() else P.dtype).eps
    d = P.diagonal(dim1=-2, dim2=-1).real
    tol = (n * eps if rtol is None else float(rtol)) * d.amax(-1).clamp_min(0.0)
    chosen = torch.zeros(G, n, dtype=torch.bool, device=P.device)
    rows = torch.arange(n, device=P.device)
    track = torch.is_grad_enabled() and P.requires_grad
    cols: list[torch.Tensor] = []
    L = None if track else torch.zeros_like(P)
    for k in range(n):
        dmax, piv = d.masked_fill(chosen, -math.inf).max(-1)
        active = dmax > tol
        if k % 8 == 0 and not bool(active.any()):
            break
        col = P.gather(-1, piv[:, None, None].expand(G, n, 1)).squeeze(-1)
        if k > 0:
            Lk = torch.stack(cols, -1) if track else L[:, :, :k]  # type: ignore[index]
            Lpiv = Lk.gather(-2, piv[:, None, None].expand(G, 1, k)).squeeze(-2)
            col = col - (Lk @ Lpiv.conj()[:, :, None]).squeeze(-1)
        root = torch.sqrt(torch.where(active, dmax, torch.ones_like(dmax)))
        is_piv = rows[None, :] == piv[:, None]
        keep = active[:, None] & ~chosen & ~is_piv
        col = torch.where(keep, col / root[:, None], torch.zeros_like(col))
        col = torch.where(is_piv & active[:, None], root[:, None].to(col.dtype), col)
        d = d - col.real**2 - (col.imag**2 if col.is_complex() else 0.0)
        chosen = chosen | (is_piv & active[:, None])
        if track:
            cols.append(col)
        else:
            L[:, :, k] = col  # type: ignore[index]
    if track:
        if not cols:
            return torch.zeros_like(P)
        Lt = torch.stack(cols, -1)
        return torch.cat([Lt, Lt.new_zeros(G, n, n - Lt.shape[-1])], dim=-1)
    return L  # type: ignore[return-value]


def psd_factor(P: torch.Tensor) -> torch.Tensor:
    r"""Factor :math:`L` with :math:`LL^H = P` for a batch of Hermitian PSD Gramians.

    ``torch.linalg.cholesky_ex`` first; the members where it fails (numerically semidefinite
    Gramian, e.g. ``n`` states driven by fewer than ``n`` channels) are refactored with
    :func:`pivoted_cholesky`, which stops at the numerical rank like LAPACK ``?pstrf`` with
    ``tol = n * eps * max(diag(P))``. No diagonal jitter is ever added. Differentiable.

    Parameters
    ----------
    P
        Shape ``(batch, n, n)``.

    Returns
    -------
    torch.Tensor
        Shape ``(batch, n, n)``.

    Examples
    --------
    >>> P = torch.eye(2, dtype=torch.complex128)[None] * torch.tensor([1.0, 0.0])[:, None]
    >>> torch.allclose(psd_factor(P) @ psd_factor(P).mH, P)
    True
    """
    L, info = torch.linalg.cholesky_ex(P)
    failed = info != 0
    if bool(failed.any()):  # one host sync per call
        idx = torch.nonzero(failed).squeeze(-1)
        Lp = pivoted_cholesky(P.index_select(0, idx))
        L = L.index_copy(0, idx, Lp)
    return L


# ---------------------------------------------------------------------------------------------- HSVs
class HankelSVD(NamedTuple):
    r"""Batched square-root data: :math:`L_o^H L_c = U\,\mathrm{diag}(\sigma)\,V^H` (all ``(batch, ...)``)."""

    Lc: torch.Tensor
    Lo: torch.Tensor
    U: torch.Tensor
    hsv: torch.Tensor
    Vh: torch.Tensor


def hankel_svd_diagonal(
    lam: torch.Tensor, B: torch.Tensor, C: torch.Tensor, *, log_lam: torch.Tensor | None = None
) -> HankelSVD:
    r"""Gramian factors and the SVD of :math:`L_o^H L_c` for a batch of diagonal systems.

    Parameters
    ----------
    lam, B, C
        See :func:`diagonal_gramians`.
    log_lam
        Optional log-eigenvalues, see :func:`diagonal_gramians`.

    Returns
    -------
    HankelSVD
        ``(Lc, Lo, U, hsv, Vh)``, ``hsv`` of shape ``(batch, n)`` descending (float64).

    Examples
    --------
    >>> h = hankel_svd_diagonal(torch.tensor([[0.5 + 0j]]), torch.ones(1, 1, 1), torch.ones(1, 1, 1))
    >>> round(h.hsv.item(), 4)
    1.3333
    """
    P, Q = diagonal_gramians(lam, B, C, log_lam=log_lam)
    Lc, Lo = psd_factor(P), psd_factor(Q)
    U, s, Vh = torch.linalg.svd(Lo.mH @ Lc)
    return HankelSVD(Lc, Lo, U, s, Vh)


def hsv_diagonal(
    lam: torch.Tensor, B: torch.Tensor, C: torch.Tensor, *, log_lam: torch.Tensor | None = None
) -> torch.Tensor:
    r"""Hankel singular values of a batch of diagonal discrete-time systems (square-root method).

    The torch counterpart of :func:`ssmred.hsv_diagonal` (``dt = 1``); agrees with it to
    :math:`10^{-10}\sigma_1`.

    Parameters
    ----------
    lam, B, C
        See :func:`diagonal_gramians`.
    log_lam
        Optional log-eigenvalues.

    Returns
    -------
    torch.Tensor
        float64, shape ``(batch, n)``, each row descending.

    Examples
    --------
    >>> lam = torch.tensor([[0.5 + 0j, -0.25 + 0j]])
    >>> hsv_diagonal(lam, torch.ones(1, 2, 1), torch.ones(1, 1, 2)).shape
    torch.Size([1, 2])
    """
    P, Q = diagonal_gramians(lam, B, C, log_lam=log_lam)
    return torch.linalg.svdvals(psd_factor(Q).mH @ psd_factor(P))


# ---------------------------------------------------------------------------------------------- truncation
def truncate_diagonal(
    lam: torch.Tensor, B: torch.Tensor, C: torch.Tensor, svd: HankelSVD, r: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Square-root balanced truncation of a batch of diagonal systems to the common order ``r``.

    :math:`T = L_c V_r \Sigma_r^{-1/2}`, :math:`T_i = \Sigma_r^{-1/2} U_r^H L_o^H` (so
    :math:`T_i T = I_r`), reduced :math:`(T_i\,\mathrm{diag}(\lambda)\,T,\ T_i B,\ C T)`.

    Parameters
    ----------
    lam, B, C
        The systems (shapes ``(batch, n)``, ``(batch, n, m)``, ``(batch, p, n)``).
    svd
        Their :func:`hankel_svd_diagonal`.
    r
        Reduced order, ``1 <= r <= n``; needs :math:`\sigma_r > 0` for every member.

    Returns
    -------
    tuple of torch.Tensor
        ``(A_r, B_r, C_r, T, Ti)`` with shapes ``(batch, r, r)``, ``(batch, r, m)``, ``(batch, p, r)``,
        ``(batch, n, r)``, ``(batch, r, n)``.

    Raises
    ------
    ValueError
        If ``r`` is out of range.

    Examples
    --------
    >>> lam = torch.tensor([[0.5 + 0j, 0.1 + 0j]])
    >>> B, C = torch.ones(1, 2, 1), torch.ones(1, 1, 2)
    >>> Ar, Br, Cr, T, Ti = truncate_diagonal(lam, B, C, hankel_svd_diagonal(lam, B, C), 1)
    >>> Ar.shape, torch.allclose(Ti @ T, torch.eye(1, dtype=Ti.dtype))
    (torch.Size([1, 1, 1]), True)
    """
    n = lam.shape[-1]
    if isinstance(r, bool) or not isinstance(r, int) or not 1 <= r <= n:
        raise ValueError(f"r must be an int with 1 <= r <= n_states={n}; got {r!r}")
    lam, B, C = _as_complex(lam), _as_complex(B), _as_complex(C)
    Lc, Lo, U, s, Vh = svd
    scale = torch.rsqrt(s[:, :r]).to(_CDTYPE)
    T = (Lc @ Vh[:, :r, :].mH) * scale[:, None, :]
    Ti = scale[:, :, None] * (U[:, :, :r].mH @ Lo.mH)
    A_r = (Ti * lam[:, None, :]) @ T
    return A_r, Ti @ B, C @ T, T, Ti


# ---------------------------------------------------------------------------------------------- diagonal form
class DiagonalForm(NamedTuple):
    r"""A batch of diagonal realizations :math:`(\mu, B_d, C_d)` of :math:`(A, B, C)` and the change of basis.

    ``x_d = W x`` with ``W = diag(s) V^{-1}`` (rows permuted by ``order``) and ``x = V_s x_d`` with
    ``V_s = V diag(1/s)`` (columns permuted), where :math:`A = V\mathrm{diag}(\mu)V^{-1}` and ``s``
    balances each mode's input row and output column. ``cond`` is the 1-norm condition number of the
    (unit-column) eigenvector matrix ``V`` (``inf`` if it is singular).
    """

    mu: torch.Tensor
    B: torch.Tensor
    C: torch.Tensor
    W: torch.Tensor
    V: torch.Tensor
    cond: torch.Tensor


def diagonalize(A: torch.Tensor, B: torch.Tensor, C: torch.Tensor, *, sort: bool = True) -> DiagonalForm:
    r"""Re-diagonalise a batch of systems: :math:`A = V\mathrm{diag}(\mu)V^{-1}`, :math:`B_d = V^{-1}B`,
    :math:`C_d = CV`.

    The transfer function is unchanged. The free diagonal scaling of the eigenvectors is fixed so that
    every mode's input row and output column have equal norms,
    :math:`\|B_{d,i:}\| = \|C_{d,:i}\|` (equal diagonal Gramian entries :math:`P_{ii} = Q_{ii}`), and
    with ``sort`` the modes are ordered by :math:`\|B_{d,i:}\|\|C_{d,:i}\|/(1-|\mu_i|^2)` (the Hankel
    singular value of the mode alone), largest first.

    Parameters
    ----------
    A
        State matrices, shape ``(batch, r, r)``.
    B
        Input matrices, shape ``(batch, r, m)``.
    C
        Output matrices, shape ``(batch, p, r)``.
    sort
        Order the modes by their own Hankel singular value.

    Returns
    -------
    DiagonalForm
        ``(mu, B, C, W, V, cond)``. A defective or nearly defective ``A`` shows as a huge (or infinite)
        ``cond``: callers must check it (see :func:`ssmred_torch.from_statespace`).

    Notes
    -----
    ``torch.linalg.eig`` runs on the tensors' device (on CUDA through MAGMA's hybrid ``geev``, which
    stages the small ``r x r`` matrices through host memory).

    Examples
    --------
    >>> A = torch.tensor([[[0.5, 1.0], [0.0, 0.25]]], dtype=torch.complex128)
    >>> d = diagonalize(A, torch.ones(1, 2, 1, dtype=torch.complex128), torch.ones(1, 1, 2, dtype=torch.complex128))
    >>> sorted(d.mu.real.flatten().tolist())
    [0.25, 0.5]
    """
    A, B, C = _as_complex(A), _as_complex(B), _as_complex(C)
    mu, V = torch.linalg.eig(A)
    # V^{-1} one matrix at a time: torch 2.13's *batched* CPU LU (linalg.solve / inv / lu_factor with
    # batch >= 2, n >= ~160 and more than one thread) aborts in MKL's ?laswp and then hangs
    Vinv = torch.stack([torch.linalg.inv_ex(Vk)[0] for Vk in V]) if V.shape[0] > 1 else torch.linalg.inv_ex(V)[0]
    norm1 = torch.linalg.matrix_norm(V, ord=1) * torch.linalg.matrix_norm(Vinv, ord=1)
    finite = torch.isfinite(torch.view_as_real(Vinv)).flatten(-3).all(-1)
    cond = torch.where(finite, norm1, torch.full_like(norm1, math.inf))
    Bd = Vinv @ B
    Cd = C @ V
    nb = torch.linalg.vector_norm(Bd, dim=-1)
    nc = torch.linalg.vector_norm(Cd, dim=-2)
    ok = (nb > 0) & (nc > 0) & torch.isfinite(nb) & torch.isfinite(nc)
    s = torch.where(ok, torch.sqrt(nc / torch.where(ok, nb, torch.ones_like(nb))), torch.ones_like(nb))
    Bd = Bd * s[..., :, None]
    Cd = Cd / s[..., None, :]
    Vs = V / s[..., None, :]
    W = Vinv * s[..., :, None]  # Vs^{-1}; only for optimizer-moment maps, never applied to the system
    if sort:
        key = (nb * nc) / (-torch.expm1(2.0 * torch.log(mu.abs().clamp_min(1e-300)))).clamp_min(1e-300)
        key = torch.where(torch.isfinite(key), key, torch.full_like(key, math.inf))
        order = torch.argsort(key, dim=-1, descending=True, stable=True)
        mu = mu.gather(-1, order)
        Bd = Bd.gather(-2, order[..., :, None].expand_as(Bd))
        Cd = Cd.gather(-1, order[..., None, :].expand_as(Cd))
        Vs = Vs.gather(-1, order[..., None, :].expand_as(Vs))
        W = W.gather(-2, order[..., :, None].expand_as(W))
    return DiagonalForm(mu, Bd, Cd, W, Vs, cond)
