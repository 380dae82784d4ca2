r"""``ssmred analyze`` and ``ssmred reduce``: Hankel analysis and post-training balanced truncation.

:func:`analyze` tabulates, for every SSM layer of a trained model, the Hankel singular values, the
poles, the a-priori bound :math:`\|G - G_r\|_\infty \le 2 \sum_{i>r} \sigma_i` for every order and the
orders that several tolerances pick. :func:`reduce_checkpoint` truncates every layer and measures
what the reduction did to the validation accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ssmred.selection import Tolerance
from ssmred_app.config import ConfigError, load_config, parse_config
from ssmred_app.methods import leading_hsv
from ssmred_app.models import layer_systems, load_model_file, save_model_file

__all__ = ["analyze", "layer_analysis", "reduce_checkpoint"]


def layer_analysis(sys_c: Any, taus: Sequence[float], *, gain: float = 1.0) -> dict[str, Any]:
    r"""HSVs, poles, bounds for every order and the orders chosen by ``taus`` for one layer's system.

    ``gain`` is that of the layer's output map on the system's output (2 for :math:`y = 2\,\mathrm{Re}(Cx)`):
    the bounds and the real-output HSVs are those of the layer's map, i.e. scaled by it; the proxy HSVs
    (and so the orders, which are scale-invariant) are the system's own.

    Parameters
    ----------
    sys_c
        The system analysed (a :class:`ssmred.StateSpace`, complex for the LRU) with a **diagonal** ``A``:
        its poles are read off the diagonal.
    taus
        Tolerances :math:`\tau \in [0, 1)`: the fraction of :math:`\sum_i \sigma_i` an order may discard.
    gain
        Gain of the layer's output map on the system's output (default 1).

    Returns
    -------
    dict
        Plain data (JSON-ready): ``n``, ``output_gain``, ``hsv`` (descending), ``hsv_real_output`` (of
        ``sys_c.to_real()``, times ``gain``), ``bounds`` (``gain`` times the bound of every order
        :math:`r = 0, \dots, n`), ``poles_re``, ``poles_im``, ``spectral_radius``, ``orders`` (per
        ``f"{tau:g}"``, :func:`ssmred.order_from_energy` of ``hsv``), ``order_bounds`` (the bound at
        each of those orders) and ``orders_real_output`` (the orders of ``hsv_real_output``).
    """
    import numpy as np

    from ssmred import BalancedTruncation, order_from_energy

    bt = BalancedTruncation(sys_c)
    hsv = np.asarray(bt.hsv)
    bounds = gain * np.asarray(bt.error_bounds())
    hsv_real = gain * np.asarray(BalancedTruncation(sys_c.to_real()).hsv)
    poles = np.diag(sys_c.A)
    orders = {f"{t:g}": order_from_energy(hsv, t) for t in taus}
    return {
        "n": int(hsv.size),
        "output_gain": float(gain),
        "hsv": hsv.tolist(),
        "hsv_real_output": hsv_real.tolist(),
        "bounds": bounds.tolist(),
        "poles_re": poles.real.tolist(),
        "poles_im": poles.imag.tolist(),
        "spectral_radius": float(np.abs(poles).max()),
        "orders": orders,
        "order_bounds": {k: float(bounds[r]) for k, r in orders.items()},
        "orders_real_output": {f"{t:g}": order_from_energy(hsv_real, t) for t in taus},
    }


def _combine(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One layer made of several systems (per-channel families): the order per τ is the largest channel
    order (the rule the reduction applies), its bound the largest channel bound at that order; the HSVs
    shown are those of the channel with the largest σ₁.
    """
    if len(parts) == 1:
        return {**parts[0], "systems": 1}
    lead = max(parts, key=lambda lay: lay["hsv"][0])
    orders = {k: max(p["orders"][k] for p in parts) for k in lead["orders"]}
    return {
        **lead,
        "systems": len(parts),
        "orders": orders,
        "order_bounds": {k: max(p["bounds"][r] for p in parts) for k, r in orders.items()},
        "orders_real_output": {k: max(p["orders_real_output"][k] for p in parts) for k in lead["orders"]},
        "spectral_radius": max(p["spectral_radius"] for p in parts),
    }


