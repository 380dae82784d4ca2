"""Docstring discipline for the public names of ssmred_torch (same rules as tests/test_docstrings.py)."""

from __future__ import annotations

import inspect
import types
import warnings

import pytest

torch = pytest.importorskip("torch")
import ssmred_torch  # noqa: E402
from numpydoc.docscrape import NumpyDocString  # noqa: E402

pytestmark = pytest.mark.torch

PUBLIC = [
    (name, getattr(ssmred_torch, name))
    for name in ssmred_torch.__all__
    if not isinstance(getattr(ssmred_torch, name), (str, types.ModuleType, types.UnionType))
]
FUNCTIONS = [(n, o) for n, o in PUBLIC if inspect.isfunction(o)]
CLASSES = [(n, o) for n, o in PUBLIC if inspect.isclass(o)]
# methods inherited from torch.nn.Module that the layer classes override with their usual meaning
_NN_METHODS = {"extra_repr"}


def _parse(obj, where, problems):
    doc = inspect.getdoc(obj)
    if not doc or not doc.strip():
        problems.append(f"{where}: no docstring")
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parsed = NumpyDocString(doc)
    problems.extend(f"{where}: numpydoc: {w.message}" for w in caught)
    return parsed


def _documented(parsed, *sections):
    names = []
    for section in sections:
        for param in parsed[section]:
            names.extend(part.strip().lstrip("*") for part in param.name.split(",") if part.strip())
    return names


def _params(func, *, skip_first=False):
    params = list(inspect.signature(func).parameters.values())
    if skip_first and params and params[0].name in ("self", "cls"):
        params = params[1:]
    return [p.name for p in params]


def _check(where, expected, documented, problems):
    missing = [p for p in expected if p not in documented]
    extra = [p for p in documented if p not in expected]
    if missing:
        problems.append(f"{where}: parameter(s) not documented: {missing}")
    if extra:
        problems.append(f"{where}: documented but not in the signature: {extra}")


def test_public_api():
    assert {"LRU", "LRUModel", "CompreSSM", "reduce_model", "to_statespace", "from_statespace"} <= set(
        ssmred_torch.__all__
    )
    assert sorted(ssmred_torch.__all__) == sorted(set(ssmred_torch.__all__))


@pytest.mark.parametrize(("name", "func"), FUNCTIONS, ids=[n for n, _ in FUNCTIONS])
def test_function_docstring(name, func):
    problems: list[str] = []
    parsed = _parse(func, name, problems)
    if parsed is not None:
        _check(name, _params(func), _documented(parsed, "Parameters", "Other Parameters"), problems)
        if ">>>" not in "\n".join(parsed["Examples"]):
            problems.append(f"{name}: no doctested Examples section")
        if not parsed["Returns"]:
            problems.append(f"{name}: no Returns section")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(("name", "cls"), CLASSES, ids=[n for n, _ in CLASSES])
def test_class_docstring(name, cls):
    problems: list[str] = []
    parsed = _parse(cls, name, problems)
    if parsed is not None and not issubclass(cls, BaseException):
        expected = _params(cls)
        _check(name, expected, _documented(parsed, "Parameters", "Attributes"), problems)
    for mname, member in vars(cls).items():
        if mname.startswith("_") or mname in _NN_METHODS:
            continue
        where = f"{name}.{mname}"
        if isinstance(member, property):
            _parse(member.fget, where, problems)
            continue
        if not inspect.isfunction(member):
            continue
        mparsed = _parse(member, where, problems)
        if mparsed is not None:
            _check(where, _params(member, skip_first=True), _documented(mparsed, "Parameters"), problems)
    assert not problems, "\n".join(problems)
