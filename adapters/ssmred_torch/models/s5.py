r"""The S5 family's classifier :class:`S5Model` (layer: :mod:`ssmred_torch.layers.s5`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from ssmred._require import require

require("torch")

import torch  # noqa: E402

from ssmred_torch.layers.s5 import S5  # noqa: E402
from ssmred_torch.models._classifier import SSMClassifier, _layer_factory  # noqa: E402

__all__ = ["S5Model"]


class S5Model(SSMClassifier):
    r"""S5 sequence classifier: :class:`SSMClassifier` with one :class:`~ssmred_torch.S5` per block.

    Parameters
    ----------
    d_input
        Input features per time step (linear encoder). Ignored when ``vocab_size`` is given.
    d_model
        Channels ``H``.
    d_state
        State size ``P`` per layer (S5's ``ssm_size``; ``P / 2`` states are stored under ``conj_sym``,
        which is what ``state_sizes`` counts): one int for all layers, or one per layer.
    n_layers
        Number of blocks ``L``.
    n_classes
        Number of output classes.
    vocab_size
        If given, inputs are integer tokens ``(batch, length)`` and the encoder is an embedding.
    dropout
        Dropout probability in the blocks.
    discretization, conj_sym, blocks, dt_min, dt_max, clip_eigs
        S5 settings, see :class:`~ssmred_torch.S5`.
    dtype, device
        Parameter dtype and device.
    generator
        Optional generator for the S5 initialisations.

    Raises
    ------
    ValueError
        For invalid sizes.

    Examples
    --------
    >>> model = S5Model(1, 8, 32, 2, 10, blocks=2)
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
        conj_sym: bool = True,
        blocks: int = 1,
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        clip_eigs: bool = False,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        kw = {"dtype": dtype, "device": device}
        make_layer = _layer_factory(
            S5,
            d_model,
            d_state,
            n_layers,
            discretization=discretization,
            conj_sym=conj_sym,
            blocks=blocks,
            dt_min=dt_min,
            dt_max=dt_max,
            clip_eigs=clip_eigs,
            generator=generator,
            **kw,
        )
        super().__init__(
            d_input, d_model, n_layers, n_classes, make_layer, vocab_size=vocab_size, dropout=dropout, **kw
        )
