"""The core package imports numpy and scipy only: ``import ssmred`` (and every submodule) pulls in neither
torch nor jax (STYLE.md point 8). Checked in a fresh interpreter, so nothing imported by other tests leaks in.
The same for the arrows between the packages (DESIGN.md): the adapter imports no application package
(CLI, configs, reports, data sets), and the application imports torch only when a command needs it.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import textwrap

import pytest

_FORBIDDEN = ("torch", "jax", "jaxlib", "flax", "equinox", "tensorflow")

_SCRIPT = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys

    import ssmred
    from ssmred.errors import BackendUnavailableError

    forbidden = {forbidden!r}

    def loaded():
        return sorted(m for m in sys.modules if m.split(".")[0] in forbidden)

    report = {{"after_import": loaded(), "modules": [], "unavailable": {{}}, "offenders": {{}}}}
    for info in pkgutil.walk_packages(ssmred.__path__, prefix="ssmred."):
        try:
            importlib.import_module(info.name)
        except BackendUnavailableError as exc:  # an optional backend (slycot, ...) is not installed
            report["unavailable"][info.name] = str(exc)
            continue
        report["modules"].append(info.name)
        if loaded():
            report["offenders"].setdefault(info.name, loaded())
    report["after_walk"] = loaded()
    print(json.dumps(report))
    """
)


@pytest.fixture(scope="module")
def report() -> dict:
    code = _SCRIPT.format(forbidden=_FORBIDDEN)
    # a fresh interpreter; the source tree that this test session imports is put first on sys.path
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); exec(sys.argv[2])", _root(), code],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _root() -> str:
    import pathlib

    import ssmred

    return str(pathlib.Path(ssmred.__file__).resolve().parent.parent)


def test_import_ssmred_loads_no_framework(report):
    assert report["after_import"] == [], f"import ssmred loaded {report['after_import']}"


def test_every_submodule_loads_no_framework(report):
    assert report["modules"], "no submodule was imported"
    assert "ssmred.statespace" in report["modules"]
    assert report["offenders"] == {}, f"submodules importing a framework: {report['offenders']}"
    assert report["after_walk"] == []


def test_walk_covers_the_core_modules(report):
    expected = {
        "ssmred.statespace",
        "ssmred.gramians",
        "ssmred.hsv",
        "ssmred.balanced",
        "ssmred.bounds",
        "ssmred.norms",
        "ssmred.construct",
        "ssmred.examples",
        "ssmred.errors",
        "ssmred.backends",
        "ssmred.backends.scipy",
    }
    seen = set(report["modules"]) | set(report["unavailable"])
    assert expected <= seen, f"missing: {sorted(expected - seen)}"


def test_forbidden_names_are_not_prefixes_of_allowed_modules():
    """``jaxtyping`` (a core dependency) must not be mistaken for ``jax``: the check splits on dots."""
    assert "jaxtyping".split(".")[0] not in _FORBIDDEN


# ---------------------------------------------------------------------------------------------------------------
# the arrows between the packages: app -> adapters -> core (DESIGN.md)
# ---------------------------------------------------------------------------------------------------------------

# what the adapter must not import: the application and its tools (CLI, configs, reports, progress bars, data sets)
_NOT_IN_ADAPTER = (
    "ssmred_app",
    "yaml",
    "argparse",
    "matplotlib",
    "tqdm",
    "sklearn",
    "mnist1d",
    "pydantic",
    "markdown_it",
)
# what importing the application (and its command line) must not pull in: torch comes when a command needs it
_NOT_AT_APP_IMPORT = ("torch", "ssmred_torch", "yaml", "matplotlib", "tqdm", "sklearn", "mnist1d", "markdown_it")

_ADAPTER_SCRIPT = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys

    import torch  # torch itself loads some of these names (argparse, tqdm): count only what the adapter adds

    forbidden = {forbidden!r}
    baseline = set(sys.modules)

    def added():
        return sorted(m for m in set(sys.modules) - baseline if m.split(".")[0] in forbidden)

    import ssmred_torch

    report = {{"after_import": added(), "modules": []}}
    for info in pkgutil.walk_packages(ssmred_torch.__path__, prefix="ssmred_torch."):
        importlib.import_module(info.name)
        report["modules"].append(info.name)
    report["after_walk"] = added()
    print(json.dumps(report))
    """
)

_APP_SCRIPT = textwrap.dedent(
    """
    import importlib, json, pkgutil, sys

    forbidden = {forbidden!r}

    def loaded():
        return sorted(m for m in sys.modules if m.split(".")[0] in forbidden)

    import ssmred_app

    report = {{"after_import": loaded()}}
    import ssmred_app.cli

    ssmred_app.cli.build_parser().format_help()
    report["after_cli"] = loaded()
    report["modules"], report["offenders"] = [], {{}}
    for info in pkgutil.walk_packages(ssmred_app.__path__, prefix="ssmred_app."):
        importlib.import_module(info.name)
        report["modules"].append(info.name)
        if loaded():
            report["offenders"].setdefault(info.name, loaded())
    print(json.dumps(report))
    """
)


def _fresh(code: str) -> dict:
    root = _root()
    paths = [root, str(pathlib.Path(root) / "adapters"), str(pathlib.Path(root) / "app")]
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.path[:0] = sys.argv[1:4]; exec(sys.argv[4])",
            *paths,
            code,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.torch
def test_adapter_imports_no_application_package():
    report = _fresh(_ADAPTER_SCRIPT.format(forbidden=_NOT_IN_ADAPTER))
    assert report["after_import"] == [], f"import ssmred_torch loaded {report['after_import']}"
    assert "ssmred_torch.reduce" in report["modules"]
    assert report["after_walk"] == [], f"ssmred_torch submodules loaded {report['after_walk']}"


def test_adapter_sources_import_no_application_package():
    """Statically too: names that torch itself imports (argparse, tqdm) are invisible to the runtime check."""
    import ast

    adapter = pathlib.Path(_root()) / "adapters" / "ssmred_torch"
    offenders = []
    for path in sorted(adapter.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            offenders += [
                f"{path.relative_to(adapter)}:{node.lineno} {n}" for n in names if n.split(".")[0] in _NOT_IN_ADAPTER
            ]
    assert offenders == []


def test_app_and_its_cli_import_no_framework():
    pytest.importorskip("pydantic")
    report = _fresh(_APP_SCRIPT.format(forbidden=_NOT_AT_APP_IMPORT))
    assert report["after_import"] == [], f"import ssmred_app loaded {report['after_import']}"
    assert report["after_cli"] == [], f"import ssmred_app.cli loaded {report['after_cli']}"
    assert {"ssmred_app.cli", "ssmred_app.trainer", "ssmred_app.models", "ssmred_app.plots"} <= set(report["modules"])
    assert report["offenders"] == {}, f"app modules importing these at import time: {report['offenders']}"
