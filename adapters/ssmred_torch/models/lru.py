r"""The LRU family's models: :class:`LRUBlock` and :class:`LRUModel` (the layer: :mod:`ssmred_torch.layers.lru`)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ssmred._require import require

require("torch")

import torch  # noqa: E402

from ssmred_torch.layers.lru import LRU  # noqa: E402
from ssmred_torch.models._classifier import SSMBlock, SSMClassifier, _layer_factory  # noqa: E402

__all__ = ["LRUBlock", "LRUModel"]


class LRUBlock(SSMBlock):
    """:class:`SSMBlock` around a new :class:`~ssmred_torch.LRU` (``self.ssm``, also ``self.lru``).

    Parameters
    ----------
    d_model
        Channels ``H``.
    d_state
        States ``n`` of the LRU.
    dropout
        Dropout probability.
    r_min, r_max, max_phase
        LRU initialisation, see :class:`~ssmred_torch.LRU`.
    dtype, device
        Parameter dtype and device.
    generator
        Optional generator for the LRU initialisation.

    Examples
    --------
    >>> LRUBlock(4, 8)(torch.randn(2, 5, 4)).shape
    torch.Size([2, 5, 4])
    """

    def __init__(
        self,
        d_model: int,
        d_state: int,
        *,
        dropout: float = 0.0,
        r_min: float = 0.9,
        r_max: float = 0.999,
        max_phase: float = 2 * math.pi,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        kw = {"dtype": dtype, "device": device}
        lru = LRU(d_model, d_state, r_min=r_min, r_max=r_max, max_phase=max_phase, generator=generator, **kw)
        super().__init__(d_model, lru, dropout=dropout, **kw)

    @property
    def lru(self) -> LRU:
        """The block's LRU layer (``self.ssm``)."""
        return self.ssm  # type: ignore[return-value]


class LRUModel(SSMClassifier):
    r"""LRU sequence classifier: :class:`SSMClassifier` with one :class:`~ssmred_torch.LRU` per block.

    Parameters
    ----------
    d_input
        Input features per time step (linear encoder). Ignored when ``vocab_size`` is given.
    d_model
        Channels ``H``.
    d_state
        States per layer: one int for all layers, or one per layer.
    n_layers
        Number of blocks ``L``.
    n_classes
        Number of output classes.
    vocab_size
        If given, inputs are integer tokens ``(batch, length)`` and the encoder is an embedding.
    dropout
        Dropout probability in the blocks.
    r_min, r_max, max_phase
        LRU initialisation, see :class:`~ssmred_torch.LRU`.
    dtype, device
        Parameter dtype and device.
    generator
        Optional generator for the LRU initialisations.

    Raises
    ------
    ValueError
        For invalid sizes.

    Examples
    --------
    >>> model = LRUModel(1, 8, 16, 2, 10)
    >>> model(torch.randn(3, 20, 1)).shape
    torch.Size([3, 10])
    >>> model.state_sizes
    [16, 16]
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
        r_min: float = 0.9,
        r_max: float = 0.999,
        max_phase: float = 2 * math.pi,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        kw = {"dtype": dtype, "device": device}
        make_layer = _layer_factory(
            LRU, d_model, d_state, n_layers, r_min=r_min, r_max=r_max, max_phase=max_phase, generator=generator, **kw
        )
        super().__init__(
            d_input, d_model, n_layers, n_classes, make_layer, vocab_size=vocab_size, dropout=dropout, **kw
        )
