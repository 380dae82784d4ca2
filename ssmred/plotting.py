r"""Figures for the theory checks: HSV trajectories with Weyl bands, BT bounds vs measured error.

matplotlib is optional (``pip install 'ssmred[plot]'``) and imported inside each function. Figures
are created with the Agg canvas without touching pyplot's global state: every function returns the
:class:`matplotlib.figure.Figure` (save it with ``fig.savefig(path)``) and never calls ``show()``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from ssmred._require import require
from ssmred.errors import AccuracyWarning
from ssmred.perturbation import HSVPerturbation
from ssmred.statespace import StateSpace
from ssmred.tracking import HSVTrajectories

__all__ = ["plot_error_bounds", "plot_hsv_perturbation", "plot_hsv_trajectories"]


def _figure_and_axes(ax: Any, figsize: tuple[float, float]) -> tuple[Any, Any]:
    require("matplotlib")
    if ax is not None:
        return ax.figure, ax
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def plot_hsv_trajectories(
    traj: HSVTrajectories,
    *,
    ax: Any = None,
    bands: bool = True,
    log: bool = True,
    max_tracks: int | None = None,
    title: str | None = None,
) -> Any:
    r"""HSV trajectories over the steps, with the Weyl intervals as shaded bands.

    At step ``k`` the band of a track is :math:`[\sigma(k-1) - \beta_k,\ \sigma(k-1) + \beta_k]`, the
    interval in which Weyl's theorem places :math:`\sigma(k)`; the curve must stay inside its band.
    Moves that left their band (only possible with invalid bounds) are marked with a red cross.

    Parameters
    ----------
    traj
        Output of :func:`ssmred.tracking.track_hsvs`.
    ax
        Axes to draw into (default: a new figure).
    bands
        Draw the :math:`\pm\beta` bands (skipped where the bound is infinite).
    log
        Logarithmic y axis.
    max_tracks
        Draw only the tracks with the largest values at the last step where they exist.
    title
        Axes title.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.

    Raises
    ------
    BackendUnavailableError
        If matplotlib is not installed.

    Examples
    --------
    >>> from ssmred.tracking import track_hsvs
    >>> fig = plot_hsv_trajectories(track_hsvs([[2.0, 1.0], [1.8, 1.2]], bounds=[0.3]))
    >>> type(fig).__name__
    'Figure'
    """
    if not isinstance(traj, HSVTrajectories):
        raise TypeError(f"traj must be an HSVTrajectories (from track_hsvs); got {type(traj).__name__}")
    fig, ax = _figure_and_axes(ax, (7.0, 4.5))
    x = traj.steps
    values = traj.values
    last = np.array([col[~np.isnan(col)][-1] for col in values.T])
    ids = np.argsort(-last, kind="stable")
    if max_tracks is not None:
        ids = ids[: int(max_tracks)]
    positive = values[~np.isnan(values) & (values > 0)]
    floor = float(np.min(positive)) / 10.0 if positive.size else 1e-300
    beta = traj.bounds
    cmap = require("matplotlib").colormaps["tab10"]
    for rank, t in enumerate(ids):
        color = cmap(rank % 10)
        v = values[:, t]
        ax.plot(x, v, "-o", color=color, lw=1.5, ms=3, label=f"track {t}" if rank < 10 else None)
        if bands and traj.n_steps > 1:
            prev = v[:-1]
            b = beta[1:]
            ok = ~np.isnan(prev) & ~np.isnan(v[1:]) & np.isfinite(b)
            if np.any(ok):
                lower = prev - b
                upper = prev + b
                if log:
                    lower = np.maximum(lower, floor)
                ax.fill_between(x[1:], lower, upper, where=ok, color=color, alpha=0.12, lw=0, interpolate=False)
        bad = ~traj.admissible[:, t]
        if np.any(bad):
            ax.plot(x[bad], v[bad], "x", color="red", ms=9, mew=2)
    shown = values[:, ids]
    shown = shown[~np.isnan(shown)]
    if log and positive.size:
        ax.set_yscale("log")
        lo, hi = float(np.min(shown[shown > 0])) if np.any(shown > 0) else floor, float(np.max(shown))
        ax.set_ylim(lo / 2.0, hi * 2.0)  # the data decide the range; wide bands are cut at the axes
    elif shown.size:
        lo, hi = float(np.min(shown)), float(np.max(shown))
        pad = 0.1 * (hi - lo) if hi > lo else 0.1 * max(abs(hi), 1.0)
        ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlabel("step")
    ax.set_ylabel(r"Hankel singular value $\sigma_i$")
    ax.set_title(title if title is not None else r"HSV trajectories (bands: Weyl interval $\sigma(k-1)\pm\beta_k$)")
    ax.grid(True, which="both", alpha=0.3)
    if len(ids) <= 10:
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    return fig


def plot_error_bounds(
    sys: StateSpace,
    *,
    orders: Sequence[int] | None = None,
    method: str = "bfsr",
    real_output: bool = False,
    ax: Any = None,
    title: str | None = None,
) -> Any:
    r"""Balanced-truncation error over the reduced order ``r``: bounds vs measured H-infinity error.

    Draws :math:`2\sum_{i>r}\sigma_i` (upper bound), :math:`\sigma_{r+1}` (lower bound) and the measured
    :math:`\|G - G_r\|_\infty`; with ``real_output=True`` (complex systems) also the error of the
    real output :math:`\mathrm{Re}(C x)`, which the same upper bound covers (:math:`|\mathrm{Re}\,v|
    \le |v|`).

    Parameters
    ----------
    sys
        A stable system.
    orders
        Reduced orders to evaluate (default ``1 .. min(n - 1, 40)``, capped at the numerical rank).
    method
        Balanced-truncation method (``"bfsr"`` or ``"sr"``).
    real_output
        Also measure the error of the real output (needs a complex ``sys``).
    ax
        Axes to draw into (default: a new figure).
    title
        Axes title.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.

    Raises
    ------
    NotStableError
        If ``sys`` is unstable.
    ValueError
        If an order is out of range, or ``real_output`` is requested for a real system.

    Notes
    -----
    Orders between equal HSVs (where the stability guarantee of BT is void) are evaluated without
    the :class:`~ssmred.AccuracyWarning` that :func:`ssmred.balanced_truncation` would raise.

    Examples
    --------
    >>> sys = StateSpace(np.diag([-1.0, -2.0, -5.0]), np.ones((3, 1)), np.ones((1, 3)))
    >>> fig = plot_error_bounds(sys)
    >>> len(fig.axes[0].lines)
    3
    """
    from ssmred.balanced import BalancedTruncation
    from ssmred.norms import hinf_norm

    if real_output and not sys.is_complex:
        raise ValueError("real_output=True needs a complex system (a real system's output is already real)")
    bt = BalancedTruncation(sys)
    hsv = bt.hsv
    rank = bt.numerical_rank()
    if orders is None:
        r_all = np.arange(1, max(min(sys.n_states - 1, 40, rank), 1) + 1)
    else:
        r_all = np.asarray(orders, dtype=int)
        if r_all.ndim != 1 or r_all.size == 0 or np.any(r_all < 1) or np.any(r_all > rank):
            raise ValueError(f"orders must be a non-empty list of ints in [1, {rank}] (the numerical rank)")
    bounds = bt.error_bounds()[r_all]
    lower = np.array([hsv[r] if r < hsv.size else 0.0 for r in r_all])
    measured = np.empty(r_all.size)
    measured_real = np.empty(r_all.size)
    for i, r in enumerate(r_all):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AccuracyWarning)
            red = bt.reduce(int(r), method=method).reduced  # type: ignore[arg-type]
        err = sys - red
        measured[i] = hinf_norm(err)
        if real_output:
            measured_real[i] = hinf_norm(err.to_real())
    fig, ax = _figure_and_axes(ax, (6.5, 4.5))
    floor = 1e-16 * float(hsv[0]) if hsv[0] > 0 else 1e-300
    ax.semilogy(r_all, np.maximum(bounds, floor), "s--", color="tab:red", label=r"bound $2\sum_{i>r}\sigma_i$")
    ax.semilogy(r_all, np.maximum(measured, floor), "o-", color="tab:blue", label=r"measured $\|G-G_r\|_\infty$")
    ax.semilogy(r_all, np.maximum(lower, floor), "v:", color="tab:green", label=r"lower bound $\sigma_{r+1}$ (of $G$)")
    if real_output:
        ax.semilogy(
            r_all,
            np.maximum(measured_real, floor),
            "d-",
            color="tab:purple",
            label=r"real output $\|\mathrm{Re}(G-G_r)\|_\infty$",
        )
    ax.set_xlabel("reduced order r")
    ax.set_ylabel(r"$\mathcal{H}_\infty$ error")
    kind = "discrete" if sys.is_discrete else "continuous"
    ax.set_title(title if title is not None else f"Balanced truncation: bound vs error (n={sys.n_states}, {kind})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def plot_hsv_perturbation(report: HSVPerturbation, *, ax: Any = None, title: str | None = None) -> Any:
    r"""Per-index HSV changes :math:`|\Delta\sigma_i|` against the Weyl bound :math:`\|H_b - H_a\|_2`.

    Parameters
    ----------
    report
        Output of :func:`ssmred.hsv_perturbation`.
    ax
        Axes to draw into (default: a new figure).
    title
        Axes title.

    Returns
    -------
    matplotlib.figure.Figure
        The figure.

    Examples
    --------
    >>> from ssmred.perturbation import hsv_perturbation
    >>> a = StateSpace(np.diag([-1.0, -2.0]), [[1.0], [1.0]], [[1.0, 1.0]])
    >>> fig = plot_hsv_perturbation(hsv_perturbation(a, a.with_(B=[[1.1], [1.0]])))
    >>> fig.axes[0].get_xlabel()
    'index i'
    """
    if not isinstance(report, HSVPerturbation):
        raise TypeError(f"report must be an HSVPerturbation; got {type(report).__name__}")
    fig, ax = _figure_and_axes(ax, (6.0, 4.0))
    idx = np.arange(1, report.delta.size + 1)
    ax.bar(idx, report.delta, color="tab:blue", label=r"$|\sigma_i(b) - \sigma_i(a)|$")
    ax.axhline(report.bound, color="tab:red", ls="--", label=r"Weyl bound $\|H_b - H_a\|_2$")
    ax.set_xlabel("index i")
    ax.set_ylabel("change")
    status = "holds" if report.holds else "VIOLATED"
    ax.set_title(title if title is not None else f"HSV perturbation ({status}, used {report.ratio:.0%} of the bound)")
    ax.legend(fontsize="small")
    ax.grid(True, axis="y", alpha=0.3)
    return fig
