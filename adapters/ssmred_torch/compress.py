r"""In-training compression of LRU models (CompreSSM, SPEC §6): selection modes, batched reduction, controller.

For every LRU layer independently: Gramians in closed form, Hankel singular values
:math:`\sigma_1 \ge \dots \ge \sigma_n` (square-root method), an order ``r`` from the selection mode,
the gate (reduce only if :math:`r < \text{gate}\cdot n`), balanced truncation to ``r`` and the
re-diagonalised reduced system written back into the same layer (SPEC §4). All layers of a model are
analysed in one batched pass per state size, on the model's device (:mod:`ssmred_torch.batched`).

Selection modes
---------------
* :func:`tolerance` ``(tau)``: the smallest ``r`` with :math:`\sum_{i\le r}\sigma_i \ge (1-\tau)\sum_i\sigma_i`
  — τ is the *discarded* fraction of the *plain* sum of HSVs (the core's
  :func:`ssmred.order_from_energy`).
* :func:`fraction` ``(f)``: :math:`r = \max(1, \lfloor n(1-f)\rfloor)`.
* :func:`rank` ``(r)``: the same ``r`` for every layer, one ``r`` per layer, or ``rank(total=R)``: a
  total state budget, shared by keeping the ``R`` largest normalised values :math:`\sigma_i/\sum_j\sigma_j`
  over all layers (at least one state per layer) — a common energy threshold.
* :func:`pragmatic` ``(f, tolerance)``: a fixed fraction, plus (in :class:`CompreSSM`) a checkpoint before
  each reduction and a rollback of model *and* optimizer when the validation metric drops by more than
  ``tolerance``; reducing then stops.

In every mode ``r`` is lowered to the numerical rank of the Hankel operator (the number of
:math:`\sigma_i > n\,\epsilon\,\sigma_1`), below which the projection would be singular.

Error bound: each reduced layer's complex transfer function satisfies
:math:`\|G - G_r\|_\infty \le 2\sum_{i>r}\sigma_i`, and so does its real output map.
"""

from __future__ import annotations

import math
import numbers
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ssmred._require import require

require("torch")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from ssmred.bounds import bt_error_bounds  # noqa: E402
from ssmred_torch._base import adapter_for  # noqa: E402
from ssmred_torch.batched import (  # noqa: E402
    diagonalize,
    hankel_svd_diagonal,
    lru_parameters_from_diagonal,
    truncate_diagonal,
)
from ssmred_torch.convert import layer_matrices  # noqa: E402
from ssmred_torch.errors import ReductionWarning  # noqa: E402
from ssmred_torch.lru import LRU, LRUModel  # noqa: E402, F401 (LRUModel is used by the doctests)
from ssmred_torch.optim import (  # noqa: E402
    OptimizerPolicy,
    TruncationMap,
    check_optimizer,
    update_optimizer_state,
)

__all__ = [
    "AttemptRecord",
    "CompreSSM",
    "Fraction",
    "LayerReport",
    "Pragmatic",
    "Rank",
    "ReductionReport",
    "SelectionMode",
    "StepResult",
    "Tolerance",
    "fraction",
    "pragmatic",
    "rank",
    "reduce_layers",
    "reduce_model",
    "tolerance",
]


