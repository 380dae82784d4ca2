"""Fixtures for the torch adapter tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from threadpoolctl import threadpool_limits

torch = pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Run each adapter test single-threaded (BLAS and torch), restoring the settings afterwards.

    The suite runs with ``pytest -n 2`` on 2 cores; more threads per worker oversubscribe the machine
    and make the small dense kernels here an order of magnitude slower.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def gen() -> torch.Generator:
    """A seeded torch generator per test (no global seed)."""
    return torch.Generator().manual_seed(0)
