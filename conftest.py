"""Root pytest configuration: skip collecting optional packages whose dependencies are missing."""

from __future__ import annotations

import importlib.util

collect_ignore_glob: list[str] = [".venv/*", "docs/_build/*", "benchmarks/*", "runs/*"]
if importlib.util.find_spec("torch") is None:
    collect_ignore_glob.append("adapters/ssmred_torch/*")
if importlib.util.find_spec("sympy") is None:
    collect_ignore_glob.append("theory/*")
collect_ignore = ["ssmred/demo.py"]
