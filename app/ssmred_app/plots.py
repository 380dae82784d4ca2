"""Matplotlib figures for the run reports (PNG files), drawn without pyplot.

Every function takes plain data (lists and dicts as stored in ``metrics.json``) and a file path, and
returns the path written. The figures are :class:`matplotlib.figure.Figure` objects on an Agg canvas:
nothing here touches pyplot's figure manager or the global backend, so plotting from a notebook
session leaves its backend as it was. matplotlib is imported lazily; without it a clear error names
the ``plot`` extra.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ssmred._require import require

__all__ = [
    "plot_acc_vs_dim",
    "plot_acc_vs_time",
    "plot_analysis",
    "plot_frontier",
    "plot_kept_energy",
    "plot_hsv_spectra",
    "plot_state_sizes",
]

_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f"]


def _figure(*, figsize: tuple[float, float]) -> Any:
    """A figure on its own Agg canvas (no pyplot, no backend switch)."""
    require("matplotlib")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(p, dpi=110)
    return p


def plot_hsv_spectra(reductions: Sequence[Mapping[str, Any]], path: str | os.PathLike[str], *, title: str = "") -> Path:
    """HSV spectra (normalised by σ₁) at every reduction attempt, one panel per layer.

    Parameters
    ----------
    reductions
        The run's reduction records (each with ``step``, ``fraction`` and ``layers``, a list of
        ``{"hsv": [...], "r": int, "n": int}``).
    path
        Output PNG.
    title
        Figure title.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    import matplotlib

    n_layers = max((len(r.get("layers", [])) for r in reductions), default=0)
    n_layers = max(n_layers, 1)
    fig = _figure(figsize=(4.2 * n_layers, 3.4))
    axes = fig.subplots(1, n_layers, squeeze=False)
    cmap = matplotlib.colormaps["viridis"]
    attempts = [r for r in reductions if r.get("layers")]
    for li in range(n_layers):
        ax = axes[0, li]
        for k, rec in enumerate(attempts):
            if li >= len(rec["layers"]):
                continue
            lay = rec["layers"][li]
            hsv = np.asarray(lay.get("hsv") or [], dtype=float)
            if hsv.size == 0 or hsv[0] <= 0:
                continue
            color = cmap(k / max(1, len(attempts) - 1) * 0.9)
            s = np.maximum(hsv / hsv[0], 1e-16)
            label = f"{100 * rec['fraction']:.1f} %: n={lay.get('n', hsv.size)}→{lay.get('r_applied', lay.get('r'))}"
            ax.semilogy(np.arange(1, s.size + 1), s, "-", color=color, lw=1.4, label=label)
            r = lay.get("r")
            if r is not None and 1 <= r <= s.size:
                ax.plot([r], [s[r - 1]], "o", color=color, ms=5)
        ax.set_title(f"layer {li}")
        ax.set_xlabel("index i")
        ax.set_ylabel("σ_i / σ_1")
        ax.grid(True, which="both", alpha=0.3)
        if ax.has_data():
            ax.legend(fontsize=7, title="attempt (dot = chosen r)", title_fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def plot_state_sizes(runs: Mapping[str, Mapping[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Mean state size (solid) and per-layer sizes (thin) over training, one colour per run.

    Parameters
    ----------
    runs
        ``label -> run record`` (each with ``dims_trace`` and ``total_steps``).
    path
        Output PNG.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    fig = _figure(figsize=(6.0, 3.6))
    ax = fig.subplots()
    for k, (label, run) in enumerate(runs.items()):
        color = _COLORS[k % len(_COLORS)]
        total = max(1, int(run.get("total_steps", 1)))
        trace = run.get("dims_trace") or []
        if not trace:
            continue
        steps = [s / total * 100 for s, _ in trace] + [100.0]
        dims = [d for _, d in trace] + [trace[-1][1]]
        # earlier runs thicker, so a later run with the same sizes (scratch = CompreSSM's final sizes)
        # does not hide the earlier line
        width = 2.0 + 1.5 * (len(runs) - 1 - k)
        ax.step(steps, [np.mean(d) for d in dims], where="post", color=color, lw=width, label=label)
        for li in range(len(dims[0])):
            ax.step(steps, [d[li] for d in dims], where="post", color=color, lw=0.8, alpha=0.5, ls="--")
    ax.set_xlabel("training progress (%)")
    ax.set_ylabel("state size n (mean; dashed: per layer)")
    ax.set_xlim(0, 100)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


_MARKERS = "osD^vP*Xh<>p8"


def _group_style(k: int, group: str) -> dict[str, Any]:
    """Colour, marker and weight of the k-th method group, the same in every plot of a report.

    CompreSSM (not its real-HSV variant) is black and drawn on top; the others take distinct tab20
    colours (dark shades first) and markers, so that up to 20 methods stay apart.
    """
    import matplotlib

    main = group.startswith("CompreSSM") and "real" not in group
    color = "black" if main else matplotlib.colormaps["tab20"]((2 * k % 20 + k // 10) % 20)
    return {
        "color": color,
        "marker": _MARKERS[k % len(_MARKERS)],
        "ms": 6 if main else 5,
        "lw": 2.0 if main else 1.1,
        "zorder": 3 if main else 2,
    }


def _groups(points: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for p in points:
        groups.setdefault(str(p.get("group", p["label"])), []).append(p)
    return groups


def _points(ax: Any, points: Sequence[Mapping[str, Any]], xkey: str, xerr: str | None) -> None:
    k = 0  # the style index of the frontier plot: the full model is grey and takes none
    for g, ps in _groups(points).items():
        ps = sorted(ps, key=lambda p: float(p[xkey]))
        if g == "full":
            st = {"color": "0.4", "marker": "s", "ms": 6, "lw": 1.2, "zorder": 3}
        else:
            st, k = _group_style(k, g), k + 1
        xs = [p[xkey] for p in ps]
        ys = [100 * p["acc"] for p in ps]
        yerr = [100 * p.get("acc_std", 0.0) for p in ps]
        xe = [p.get(xerr, 0.0) for p in ps] if xerr else None
        ax.errorbar(
            xs,
            ys,
            yerr=yerr,
            xerr=xe,
            fmt=st["marker"] + ("-" if len(ps) > 1 else ""),
            color=st["color"],
            ms=st["ms"],
            lw=st["lw"],
            zorder=st["zorder"],
            capsize=3,
            label=g,
        )
        for p, x, y in zip(ps, xs, ys, strict=True):
            if p.get("note"):
                ax.annotate(p["note"], (x, y), textcoords="offset points", xytext=(4, 4), fontsize=6, color=st["color"])


def plot_acc_vs_dim(points: Sequence[Mapping[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Test accuracy against mean final state dimension.

    Parameters
    ----------
    points
        Each ``{"label", "group", "dim", "acc", "acc_std"?, "note"?}``; points of one group are joined.
    path
        Output PNG.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    fig = _figure(figsize=(6.0, 3.8))
    ax = fig.subplots()
    _points(ax, points, "dim", None)
    ax.set_xscale("log", base=2)
    dims = [float(p["dim"]) for p in points if p["dim"] and p["dim"] > 0]
    if dims:
        ticks = [2.0**k for k in range(int(np.floor(np.log2(min(dims)))), int(np.ceil(np.log2(max(dims)))) + 1)]
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.set_xlim(ticks[0] / 1.3, ticks[-1] * 1.3)
    ax.set_xlabel("mean final state dimension (log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_acc_vs_time(points: Sequence[Mapping[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Test accuracy against training time.

    Parameters
    ----------
    points
        Each ``{"label", "group", "time", "acc", "acc_std"?, "time_std"?, "note"?}``.
    path
        Output PNG.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    many = len(_groups(points)) > 6
    fig = _figure(figsize=(8.4 if many else 6.0, 4.2 if many else 3.8))
    ax = fig.subplots()
    _points(ax, points, "time", "time_std")
    times = [float(p["time"]) for p in points if p["time"] and p["time"] > 0]
    if times and max(times) > 4 * min(times):  # spans of 10x and more: a log axis keeps the cheap runs apart
        ax.set_xscale("log")
        lo, hi = min(times) / 1.5, max(times) * 1.5
        ticks = [m * 10.0**e for e in range(-2, 6) for m in (1, 2, 5) if lo <= m * 10.0**e <= hi]
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.xaxis.set_minor_formatter("")
    ax.set_xlabel("training CPU time (s; optimizer steps + reductions)")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(True, which="both", alpha=0.3)
    if many:
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    else:
        ax.legend(fontsize=8)
    return _save(fig, path)


def plot_analysis(layers: Sequence[Mapping[str, Any]], path: str | os.PathLike[str], *, title: str = "") -> Path:
    """Per layer: HSVs, poles in the complex plane, and the BT error bound for every order.

    Parameters
    ----------
    layers
        Each ``{"hsv": [...], "poles_re": [...], "poles_im": [...], "bounds": [...]}`` (bounds
        indexed by order r = 0..n).
    path
        Output PNG.
    title
        Figure title.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    n = max(1, len(layers))
    fig = _figure(figsize=(12, 3.2 * n))
    axes = fig.subplots(n, 3, squeeze=False)
    t = np.linspace(0, 2 * np.pi, 400)
    for i, lay in enumerate(layers):
        hsv = np.asarray(lay["hsv"], dtype=float)
        a0, a1, a2 = axes[i]
        a0.semilogy(np.arange(1, hsv.size + 1), np.maximum(hsv, 1e-300), "o-", ms=3)
        a0.set_title(f"layer {i}: Hankel singular values (n={hsv.size})", fontsize=9)
        a0.set_xlabel("i")
        a0.set_ylabel("σ_i")
        a0.grid(True, which="both", alpha=0.3)
        a1.plot(np.cos(t), np.sin(t), "k-", lw=0.6)
        a1.plot(lay["poles_re"], lay["poles_im"], "x", ms=5)
        a1.set_aspect("equal")
        a1.set_title(f"layer {i}: poles λ (unit circle)", fontsize=9)
        a1.set_xlabel("Re λ")
        a1.set_ylabel("Im λ")
        a1.grid(True, alpha=0.3)
        b = np.asarray(lay["bounds"], dtype=float)
        r = np.arange(b.size)
        a2.semilogy(r[:-1], np.maximum(b[:-1], 1e-300), "s-", ms=3, label="2 Σ_{i>r} σ_i (upper)")
        a2.semilogy(r[:-1], np.maximum(hsv[: b.size - 1], 1e-300), "-", lw=1, label="σ_{r+1} (lower)")
        a2.set_title(f"layer {i}: BT error bounds ‖G−G_r‖∞", fontsize=9)
        a2.set_xlabel("order r")
        a2.grid(True, which="both", alpha=0.3)
        a2.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def plot_frontier(points: Sequence[Mapping[str, Any]], path: str | os.PathLike[str]) -> Path:
    """The compression frontier: test accuracy against mean final state dimension, one curve per method.

    Two panels: every method (left) and a zoom on the methods within 10 points of the full model (right).

    Parameters
    ----------
    points
        Each ``{"label", "group", "dim", "dim_std"?, "acc", "acc_std"?, "note"?}`` (one per variant,
        means over seeds; the standard deviations over seeds are drawn as error bars in both axes).
        The group ``full`` is drawn as a horizontal band (mean ± sd) across the plot; groups starting
        with ``CompreSSM`` are drawn in black.
    path
        Output PNG.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    fig = _figure(figsize=(12.0, 4.6))
    axes = fig.subplots(1, 2)
    groups = _groups(points)
    full = groups.get("full", [None])[0]
    top = 100 * full["acc"] if full else max(100 * p["acc"] for p in points)
    for ai, ax in enumerate(axes):
        k = 0
        for g, ps in groups.items():
            if g == "full":
                p = ps[0]
                y, e = 100 * p["acc"], 100 * p.get("acc_std", 0.0)
                ax.axhspan(y - e, y + e, color="0.88", zorder=0)
                ax.axhline(y, color="0.4", lw=1.2, ls="--", label=f"full (n = {p['dim']:g})", zorder=1)
                continue
            ps = sorted(ps, key=lambda p: float(p["dim"]))
            if ai == 1 and all(100 * p["acc"] < top - 10 for p in ps):
                k += 1
                continue
            st = _group_style(k, g)
            ax.errorbar(
                [p["dim"] for p in ps],
                [100 * p["acc"] for p in ps],
                yerr=[100 * p.get("acc_std", 0.0) for p in ps],
                xerr=[p.get("dim_std", 0.0) for p in ps],
                fmt=st["marker"] + "-",
                color=st["color"],
                capsize=3,
                ms=st["ms"],
                lw=st["lw"],
                label=g,
                zorder=st["zorder"],
            )
            k += 1
        ax.set_xscale("log", base=2)
        dims = [float(p["dim"]) for p in points if p["dim"] and p["dim"] > 0]
        if dims:
            lo, hi = int(np.floor(np.log2(min(dims)))), int(np.ceil(np.log2(max(dims))))
            ticks = [2.0**j for j in range(lo, hi + 1)]
            ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
            ax.set_xlim(ticks[0] / 1.3, ticks[-1] * 1.3)
        ax.set_xlabel("mean final state dimension per layer (log scale)")
        ax.set_ylabel("test accuracy (%)")
        ax.grid(True, which="both", alpha=0.3)
        if ai == 1:
            ax.set_ylim(top - 10, top + 3)
            ax.set_title("zoom: within 10 points of full", fontsize=9)
        else:
            ax.set_title("every method (± sd over seeds)", fontsize=9)
    axes[0].legend(fontsize=7, ncol=2)
    return _save(fig, path)


def plot_kept_energy(cuts: Sequence[Mapping[str, Any]], path: str | os.PathLike[str]) -> Path:
    """Kept share of Σσ at every cut (solid) and its cumulative product (dashed), one colour per run.

    Parameters
    ----------
    cuts
        Rows of :func:`ssmred_app.experiment.cut_table` (``variant``, ``cut``, ``kept``, ``cumulative``
        in %).
    path
        Output PNG.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    fig = _figure(figsize=(7.0, 4.0))
    ax = fig.subplots()
    by: dict[str, list[Mapping[str, Any]]] = {}
    for c in cuts:
        by.setdefault(str(c["variant"]), []).append(c)
    import matplotlib

    cmap = matplotlib.colormaps["tab20"]
    for k, (v, cs) in enumerate(by.items()):
        color = cmap(k % 20)
        xs = [c["cut"] for c in cs]
        ax.plot(xs, [c["kept"] for c in cs], "o-", color=color, lw=1.2, ms=4, label=v)
        ax.plot(xs, [c["cumulative"] for c in cs], "--", color=color, lw=1.0)
    ax.set_xlabel("cut (attempt number)")
    ax.set_ylabel("kept share of Σσ (%); dashed: cumulative")
    ax.set_ylim(0, 105)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    return _save(fig, path)
