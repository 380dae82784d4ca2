"""Docstring discipline for the public names of ssmred_app (the API reference is generated from them).

The rules of tests/docstring_checks.py with one relaxation for an application: an ``Examples`` section is
not required (most entry points train, write folders or spawn processes), and a function whose return
annotation is ``None`` needs no ``Returns`` section. Everything else holds: a summary line, a
``Parameters`` section documenting exactly the signature, the constructor's parameters of a class, and
every public method's parameters (the methods inherited from the project's own mixins included).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

pytest.importorskip("pydantic")
import ssmred_app  # noqa: E402
from docstring_checks import class_problems, function_problems  # noqa: E402

_RELAXED = ("no Examples section", "Examples section has no doctest")


def _public() -> list[tuple[str, object]]:
    """Every class and function in a public module's ``__all__`` that the app itself defines."""
    seen: dict[str, object] = {}
    for info in pkgutil.walk_packages(ssmred_app.__path__, "ssmred_app."):
        if info.name.rsplit(".", 1)[-1].startswith("_"):
            continue
        module = importlib.import_module(info.name)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            if getattr(obj, "__module__", "").split(".")[0] != "ssmred_app":
                continue
            seen.setdefault(f"{obj.__module__}.{obj.__qualname__}", obj)
    return sorted(seen.items())


PUBLIC = _public()


def _relevant(problems: list[str], obj: object) -> list[str]:
    out = [p for p in problems if not any(r in p for r in _RELAXED)]
    if inspect.isfunction(obj) and inspect.signature(obj).return_annotation in (None, "None"):
        out = [p for p in out if "no Returns section" not in p]
    return out


def test_the_public_api_is_found():
    names = {key.rsplit(".", 1)[-1] for key, _ in PUBLIC}
    assert {"main", "parse_config", "Trainer", "run_experiment", "RunResult"} <= names


@pytest.mark.parametrize(("name", "obj"), PUBLIC, ids=[k for k, _ in PUBLIC])
def test_docstring(name: str, obj: object):
    if inspect.isclass(obj):
        problems = class_problems(name, obj)
    else:
        problems = function_problems(name, obj)
    problems = _relevant(problems, obj)
    assert not problems, "\n".join(problems)
