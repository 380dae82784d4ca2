"""ssmred.half_states_from_real: the conjugate half-state realization the adapters write back (LRU, S4D, S5)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as spla

from ssmred import DiagonalizationError, StateSpace, half_states_from_real, random_stable


def _response(A, B, C, z):
    return C @ spla.solve(z * np.eye(A.shape[0]) - A, B)


@pytest.mark.parametrize(("n", "m", "p", "dt"), [(6, 1, 1, 1.0), (7, 2, 3, 1.0), (5, 3, 2, None)])
def test_two_re_of_the_half_states_is_the_real_system(n: int, m: int, p: int, dt: float | None) -> None:
    sys = random_stable(n, m, p, dt=dt, rng=n + m)
    mu, Bh, Ch = half_states_from_real(sys.A, sys.B, sys.C)
    n_real = int(np.sum(np.abs(spla.eigvals(sys.A).imag) == 0))
    assert mu.size == (n + n_real) // 2  # one state per conjugate pair, one per real pole
    assert np.all(mu.imag >= 0)
    for z in (0.3 + 0.9j, -0.7 + 0.1j, 2.0j, 1.5):
        half = _response(np.diag(mu), Bh, Ch, z)
        conj_half = np.conj(_response(np.diag(mu), Bh, Ch, np.conj(z)))
        np.testing.assert_allclose(half + conj_half, _response(sys.A, sys.B, sys.C, z), rtol=1e-10, atol=1e-12)


def test_a_defective_matrix_is_refused_with_a_typed_error() -> None:
    jordan = np.array([[0.5, 1.0], [0.0, 0.5]])
    with pytest.raises(DiagonalizationError, match="defective"):
        half_states_from_real(jordan, np.ones((2, 1)), np.ones((1, 2)))
    assert issubclass(DiagonalizationError, ValueError)


def test_the_condition_limit_is_the_callers() -> None:
    A = np.array([[0.5, 1e-3], [0.0, 0.5 + 1e-9]])  # diagonalisable, but barely
    with pytest.raises(DiagonalizationError, match="max_condition"):
        half_states_from_real(A, np.ones((2, 1)), np.ones((1, 2)), max_condition=1e3)
    StateSpace(A, np.ones((2, 1)), np.ones((1, 2)), dt=1.0)  # a valid system all the same
