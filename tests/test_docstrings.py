"""Docstring discipline (python-control style), enforced with numpydoc's parser.

For every public name in ``ssmred.__all__``:

* functions: a docstring whose ``Parameters`` section documents exactly the parameters of the signature,
  and a non-empty ``Examples`` section;
* classes: a docstring documenting the constructor's parameters (``Parameters``; result/value types
  may document their fields under ``Attributes`` instead), and for every public method a docstring
  whose ``Parameters`` section documents exactly its parameters (properties: a docstring).
"""

from __future__ import annotations

import inspect
import types
import warnings

import pytest
from numpydoc.docscrape import NumpyDocString

import ssmred


def _public_objects() -> list[tuple[str, object]]:
    out = []
    for name in ssmred.__all__:
        obj = getattr(ssmred, name)
        if isinstance(obj, (str, types.ModuleType)):  # __version__, the errors module (its classes are listed)
            continue
        out.append((name, obj))
    return out


PUBLIC = _public_objects()
FUNCTIONS = [(n, o) for n, o in PUBLIC if inspect.isfunction(o)]
CLASSES = [(n, o) for n, o in PUBLIC if inspect.isclass(o)]


def _parse(obj: object, where: str, problems: list[str]) -> NumpyDocString | None:
    doc = inspect.getdoc(obj)
    if not doc or not doc.strip():
        problems.append(f"{where}: no docstring")
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parsed = NumpyDocString(doc)
    problems.extend(f"{where}: numpydoc: {w.message}" for w in caught)
    return parsed


def _documented(parsed: NumpyDocString, *sections: str) -> list[str]:
    names: list[str] = []
    for section in sections:
        for param in parsed[section]:
            names.extend(part.strip().lstrip("*") for part in param.name.split(",") if part.strip())
    return names


def _signature_params(func: object, *, skip_first: bool = False) -> list[str]:
    params = list(inspect.signature(func).parameters.values())
    if skip_first and params and params[0].name in ("self", "cls"):
        params = params[1:]
    return [p.name for p in params]


def _check_params(where: str, expected: list[str], documented: list[str], problems: list[str]) -> None:
    missing = [p for p in expected if p not in documented]
    extra = [p for p in documented if p not in expected]
    if missing:
        problems.append(f"{where}: parameter(s) not documented: {missing}")
    if extra:
        problems.append(f"{where}: documented but not in the signature: {extra}")
    duplicated = sorted({p for p in documented if documented.count(p) > 1})
    if duplicated:
        problems.append(f"{where}: documented twice: {duplicated}")


def _public_methods(cls: type) -> list[tuple[str, object]]:
    out = []
    for name, member in vars(cls).items():
        if name.startswith("_") and name != "__call__":
            continue
        out.append((name, member))
    return out


def test_public_api_is_nonempty():
    assert len(FUNCTIONS) >= 10
    assert len(CLASSES) >= 5
    assert {"StateSpace", "balanced_truncation", "hankel_singular_values", "hinf_norm"} <= {n for n, _ in PUBLIC}


@pytest.mark.parametrize(("name", "func"), FUNCTIONS, ids=[n for n, _ in FUNCTIONS])
def test_function_docstring(name, func):
    problems: list[str] = []
    parsed = _parse(func, name, problems)
    if parsed is not None:
        if not parsed["Summary"]:
            problems.append(f"{name}: no summary line")
        _check_params(name, _signature_params(func), _documented(parsed, "Parameters", "Other Parameters"), problems)
        if not "".join(parsed["Examples"]).strip():
            problems.append(f"{name}: no Examples section")
        elif ">>>" not in "\n".join(parsed["Examples"]):
            problems.append(f"{name}: Examples section has no doctest (>>>)")
        if not parsed["Returns"] and not parsed["Yields"]:
            problems.append(f"{name}: no Returns section")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(("name", "cls"), CLASSES, ids=[n for n, _ in CLASSES])
def test_class_docstring(name, cls):
    problems: list[str] = []
    parsed = _parse(cls, name, problems)
    if parsed is not None and not issubclass(cls, BaseException):
        expected = _signature_params(cls)
        _check_params(name, expected, _documented(parsed, "Parameters", "Other Parameters", "Attributes"), problems)
    for mname, member in _public_methods(cls):
        where = f"{name}.{mname}"
        if isinstance(member, property):
            _parse(member.fget, where, problems)
            continue
        if isinstance(member, (classmethod, staticmethod)):
            func = member.__func__
            skip = isinstance(member, classmethod)
        elif inspect.isfunction(member):
            func, skip = member, True
        else:
            continue  # class attributes, NamedTuple field descriptors, ...
        mparsed = _parse(func, where, problems)
        if mparsed is None:
            continue
        params = _signature_params(func, skip_first=skip)
        _check_params(where, params, _documented(mparsed, "Parameters", "Other Parameters"), problems)
    assert not problems, "\n".join(problems)