def analyze(checkpoint: str, out: Path, *, taus: Sequence[float] = (0.01, 0.05, 0.1, 0.2)) -> list[str]:
    r"""Analyse every SSM layer of ``checkpoint``; write ``analysis.{md,html,json}`` and a plot into ``out``.

    A layer of several systems (per-channel families such as S4D) is summarised by the largest channel
    order per τ, the largest channel bound at that order and the HSVs of the channel with the largest
    :math:`\sigma_1`.

    Parameters
    ----------
    checkpoint
        A model file :func:`~ssmred_app.models.load_model_file` reads (run checkpoint, model file or
        plain ``LRUModel`` state dict).
    out
        The output folder (created if missing): ``analysis.md``, ``analysis.html``, ``analysis.json``
        and ``plots/analysis.png``.
    taus
        Tolerances :math:`\tau \in [0, 1)` to tabulate (the orders that keep :math:`1 - \tau` of the
        HSV sum).

    Returns
    -------
    list of str
        One summary line per layer (size, :math:`\sigma_1`, the order and bound for every τ).

    Raises
    ------
    ~ssmred_app.config.ConfigError
        If a τ is invalid, or the file is damaged or holds no recognisable model.
    FileNotFoundError
        If ``checkpoint`` does not exist.
    """
    from ssmred_app import plots as rp
    from ssmred_app.report import Doc, write_json, write_report

    for t in taus:
        try:
            Tolerance(t)
        except ValueError as exc:
            raise ConfigError(f"--taus: {exc}") from exc
    model, config = load_model_file(checkpoint)
    layers = [
        _combine([layer_analysis(sys_c, taus, gain=gain) for sys_c in systems])
        for systems, gain in layer_systems(model)
    ]
    info = {"checkpoint": str(checkpoint), "taus": list(taus), "config": config, "layers": layers}
    write_json(info, out / "analysis.json")
    rp.plot_analysis(layers, out / "plots" / "analysis.png", title=str(checkpoint))
    doc = Doc(f"ssmred analyze: {checkpoint}")
    doc.p(
        "Hankel singular values of the system CompreSSM analyses in every SSM layer (for the LRU the complex "
        "system (diag λ, diag(γ)(B_re + i B_im), C_re + i C_im)), by the square-root method; r(τ) is the smallest "
        "order keeping (1 − τ) of Σσ, its a-priori bound is ‖G − G_r‖∞ ≤ 2 Σ_{i>r} σ_i. A layer of several "
        "systems (S4D: one per channel) gets the largest channel order and the largest channel bound; its HSVs "
        "are shown for the channel with the largest σ₁. Bounds are those of the layer's output: for conjugate "
        "half-states (S4D, S5 with conj_sym: y = 2 Re(C h)) twice the analysed system's. The real-output system "
        "has its own HSVs; the orders they select are listed for comparison (SPEC §3)."
    )
    headers = ["layer", "systems", "n", "σ₁", "σ_n", "Σσ", "spectral radius"]
    for t in taus:
        headers += [f"r(τ={t:g})", f"bound(τ={t:g})", f"r_real(τ={t:g})"]
    rows = []
    lines = []
    for i, lay in enumerate(layers):
        s = lay["hsv"]
        row: list[Any] = [
            i,
            lay["systems"],
            lay["n"],
            f"{s[0]:.4g}",
            f"{s[-1]:.3g}",
            f"{sum(s):.4g}",
            f"{lay['spectral_radius']:.5f}",
        ]
        for t in taus:
            k = f"{t:g}"
            row += [lay["orders"][k], f"{lay['order_bounds'][k]:.3g}", lay["orders_real_output"][k]]
        rows.append(row)
        lines.append(
            f"layer {i}: n={lay['n']}, σ1={s[0]:.4g}, orders "
            + ", ".join(f"τ={k}: r={r} (bound {lay['order_bounds'][k]:.3g})" for k, r in lay["orders"].items())
        )
    doc.table(headers, rows)
    doc.image("plots/analysis.png", "HSVs, poles and error bounds per layer")
    write_report(doc, out, stem="analysis")
    return lines


def _check_output(source: Path, out: Path, *, force: bool) -> None:
    """Refuse outputs that would destroy the input or a resumable run (see :func:`reduce_checkpoint`)."""
    if out.is_dir():
        raise ConfigError(f"-o {out}: is an existing folder; give a file name, e.g. {out / 'reduced.pt'}")
    if force:
        return
    if out.exists() and source.exists() and out.resolve() == source.resolve():
        raise ConfigError(f"-o {out}: is the input checkpoint; write elsewhere (or pass --force to overwrite it)")
    parent = out.resolve().parent
    if parent.name == "checkpoints" and any((parent / n).exists() for n in ("last.pt", "previous.pt")):
        raise ConfigError(
            f"-o {out}: is inside the run folder's checkpoints ({parent}); writing there can break resuming the "
            "run: write elsewhere (or pass --force)"
        )


