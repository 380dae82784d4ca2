r"""The calibration statistics of the Mamba layer: their buffers, and recording them over a calibration set.

The mean-LTI surrogate (:mod:`ssmred_torch.layers.mamba`) is built from the means
:math:`\mathbb E[\Delta_d]`, :math:`\mathbb E[\Delta_d B]`, :math:`\mathbb E[B]`, :math:`\mathbb E[C]`
and :math:`\mathbb E[\exp(\Delta_d a_{d,k})]` over the positions of the calibration inputs. This module
owns them: ``_CalibrationBuffers`` (a mixin of :class:`~ssmred_torch.Mamba`) writes them into the
layer's ring of ``calibration_batches`` slots (training) or, exactly, into slot 0 (:func:`recording`,
:func:`calibrate_`) and reads them back as :class:`CalibrationStatistics`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ssmred._require import require

require("torch")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from ssmred_torch._adapter import ssm_layers  # noqa: E402
from ssmred_torch.layers.mamba_options import _positive_int  # noqa: E402

if TYPE_CHECKING:
    from ssmred_torch.layers.mamba import Mamba

__all__ = ["CalibrationError", "CalibrationStatistics", "calibrate_", "recording"]


class CalibrationError(RuntimeError):
    """A selective layer has no (or no usable) calibration statistics for its surrogate.

    Run :func:`calibrate_` on a calibration set, or train a few steps with ``calibration_batches > 0``.
    """


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


class _CalibrationBuffers:
    """The calibration-statistics buffers of :class:`~ssmred_torch.Mamba` (a mixin; the layer holds them)."""

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


# ---------------------------------------------------------------------------------------------- calibration
def _mamba_layers(model: nn.Module) -> list[Mamba]:
    from ssmred_torch.layers.mamba import Mamba  # at call time: that module imports this one

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
    over all positions of all inputs (see :mod:`ssmred_torch.layers.mamba`). The training mode is restored.

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
