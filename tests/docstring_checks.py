"""Docstring discipline shared by the core and adapter docstring tests (numpydoc's parser).

* functions: a summary line, a ``Parameters`` section documenting exactly the signature, a doctested
  ``Examples`` section and a ``Returns`` section;
* classes: the constructor's parameters under ``Parameters`` (value types may use ``Attributes``),
  and for every public method a docstring documenting exactly its parameters (properties: a docstring),
  the methods a class inherits from the project's own bases (mixins) included.
"""

from __future__ import annotations

import inspect
import warnings

from numpydoc.docscrape import NumpyDocString


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


_PROJECT_PACKAGES = ("ssmred", "ssmred_torch", "ssmred_jax", "ssmred_app")


def _own_members(cls: type) -> dict[str, object]:
    """``vars`` of the class and of every base defined in this project (mixins such as ``Mamba``'s
    scan and calibration bases are not collected on their own), the most derived definition winning."""
    members: dict[str, object] = {}
    for base in reversed(cls.__mro__):
        if base is cls or base.__module__.split(".")[0] in _PROJECT_PACKAGES:
            members.update(vars(base))
    return members


def _public_methods(cls: type, skip: frozenset[str] = frozenset()) -> list[tuple[str, object]]:
    out = []
    for name, member in _own_members(cls).items():
        if (name.startswith("_") and name != "__call__") or name in skip:
            continue
        out.append((name, member))
    return out


def function_problems(name: str, func: object) -> list[str]:
    """Everything wrong with a public function's docstring (empty list: fine)."""
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
    return problems


def class_problems(name: str, cls: type, *, skip_methods: frozenset[str] = frozenset()) -> list[str]:
    """Everything wrong with a public class's docstrings, its methods' included."""
    problems: list[str] = []
    parsed = _parse(cls, name, problems)
    if parsed is not None and not issubclass(cls, BaseException):
        expected = _signature_params(cls)
        _check_params(name, expected, _documented(parsed, "Parameters", "Other Parameters", "Attributes"), problems)
    for mname, member in _public_methods(cls, skip_methods):
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
    return problems
