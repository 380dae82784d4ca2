"""The core package imports numpy and scipy only: ``import ssmred`` (and every submodule) pulls in neither
torch nor jax (STYLE.md point 8). Checked in a fresh interpreter, so nothing imported by other tests leaks in.
"""

from __future__ import annotations

import json
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
