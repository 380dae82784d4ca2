r"""The S4D family's classifier :class:`S4DModel` (layer: :mod:`ssmred_torch.layers.s4d`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from ssmred._require import require

require("torch")

import torch  # noqa: E402

from ssmred_torch.layers.s4d import S4D  # noqa: E402
from ssmred_torch.models._classifier import SSMClassifier, _layer_factory  # noqa: E402

__all__ = ["S4DModel"]


class S4DModel(SSMClassifier):
    r"""S4D sequence classifier: :class:`SSMClassifier` with one :class:`~ssmred_torch.S4D` per block.

    Parameters
    ----------
    d_input
        Input features per time step (linear encoder). Ignored when ``vocab_size`` is given.
    d_model
        Channels ``H``.
    d_state
        State size ``N`` per channel (even; ``N / 2`` half-states are stored, which is what
        ``state_sizes`` counts): one int for all layers, or one per layer.
    n_layers
        Number of blocks ``L``.
    n_classes
        Number of output classes.
    vocab_size
        If given, inputs are integer tokens ``(batch, length)`` and the encoder is an embedding.
    dropout
        Dropout probability in the blocks.
    discretization, init, dt_min, dt_max, learn_B, mode
        S4D settings, see :class:`~ssmred_torch.S4D`.
    dtype, device
        Parameter dtype and device.
    generator
        Optional generator for the S4D initialisations.

    Raises
    ------
    ValueError
        For invalid sizes.

    Examples
    --------
    >>> model = S4DModel(1, 8, 32, 2, 10)
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
        kw = {"dtype": dtype, "device": device}
        make_layer = _layer_factory(
            S4D,
            d_model,
            d_state,
            n_layers,
            discretization=discretization,
            init=init,
            dt_min=dt_min,
            dt_max=dt_max,
            learn_B=learn_B,
            mode=mode,
            generator=generator,
            **kw,
        )
        super().__init__(
            d_input, d_model, n_layers, n_classes, make_layer, vocab_size=vocab_size, dropout=dropout, **kw
        )
