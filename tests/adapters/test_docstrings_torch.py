"""Docstring discipline for the public names of ssmred_torch (the rules of tests/docstring_checks.py)."""

from __future__ import annotations

import inspect
import types

import pytest

torch = pytest.importorskip("torch")
import ssmred_torch  # noqa: E402
from docstring_checks import class_problems, function_problems  # noqa: E402

pytestmark = pytest.mark.torch

PUBLIC = [
    (name, getattr(ssmred_torch, name))
    for name in ssmred_torch.__all__
    if not isinstance(getattr(ssmred_torch, name), (str, types.ModuleType, types.UnionType))
]
FUNCTIONS = [(n, o) for n, o in PUBLIC if inspect.isfunction(o)]
CLASSES = [(n, o) for n, o in PUBLIC if inspect.isclass(o)]
# methods inherited from torch.nn.Module that the layer classes override with their usual meaning
_NN_METHODS = frozenset({"extra_repr"})


def test_public_api():
    assert {"LRU", "LRUModel", "CompreSSM", "reduce_model", "to_statespace", "from_statespace"} <= set(
        ssmred_torch.__all__
    )
    assert sorted(ssmred_torch.__all__) == sorted(set(ssmred_torch.__all__))


@pytest.mark.parametrize(("name", "func"), FUNCTIONS, ids=[n for n, _ in FUNCTIONS])
def test_function_docstring(name, func):
    problems = function_problems(name, func)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(("name", "cls"), CLASSES, ids=[n for n, _ in CLASSES])
def test_class_docstring(name, cls):
    problems = class_problems(name, cls, skip_methods=_NN_METHODS)
    assert not problems, "\n".join(problems)
