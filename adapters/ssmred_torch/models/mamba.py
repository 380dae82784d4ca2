r"""The Mamba family's classifier :class:`MambaModel` (layer: :mod:`ssmred_torch.layers.mamba`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from ssmred._require import require

require("torch")

import torch  # noqa: E402

from ssmred_torch.layers.mamba import Mamba, MambaRule, SurrogateDrive, SurrogateTransition  # noqa: E402
from ssmred_torch.models._classifier import SSMClassifier, _layer_factory  # noqa: E402

__all__ = ["MambaModel"]


class MambaModel(SSMClassifier):
    r"""Mamba sequence classifier: :class:`SSMClassifier` with one selective :class:`~ssmred_torch.Mamba` per block.

    Each block is ``x -> x + Dropout(GLU(Dropout(GELU(Mamba(BatchNorm(x))))))`` like every family's
    (the Mamba block brings its own gate and output projection). Before a reduction the layers need
    surrogate statistics: they record the last ``calibration_batches`` training batches by
    themselves, or call :func:`~ssmred_torch.calibrate_` with a calibration set.

    Parameters
    ----------
    d_input
        Input features per time step (linear encoder). Ignored when ``vocab_size`` is given.
    d_model
        Channels ``H``.
    d_state
        States per inner channel: one int for all layers, or one per layer.
    n_layers
        Number of blocks ``L``.
    n_classes
        Number of output classes.
    vocab_size
        If given, inputs are integer tokens ``(batch, length)`` and the encoder is an embedding.
    dropout
        Dropout probability in the blocks.
    expand, d_conv, dt_rank, dt_min, dt_max
        Mamba hyper-parameters, see :class:`~ssmred_torch.Mamba`.
    rule
        Reduction rule of every layer: ``"modal_shared"``, ``"modal_channel"`` or ``"balanced"``.
    transition, drive
        Surrogate averaging rules.
    calibration_batches
        Training batches the running surrogate statistics cover.
    dtype, device
        Parameter dtype and device.
    generator
        Optional generator for the Mamba initialisations.

    Raises
    ------
    ValueError
        For invalid sizes or options.

    Examples
    --------
    >>> model = MambaModel(1, 8, 16, 2, 10)
    >>> model(torch.randn(3, 20, 1)).shape, model.state_sizes
    (torch.Size([3, 10]), [16, 16])
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
        expand: int = 2,
        d_conv: int = 4,
        dt_rank: int | Literal["auto"] = "auto",
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        rule: MambaRule = "modal_shared",
        transition: SurrogateTransition = "exp_mean",
        drive: SurrogateDrive = "mean_product",
        calibration_batches: int = 8,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        kw = {"dtype": dtype, "device": device}
        make_layer = _layer_factory(
            Mamba,
            d_model,
            d_state,
            n_layers,
            expand=expand,
            d_conv=d_conv,
            dt_rank=dt_rank,
            dt_min=dt_min,
            dt_max=dt_max,
            rule=rule,
            transition=transition,
            drive=drive,
            calibration_batches=calibration_batches,
            generator=generator,
            **kw,
        )
        super().__init__(
            d_input, d_model, n_layers, n_classes, make_layer, vocab_size=vocab_size, dropout=dropout, **kw
        )
