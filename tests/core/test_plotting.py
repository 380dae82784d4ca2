"""Plot helpers: return a Figure, write files, never open pyplot windows."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import ssmred
from ssmred import StateSpace, hsv_perturbation, track_hsvs

matplotlib = pytest.importorskip("matplotlib")
from matplotlib.figure import Figure  # noqa: E402

from ssmred.plotting import plot_error_bounds, plot_hsv_perturbation, plot_hsv_trajectories  # noqa: E402


def _history():
    t = np.linspace(0.0, 1.0, 15)
    true = np.column_stack([3.0 - 2.0 * t, 1.0 + 2.0 * t, 0.5 + 0.1 * t])
    return [np.sort(r)[::-1] for r in true]


def test_trajectory_plot_returns_figure_and_writes_png(tmp_path):
    traj = track_hsvs(_history(), bounds=[0.2] * 14)
    fig = plot_hsv_trajectories(traj)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert len(ax.lines) == 3
    assert len(ax.collections) == 3  # one band per track
    path = tmp_path / "traj.png"
    fig.savefig(path, dpi=60)
    assert path.stat().st_size > 1000


def test_trajectory_plot_from_systems_and_flags(tmp_path):
    base = ssmred.random_stable(4, 1, 1, dt=1.0, rng=0)
    rng = np.random.default_rng(1)
    history = [base]
    for _ in range(5):
        history.append(history[-1].with_(B=history[-1].B + 0.05 * rng.standard_normal(base.B.shape)))
    fig = plot_hsv_trajectories(track_hsvs(history), log=False, bands=False, max_tracks=2, title="t")
    assert fig.axes[0].get_title() == "t"
    assert len(fig.axes[0].lines) == 2
    fig.savefig(tmp_path / "sys.svg")
    assert (tmp_path / "sys.svg").exists()
    bad = track_hsvs([[2.0, 1.0], [5.0, 1.0]], bounds=[0.5])
    fig = plot_hsv_trajectories(bad)
    assert any(line.get_marker() == "x" for line in fig.axes[0].lines)


def test_error_bound_plot(tmp_path):
    sys = ssmred.random_stable(6, 1, 1, rng=2)
    fig = plot_error_bounds(sys)
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert [line.get_label()[:5] for line in ax.lines] == ["bound", "measu", "lower"]
    bound, measured, lower = (line.get_ydata() for line in ax.lines)
    assert np.all(measured <= bound * (1 + 1e-8))
    assert np.all(lower <= measured * (1 + 1e-8))
    fig.savefig(tmp_path / "bt.png", dpi=60)
    assert (tmp_path / "bt.png").stat().st_size > 1000


def test_error_bound_plot_real_output_and_given_axes():
    sys = ssmred.random_stable(5, 1, 1, dt=1.0, complex_=True, rng=3)
    fig0 = Figure()
    ax = fig0.add_subplot()
    fig = plot_error_bounds(sys, orders=[1, 2, 3], real_output=True, ax=ax)
    assert fig is fig0
    lines = ax.lines
    assert len(lines) == 4
    complex_err, real_err = lines[1].get_ydata(), lines[3].get_ydata()
    assert np.all(real_err <= complex_err * (1 + 1e-8))


def test_error_bound_plot_bad_input():
    real = StateSpace(np.diag([-1.0, -2.0]), np.ones((2, 1)), np.ones((1, 2)))
    with pytest.raises(ValueError, match="real_output"):
        plot_error_bounds(real, real_output=True)
    with pytest.raises(ValueError, match="orders"):
        plot_error_bounds(real, orders=[5])


def test_perturbation_plot(tmp_path):
    a = ssmred.random_stable(4, rng=4)
    rep = hsv_perturbation(a, a.with_(C=1.1 * a.C))
    fig = plot_hsv_perturbation(rep)
    assert "holds" in fig.axes[0].get_title()
    fig.savefig(tmp_path / "p.png", dpi=60)
    assert (tmp_path / "p.png").exists()
    with pytest.raises(TypeError):
        plot_hsv_perturbation("nope")  # type: ignore[arg-type]


def test_plots_do_not_use_pyplot():
    before = "matplotlib.pyplot" in sys.modules
    plot_hsv_trajectories(track_hsvs([[1.0], [1.1]]))
    if not before:
        assert "matplotlib.pyplot" not in sys.modules
