"""Helpers shared by the theory scripts: complex symbols as conjugate pairs, zero tests, a runner.

Complex symbols
---------------
A complex quantity ``z`` is represented by two *independent* symbols ``z`` and ``z_c`` standing for
``z`` and ``conj(z)``. An identity that holds as a rational function of independent symbols holds in
particular when ``z_c = conj(z)``; so proving ``F(z, z_c) == 0`` identically proves the complex
identity, and sympy never has to reason about ``conjugate``/``re``/``im`` (fast, and no assumptions
are smuggled in). :func:`conj` swaps every pair and conjugates the numeric coefficients (``I -> -I``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from types import ModuleType

import sympy as sp

__all__ = [
    "Pairs",
    "assert_nonnegative_factorization",
    "assert_zero",
    "conj",
    "cmatrix",
    "csym",
    "run_module",
]


class Pairs:
    """Registry of conjugate pairs ``z <-> z_c`` used by :func:`conj`."""

    def __init__(self) -> None:
        self.swap: dict[sp.Symbol, sp.Symbol] = {}

    def add(self, z: sp.Symbol, zc: sp.Symbol) -> None:
        self.swap[z] = zc
        self.swap[zc] = z


def csym(name: str, pairs: Pairs) -> tuple[sp.Symbol, sp.Symbol]:
    """A complex symbol ``name`` and its conjugate ``name_c`` (both registered in ``pairs``)."""
    z, zc = sp.symbols(f"{name} {name}_c")
    pairs.add(z, zc)
    return z, zc


def cmatrix(name: str, rows: int, cols: int, pairs: Pairs) -> tuple[sp.Matrix, sp.Matrix]:
    """A general complex matrix of symbols and its entrywise conjugate."""
    M = sp.zeros(rows, cols)
    Mc = sp.zeros(rows, cols)
    for i in range(rows):
        for j in range(cols):
            M[i, j], Mc[i, j] = csym(f"{name}{i}{j}", pairs)
    return M, Mc


def conj(expr: sp.Expr | sp.Matrix, pairs: Pairs) -> sp.Expr | sp.Matrix:
    """Complex conjugate under the pair convention (entrywise for matrices, no transpose)."""
    if isinstance(expr, sp.MatrixBase):
        return expr.applyfunc(lambda e: conj(e, pairs))
    return sp.sympify(expr).xreplace(pairs.swap).subs(sp.I, -sp.I)


def hconj(M: sp.Matrix, pairs: Pairs) -> sp.Matrix:
    """Conjugate transpose under the pair convention."""
    return conj(M, pairs).T  # type: ignore[union-attr]


def assert_zero(expr: sp.Expr | sp.Matrix, what: str) -> None:
    """Assert that a rational expression (or every matrix entry) is identically zero."""
    entries: Iterable[sp.Expr] = expr if isinstance(expr, sp.MatrixBase) else [expr]  # type: ignore[assignment]
    for e in entries:
        assert sp.cancel(e) == 0, f"{what}: residual does not simplify to zero: {e}"


def assert_nonnegative_factorization(expr: sp.Expr, positive: Iterable[sp.Symbol], what: str) -> None:
    """Certify ``expr >= 0`` (a polynomial or rational function) for positive symbols from its factorization.

    Numerator and denominator are factored; every factor of odd multiplicity must be a polynomial whose
    coefficients are all non-negative in the ``positive`` symbols (factors of even multiplicity are
    squares), and the constant must be positive. This is a sufficient certificate, checked exactly.
    """
    pos = set(positive)
    num, den = sp.fraction(sp.together(sp.expand(expr)))
    sign = 1
    for part in (num, den):
        const, factors = sp.factor_list(sp.expand(part))
        sign *= 1 if const > 0 else -1
        for f, mult in factors:
            if mult % 2 == 0:
                continue
            assert f.free_symbols <= pos, f"{what}: factor {f} has symbols that are not known to be positive"
            poly = sp.Poly(f, *sorted(f.free_symbols, key=str))
            if all(c <= 0 for c in poly.coeffs()):
                sign = -sign  # an all-negative factor is -(positive)
                continue
            assert all(c >= 0 for c in poly.coeffs()), f"{what}: factor with mixed-sign coefficients: {f}"
    assert sign > 0, f"{what}: the certified sign is negative"


def run_module(module: ModuleType | str) -> int:
    """Run every ``test_*`` function of a theory module, print one line per statement; return 0 or 1."""
    mod = sys.modules[module] if isinstance(module, str) else module
    tests: list[tuple[str, Callable[[], None]]] = [
        (name, obj) for name, obj in vars(mod).items() if name.startswith("test_") and callable(obj)
    ]
    name = mod.__spec__.name if getattr(mod, "__spec__", None) is not None else mod.__name__
    print(f"{name}: {(mod.__doc__ or '').strip().splitlines()[0]}")
    failed = 0
    for name, fn in tests:
        t0 = time.perf_counter()
        expected_failure = any(getattr(m, "name", "") == "xfail" for m in getattr(fn, "pytestmark", []))
        try:
            fn()
        except AssertionError as exc:  # report and continue with the other statements
            if expected_failure:
                print(f"  xfail {name}: known limitation ({str(exc).splitlines()[0][:100]})")
            else:
                failed += 1
                print(f"  FAIL {name}: {exc}")
            continue
        if expected_failure:
            failed += 1
            print(f"  XPASS {name}: passes now; remove its xfail marker")
            continue
        doc = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else name
        print(f"  ok   {name} ({time.perf_counter() - t0:.1f} s): {doc}")
    return 1 if failed else 0
