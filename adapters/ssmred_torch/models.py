r"""Sequence classifiers built from any registered SSM layer family (SPEC §1).

:class:`SSMBlock` is the residual block ``x -> x + Dropout(GLU(Dropout(GELU(SSM(BatchNorm(x))))))``
with the GLU :math:`W_1 z \odot \sigma(W_2 z)`; :class:`SSMClassifier` is encoder (linear, or an
embedding for tokens) → blocks → mean pooling over time → linear head, with one SSM layer per block
made by a factory. :class:`LRUBlock` and :class:`LRUModel` are the LRU instances, :class:`S4DModel` and
:class:`S5Model` the S4D and S5 ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

from ssmred._require import require

require("torch")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from ssmred_torch._adapter import ssm_layers  # noqa: E402
from ssmred_torch.layers.lru import LRU  # noqa: E402
from ssmred_torch.layers.mamba import Mamba, MambaRule, SurrogateDrive, SurrogateTransition  # noqa: E402
from ssmred_torch.layers.s4d import S4D  # noqa: E402
from ssmred_torch.layers.s5 import S5  # noqa: E402

__all__ = ["LRUBlock", "LRUModel", "MambaModel", "S4DModel", "S5Model", "SSMBlock", "SSMClassifier"]


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1; got {value!r}")
    return int(value)


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
        n_layers = _positive_int("n_layers", n_layers)
        sizes = [d_state] * n_layers if isinstance(d_state, int) else list(d_state)
        if len(sizes) != n_layers:
            raise ValueError(f"d_state has {len(sizes)} entries but n_layers={n_layers}")
        kw = {"dtype": dtype, "device": device}

        def make_layer(i: int) -> LRU:
            return LRU(d_model, sizes[i], r_min=r_min, r_max=r_max, max_phase=max_phase, generator=generator, **kw)

        super().__init__(
            d_input, d_model, n_layers, n_classes, make_layer, vocab_size=vocab_size, dropout=dropout, **kw
        )


def _layer_sizes(d_state: int | Sequence[int], n_layers: int) -> list[int]:
    sizes = [d_state] * n_layers if isinstance(d_state, int) else list(d_state)
    if len(sizes) != n_layers:
        raise ValueError(f"d_state has {len(sizes)} entries but n_layers={n_layers}")
    return sizes


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
        n_layers = _positive_int("n_layers", n_layers)
        sizes = _layer_sizes(d_state, n_layers)
        kw = {"dtype": dtype, "device": device}

        def make_layer(i: int) -> S4D:
            return S4D(
                d_model,
                sizes[i],
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
        n_layers = _positive_int("n_layers", n_layers)
        sizes = _layer_sizes(d_state, n_layers)
        kw = {"dtype": dtype, "device": device}

        def make_layer(i: int) -> S5:
            return S5(
                d_model,
                sizes[i],
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
        n_layers = _positive_int("n_layers", n_layers)
        sizes = _layer_sizes(d_state, n_layers)
        kw = {"dtype": dtype, "device": device}

        def make_layer(i: int) -> Mamba:
            return Mamba(
                d_model,
                sizes[i],
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
