"""Docstring discipline for the public names of ssmred_jax (the rules of tests/docstring_checks.py)."""

from __future__ import annotations

import inspect
import types

import pytest

pytest.importorskip("jax")
import ssmred_jax  # noqa: E402
from docstring_checks import class_problems, function_problems  # noqa: E402

pytestmark = pytest.mark.jax

PUBLIC = [
    (name, getattr(ssmred_jax, name))
    for name in ssmred_jax.__all__
    if not isinstance(getattr(ssmred_jax, name), (str, tuple, types.ModuleType, types.UnionType))
]
FUNCTIONS = [(n, o) for n, o in PUBLIC if inspect.isfunction(o)]
CLASSES = [(n, o) for n, o in PUBLIC if inspect.isclass(o)]
KERNELS = [(n, getattr(ssmred_jax.kernels, n)) for n in ssmred_jax.kernels.__all__]


def test_public_api():
    assert {"LRU", "CompreSSM", "reduce_model", "to_statespace", "from_statespace", "rebuild_opt_state"} <= set(
        ssmred_jax.__all__
    )
    assert sorted(ssmred_jax.__all__) == sorted(set(ssmred_jax.__all__))
    assert all(hasattr(ssmred_jax, name) for name in ssmred_jax.__all__)


@pytest.mark.parametrize(("name", "func"), FUNCTIONS + [(n, o) for n, o in KERNELS if inspect.isfunction(o)])
def test_function_docstring(name, func):
    problems = function_problems(name, func)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(("name", "cls"), CLASSES, ids=[n for n, _ in CLASSES])
def test_class_docstring(name, cls):
    problems = class_problems(name, cls)
    assert not problems, "\n".join(problems)
