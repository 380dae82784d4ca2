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

import pytest
from docstring_checks import class_problems, function_problems

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


def test_public_api_is_nonempty():
    assert len(FUNCTIONS) >= 10
    assert len(CLASSES) >= 5
    assert {"StateSpace", "balanced_truncation", "hankel_singular_values", "hinf_norm"} <= {n for n, _ in PUBLIC}


@pytest.mark.parametrize(("name", "func"), FUNCTIONS, ids=[n for n, _ in FUNCTIONS])
def test_function_docstring(name, func):
    problems = function_problems(name, func)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(("name", "cls"), CLASSES, ids=[n for n, _ in CLASSES])
def test_class_docstring(name, cls):
    problems = class_problems(name, cls)
    assert not problems, "\n".join(problems)
