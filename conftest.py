"""Root pytest configuration: skip collecting optional packages whose dependencies are missing."""

from __future__ import annotations

import importlib.util

from threadpoolctl import threadpool_limits

# Two pytest-xdist workers share two cores: one BLAS thread each. Oversubscribed OpenBLAS threads made
# an 8x8 triangular solve take 11 ms on a loaded machine.
threadpool_limits(1)

collect_ignore_glob: list[str] = [".venv/*", "docs/_build/*", "benchmarks/*", "runs/*"]
if importlib.util.find_spec("torch") is None:
    collect_ignore_glob.append("adapters/ssmred_torch/*")
if any(importlib.util.find_spec(m) is None for m in ("jax", "equinox", "optax")):
    collect_ignore_glob.append("adapters/ssmred_jax/*")
# the application's doctests need its extras (pydantic for the configs, pyyaml, scikit-learn for the digits)
if any(importlib.util.find_spec(m) is None for m in ("pydantic", "yaml", "sklearn")):
    collect_ignore_glob.append("app/ssmred_app/*")
if importlib.util.find_spec("sympy") is None:
    collect_ignore_glob.append("theory/*")
collect_ignore = ["ssmred/demo.py"]
