r"""The generic sequence classifier over any registered SSM layer family: :class:`SSMBlock`, :class:`SSMClassifier`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ssmred._require import require

require("torch")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from ssmred_torch._adapter import ssm_layers  # noqa: E402

__all__ = ["SSMBlock", "SSMClassifier"]


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1; got {value!r}")
    return int(value)


def _layer_sizes(d_state: int | Sequence[int], n_layers: int) -> list[int]:
    sizes = [d_state] * n_layers if isinstance(d_state, int) else list(d_state)
    if len(sizes) != n_layers:
        raise ValueError(f"d_state has {len(sizes)} entries but n_layers={n_layers}")
    return sizes


def _layer_factory(
    layer_type: Callable[..., nn.Module], d_model: int, d_state: int | Sequence[int], n_layers: int, **options: Any
) -> Callable[[int], nn.Module]:
    """``make_layer(i) = layer_type(d_model, d_state_i, **options)`` for an :class:`SSMClassifier`, sizes checked."""
    sizes = _layer_sizes(d_state, _positive_int("n_layers", n_layers))

    def make_layer(i: int) -> nn.Module:
        return layer_type(d_model, sizes[i], **options)

    return make_layer


class SSMBlock(nn.Module):
    """Residual block around one SSM layer: norm → SSM → GELU → dropout → GLU → dropout → + x.

    Parameters
    ----------
    d_model
        Channels ``H``.
    ssm
        The SSM layer (maps ``(batch, length, H)`` to the same shape), stored as ``self.ssm``.
    dropout
        Dropout probability, in ``[0, 1)``.
    dtype, device
        Parameter dtype and device of the norm and the GLU.

    Raises
    ------
    ValueError
        For an invalid dropout.

    Examples
    --------
    >>> from ssmred_torch import LRU
    >>> SSMBlock(4, LRU(4, 8))(torch.randn(2, 5, 4)).shape
    torch.Size([2, 5, 4])
    """

    def __init__(
        self,
        d_model: int,
        ssm: nn.Module,
        *,
        dropout: float = 0.0,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {dropout!r}")
        kw = {"dtype": dtype, "device": device}
        self.norm = nn.BatchNorm1d(d_model, **kw)
        self.ssm = ssm
        self.glu_value = nn.Linear(d_model, d_model, **kw)
        self.glu_gate = nn.Linear(d_model, d_model, **kw)
        self.dropout = nn.Dropout(float(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block to ``x`` of shape ``(batch, length, d_model)``.

        Parameters
        ----------
        x
            Input sequence.

        Returns
        -------
        torch.Tensor
            Same shape as ``x``.
        """
        z = self.norm(x.transpose(1, 2)).transpose(1, 2)
        z = self.dropout(nn.functional.gelu(self.ssm(z)))
        z = self.dropout(self.glu_value(z) * torch.sigmoid(self.glu_gate(z)))
        return x + z


class SSMClassifier(nn.Module):
    """Sequence classifier: encoder, ``n_layers`` :class:`SSMBlock`, mean pooling over time, linear head.

    Parameters
    ----------
    d_input
        Input features per time step (linear encoder). Ignored when ``vocab_size`` is given.
    d_model
        Channels ``H``.
    n_layers
        Number of blocks.
    n_classes
        Number of output classes.
    make_layer
        ``make_layer(i)`` returns the SSM layer of block ``i`` (called in order, after the encoder is
        built, so the random initialisation order is encoder, then per block SSM layer then GLU).
    vocab_size
        If given, inputs are integer tokens ``(batch, length)`` and the encoder is an embedding.
    dropout
        Dropout probability in the blocks.
    dtype, device
        Parameter dtype and device of the non-SSM parts.

    Raises
    ------
    ValueError
        For invalid sizes.

    Examples
    --------
    >>> from ssmred_torch import LRU
    >>> model = SSMClassifier(1, 8, 2, 10, lambda i: LRU(8, 16))
    >>> model(torch.randn(3, 20, 1)).shape, model.state_sizes
    (torch.Size([3, 10]), [16, 16])
    """

    def __init__(
        self,
        d_input: int,
        d_model: int,
        n_layers: int,
        n_classes: int,
        make_layer: Callable[[int], nn.Module],
        *,
        vocab_size: int | None = None,
        dropout: float = 0.0,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        n_layers = _positive_int("n_layers", n_layers)
        _positive_int("n_classes", n_classes)
        kw = {"dtype": dtype, "device": device}
        if vocab_size is not None:
            self.encoder: nn.Module = nn.Embedding(_positive_int("vocab_size", vocab_size), d_model, **kw)
        else:
            self.encoder = nn.Linear(_positive_int("d_input", d_input), d_model, **kw)
        self.vocab_size = vocab_size
        self.blocks = nn.ModuleList([SSMBlock(d_model, make_layer(i), dropout=dropout, **kw) for i in range(n_layers)])
        self.head = nn.Linear(d_model, n_classes, **kw)

    @property
    def state_sizes(self) -> list[int]:
        """Current state size of every SSM layer (its largest size block), in order."""
        return [max(e.adapter.state_sizes(e.module)) for e in ssm_layers(self)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits for a batch of sequences.

        Parameters
        ----------
        x
            ``(batch, length, d_input)`` real features, or ``(batch, length)`` integer tokens when the
            model has a vocabulary.

        Returns
        -------
        torch.Tensor
            Logits of shape ``(batch, n_classes)``.
        """
        z = self.encoder(x)
        for block in self.blocks:
            z = block(z)
        return self.head(z.mean(dim=1))
