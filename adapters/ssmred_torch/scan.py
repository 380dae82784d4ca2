r"""Diagonal linear recurrences :math:`h_k = \lambda \odot h_{k-1} + x_k` by a parallel associative scan.

Shared by every diagonal layer family. :func:`diagonal_scan` has depth :math:`O(\log L)` and work
:math:`O(Ln)`, so a smaller state trains faster; :func:`diagonal_scan_sequential` is the plain loop used
as the reference in tests. :func:`diagonal_scan_varying` is the time-varying (selective) form
:math:`h_k = a_k \odot h_{k-1} + x_k` used by the Mamba family, with its reference loop
:func:`diagonal_scan_varying_sequential`.

References
----------
blelloch1990
"""

from __future__ import annotations

from ssmred._require import require

require("torch")

import torch  # noqa: E402

from ssmred.errors import DimensionError  # noqa: E402

__all__ = ["diagonal_scan", "diagonal_scan_sequential", "diagonal_scan_varying", "diagonal_scan_varying_sequential"]


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


# ---------------------------------------------------------------------------------------------- time-varying
def _check_varying(a: torch.Tensor, x: torch.Tensor, dim: int) -> int:
    if a.shape != x.shape:
        raise DimensionError(f"a and x must have the same shape; got {tuple(a.shape)} and {tuple(x.shape)}")
    if x.ndim < 1 or not -x.ndim <= dim < x.ndim:
        raise DimensionError(f"dim={dim} is not an axis of x with shape {tuple(x.shape)}")
    return dim % x.ndim


def _scan_varying(a: torch.Tensor, x: torch.Tensor, dim: int) -> torch.Tensor:
    length = x.shape[dim]
    if length == 1:
        return x
    half = length // 2
    sizes = [2 * half, length - 2 * half]
    a_pairs, a_tail = a.split(sizes, dim=dim)
    x_pairs, x_tail = x.split(sizes, dim=dim)
    a_even, a_odd = a_pairs.unflatten(dim, (half, 2)).unbind(dim + 1)  # positions 2i and 2i + 1
    x_even, x_odd = x_pairs.unflatten(dim, (half, 2)).unbind(dim + 1)
    # (a_{2i}, x_{2i}) then (a_{2i+1}, x_{2i+1}) compose to (a_{2i+1} a_{2i}, a_{2i+1} x_{2i} + x_{2i+1})
    z = _scan_varying(a_odd * a_even, a_odd * x_even + x_odd, dim)  # z_i = h_{2i+1}
    # h_0 = x_0, h_{2i} = a_{2i} h_{2i-1} + x_{2i}
    x_first, x_rest = x_even.split([1, half - 1], dim=dim)
    a_rest = a_even.narrow(dim, 1, half - 1)
    z_head, z_last = z.split([half - 1, 1], dim=dim)
    h_even = torch.cat([x_first, a_rest * z_head + x_rest], dim=dim)
    h = torch.stack([h_even, z], dim=dim + 1).flatten(dim, dim + 1)
    if length % 2:
        h = torch.cat([h, a_tail * z_last + x_tail], dim=dim)
    return h


def diagonal_scan_varying(a: torch.Tensor, x: torch.Tensor, *, dim: int = -2) -> torch.Tensor:
    r"""All states of the time-varying recurrence :math:`h_k = a_k \odot h_{k-1} + x_k`, :math:`h_{-1} = 0`.

    The selective (input-dependent) counterpart of :func:`diagonal_scan`: every step has its own
    elementwise transition :math:`a_k`. Same associative operator
    :math:`(a, b) \bullet (a', b') = (a a', a' b + b')` and the same recursive pairing (depth
    :math:`O(\log L)`, work :math:`O(L n)` for ``n`` elements per step, differentiable).

    Parameters
    ----------
    a
        Transitions :math:`a_k`, real or complex, same shape as ``x``.
    x
        Inputs :math:`x_k`, shape ``(..., length, ...)`` with the time axis at ``dim``.
    dim
        The time axis (keyword-only).

    Returns
    -------
    torch.Tensor
        The states :math:`h_k`, same shape as ``x``.

    Raises
    ------
    DimensionError
        If the shapes differ or ``dim`` is not an axis.

    Examples
    --------
    >>> a = torch.tensor([[0.5], [0.5], [0.0], [1.0]])
    >>> diagonal_scan_varying(a, torch.ones(4, 1), dim=0)[:, 0]
    tensor([1.0000, 1.5000, 1.0000, 2.0000])
    """
    dim = _check_varying(a, x, dim)
    if x.shape[dim] == 0:
        return x
    return _scan_varying(a.to(x.dtype) if a.dtype != x.dtype else a, x, dim)


def diagonal_scan_varying_sequential(a: torch.Tensor, x: torch.Tensor, *, dim: int = -2) -> torch.Tensor:
    r"""Reference loop for :func:`diagonal_scan_varying`, one step at a time.

    Parameters
    ----------
    a
        Transitions, same shape as ``x``.
    x
        Inputs with the time axis at ``dim``.
    dim
        The time axis (keyword-only).

    Returns
    -------
    torch.Tensor
        The states, same shape as ``x``.

    Raises
    ------
    DimensionError
        If the shapes differ or ``dim`` is not an axis.

    Examples
    --------
    >>> diagonal_scan_varying_sequential(torch.full((3, 1), 0.5), torch.ones(3, 1), dim=0)[:, 0]
    tensor([1.0000, 1.5000, 1.7500])
    """
    dim = _check_varying(a, x, dim)
    a = a.to(x.dtype)
    h = torch.zeros_like(x.select(dim, 0)) if x.shape[dim] else None
    out = []
    for k in range(x.shape[dim]):
        h = a.select(dim, k) * h + x.select(dim, k)
        out.append(h)
    if not out:
        return x
    return torch.stack(out, dim=dim)