def reduce_checkpoint(
    checkpoint: str,
    output: str,
    *,
    tau: float | None = None,
    rank: int | None = None,
    config: str | None = None,
    device: str = "auto",
    force: bool = False,
) -> dict[str, Any]:
    r"""Balanced truncation of every SSM layer of a trained model; writes the reduced checkpoint + summary.

    The reduction is the one training uses (:func:`ssmred_torch.reduce_model` with ``gate = 1``): the
    order rule of ``--tau`` / ``--rank`` per layer, the layer family's own write-back.

    The output may not be the input file, an existing folder, or a file inside a run folder's
    ``checkpoints/`` (a run could no longer resume) unless ``force``.

    Parameters
    ----------
    checkpoint
        The trained model, a file :func:`~ssmred_app.models.load_model_file` reads.
    output
        The reduced model file to write; the summary goes beside it as ``.json``, ``.md`` and ``.html``
        of the same stem.
    tau
        Tolerance :math:`\tau \in [0, 1)`: every layer keeps the smallest order holding
        :math:`1 - \tau` of its HSV sum. Give exactly one of ``tau`` and ``rank``.
    rank
        Reduced order of every layer (:math:`\ge 1`).
    config
        A YAML run configuration naming the data set for the accuracy check (default: the configuration
        stored in the checkpoint; without either, the accuracies are ``None``).
    device
        Device of the accuracy evaluation (``"auto"``: CUDA when available).
    force
        Allow writing over the input or into a run folder's ``checkpoints/`` (an existing folder is
        refused even so).

    Returns
    -------
    dict
        The summary written to the ``.json`` file: ``checkpoint``, ``output``, ``tau``, ``rank``,
        ``layers`` (per layer ``layer``, ``name``, ``n``, ``r``, ``bound``, leading ``hsv``, ``note``
        when the reduction was refused), ``val_acc_before``, ``val_acc_after`` (fractions, or ``None``),
        plus ``lines``, the lines the command prints (not in the file).

    Raises
    ------
    ~ssmred_app.config.ConfigError
        If not exactly one of ``tau`` and ``rank`` is given or it is invalid, the output is refused,
        the file holds no recognisable model, or a layer cannot be reduced.
    FileNotFoundError
        If ``checkpoint`` does not exist.
    """
    import warnings

    import ssmred_torch as st
    import torch

    from ssmred_app.data import load_dataset
    from ssmred_app.report import Doc, write_json, write_report
    from ssmred_app.trainer import resolve_device

    if (tau is None) == (rank is None):
        raise ConfigError("give exactly one of --tau and --rank")
    if tau is not None:
        try:
            Tolerance(tau)
        except ValueError as exc:
            raise ConfigError(f"--tau: {exc}") from exc
    if rank is not None and rank < 1:
        raise ConfigError(f"--rank: must be >= 1, got {rank}")
    _check_output(Path(checkpoint), Path(output), force=force)
    model, cfg_dict = load_model_file(checkpoint)
    if config is not None:
        cfg = load_config(config)
    elif cfg_dict is not None:
        cfg = parse_config(cfg_dict)
    else:
        cfg = None
    dev = resolve_device(device)
    data = load_dataset(cfg.data) if cfg is not None else None

    def val_acc(m: Any) -> float | None:
        if data is None:
            return None
        X = torch.as_tensor(data.X_val, device=dev)
        y = torch.as_tensor(data.y_val, device=dev)
        m = m.to(dev).eval()
        with torch.no_grad():
            return float((m(X).argmax(-1) == y).float().mean())

    acc_before = val_acc(model)
    mode = st.rank(rank) if rank is not None else st.tolerance(tau)
    try:
        with warnings.catch_warnings(record=True):  # refusals are reported per layer below
            warnings.simplefilter("always", st.ReductionWarning)
            report = st.reduce_model(model, mode, gate=1.0)
    except ValueError as exc:
        raise ConfigError(f"cannot reduce {checkpoint}: {exc}") from exc
    layers = [
        {
            "layer": i,
            "name": lr.name,
            "n": lr.n,
            "r": lr.n_after,
            "bound": lr.error_bound if lr.applied else 0.0,
            "hsv": leading_hsv(lr.hsv),
            "note": None if lr.status != "refused" else f"kept at n={lr.n}: {lr.message}",
        }
        for i, lr in enumerate(report.layers)
    ]
    acc_after = val_acc(model)
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    model = model.cpu()
    save_model_file(out, model, config=cfg_dict, reduced_from=str(checkpoint))
    what = f"τ = {tau:g}" if tau is not None else f"rank {rank}"
    summary = {
        "checkpoint": str(checkpoint),
        "output": str(out),
        "tau": tau,
        "rank": rank,
        "layers": layers,
        "val_acc_before": acc_before,
        "val_acc_after": acc_after,
    }
    write_json(summary, out.with_suffix(".json"))
    doc = Doc(f"ssmred reduce ({what}): {checkpoint}")
    doc.table(
        ["layer", "n", "r", "bound 2Σ_{i>r}σ_i"],
        [[lay["layer"], lay["n"], lay["r"], f"{lay['bound']:.4g}"] for lay in layers],
    )

    def pct(a: float | None) -> str:
        return "n/a (no data set: pass --config)" if a is None else f"{100 * a:.2f} %"

    doc.p(f"Validation accuracy before: {pct(acc_before)}; after: {pct(acc_after)}.")
    write_report(doc, out.parent, stem=out.stem)
    lines = [
        f"layer {lay['layer']}: n {lay['n']} -> r {lay['r']}, bound {lay['bound']:.4g}"
        + (f" ({lay['note']})" if lay["note"] else "")
        for lay in layers
    ]
    lines.append(f"val acc {pct(acc_before)} -> {pct(acc_after)}")
    lines.append(f"reduced model: {out} (summary {out.with_suffix('.json')}, {out.with_suffix('.md')})")
    summary["lines"] = lines
    return summary
