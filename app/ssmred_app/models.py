"""Model construction and model files: the glue between run configurations and the PyTorch adapter.

``build_model`` makes the ``LRUModel`` of a configuration, ``param_groups`` splits its parameters for
the optimizer (SPEC §6), and ``load_model_file`` / ``save_model_file`` read and write model files in
the one checkpoint format of :mod:`ssmred_torch.checkpoint` (and read plain state dicts).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ssmred_app.config import ConfigError, ModelConfig
from ssmred_app.data import SequenceData
from ssmred_app.families import build_classifier

__all__ = [
    "build_model",
    "layer_statespaces",
    "layer_systems",
    "load_model_file",
    "model_meta",
    "param_groups",
    "save_model_file",
    "state_sizes",
]


def model_meta(model: Any) -> dict[str, Any]:
    """Constructor arguments (besides the layer family, its options and the state sizes) of a classifier.

    Parameters
    ----------
    model
        A classifier of :mod:`ssmred_torch` (``LRUModel``, ``S4DModel``, ``S5Model``, ``MambaModel``):
        anything with ``encoder``, ``blocks``, ``head`` and ``vocab_size``.

    Returns
    -------
    dict
        ``d_input`` (1 for a token model), ``vocab_size`` (``None`` for real-valued inputs), ``d_model``,
        ``n_layers`` and ``n_classes``, as stored in model files (``model_meta``).
    """
    enc = model.encoder
    return {
        "d_input": int(enc.in_features) if hasattr(enc, "in_features") else 1,
        "vocab_size": model.vocab_size,
        "d_model": int(model.head.in_features),
        "n_layers": len(model.blocks),
        "n_classes": int(model.head.out_features),
    }


def build_model(mcfg: ModelConfig, data: SequenceData, *, state_sizes: Sequence[int] | None = None) -> Any:
    """The classifier of a configuration (``model.layer``) for a data set (optionally with given ``d_state`` s).

    Parameters
    ----------
    mcfg
        The model section of a run configuration (family, sizes, options).
    data
        The data set: its input channels (or, for tokens, vocabulary size) and number of classes.
    state_sizes
        ``d_state`` per layer in the family's convention (default: the section's own sizes).

    Returns
    -------
    torch.nn.Module
        The classifier of family ``mcfg.layer`` (float32, CPU, freshly initialised).
    """
    tokens = data.kind == "tokens"
    return build_classifier(
        mcfg,
        d_input=1 if tokens else data.d_input,
        vocab_size=data.d_input if tokens else None,
        n_classes=data.n_classes,
        sizes=state_sizes,
    )


def state_sizes(model: Any) -> list[int]:
    """Per-layer state sizes of a classifier.

    Parameters
    ----------
    model
        A classifier of :mod:`ssmred_torch` (any family; anything with a ``state_sizes`` sequence).

    Returns
    -------
    list of int
        The current state size of every SSM layer, in order (for a layer of several size blocks, the
        largest).
    """
    return list(model.state_sizes)


def param_groups(model: Any) -> tuple[list[Any], list[Any], list[Any]]:
    """Split parameters into (SSM, decayed, not decayed) following SPEC §6.

    SSM: the dynamics parameters of every SSM layer, as its adapter names them (``dynamics_parameters``;
    for the LRU ``nu_log, theta_log, gamma_log, B_re, B_im``). Not decayed: the other parameters with
    fewer than 2 dimensions (biases, norms), ``D`` and token embeddings. Decayed: the remaining weight
    matrices (``C``, GLU, encoder, head).

    Parameters
    ----------
    model
        A classifier of :mod:`ssmred_torch` (any family).

    Returns
    -------
    ssm, decay, no_decay : list of torch.nn.Parameter
        The three groups, disjoint, together every parameter of ``model``, each in
        ``named_parameters`` order.
    """
    from ssmred_torch import ssm_layers

    dynamics = {id(getattr(e.module, leaf)) for e in ssm_layers(model) for leaf in e.adapter.dynamics_parameters}
    ssm, decay, no_decay = [], [], []
    for name, p in model.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        if id(p) in dynamics:
            ssm.append(p)
        elif p.ndim < 2 or ".norm." in name or leaf == "D" or name.startswith("encoder.") and model.vocab_size:
            no_decay.append(p)
        else:
            decay.append(p)
    return ssm, decay, no_decay


def _infer_meta(sd: Mapping[str, Any]) -> dict[str, Any]:
    """Constructor arguments of an ``LRUModel`` from the shapes of its state dict."""
    try:
        layers = sorted({int(k.split(".")[1]) for k in sd if k.startswith("blocks.") and k.endswith(".ssm.nu_log")})
        head = sd["head.weight"]
        enc = sd["encoder.weight"]
    except (KeyError, ValueError, IndexError) as exc:
        raise ConfigError(
            "the file is neither an ssmred checkpoint nor an LRUModel state dict "
            "(expected keys encoder.weight, blocks.<i>.ssm.nu_log, head.weight)"
        ) from exc
    if not layers:
        raise ConfigError("the state dict holds no LRU layers (blocks.<i>.ssm.*)")
    tokens = "encoder.bias" not in sd
    return {
        "d_input": 1 if tokens else int(enc.shape[1]),
        "vocab_size": int(enc.shape[0]) if tokens else None,
        "d_model": int(head.shape[1]),
        "n_layers": len(layers),
        "n_classes": int(head.shape[0]),
    }


def load_model_file(path: str | os.PathLike[str], *, device: str = "cpu") -> tuple[Any, dict[str, Any] | None]:
    """Load a model from an ssmred checkpoint (run state or model file) or a plain state dict.

    Parameters
    ----------
    path
        ``checkpoints/last.pt``, ``checkpoints/epoch_NNN.pt``, a file written by ``ssmred reduce``, or
        ``torch.save(model.state_dict(), path)`` of an ``LRUModel``.
    device
        Where to put the model.

    Returns
    -------
    model : LRUModel
        The model (eval mode).
    config : dict or None
        The run configuration stored in an ssmred checkpoint (``None`` for a plain state dict).

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ConfigError
        If the file is damaged, holds non-finite values or no recognisable model.
    """
    import torch
    from ssmred_torch import CheckpointError, LRUModel, nonfinite_entries, read_checkpoint, verify_archive

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"checkpoint {str(p)!r} does not exist")
    try:
        verify_archive(p)
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except CheckpointError as exc:
        raise ConfigError(str(exc)) from exc
    except Exception as exc:
        raise ConfigError(f"{p}: not a torch checkpoint ({type(exc).__name__}: {exc})") from exc
    config = None
    if isinstance(obj, Mapping) and obj.get("format") == "ssmred":
        try:
            payload = read_checkpoint(p, map_location="cpu")
        except CheckpointError as exc:
            raise ConfigError(str(exc)) from exc
        extra = payload["extra"] or {}
        config, meta = extra.get("config"), extra.get("model_meta")
        if config is not None and meta is not None:  # any family: rebuild from the run's own config
            from ssmred_torch import load

            from ssmred_app.config import parse_config

            mcfg = parse_config(config).model
            model = build_classifier(
                mcfg, d_input=meta["d_input"], vocab_size=meta["vocab_size"], n_classes=meta["n_classes"]
            )
            load(payload, model)
            return model.to(device).eval(), config
        sd = payload["model"]
    elif isinstance(obj, Mapping) and str(obj.get("format", "")).startswith("ssmred"):  # files of ssmred <= 0.1
        sd, config = obj["model"], obj.get("config")
    elif isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        sd = obj["state_dict"]
    elif isinstance(obj, Mapping):
        sd = obj
    else:
        raise ConfigError(f"{p}: expected a state dict, got {type(obj).__name__}")
    bad = nonfinite_entries(dict(sd))
    if bad:
        raise ConfigError(f"{p}: the model holds non-finite values (NaN/inf) in {', '.join(bad[:4])}")
    sd = {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in sd.items()}
    sd = {k.replace(".lru.", ".ssm.") if k.startswith("blocks.") else k: v for k, v in sd.items()}  # older files
    meta = _infer_meta(sd)
    sizes = [int(sd[f"blocks.{i}.ssm.nu_log"].shape[0]) for i in range(meta["n_layers"])]
    model = LRUModel(
        meta["d_input"], meta["d_model"], sizes, meta["n_layers"], meta["n_classes"], vocab_size=meta["vocab_size"]
    )
    model.load_state_dict(sd)
    return model.to(device).eval(), config


def save_model_file(
    path: str | os.PathLike[str], model: Any, *, config: Mapping[str, Any] | None, **extra: Any
) -> None:
    """Write a model file (the one ssmred checkpoint format, no optimizer) that :func:`load_model_file` reads.

    Parameters
    ----------
    path
        The file (written atomically).
    model
        The model.
    config
        The run configuration as plain data (``None`` when unknown).
    **extra
        Further entries (``epoch``, ``reduced_from``).
    """
    from ssmred_torch import save

    save(path, model, extra={"kind": "model", "config": config, "model_meta": model_meta(model), **extra})


def layer_statespaces(model: Any) -> list[Any]:
    """The :class:`ssmred.StateSpace` of every SSM layer of ``model``, in order.

    Parameters
    ----------
    model
        Any ``torch.nn.Module`` holding SSM layers (found by :func:`ssmred_torch.ssm_layers`).

    Returns
    -------
    list of ssmred.StateSpace
        :func:`ssmred_torch.to_statespace` of every layer (the layer's transfer function exactly).
    """
    from ssmred_torch import ssm_layers, to_statespace

    return [to_statespace(e.module) for e in ssm_layers(model)]


def layer_systems(model: Any) -> list[tuple[list[Any], float]]:
    r"""Per SSM layer, the systems the reduction analyses and the gain of the layer's output rule on them.

    The systems are the layer's StateSpace for a one-system layer, one discrete diagonal StateSpace per
    system (channel) otherwise. The gain is 2 for the output rule ``"two_real"`` (S4D, S5 with
    ``conj_sym``: :math:`y = 2\,\mathrm{Re}(Cx)`), so the layer's error bound is twice the system's.

    Parameters
    ----------
    model
        Any ``torch.nn.Module`` holding SSM layers (found by :func:`ssmred_torch.ssm_layers`).

    Returns
    -------
    list of (list of ssmred.StateSpace, float)
        One ``(systems, gain)`` pair per SSM layer, in order; a multi-system layer's systems are
        ``from_diagonal(lam[g], B[g], C[g], dt=1.0)``, :math:`g = 0, \dots, G-1`.
    """
    import torch
    from ssmred_torch import ssm_layers, to_statespace

    from ssmred import from_diagonal

    out = []
    for e in ssm_layers(model):
        with torch.no_grad():
            sy = e.adapter.systems(e.module)
        gain = sy.output_gain
        if sy.n_systems == 1 and e.adapter.time_invariant:
            out.append(([to_statespace(e.module)], gain))
        else:
            lam, B, C = (t.cpu().numpy() for t in (sy.lam, sy.B, sy.C))
            out.append(([from_diagonal(lam[g], B[g], C[g], dt=1.0) for g in range(sy.n_systems)], gain))
    return out
