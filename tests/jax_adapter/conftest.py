"""Fixtures for the JAX adapter tests: x64 on demand, strict promotion, numpy-built layers (no RNG compiles).

The folder is not named ``jax``: ``tests/`` is on ``sys.path`` (pyproject ``pythonpath``), and a folder
of that name there is importable as a namespace package ``jax`` wherever the real one is not installed,
which broke every scipy call that checks for ``jax.Array``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator

import numpy as np
import pytest

# The JAX tests are compile-bound: every new model shape compiles the train step and the reduction
# programs again (that is the point of several tests). Without LLVM's optimisation passes XLA compiled
# them ~40 % faster here (CPU time of the example test: 30 s -> 17 s), and programs this small do not
# run measurably slower. XLA reads the flags when its CPU client starts, i.e. at the first computation,
# which comes after this (test collection imports jax but computes nothing).
_FAST_COMPILE = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_FAST_COMPILE}".strip()

jax = pytest.importorskip("jax")
pytest.importorskip("equinox")
pytest.importorskip("optax")


@pytest.fixture(autouse=True)
def _strict_promotion(request: pytest.FixtureRequest) -> Iterator[None]:
    """Strict dtype promotion and rank-promotion errors (diffrax's test settings), per test.

    Modules that drive optax (which is not written for strict promotion) set ``STRICT_PROMOTION = False``.
    """
    if not getattr(request.module, "STRICT_PROMOTION", True):
        yield
        return
    with jax.numpy_dtype_promotion("strict"), jax.numpy_rank_promotion("raise"):
        yield


@pytest.fixture
def x64() -> Iterator[None]:
    """64-bit types for the duration of one test (the global default stays 32-bit)."""
    with jax.enable_x64(True):
        yield


@pytest.fixture
def make_lru() -> Callable[..., object]:
    """Build an ``ssmred_jax.LRU`` from numpy draws (SPEC §1 initialisation, seeded ``rng``).

    Creating the arrays with numpy avoids compiling a JAX random-number program for every new shape,
    which dominates the time of small tests on a CPU.
    """
    from ssmred_jax import LRU

    def make(
        rng: np.random.Generator,
        H: int,
        n: int,
        *,
        r_min: float = 0.9,
        r_max: float = 0.999,
        max_phase: float = 2 * math.pi,
        dtype: object = np.float64,
    ) -> LRU:
        mod2 = rng.uniform(size=n) * (r_max**2 - r_min**2) + r_min**2
        values = {
            "nu_log": np.log(-0.5 * np.log(mod2)),
            "theta_log": np.log(max_phase * np.maximum(rng.uniform(size=n), 1e-300)),
            "B_re": rng.normal(size=(n, H)) / math.sqrt(2 * H),
            "B_im": rng.normal(size=(n, H)) / math.sqrt(2 * H),
            "C_re": rng.normal(size=(H, n)) / math.sqrt(n),
            "C_im": rng.normal(size=(H, n)) / math.sqrt(n),
            "D": rng.normal(size=H),
            "gamma_log": 0.5 * np.log1p(-mod2),
        }
        return LRU.from_parameters(**{k: np.asarray(v, dtype=dtype) for k, v in values.items()})

    return make


@pytest.fixture
def make_s5() -> Callable[..., object]:
    """Build an ``ssmred_jax.S5`` (H = 3, 8 stored states) from numpy draws: decays in [0.05, 0.5],
    frequencies up to 5 (40 with ``fast``: ``Im(step * a)`` beyond pi, the ZOH aliasing case), steps in
    [0.01, 0.1]. One shape for every S5 test (each new shape compiles again).
    """
    from ssmred_jax import S5

    H, N = 3, 8

    def make(
        rng: np.random.Generator,
        *,
        discretization: str = "zoh",
        conj_sym: bool = True,
        fast: bool = False,
        dtype: object = np.float64,
    ) -> S5:
        values = {
            "Lambda_re": -rng.uniform(0.05, 0.5, N),
            "Lambda_im": rng.uniform(0, 40.0 if fast else 5.0, N),
            "B": rng.normal(size=(N, H, 2)) / math.sqrt(2 * N),
            "C": rng.normal(size=(H, N, 2)) / math.sqrt(N),
            "D": rng.normal(size=H),
            "log_step": np.log(rng.uniform(1e-2, 1e-1, (N, 1))),
        }
        return S5.from_parameters(
            **{k: np.asarray(v, dtype=dtype) for k, v in values.items()},
            discretization=discretization,
            conj_sym=conj_sym,
        )

    return make