# ---------------------------------------------------------------------------------------------- modes
def _fraction_value(name: str, value: object, *, low_open: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite float; got {value!r}")
    v = float(value)
    if not ((0.0 < v) if low_open else (0.0 <= v)) or not v < 1.0:
        interval = "(0, 1)" if low_open else "[0, 1)"
        raise ValueError(f"{name} must be in {interval}; got {value!r}")
    return v


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 1:
        raise ValueError(f"{name} must be an int >= 1; got {value!r}")
    return int(value)


@dataclass(frozen=True)
class Tolerance:
    r"""Energy rule: discard the fraction ``tau`` of the plain HSV sum (made by :func:`tolerance`).

    Attributes
    ----------
    tau
        Discarded fraction of :math:`\sum_i\sigma_i`, in ``[0, 1)``.
    """

    tau: float


@dataclass(frozen=True)
class Fraction:
    """Fixed fraction: drop ``f`` of the states, ``r = max(1, floor(n (1 - f)))`` (made by :func:`fraction`).

    Attributes
    ----------
    f
        Fraction of states removed, in ``(0, 1)``.
    """

    f: float


@dataclass(frozen=True)
class Rank:
    """Explicit orders: ``r`` (all layers or one per layer) or a ``total`` budget (made by :func:`rank`).

    Attributes
    ----------
    r
        One order for every layer, or one per layer (``None`` with a budget).
    total
        Total state budget over all layers (``None`` with explicit orders).
    """

    r: int | tuple[int, ...] | None = None
    total: int | None = None


@dataclass(frozen=True)
class Pragmatic:
    """Fixed fraction ``f`` with validation-based rollback beyond ``tolerance`` (made by :func:`pragmatic`).

    Attributes
    ----------
    f
        Fraction of states removed per attempt.
    tolerance
        Admissible drop of the validation metric.
    higher_is_better
        Direction of the metric.
    """

    f: float
    tolerance: float = 0.02
    higher_is_better: bool = True


SelectionMode = Tolerance | Fraction | Rank | Pragmatic


def tolerance(tau: float) -> Tolerance:
    r"""Tolerance (energy) mode: the smallest ``r`` keeping a fraction ``1 - tau`` of :math:`\sum_i\sigma_i`.

    Parameters
    ----------
    tau
        Discarded fraction of the plain HSV sum, in ``[0, 1)`` (published values 0.01–0.15).

    Returns
    -------
    Tolerance
        The mode.

    Raises
    ------
    ValueError
        If ``tau`` is not in ``[0, 1)``.

    Examples
    --------
    >>> tolerance(0.05)
    Tolerance(tau=0.05)
    """
    return Tolerance(_fraction_value("tau", tau, low_open=False))


def fraction(f: float) -> Fraction:
    r"""Fixed-fraction mode: :math:`r = \max(1, \lfloor n(1-f)\rfloor)` per layer.

    Parameters
    ----------
    f
        Fraction of states removed per attempt, in ``(0, 1)`` (published: 0.1).

    Returns
    -------
    Fraction
        The mode.

    Raises
    ------
    ValueError
        If ``f`` is not in ``(0, 1)``.

    Examples
    --------
    >>> fraction(0.1)
    Fraction(f=0.1)
    """
    return Fraction(_fraction_value("f", f))


def rank(r: int | Sequence[int] | None = None, *, total: int | None = None) -> Rank:
    r"""Explicit-order mode: one ``r`` for all layers, one per layer, or a total state budget.

    Parameters
    ----------
    r
        Order for every layer (capped at the layer's size), or a sequence with one order per LRU
        layer in module order.
    total
        Total number of states over all layers; shared by a common energy threshold: the ``total``
        largest values of :math:`\sigma_i/\sum_j\sigma_j` over all layers are kept, at least one
        state per layer.

    Returns
    -------
    Rank
        The mode.

    Raises
    ------
    ValueError
        If not exactly one of ``r`` / ``total`` is given or a value is not a positive int.

    Examples
    --------
    >>> rank(16), rank([8, 4]), rank(total=24)
    (Rank(r=16, total=None), Rank(r=(8, 4), total=None), Rank(r=None, total=24))
    """
    if (r is None) == (total is None):
        raise ValueError(f"give exactly one of r (per layer) and total (budget); got r={r!r}, total={total!r}")
    if total is not None:
        return Rank(total=_positive_int("total", total))
    if isinstance(r, Sequence) and not isinstance(r, (str, bytes)):
        values = tuple(_positive_int(f"r[{i}]", v) for i, v in enumerate(r))
        if not values:
            raise ValueError("r must not be an empty sequence")
        return Rank(r=values)
    return Rank(r=_positive_int("r", r))


def pragmatic(f: float = 0.1, tolerance: float = 0.02, *, higher_is_better: bool = True) -> Pragmatic:
    r"""Pragmatic mode (SPEC §6): checkpoint, truncate a fraction ``f``, roll back on a validation drop.

    Used by :class:`CompreSSM`: before each scheduled reduction the model and optimizer state are
    saved; at the next attempt (and once more one schedule interval after the last attempt) the
    validation metric is compared with its value before the reduction, and if it fell by more than
    ``tolerance`` the model and optimizer are restored exactly and reducing stops. Outside the
    controller (``reduce_model``) it acts as :func:`fraction`.

    Parameters
    ----------
    f
        Fraction of states removed per attempt, in ``(0, 1)``.
    tolerance
        Admissible drop of the validation metric (absolute; published: 0.02 accuracy).
    higher_is_better
        ``True`` for accuracy-like metrics, ``False`` for losses.

    Returns
    -------
    Pragmatic
        The mode.

    Raises
    ------
    ValueError
        For ``f`` outside ``(0, 1)`` or a negative / non-finite ``tolerance``.

    Examples
    --------
    >>> pragmatic(0.1, 0.02)
    Pragmatic(f=0.1, tolerance=0.02, higher_is_better=True)
    """
    fv = _fraction_value("f", f)
    if (
        isinstance(tolerance, bool)
        or not isinstance(tolerance, numbers.Real)
        or not (0.0 <= float(tolerance) < math.inf)
    ):
        raise ValueError(f"tolerance must be a finite float >= 0; got {tolerance!r}")
    return Pragmatic(fv, float(tolerance), bool(higher_is_better))


def _check_mode(mode: object) -> SelectionMode:
    if not isinstance(mode, (Tolerance, Fraction, Rank, Pragmatic)):
        raise TypeError(
            "mode must be a selection mode made by ssmred_torch.tolerance(tau), fraction(f), rank(r) / "
            f"rank(total=...) or pragmatic(f, tolerance); got {mode!r}"
        )
    return mode


# ---------------------------------------------------------------------------------------------- reports
@dataclass(frozen=True)
class LayerReport:
    r"""What happened to one layer in one reduction.

    Attributes
    ----------
    name
        Module path of the layer in the model (``""`` for a bare layer).
    n
        State size before.
    r
        Order chosen by the selection mode (after the numerical-rank cap).
    n_after
        State size after (``r`` when applied, ``n`` otherwise).
    status
        ``"reduced"``, ``"gated"`` (``r >= gate * n``) or ``"refused"`` (see ``message``).
    hsv
        Hankel singular values before the reduction, descending (read-only float64 array).
    error_bound
        :math:`2\sum_{i>r}\sigma_i`, bound on the H-infinity error of the chosen truncation.
    message
        Reason for a refusal (``None`` otherwise).
    condition
        Condition number of the eigenvector matrix used for re-diagonalisation (``nan`` if not reached).
    """

    name: str
    n: int
    r: int
    n_after: int
    status: Literal["reduced", "gated", "refused"]
    hsv: np.ndarray
    error_bound: float
    message: str | None = None
    condition: float = float("nan")

    @property
    def applied(self) -> bool:
        """Whether the layer was changed."""
        return self.status == "reduced"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (HSVs as a list).

        Returns
        -------
        dict
            The fields.
        """
        return {
            "name": self.name,
            "n": self.n,
            "r": self.r,
            "n_after": self.n_after,
            "status": self.status,
            "hsv": [float(x) for x in self.hsv],
            "error_bound": self.error_bound,
            "message": self.message,
            "condition": self.condition,
        }


@dataclass(frozen=True)
class ReductionReport:
    """Result of one :func:`reduce_model` pass.

    Attributes
    ----------
    layers
        One :class:`LayerReport` per LRU layer, in module order.
    seconds
        Wall time of the pass (analysis, truncation, write-back and optimizer surgery).
    """

    layers: tuple[LayerReport, ...]
    seconds: float

    @property
    def changed(self) -> bool:
        """Whether any layer was reduced."""
        return any(layer.applied for layer in self.layers)

    @property
    def sizes_before(self) -> tuple[int, ...]:
        """State sizes before."""
        return tuple(layer.n for layer in self.layers)

    @property
    def sizes_after(self) -> tuple[int, ...]:
        """State sizes after."""
        return tuple(layer.n_after for layer in self.layers)

    @property
    def mean_size_after(self) -> float:
        """Mean state size over the layers after the pass (the published "final dim")."""
        return float(np.mean(self.sizes_after)) if self.layers else float("nan")

    @property
    def warnings(self) -> tuple[str, ...]:
        """Messages of the refused layers."""
        return tuple(f"{lr.name or '<layer>'}: {lr.message}" for lr in self.layers if lr.status == "refused")


# ---------------------------------------------------------------------------------------------- selection
def _select_orders(hsv: torch.Tensor, mode: SelectionMode, requested: torch.Tensor | None) -> torch.Tensor:
    """Orders per member of one group, on the device (before the numerical-rank cap)."""
    G, n = hsv.shape
    if isinstance(mode, Tolerance):
        cum = torch.cumsum(hsv, dim=-1)
        total = cum[:, -1:]
        r = torch.searchsorted(cum.contiguous(), ((1.0 - mode.tau) * total).contiguous(), side="left")[:, 0] + 1
        r = torch.where(total[:, 0] > 0, r, torch.ones_like(r))
    elif isinstance(mode, (Fraction, Pragmatic)):
        r = torch.full((G,), max(1, math.floor(n * (1.0 - mode.f))), dtype=torch.long, device=hsv.device)
    else:
        assert requested is not None
        r = requested.to(hsv.device)
    return r.clamp(1, n)


def _budget_orders(hsv_list: list[torch.Tensor], total: int) -> list[torch.Tensor]:
    """Share ``total`` states over layers: the largest normalised HSVs, at least one per layer."""
    n_layers = sum(h.shape[0] for h in hsv_list)
    if total < n_layers:
        raise ValueError(f"rank(total={total}) is smaller than the number of LRU layers ({n_layers}): one state each")
    device = hsv_list[0].device
    normalised = []
    owners = []
    offset = 0
    for h in hsv_list:
        h = h.to(device)
        s = h.sum(-1, keepdim=True)
        normalised.append(torch.where(s > 0, h / torch.where(s > 0, s, torch.ones_like(s)), torch.zeros_like(h))[:, 1:])
        owners.append((torch.arange(h.shape[0], device=device) + offset)[:, None].expand(-1, h.shape[1] - 1))
        offset += h.shape[0]
    values = torch.cat([v.reshape(-1) for v in normalised])
    owner = torch.cat([o.reshape(-1) for o in owners])
    extra = min(total - n_layers, values.numel())
    counts = torch.zeros(n_layers, dtype=torch.long, device=device)
    if extra > 0:
        top = torch.topk(values, extra).indices
        counts.index_add_(0, owner[top], torch.ones_like(top))
    orders = 1 + counts
    out, offset = [], 0
    for h in hsv_list:
        out.append(orders[offset : offset + h.shape[0]].to(h.device))
        offset += h.shape[0]
    return out


# ---------------------------------------------------------------------------------------------- reduction
def _named_layers(model: nn.Module) -> list[tuple[str, LRU]]:
    layers = []
    for name, module in model.named_modules():
        if adapter_for(module) is not None:
            if not isinstance(module, LRU):  # only LRU has a batched path so far
                raise TypeError(f"no batched reduction for {type(module).__name__} ({name})")
            layers.append((name, module))
    return layers


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=np.float64, copy=True)
    a.setflags(write=False)
    return a


def _reduce(
    named: list[tuple[str, LRU]],
    mode: SelectionMode,
    *,
    gate: float,
    max_condition: float,
    projections: bool = True,
) -> tuple[list[LayerReport], list[TruncationMap]]:
    """The batched pass; returns reports (module order) and truncation maps of the applied layers.

    ``projections=False`` leaves ``N``/``M`` of the maps unset (only the "project" optimizer policy
    needs them).
    """
    n_layers = len(named)
    requested: list[int] | None = None
    if isinstance(mode, Rank) and mode.r is not None:
        if isinstance(mode.r, tuple):
            if len(mode.r) != n_layers:
                raise ValueError(f"rank(r) has {len(mode.r)} entries but the model has {n_layers} LRU layers")
            requested = list(mode.r)
        else:
            requested = [mode.r] * n_layers
    # ---- group by (n, H, device, dtype): one stacked problem per group
    groups: dict[tuple[int, int, torch.device, torch.dtype], list[int]] = {}
    for i, (_, layer) in enumerate(named):
        groups.setdefault((layer.d_state, layer.d_model, layer.D.device, layer.D.dtype), []).append(i)
    analysis = {}
    with torch.no_grad():
        for key, idx in groups.items():
            n = key[0]
            mats = [layer_matrices(named[i][1]) for i in idx]
            lam = torch.stack([m[0] for m in mats])
            log_lam = torch.stack([m[1] for m in mats])
            B = torch.stack([m[2] for m in mats])
            C = torch.stack([m[3] for m in mats])
            finite = torch.isfinite(torch.view_as_real(B)).flatten(1).all(-1) & torch.isfinite(
                torch.view_as_real(C)
            ).flatten(1).all(-1)
            finite &= torch.isfinite(torch.view_as_real(log_lam)).flatten(1).all(-1) & (lam.abs() < 1).all(-1)
            # keep bad members out of the factorisations (they are refused below): replace them by a
            # harmless stable system
            H_in, H_out = B.shape[-1], C.shape[1]
            log_lam_s = torch.where(finite[:, None], log_lam, torch.full_like(log_lam, -1.0))
            lam_s = torch.where(finite[:, None], lam, torch.exp(log_lam_s))
            eye_b = torch.eye(n, H_in, dtype=B.dtype, device=B.device)
            eye_c = torch.eye(H_out, n, dtype=C.dtype, device=C.device)
            B_s = torch.where(finite[:, None, None], B, eye_b)
            C_s = torch.where(finite[:, None, None], C, eye_c)
            svd = hankel_svd_diagonal(lam_s, B_s, C_s, log_lam=log_lam_s)
            finite &= torch.isfinite(svd.hsv).all(-1)
            analysis[key] = (idx, lam_s, B_s, C_s, svd, finite)
        # ---- orders
        orders: dict[tuple[int, int, torch.device, torch.dtype], torch.Tensor] = {}
        if isinstance(mode, Rank) and mode.total is not None:
            keys = list(analysis)
            budget = _budget_orders([analysis[k][4].hsv for k in keys], mode.total)
            orders = dict(zip(keys, budget, strict=True))
        for key, (idx, _, _, _, svd, _) in analysis.items():
            req = None
            if requested is not None:
                req = torch.tensor([requested[i] for i in idx], dtype=torch.long)
            r = orders[key] if key in orders else _select_orders(svd.hsv, mode, req)
            n = key[0]
            s = svd.hsv
            numerical_rank = (s > n * torch.finfo(torch.float64).eps * s[:, :1]).sum(-1).clamp_min(1)
            orders[key] = torch.minimum(r.clamp(1, n), numerical_rank)
        # ---- host copies of the small per-layer results (one transfer per group)
        reports: list[LayerReport | None] = [None] * n_layers
        maps: list[TruncationMap] = []
        for key, (idx, lam, B, C, svd, finite) in analysis.items():
            n = key[0]
            r_host = orders[key].tolist()
            hsv_host = svd.hsv.cpu().numpy()
            finite_host = finite.tolist()
            todo: dict[int, list[int]] = {}
            for j, i in enumerate(idx):
                name = named[i][0]
                hsv = _frozen(hsv_host[j])
                r = int(r_host[j])
                if not finite_host[j]:
                    reports[i] = _refused(name, n, r, hsv, "non-finite or unstable layer parameters / Gramians")
                    continue
                bound = float(bt_error_bounds(hsv)[r])
                if hsv[0] == 0.0:
                    reports[i] = _refused(name, n, r, hsv, "the Hankel operator is zero (B = 0 or C = 0)", bound)
                elif r >= gate * n:
                    reports[i] = LayerReport(name, n, r, n, "gated", hsv, bound)
                else:
                    todo.setdefault(r, []).append(j)
            for r, members in todo.items():
                sel = torch.tensor(members, device=lam.device)
                sub = type(svd)(*(t.index_select(0, sel) for t in svd))
                lam_g, B_g, C_g = lam.index_select(0, sel), B.index_select(0, sel), C.index_select(0, sel)
                A_r, B_r, C_r, T, Ti = truncate_diagonal(lam_g, B_g, C_g, sub, r)
                form = diagonalize(A_r, B_r, C_r)
                params, unstable = lru_parameters_from_diagonal(form.mu, form.B, form.C, dtype=key[3])
                ok_params = torch.stack([torch.isfinite(v).flatten(1).all(-1) for v in params.values()]).all(0)
                cond_host = form.cond.tolist()
                unstable_host = unstable.tolist()
                ok_host = ok_params.tolist()
                for g, j in enumerate(members):
                    i = idx[j]
                    name, layer = named[i]
                    hsv = _frozen(hsv_host[j])
                    bound = float(bt_error_bounds(hsv)[r])
                    cond = float(cond_host[g])
                    problem = None
                    if not ok_host[g]:
                        problem = "the reduced parameters are not finite"
                    elif unstable_host[g]:
                        problem = "the reduced system is unstable (|mu| > 1 beyond round-off)"
                    elif not math.isfinite(cond) or cond > max_condition:
                        problem = (
                            f"the reduced state matrix is (nearly) defective: cond(V) = {cond:.3g} > "
                            f"{max_condition:.3g}"
                        )
                    if problem is not None:
                        reports[i] = _refused(name, n, r, hsv, problem, bound, cond)
                        continue
                    gamma_old = torch.exp(layer.gamma_log.detach().to(torch.float64))
                    layer.replace_parameters_(**{k: v[g] for k, v in params.items()})
                    maps.append(
                        TruncationMap(
                            layer,
                            n,
                            r,
                            N=form.W[g] @ Ti[g] if projections else None,
                            M=T[g] @ form.V[g] if projections else None,
                            gamma_old=gamma_old,
                            gamma_new=torch.exp(params["gamma_log"][g]),
                        )
                    )
                    reports[i] = LayerReport(name, n, r, r, "reduced", hsv, bound, None, cond)
    out = [rep for rep in reports if rep is not None]
    assert len(out) == n_layers
    for rep in out:
        if rep.status == "refused":
            warnings.warn(
                f"reduction of LRU layer {rep.name or '<layer>'} refused, layer left untouched: {rep.message}",
                ReductionWarning,
                stacklevel=3,
            )
    return out, maps


def _refused(
    name: str, n: int, r: int, hsv: np.ndarray, message: str, bound: float = float("nan"), cond: float = float("nan")
) -> LayerReport:
    return LayerReport(name, n, r, n, "refused", hsv, bound, message, cond)


def _check_gate(gate: object) -> float:
    if isinstance(gate, bool) or not isinstance(gate, numbers.Real) or not 0.0 < float(gate) <= 1.0:
        raise ValueError(f"gate must be a float in (0, 1]; got {gate!r}")
    return float(gate)


def reduce_layers(
    layers: Sequence[LRU],
    mode: SelectionMode,
    *,
    gate: float = 0.95,
    max_condition: float = 1e8,
    names: Sequence[str] | None = None,
) -> list[LayerReport]:
    """Batched reduction of a list of LRU layers in place (see :func:`reduce_model`).

    Parameters
    ----------
    layers
        The layers.
    mode
        A selection mode.
    gate
        Reduce a layer only if ``r < gate * n``.
    max_condition
        Largest accepted eigenvector condition number at re-diagonalisation.
    names
        Names for the reports.

    Returns
    -------
    list of LayerReport
        One per layer.

    Raises
    ------
    TypeError
        For a non-LRU layer or an invalid mode.
    ValueError
        For an invalid gate.

    Examples
    --------
    >>> reps = reduce_layers([LRU(2, 8, dtype=torch.float64)], rank(4))
    >>> reps[0].n_after
    4
    """
    _check_mode(mode)
    gate = _check_gate(gate)
    layers = list(layers)
    for layer in layers:
        if not isinstance(layer, LRU):
            raise TypeError(f"layers must be ssmred_torch.LRU modules; got {type(layer).__name__}")
    names = [""] * len(layers) if names is None else list(names)
    named = list(zip(names, layers, strict=True))
    return _reduce(named, mode, gate=gate, max_condition=max_condition, projections=False)[0]


def reduce_model(
    model: nn.Module,
    mode: SelectionMode,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    optimizer_policy: OptimizerPolicy = "project",
    gate: float = 0.95,
    max_condition: float = 1e8,
) -> ReductionReport:
    r"""Reduce every LRU layer of ``model`` in one batched pass, in place.

    Layers are grouped by state size and analysed together on their device (Gramians, HSVs, orders,
    balanced truncation, re-diagonalisation in complex128); each layer gets its own ``r``. The
    :class:`torch.nn.Parameter` objects are kept (their data change shape), so ``optimizer`` and LR
    schedulers stay valid; its state is updated with ``optimizer_policy`` (see
    :mod:`ssmred_torch.optim`). A layer whose reduction produces non-finite values, an unstable
    or non-diagonalisable result is refused: it is left untouched, reported with
    ``status="refused"`` and a :class:`~ssmred_torch.ReductionWarning` is issued.

    Parameters
    ----------
    model
        Any module containing :class:`~ssmred_torch.LRU` layers (or an LRU itself).
    mode
        :func:`tolerance`, :func:`fraction`, :func:`rank` or :func:`pragmatic` (which acts as
        :func:`fraction` here).
    optimizer
        Optimizer to update (optional).
    optimizer_policy
        ``"project"`` (default), ``"slice"`` or ``"reset"``.
    gate
        Reduce a layer only if :math:`r < \text{gate}\cdot n` (published: 0.95).
    max_condition
        Largest accepted condition number of the eigenvector matrix of a reduced state matrix.

    Returns
    -------
    ReductionReport
        Per-layer HSVs, orders, bounds and status, and the wall time.

    Raises
    ------
    TypeError
        For an invalid mode or optimizer.
    ValueError
        For an invalid gate / policy, or a ``rank`` mode that does not fit the model.

    Warns
    -----
    ReductionWarning
        For every refused layer.

    Examples
    --------
    >>> model = LRUModel(1, 4, 16, 2, 3, dtype=torch.float64)
    >>> report = reduce_model(model, rank(6))
    >>> report.sizes_before, report.sizes_after, model.state_sizes
    ((16, 16), (6, 6), [6, 6])
    """
    t0 = time.perf_counter()
    _check_mode(mode)
    gate = _check_gate(gate)
    check_optimizer(optimizer, optimizer_policy)
    named = _named_layers(model)
    if not named:
        return ReductionReport((), time.perf_counter() - t0)
    reports, maps = _reduce(
        named,
        mode,
        gate=gate,
        max_condition=max_condition,
        projections=optimizer is not None and optimizer_policy == "project",
    )
    if optimizer is not None and maps:
        update_optimizer_state(optimizer, maps, optimizer_policy)
    return ReductionReport(tuple(reports), time.perf_counter() - t0)


# ---------------------------------------------------------------------------------------------- controller
@dataclass(frozen=True)
class AttemptRecord:
    """One entry of :attr:`CompreSSM.history`.

    Attributes
    ----------
    kind
        ``"reduce"`` (a scheduled reduction), ``"accept"`` (pragmatic check passed) or ``"rollback"``
        (pragmatic check failed: model and optimizer restored, reducing stopped).
    step
        The training step at which it happened.
    scheduled_step
        The scheduled step it served.
    layers
        Per-layer reports (for ``"reduce"``).
    seconds
        Wall time spent (reduction or restore).
    sizes_before, sizes_after
        State sizes of the LRU layers.
    val_metric
        The validation metric passed at this step.
    reference_metric
        For checks: the metric before the reduction being checked.
    warnings
        Refused layers and other notes.
    """

    kind: Literal["reduce", "accept", "rollback"]
    step: int
    scheduled_step: int
    layers: tuple[LayerReport, ...] = ()
    seconds: float = 0.0
    sizes_before: tuple[int, ...] = ()
    sizes_after: tuple[int, ...] = ()
    val_metric: float | None = None
    reference_metric: float | None = None
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict.

        Returns
        -------
        dict
            The fields, layers as dicts.
        """
        return {
            "kind": self.kind,
            "step": self.step,
            "scheduled_step": self.scheduled_step,
            "layers": [lr.to_dict() for lr in self.layers],
            "seconds": self.seconds,
            "sizes_before": list(self.sizes_before),
            "sizes_after": list(self.sizes_after),
            "val_metric": self.val_metric,
            "reference_metric": self.reference_metric,
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class StepResult:
    """What :meth:`CompreSSM.step` did (falsy when nothing changed).

    Attributes
    ----------
    records
        The history entries added by this call (possibly empty).
    changed
        Whether parameters were changed (a layer reduced or a rollback).
    """

    records: tuple[AttemptRecord, ...] = ()
    changed: bool = False

    def __bool__(self) -> bool:
        return self.changed


@dataclass
class _Snapshot:
    step: int
    scheduled_step: int
    metric: float
    model: dict[str, torch.Tensor] = field(default_factory=dict)
    optimizer: dict[int, dict[str, Any]] = field(default_factory=dict)


def _snapshot_optimizer(optimizer: torch.optim.Optimizer | None) -> dict[int, dict[str, Any]]:
    if optimizer is None:
        return {}
    out: dict[int, dict[str, Any]] = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            st = optimizer.state.get(p)
            if st is not None:
                out[id(p)] = {k: (v.detach().clone() if isinstance(v, torch.Tensor) else v) for k, v in st.items()}
    return out


def _resolve_schedule(total_steps: int, schedule: Sequence[int | float] | None) -> tuple[int, ...]:
    items: Sequence[int | float] = (0.025, 0.05, 0.075, 0.10) if schedule is None else schedule
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence) or len(items) == 0:
        raise ValueError(f"schedule must be a non-empty list of steps (int) or fractions (float); got {schedule!r}")
    steps = []
    for k, item in enumerate(items):
        if isinstance(item, bool) or not isinstance(item, numbers.Real):
            raise ValueError(f"schedule[{k}] must be an int step or a float fraction; got {item!r}")
        if isinstance(item, numbers.Integral):
            step = int(item)
            if not 0 <= step <= total_steps:
                raise ValueError(f"schedule[{k}] = {step} is not a step in [0, total_steps={total_steps}]")
        else:
            frac = float(item)
            if not 0.0 < frac <= 1.0:
                raise ValueError(f"schedule[{k}] = {item!r}: a fraction must be in (0, 1]")
            step = math.floor(frac * total_steps + 0.5)
            if step < 1:
                raise ValueError(
                    f"schedule[{k}] = {item!r} of total_steps={total_steps} rounds to step 0; use more steps"
                )
        steps.append(step)
    if len(set(steps)) != len(steps):
        raise ValueError(
            f"schedule resolves to duplicate steps {steps} (total_steps={total_steps}); give distinct steps"
        )
    return tuple(sorted(steps))


class CompreSSM:
    r"""In-training reduction controller for plain PyTorch (or Lightning-style) training loops.

    Call :meth:`step` once per optimizer step with the number of completed steps; the scheduled
    attempts are performed exactly at their steps (a loop that skips a scheduled step triggers it at
    the next call, recorded with both steps). Each attempt runs :func:`reduce_model` with this
    controller's mode, gate and optimizer policy.

    Parameters
    ----------
    total_steps
        Total number of training steps (used to resolve fractional schedules).
    mode
        :func:`tolerance`, :func:`fraction`, :func:`rank` or :func:`pragmatic`.
    schedule
        Attempt steps (ints) or fractions of ``total_steps`` (floats in ``(0, 1]``), in any mix.
        Default: 4 equally spaced attempts in the first 10 %: 2.5, 5, 7.5 and 10 % of ``total_steps``
        (:math:`\lfloor f\cdot\text{total} + 1/2\rfloor`).
    gate
        Reduce a layer only if :math:`r < \text{gate}\cdot n`.
    optimizer_policy
        ``"project"``, ``"slice"`` or ``"reset"`` (see :mod:`ssmred_torch.optim`).
    max_condition
        Largest accepted eigenvector condition number at re-diagonalisation.

    Raises
    ------
    ValueError
        For a non-positive ``total_steps``, an invalid schedule (out of range, duplicate steps), gate
        or policy.
    TypeError
        For an invalid mode.

    Notes
    -----
    Pragmatic mode: at each attempt the model parameters and buffers and the optimizer's
    per-parameter state are copied, then the model is reduced. At the next attempt step — and, after
    the last attempt, at :attr:`check_steps`\ ``[-1]`` (one schedule interval later) — the
    validation metric is compared with the one passed at the reduction; if it fell by more than
    ``tolerance`` everything is restored bit for bit and reducing stops. Param-group hyper-parameters
    (the learning rate) are not restored: LR schedulers keep running.

    In a Lightning-style callback::

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.compressm.step(trainer.global_step, pl_module, trainer.optimizers[0], val_metric=...)

    Examples
    --------
    >>> ctl = CompreSSM(1000, mode=tolerance(0.05))
    >>> ctl.attempt_steps
    (25, 50, 75, 100)
    """

    def __init__(
        self,
        total_steps: int,
        *,
        mode: SelectionMode,
        schedule: Sequence[int | float] | None = None,
        gate: float = 0.95,
        optimizer_policy: OptimizerPolicy = "project",
        max_condition: float = 1e8,
    ) -> None:
        self.total_steps = _positive_int("total_steps", total_steps)
        self.mode = _check_mode(mode)
        self.gate = _check_gate(gate)
        check_optimizer(None, optimizer_policy)
        self.optimizer_policy: OptimizerPolicy = optimizer_policy
        self.max_condition = float(max_condition)
        self._attempts = _resolve_schedule(self.total_steps, schedule)
        if isinstance(self.mode, Pragmatic):
            gaps = np.diff(self._attempts)
            gap = int(gaps[-1]) if gaps.size else max(1, math.floor(0.025 * self.total_steps + 0.5))
            self._checks = (*self._attempts[1:], self._attempts[-1] + gap)
        else:
            self._checks = ()
        self._done: set[int] = set()
        self._checks_done: set[int] = set()
        self._stopped = False
        self._snapshot: _Snapshot | None = None
        self._history: list[AttemptRecord] = []

    # ------------------------------------------------------------------ inspection
    @property
    def attempt_steps(self) -> tuple[int, ...]:
        """The scheduled reduction steps, ascending."""
        return self._attempts

    @property
    def check_steps(self) -> tuple[int, ...]:
        """Pragmatic mode: steps at which the previous reduction is validated (empty otherwise)."""
        return self._checks

    @property
    def history(self) -> tuple[AttemptRecord, ...]:
        """All records so far, in order."""
        return tuple(self._history)

    @property
    def stopped(self) -> bool:
        """Whether reducing has stopped (pragmatic rollback)."""
        return self._stopped

    @property
    def finished(self) -> bool:
        """Whether every scheduled attempt (and check) has been served."""
        return self._stopped or (
            self._done >= set(self._attempts) and self._snapshot is None and self._checks_done >= set(self._checks)
        )

    # ------------------------------------------------------------------ the hook
    def step(
        self,
        step: int,
        model: nn.Module,
        optimizer: torch.optim.Optimizer | None = None,
        val_metric: float | None = None,
    ) -> StepResult:
        """Serve the scheduled attempts (and pragmatic checks) due at ``step``.

        Parameters
        ----------
        step
            Number of completed training steps (e.g. Lightning's ``trainer.global_step``).
        model
            The model containing the LRU layers.
        optimizer
            Its optimizer (updated with the controller's policy; needed for pragmatic rollback).
        val_metric
            Validation metric of the current model; required at pragmatic attempt and check steps.

        Returns
        -------
        StepResult
            The records added; truthy when parameters changed.

        Raises
        ------
        ValueError
            If ``step`` is negative, or ``val_metric`` is missing where pragmatic mode needs it.
        TypeError
            For an invalid optimizer.
        """
        if isinstance(step, bool) or not isinstance(step, numbers.Integral) or int(step) < 0:
            raise ValueError(f"step must be an int >= 0; got {step!r}")
        step = int(step)
        check_optimizer(optimizer, self.optimizer_policy)
        records: list[AttemptRecord] = []
        changed = False
        due_attempts = [s for s in self._attempts if s <= step and s not in self._done]
        due_checks = [s for s in self._checks if s <= step and s not in self._checks_done]
        if (due_attempts or due_checks) and isinstance(self.mode, Pragmatic) and not self._stopped:
            if val_metric is None or not math.isfinite(float(val_metric)):
                raise ValueError(
                    f"val_metric (a finite float) is required at step {step}: pragmatic mode validates "
                    "before every reduction and after it"
                )
        # 1) pragmatic check of the previous reduction
        if due_checks:
            self._checks_done.update(due_checks)
            if self._snapshot is not None and not self._stopped:
                rec = self._check(step, due_checks[0], model, optimizer, float(val_metric))  # type: ignore[arg-type]
                records.append(rec)
                changed |= rec.kind == "rollback"
        # 2) scheduled reduction
        if due_attempts:
            self._done.update(due_attempts)
            if not self._stopped:
                rec = self._attempt(step, due_attempts, model, optimizer, val_metric)
                records.append(rec)
                changed |= any(lr.applied for lr in rec.layers)
        self._history.extend(records)
        return StepResult(tuple(records), changed)

    def _attempt(
        self,
        step: int,
        due: list[int],
        model: nn.Module,
        optimizer: torch.optim.Optimizer | None,
        val_metric: float | None,
    ) -> AttemptRecord:
        notes = []
        if len(due) > 1:
            notes.append(f"scheduled steps {due} were all due at step {step}: one attempt served them")
        if due[0] != step:
            notes.append(f"scheduled step {due[0]} served late, at step {step}")
        t0 = time.perf_counter()
        if isinstance(self.mode, Pragmatic):
            snapshot = _Snapshot(
                step,
                due[0],
                float(val_metric),  # type: ignore[arg-type]
                {k: v.detach().clone() for k, v in _model_tensors(model).items()},
                _snapshot_optimizer(optimizer),
            )
        report = reduce_model(
            model,
            self.mode,
            optimizer=optimizer,
            optimizer_policy=self.optimizer_policy,
            gate=self.gate,
            max_condition=self.max_condition,
        )
        if isinstance(self.mode, Pragmatic):
            self._snapshot = snapshot if report.changed else None
        return AttemptRecord(
            "reduce",
            step,
            due[0],
            report.layers,
            time.perf_counter() - t0,
            report.sizes_before,
            report.sizes_after,
            None if val_metric is None else float(val_metric),
            None,
            tuple(notes) + report.warnings,
        )

    def _check(
        self, step: int, scheduled: int, model: nn.Module, optimizer: torch.optim.Optimizer | None, metric: float
    ) -> AttemptRecord:
        assert isinstance(self.mode, Pragmatic)
        assert self._snapshot is not None
        snap = self._snapshot
        self._snapshot = None
        drop = (snap.metric - metric) if self.mode.higher_is_better else (metric - snap.metric)
        sizes = tuple(layer.d_state for _, layer in _named_layers(model))
        if drop <= self.mode.tolerance:
            return AttemptRecord("accept", step, scheduled, (), 0.0, sizes, sizes, metric, snap.metric)
        t0 = time.perf_counter()
        _restore(model, optimizer, snap)
        self._stopped = True
        after = tuple(layer.d_state for _, layer in _named_layers(model))
        note = (
            f"validation metric moved from {snap.metric:.6g} to {metric:.6g} (drop {drop:.6g} > tolerance "
            f"{self.mode.tolerance:.6g}): restored the checkpoint of step {snap.step}, reducing stopped"
        )
        return AttemptRecord(
            "rollback", step, scheduled, (), time.perf_counter() - t0, sizes, after, metric, snap.metric, (note,)
        )

    # ------------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        """Controller progress (served attempts and checks, stop flag) for resuming a run.

        A pending pragmatic checkpoint is not included: a run resumed between a reduction and its
        check keeps the reduction.

        Returns
        -------
        dict
            Plain Python values (safe for ``torch.load(weights_only=True)``).
        """
        return {
            "attempt_steps": list(self._attempts),
            "done": sorted(self._done),
            "checks_done": sorted(self._checks_done),
            "stopped": self._stopped,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore progress saved by :meth:`state_dict`.

        Parameters
        ----------
        state
            The saved dict.

        Raises
        ------
        ValueError
            If the saved schedule differs from this controller's.
        """
        if list(state["attempt_steps"]) != list(self._attempts):
            raise ValueError(
                f"saved schedule {list(state['attempt_steps'])} differs from this controller's {list(self._attempts)}"
            )
        self._done = {int(s) for s in state["done"]}
        self._checks_done = {int(s) for s in state["checks_done"]}
        self._stopped = bool(state["stopped"])
        self._snapshot = None


def _model_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    tensors = dict(model.named_parameters())
    tensors.update(dict(model.named_buffers()))
    return tensors


@torch.no_grad()
def _restore(model: nn.Module, optimizer: torch.optim.Optimizer | None, snap: _Snapshot) -> None:
    tensors = _model_tensors(model)
    if set(tensors) != set(snap.model):
        raise RuntimeError("the model's parameters changed names since the checkpoint; cannot roll back")
    for name, t in tensors.items():
        t.data = snap.model[name].clone()
        if isinstance(t, nn.Parameter):
            t.grad = None
    if optimizer is not None:
        for group in optimizer.param_groups:
            for p in group["params"]:
                saved = snap.optimizer.get(id(p))
                if saved is None:
                    optimizer.state.pop(p, None)
                else:
                    optimizer.state[p] = {
                        k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in saved.items()
                    }
