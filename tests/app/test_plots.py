"""Report plots: PNG files from plain data, drawn without pyplot and without changing the backend."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

APP = Path(__file__).resolve().parents[2] / "app"

_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path

    import matplotlib

    matplotlib.use("svg")  # a user's (notebook) backend: plotting must leave it alone
    from ssmred_app import plots

    out = Path(sys.argv[1])
    red = [{"step": 3, "fraction": 0.025, "layers": [{"hsv": [1.0, 0.5, 0.1], "r": 2, "n": 3, "r_applied": 2}]}]
    runs = {"full": {"total_steps": 10, "dims_trace": [[0, [4, 4]]]},
            "CompreSSM": {"total_steps": 10, "dims_trace": [[0, [4, 4]], [5, [2, 3]]]}}
    pts = [{"label": "full", "group": "full", "dim": 32, "acc": 0.6, "time": 2.0, "note": "n=32"},
           {"label": "CompreSSM", "group": "CompreSSM", "dim": 13.5, "acc": 0.5, "acc_std": 0.01, "time": 1.0}]
    lay = [{"hsv": [1.0, 0.5], "poles_re": [0.5, 0.2], "poles_im": [0.0, 0.1], "bounds": [3.0, 1.0, 0.0]}]
    files = [
        plots.plot_hsv_spectra(red, out / "hsv.png", title="t"),
        plots.plot_state_sizes(runs, out / "sizes.png"),
        plots.plot_acc_vs_dim(pts, out / "dim.png"),
        plots.plot_acc_vs_time(pts, out / "time.png"),
        plots.plot_analysis(lay, out / "analysis.png", title="t"),
    ]
    print(json.dumps({
        "backend": matplotlib.get_backend(),
        "pyplot": "matplotlib.pyplot" in sys.modules,
        "png": [Path(f).read_bytes()[:4] == b"\\x89PNG" for f in files],
    }))
    """
)


def test_plots_write_pngs_and_leave_the_backend_alone(tmp_path: Path) -> None:
    boot = f"import sys; sys.path[:0] = [{str(APP.parent)!r}, {str(APP)!r}]; exec(sys.argv[2])"
    proc = subprocess.run(
        [sys.executable, "-c", boot, str(tmp_path), _SCRIPT],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["backend"] == "svg", "plotting switched the global matplotlib backend"
    assert not report["pyplot"], "plotting imported pyplot"
    assert report["png"] == [True] * 5
