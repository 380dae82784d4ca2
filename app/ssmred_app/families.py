"""The layer families the application can build (``model.layer``), their option sections, and the models.

Adding a family to the application is one entry here: an options section (a strict schema, under
``model.<family>`` in a config) and a branch of :func:`build_classifier` calling the family's
classifier in ``ssmred_torch``. ``model.d_state`` keeps each family's published meaning: the LRU's
``n`` complex states, S4D's ``N`` per channel and S5's ``P`` per layer (both store ``N/2`` /
``P/2`` conjugate half-states, which is what state sizes, reductions and reports count), Mamba's
``d_state`` per channel. :func:`config_state_sizes` converts stored sizes back (for the
same-size-from-scratch runs).
"""

from __future__ import annotations

import typing
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import model_validator

from ssmred_app.schema import Section, invalid_combination, value_rule

__all__ = [
    "LAYERS",
    "LayerName",
    "MambaOptions",
    "S4DOptions",
    "S5Options",
    "build_classifier",
    "config_state_sizes",
]

LayerName = Literal["lru", "s4d", "s5", "mamba"]
LAYERS: tuple[str, ...] = typing.get_args(LayerName)

_Step = Annotated[float, value_rule(lambda v: v > 0, "must be > 0, got {v}")]


class _StepRange(Section):
    dt_min: _Step = 1e-3
    dt_max: _Step = 1e-1

    @model_validator(mode="after")
    def _ordered(self) -> _StepRange:
        if not self.dt_min <= self.dt_max:
            invalid_combination(f"dt_min/dt_max: need dt_min <= dt_max, got {self.dt_min}, {self.dt_max}")
        return self


class S4DOptions(_StepRange):
    """S4D settings (``model.s4d``), see :class:`ssmred_torch.S4D`.

    Attributes
    ----------
    discretization
        ``zoh`` or ``bilinear``.
    init
        ``lin`` (S4D-Lin), ``inv`` (S4D-Inv) or ``real`` (S4D-Real).
    dt_min, dt_max
        Range of the initial log-uniform step per channel.
    learn_B
        Train ``B`` (``false``: fixed at its initialisation).
    mode
        Forward by the convolution kernel (``conv``, FFT) or by the recurrence (``scan``).
    """

    discretization: Literal["zoh", "bilinear"] = "zoh"
    init: Literal["lin", "inv", "real"] = "lin"
    learn_B: bool = True
    mode: Literal["conv", "scan"] = "conv"


class S5Options(_StepRange):
    """S5 settings (``model.s5``), see :class:`ssmred_torch.S5`.

    Attributes
    ----------
    discretization
        ``zoh`` or ``bilinear``.
    conj_sym
        Store conjugate half-states (output ``2 Re(C x)``).
    blocks
        Number of HiPPO-N blocks of the initialisation.
    dt_min, dt_max
        Range of the initial log-uniform step per state.
    clip_eigs
        Keep every real part of Λ at most -1e-4 (S5's ``clip_eigs``), so the layer stays stable while it
        trains; without it, real parts can drift across 0 and a later reduction refuses the unstable layer.
    """

    discretization: Literal["zoh", "bilinear"] = "zoh"
    conj_sym: bool = True
    blocks: Annotated[int, value_rule(lambda v: v >= 1, "must be >= 1, got {v}")] = 1
    clip_eigs: bool = False


class MambaOptions(_StepRange):
    """Mamba settings (``model.mamba``), see :class:`ssmred_torch.Mamba`.

    Attributes
    ----------
    expand
        Inner width factor (``d_inner = expand * d_model``).
    d_conv
        Width of the causal depthwise convolution.
    dt_rank
        Rank of the step projection, or ``auto`` (``ceil(d_model / 16)``).
    dt_min, dt_max
        Range of the initial step.
    rule
        Reduction rule: ``modal_shared``, ``modal_channel`` or ``balanced``.
    transition, drive
        Averaging rules of the mean-LTI surrogate.
    calibration_batches
        Training batches the surrogate averages over.
    """

    expand: Annotated[int, value_rule(lambda v: v >= 1, "must be >= 1, got {v}")] = 2
    d_conv: Annotated[int, value_rule(lambda v: v >= 1, "must be >= 1, got {v}")] = 4
    dt_rank: int | Literal["auto"] = "auto"
    rule: Literal["modal_shared", "modal_channel", "balanced"] = "modal_shared"
    transition: Literal["exp_mean", "mean_exp"] = "exp_mean"
    drive: Literal["mean_product", "product_of_means"] = "mean_product"
    calibration_batches: Annotated[int, value_rule(lambda v: v >= 1, "must be >= 1, got {v}")] = 8


def _stored_per_config(mcfg: Any) -> int:
    """How many configured states make one stored state (2 for conjugate half-state families)."""
    if mcfg.layer == "s4d" or (mcfg.layer == "s5" and mcfg.s5.conj_sym):
        return 2
    return 1


def config_state_sizes(mcfg: Any, stored: Sequence[int]) -> list[int]:
    """``model.d_state`` values that build layers with the given stored state sizes.

    Parameters
    ----------
    mcfg
        The model section (its ``layer`` and options).
    stored
        Stored state sizes per layer (``model.state_sizes``, the reports' ``final_dims``).

    Returns
    -------
    list of int
        One ``d_state`` per layer.

    Examples
    --------
    >>> from ssmred_app.config import ModelConfig
    >>> config_state_sizes(ModelConfig(layer="s4d"), [5, 3]), config_state_sizes(ModelConfig(), [5, 3])
    ([10, 6], [5, 3])
    """
    return [int(n) * _stored_per_config(mcfg) for n in stored]


def build_classifier(
    mcfg: Any, *, d_input: int, vocab_size: int | None, n_classes: int, sizes: Sequence[int] | None = None
) -> Any:
    """The classifier of ``model.layer`` with the model section's sizes and options.

    Parameters
    ----------
    mcfg
        The model section.
    d_input
        Input channels (ignored with a vocabulary).
    vocab_size
        Token vocabulary, or ``None`` for real-valued inputs.
    n_classes
        Number of classes.
    sizes
        ``d_state`` per layer in the family's convention (default: the section's).

    Returns
    -------
    torch.nn.Module
        The model (float32, CPU).
    """
    import ssmred_torch as st

    d_state = list(sizes) if sizes is not None else mcfg.state_sizes()
    common = {"vocab_size": vocab_size, "dropout": mcfg.dropout}
    args = (d_input, mcfg.d_model, d_state, mcfg.n_layers, n_classes)
    if mcfg.layer == "lru":
        return st.LRUModel(*args, r_min=mcfg.r_min, r_max=mcfg.r_max, **common)
    if mcfg.layer == "s4d":
        return st.S4DModel(*args, **mcfg.s4d.model_dump(), **common)
    if mcfg.layer == "s5":
        return st.S5Model(*args, **mcfg.s5.model_dump(), **common)
    return st.MambaModel(*args, **mcfg.mamba.model_dump(), **common)
