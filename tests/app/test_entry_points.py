"""How the ``ssmred`` command starts: without PyTorch (issue 9 defect 4) and as ``python -m`` (defect 3)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_PATH = os.pathsep.join(str(ROOT / d) for d in ("", "app", "adapters"))

# a fresh interpreter in which ``import torch`` fails, as on a machine without PyTorch
_NO_TORCH = textwrap.dedent(
    """
    import sys

    class _NoTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, _NoTorch())
    from ssmred_app.cli import main

    try:
        code = main(sys.argv[1:])
    finally:
        print("torch imported" if "torch" in sys.modules else "torch not imported", file=sys.stderr)
    sys.exit(code)
    """
)


def _run(args: list[str], *, cwd: Path, code: str | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-c", code, *args] if code is not None else [sys.executable, *args]
    env = dict(os.environ, PYTHONPATH=_PATH + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.parametrize("args", [["--help"], ["train", "--help"], ["reduce", "--help"]])
def test_help_without_torch(args: list[str], tmp_path: Path) -> None:
    proc = _run(args, cwd=tmp_path, code=_NO_TORCH)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: ssmred")
    assert "Traceback" not in proc.stderr
    assert "torch not imported" in proc.stderr


@pytest.mark.parametrize(
    "args",
    [["train", "--config", "run.yaml"], ["demo", "--quick"], ["analyze", "model.pt"], ["experiment", "exp.yaml"]],
)
def test_a_command_without_torch_says_what_to_install(args: list[str], tmp_path: Path) -> None:
    proc = _run(args, cwd=tmp_path, code=_NO_TORCH)
    assert proc.returncode == 2, proc.stderr
    assert f"ssmred {args[0]} needs PyTorch: pip install torch==" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not list(tmp_path.iterdir()), "nothing may be written"


@pytest.mark.torch
def test_python_m_analyze_and_reduce(tmp_path: Path) -> None:
    import types

    import torch
    from ssmred_app.config import ModelConfig
    from ssmred_app.models import build_model

    torch.manual_seed(0)
    data = types.SimpleNamespace(kind="continuous", d_input=1, n_classes=3)
    model = build_model(ModelConfig(d_model=4, d_state=5, n_layers=2), data)
    plain = tmp_path / "plain.pt"
    torch.save(model.state_dict(), plain)

    proc = _run(["-m", "ssmred_app.cli", "analyze", str(plain), "--out", str(tmp_path / "an")], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "an" / "analysis.json").is_file()
    assert "layer 1: n=5" in proc.stdout

    out = tmp_path / "r2.pt"
    proc = _run(["-m", "ssmred_app", "reduce", str(plain), "--rank", "2", "-o", str(out)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "layer 0: n 5 -> r 2" in proc.stdout
    assert out.is_file()
