"""Execute every teaching notebook of the documentation (docs/notebooks/*.md, MyST/jupytext text).

Each notebook is read with jupytext and run top to bottom by nbclient in a fresh ``python3`` kernel
(the interpreter running the tests), with its folder as working directory, exactly as ``make docs``
runs it. A notebook fails if a cell raises or if it takes longer than its budget. The budgets are
ceilings, about three times what each notebook takes on a quiet 2-core machine (10-20 s each, the
CompreSSM walkthrough with its six short training runs, LRU and S5, about 40 s; the whole module
about 95 s of CPU time): a machine loaded by other jobs (load average 10) took 11-58 s per notebook.

Needs the ``docs`` extra (jupytext, nbclient, ipykernel); notebooks that need an optional backend
carry its marker (``torch``, ``slycot``) and are skipped without it.
"""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path

import pytest

os.environ.setdefault("JUPYTER_PLATFORM_DIRS", "1")  # jupyter_core's platformdirs migration warning

jupytext = pytest.importorskip("jupytext")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = Path(__file__).resolve().parent.parent / "docs" / "notebooks"

# name -> (budget in seconds, extra modules needed, markers)
CASES: dict[str, tuple[float, tuple[str, ...], tuple[pytest.MarkDecorator, ...]]] = {
    "01_balanced_truncation": (90.0, ("matplotlib",), ()),
    "02_complex_discrete": (90.0, ("matplotlib",), (pytest.mark.slycot,)),
    "03_weyl_tracking": (90.0, ("matplotlib",), (pytest.mark.torch,)),
    "04_trained_layer": (120.0, ("matplotlib", "sklearn"), (pytest.mark.torch,)),
    "05_compressm": (180.0, ("matplotlib", "sklearn"), (pytest.mark.torch,)),
    "06_theory": (90.0, ("sympy",), ()),
}


def test_every_notebook_has_a_case():
    found = sorted(p.stem for p in NOTEBOOKS.glob("*.md"))
    assert found == sorted(CASES), "add new notebooks to CASES with a time budget"


@pytest.mark.parametrize(
    "name", [pytest.param(name, marks=marks, id=name) for name, (_, _, marks) in CASES.items()]
)
def test_notebook_executes_within_budget(name: str):
    budget, modules, _ = CASES[name]
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")
    path = NOTEBOOKS / f"{name}.md"
    nb = jupytext.read(path)
    client = nbclient.NotebookClient(
        nb,
        timeout=int(budget),  # per cell; the whole notebook is checked below
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    # one BLAS thread in the kernel: the suite runs on two shared cores (pytest -n 2)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    start = time.perf_counter()
    client.execute(env=env)
    elapsed = time.perf_counter() - start
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, f"{name}: {errors[0]['ename']}: {errors[0]['evalue']}"
    assert elapsed <= budget, f"{name} took {elapsed:.1f} s, over its budget of {budget:.0f} s"
