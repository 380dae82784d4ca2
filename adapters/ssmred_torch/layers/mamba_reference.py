r"""Reading the weights of a ``mamba_ssm`` / mamba-minimal Mamba block into :class:`~ssmred_torch.Mamba`.

``_ReferenceWeights`` (a mixin of the layer) gives it the constructor ``from_reference_state_dict``,
which reads the sizes from the reference tensors, checks their shapes and loads them unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ssmred._require import require

require("torch")

import torch  # noqa: E402

from ssmred.errors import DimensionError  # noqa: E402
from ssmred_torch.layers.mamba_options import MambaRule, SurrogateDrive, SurrogateTransition  # noqa: E402

if TYPE_CHECKING:
    from ssmred_torch.layers.mamba import Mamba

__all__: list[str] = []

_REFERENCE_KEYS = (
    "in_proj.weight",
    "conv1d.weight",
    "x_proj.weight",
    "dt_proj.weight",
    "dt_proj.bias",
    "A_log",
    "D",
    "out_proj.weight",
)
_OPTIONAL_REFERENCE_KEYS = ("in_proj.bias", "conv1d.bias", "out_proj.bias")


class _ReferenceWeights:
    """The reference-weights constructor of :class:`~ssmred_torch.Mamba` (a mixin)."""

    @classmethod
    def from_reference_state_dict(
        cls,
        state_dict: Mapping[str, torch.Tensor],
        *,
        prefix: str = "",
        rule: MambaRule = "modal_shared",
        transition: SurrogateTransition = "exp_mean",
        drive: SurrogateDrive = "mean_product",
        calibration_batches: int = 8,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> Mamba:
        """A layer with the weights of a ``mamba_ssm`` / mamba-minimal Mamba block (sizes read from them).

        Keys (after ``prefix``): ``in_proj.weight``, ``conv1d.weight``, ``x_proj.weight``,
        ``dt_proj.weight``, ``dt_proj.bias``, ``A_log``, ``D``, ``out_proj.weight`` and optionally
        ``in_proj.bias``, ``conv1d.bias``, ``out_proj.bias``. In a ``mamba_ssm`` language model the
        block of layer ``i`` has the prefix ``"backbone.layers.{i}.mixer."``, in mamba-minimal
        ``"layers.{i}.mixer."``; other keys are ignored.

        Parameters
        ----------
        state_dict
            The reference state dict.
        prefix
            Key prefix of the block.
        rule, transition, drive, calibration_batches, dtype, device
            As for :class:`Mamba`.

        Returns
        -------
        Mamba
            The layer (no calibration statistics yet).

        Raises
        ------
        KeyError
            If a required key is missing.
        DimensionError
            If the shapes are inconsistent.

        Examples
        --------
        >>> from ssmred_torch import Mamba
        >>> ref = Mamba(8, 4)
        >>> sd = {"layers.0.mixer." + k: v for k, v in ref.state_dict().items() if not k.startswith("calib")}
        >>> layer = Mamba.from_reference_state_dict(sd, prefix="layers.0.mixer.")
        >>> x = torch.randn(1, 5, 8)
        >>> torch.equal(layer(x), ref(x))
        True
        """
        missing = [prefix + k for k in _REFERENCE_KEYS if prefix + k not in state_dict]
        if missing:
            raise KeyError(f"reference Mamba state dict lacks {missing}")
        sd = {k: state_dict[prefix + k] for k in _REFERENCE_KEYS + _OPTIONAL_REFERENCE_KEYS if prefix + k in state_dict}
        d, n = (int(s) for s in sd["A_log"].shape)
        two_d, H = (int(s) for s in sd["in_proj.weight"].shape)
        R = int(sd["dt_proj.weight"].shape[1])
        k_conv = int(sd["conv1d.weight"].shape[-1])
        if two_d != 2 * d or d % H:
            raise DimensionError(f"in_proj.weight {tuple(sd['in_proj.weight'].shape)} does not fit A_log ({d}, {n})")
        expected = {
            "conv1d.weight": (d, 1, k_conv),
            "x_proj.weight": (R + 2 * n, d),
            "dt_proj.weight": (d, R),
            "dt_proj.bias": (d,),
            "D": (d,),
            "out_proj.weight": (H, d),
            "in_proj.bias": (2 * d,),
            "conv1d.bias": (d,),
            "out_proj.bias": (H,),
        }
        for k, shape in expected.items():
            if k in sd and tuple(sd[k].shape) != shape:
                raise DimensionError(f"{prefix}{k} must have shape {shape}; got {tuple(sd[k].shape)}")
        layer = cls(
            H,
            n,
            expand=d // H,
            d_conv=k_conv,
            dt_rank=R,
            conv_bias="conv1d.bias" in sd,
            bias="in_proj.bias" in sd,
            rule=rule,
            transition=transition,
            drive=drive,
            calibration_batches=calibration_batches,
            dtype=dtype,
            device=device,
            generator=torch.Generator().manual_seed(0),  # overwritten below
        )
        own = layer.state_dict()
        own.update({k: v.to(own[k].dtype) for k, v in sd.items()})
        layer.load_state_dict(own)
        return layer
