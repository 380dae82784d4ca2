"""Shared fixtures: a seeded ``rng``, derandomized hypothesis profiles, optional-backend markers."""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", derandomize=True, max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", derandomize=True, max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("SSMRED_HYPOTHESIS_PROFILE", "ci"))

_MARKER_MODULES = {"slycot": ("slycot", "control"), "torch": ("torch",), "jax": ("jax",)}


def _has(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


def _has_gpu() -> bool:
    if not _has("torch"):
        return False
    import torch

    return bool(torch.cuda.is_available())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests whose optional backend is missing (marker name = backend)."""
    for item in items:
        for marker, modules in _MARKER_MODULES.items():
            if marker in item.keywords and not _has(*modules):
                item.add_marker(pytest.mark.skip(reason=f"needs {', '.join(modules)}"))
        if "gpu" in item.keywords and not _has_gpu():
            item.add_marker(pytest.mark.skip(reason="needs a CUDA device"))


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh, seeded generator per test (no global seed)."""
    return np.random.default_rng(0)
