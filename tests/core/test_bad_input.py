"""Bad input gets a typed error whose message names the argument (and the expected / actual value).

Every ``pytest.raises`` checks both the exception class (``DimensionError``, ``NotStableError``,
``ValueError``, ``TypeError``) and, with ``match``, that the message names the offending argument.
"""

from __future__ import annotations

import numpy as np
import pytest

import ssmred
from ssmred import StateSpace
from ssmred.errors import DimensionError, NotStableError

A2 = np.diag([-1.0, -2.0])
B2 = np.array([[1.0], [1.0]])
C2 = np.array([[1.0, 0.5]])


@pytest.fixture
def stable() -> StateSpace:
    return StateSpace(A2, B2, C2)


@pytest.fixture
def stable_dt() -> StateSpace:
    return StateSpace([[0.5, 0.2], [0.0, -0.3]], B2, C2, dt=1.0)


# ---------------------------------------------------------------------------------------- NaN / Inf
@pytest.mark.parametrize("name", ["A", "B", "C", "D"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, complex(np.nan, 0.0), complex(0.0, np.inf)])
def test_non_finite_entries(name, bad):
    mats = {"A": A2.astype(complex), "B": B2.astype(complex), "C": C2.astype(complex), "D": np.zeros((1, 1), complex)}
    mats[name] = mats[name].copy()
    mats[name][0, 0] = bad
    with pytest.raises(ValueError, match=rf"^{name} must be finite; entry \(0, 0\)"):
        StateSpace(mats["A"], mats["B"], mats["C"], mats["D"])


# ---------------------------------------------------------------------------------------- shapes
@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"A": np.ones((2, 3))}, r"A must be square .*got shape \(2, 3\)"),
        ({"A": np.ones((2, 2, 2))}, r"A must be a 2-D array .*got 3-D array of shape \(2, 2, 2\)"),
        ({"A": np.ones(2)}, r"A must be a 2-D array .*got 1-D"),
        ({"B": np.ones(2)}, r"B must be a 2-D array of shape \(n_states=2, n_inputs\); got 1-D array of shape \(2,\)"),
        ({"C": np.ones(2)}, r"C must be a 2-D array .*got 1-D"),
        ({"D": np.ones(1)}, r"D must be a 2-D array .*got 1-D"),
        ({"B": np.ones((3, 1))}, r"B must have shape \(n_states=2, n_inputs>=1\); got \(3, 1\)"),
        ({"B": np.ones((2, 0))}, r"B must have shape \(n_states=2, n_inputs>=1\); got \(2, 0\)"),
        ({"C": np.ones((1, 3))}, r"C must have shape \(n_outputs>=1, n_states=2\); got \(1, 3\)"),
        ({"C": np.ones((0, 2))}, r"C must have shape \(n_outputs>=1, n_states=2\); got \(0, 2\)"),
        ({"D": np.ones((2, 2))}, r"D must have shape \(n_outputs=1, n_inputs=1\); got \(2, 2\)"),
        ({"D": np.ones((1, 2))}, r"D must have shape \(n_outputs=1, n_inputs=1\); got \(1, 2\)"),
        ({"A": np.ones((0, 0)), "B": np.ones((0, 1)), "C": np.ones((1, 0))}, r"A must have at least one state"),
        ({"A": [[1.0, 2.0], [3.0]]}, r"A could not be converted to an array.*expected \(n_states, n_states\)"),
    ],
)
def test_shapes(kwargs, pattern):
    mats = {"A": A2, "B": B2, "C": C2, "D": None} | kwargs
    with pytest.raises(DimensionError, match=pattern):
        StateSpace(mats["A"], mats["B"], mats["C"], mats["D"])


def test_dimension_error_is_a_value_error():
    with pytest.raises(ValueError, match="A must be square"):
        StateSpace(np.ones((2, 3)), B2, C2)


@pytest.mark.parametrize("name", ["A", "B", "C", "D"])
def test_non_numeric_matrix(name):
    mats = {"A": A2, "B": B2, "C": C2, "D": np.zeros((1, 1))}
    mats[name] = np.full(mats[name].shape, "x")
    with pytest.raises(TypeError, match=rf"{name} must be a numeric array .*dtype <U1"):
        StateSpace(mats["A"], mats["B"], mats["C"], mats["D"])


# ---------------------------------------------------------------------------------------- dt
@pytest.mark.parametrize(
    ("dt", "exc", "shown"),
    [
        (0, ValueError, "got 0"),
        (0.0, ValueError, r"got 0\.0"),
        (-0.1, ValueError, r"got -0\.1"),
        (np.inf, ValueError, "got inf"),
        (-np.inf, ValueError, "got -inf"),
        (np.nan, ValueError, "got nan"),
        (True, TypeError, "got True of type bool"),
        (False, TypeError, "got False of type bool"),
        (np.bool_(True), TypeError, "got .*True"),
        ("0.1", TypeError, "got '0.1' of type str"),
        (1j, TypeError, "got 1j of type complex"),
        ([0.1], TypeError, "of type list"),
    ],
)
def test_bad_dt(dt, exc, shown):
    with pytest.raises(exc, match=rf"^dt must be None \(continuous time\) or .*float > 0.*{shown}"):
        StateSpace(A2, B2, C2, dt=dt)


@pytest.mark.parametrize("dt", [0, True, -1.0, np.inf])
def test_bad_dt_everywhere(dt):
    """``dt`` is validated by every entry point that takes it, not only by StateSpace."""
    sys = StateSpace(A2, B2, C2)
    with pytest.raises((ValueError, TypeError), match="^dt must be None"):
        sys.with_(dt=dt)
    with pytest.raises((ValueError, TypeError), match="^dt must be None"):
        ssmred.hsv_diagonal([0.5, 0.1], B2, C2, dt=dt)
    with pytest.raises((ValueError, TypeError), match="^dt must be None"):
        ssmred.diagonal_gramians([0.5, 0.1], B2, C2, dt=dt)
    with pytest.raises((ValueError, TypeError), match="^dt must be None"):
        ssmred.from_diagonal([0.5, 0.1], B2, C2, dt=dt)
    with pytest.raises((ValueError, TypeError), match="^dt must be None"):
        ssmred.random_stable(2, dt=dt, rng=0)


# ---------------------------------------------------------------------------------------- unstable systems
UNSTABLE = [
    pytest.param(StateSpace([[1.0, 0.0], [0.0, -1.0]], B2, C2), r"spectral abscissa is 1\b", id="ct-unstable"),
    pytest.param(StateSpace([[0.0, 0.0], [0.0, -1.0]], B2, C2), r"spectral abscissa is 0\b", id="ct-marginal"),
    pytest.param(StateSpace([[-1.0 + 0.0j, 0.0], [0.0, 1e-3 + 5j]], B2, C2), r"abscissa is 0.001", id="ct-complex"),
    pytest.param(StateSpace([[1.0, 0.0], [0.0, 0.5]], B2, C2, dt=1.0), r"spectral radius is 1\b", id="dt-marginal"),
    pytest.param(StateSpace([[0.0, 1.0], [-1.0, 0.0]], B2, C2, dt=0.1), r"spectral radius is 1\b", id="dt-rotation"),
    pytest.param(StateSpace([[-1.5, 0.0], [0.0, 0.5j]], B2, C2, dt=1.0), r"spectral radius is 1.5", id="dt-complex"),
]

UNSTABLE_CALLS = [
    pytest.param(ssmred.hankel_singular_values, id="hankel_singular_values"),
    pytest.param(ssmred.controllability_gramian, id="controllability_gramian"),
    pytest.param(ssmred.observability_gramian, id="observability_gramian"),
    pytest.param(ssmred.gramian_factors, id="gramian_factors"),
    pytest.param(lambda s: ssmred.hankel_singular_values(s, method="scipy"), id="hsv-scipy"),
    pytest.param(lambda s: ssmred.balanced_truncation(s, 1), id="balanced_truncation"),
    pytest.param(lambda s: ssmred.balanced_truncation(s, 1, method="sr"), id="balanced_truncation-sr"),
    pytest.param(ssmred.BalancedTruncation, id="BalancedTruncation"),
    pytest.param(lambda s: ssmred.singular_perturbation(s, 1), id="singular_perturbation"),
    pytest.param(ssmred.h2_norm, id="h2_norm"),
    pytest.param(ssmred.hinf_norm, id="hinf_norm"),
    pytest.param(ssmred.peak_gain, id="peak_gain"),
    pytest.param(ssmred.hankel_norm, id="hankel_norm"),
]


@pytest.mark.parametrize("call", UNSTABLE_CALLS)
@pytest.mark.parametrize(("sys", "actual"), UNSTABLE)
def test_unstable_system(call, sys, actual):
    kind = "discrete-time" if sys.is_discrete else "continuous-time"
    with pytest.raises(NotStableError, match=rf"stable {kind} system .*{actual}"):
        call(sys)


@pytest.mark.parametrize(
    ("lam", "dt", "pattern"),
    [
        ([0.5, 1.0], 1.0, r"\|lam\| < 1; max \|lam\| = 1\b"),
        ([0.5, 0.8 + 0.7j], 1.0, r"\|lam\| < 1; max \|lam\| = 1.06"),
        ([-0.5, 0.0], None, r"Re\(lam\) < 0; max Re\(lam\) = 0\b"),
        ([-0.5, 2.0 + 1j], None, r"Re\(lam\) < 0; max Re\(lam\) = 2\b"),
    ],
)
def test_unstable_diagonal(lam, dt, pattern):
    with pytest.raises(NotStableError, match=pattern):
        ssmred.hsv_diagonal(lam, B2, C2, dt=dt)
    with pytest.raises(NotStableError, match=pattern):
        ssmred.diagonal_gramians(lam, B2, C2, dt=dt)


# ---------------------------------------------------------------------------------------- order selection
@pytest.mark.parametrize("r", [0, -1, 3, 100])
def test_r_out_of_range(stable, r):
    with pytest.raises(ValueError, match=rf"r must satisfy 1 <= r <= n_states=2; got r={r}"):
        ssmred.balanced_truncation(stable, r)
    with pytest.raises(ValueError, match=rf"r must satisfy 1 <= r <= n_states=2; got r={r}"):
        ssmred.singular_perturbation(stable, r)
    with pytest.raises(ValueError, match=rf"r must satisfy 1 <= r <= n_states=2; got r={r}"):
        ssmred.BalancedTruncation(stable).reduce(r)


@pytest.mark.parametrize(("r", "tname"), [(1.5, "float"), (2.0, "float"), (True, "bool"), ("1", "str")])
def test_r_not_an_int(stable, r, tname):
    with pytest.raises(TypeError, match=rf"r must be an int; got {tname}"):
        ssmred.balanced_truncation(stable, r)


def test_r_numpy_integer_accepted(stable):
    res = ssmred.balanced_truncation(stable, np.int64(1))
    assert res.r == 1
    assert type(res.r) is int


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"r": 1, "tol": 0.1}, r"\['r', 'tol'\]"),
        ({"r": 1, "energy": 0.1}, r"\['r', 'energy'\]"),
        ({"tol": 0.1, "energy": 0.1}, r"\['tol', 'energy'\]"),
        ({"r": 1, "tol": 0.1, "energy": 0.1}, r"\['r', 'tol', 'energy'\]"),
        ({}, "none"),
    ],
)
def test_exactly_one_selector(stable, kwargs, named):
    pattern = rf"exactly one of r, tol, energy; got {named}"
    with pytest.raises(ValueError, match=pattern):
        ssmred.balanced_truncation(stable, **kwargs)
    with pytest.raises(ValueError, match=pattern):
        ssmred.singular_perturbation(stable, **kwargs)


@pytest.mark.parametrize("energy", [1.0, 1.5, -0.1, -1e-12, np.nan, np.inf, True])
def test_energy_out_of_range(stable, energy):
    pattern = r"energy \(τ, the discarded fraction of the HSV sum\) must be in \[0, 1\)"
    with pytest.raises(ValueError, match=pattern):
        ssmred.balanced_truncation(stable, energy=energy)
    with pytest.raises(ValueError, match=pattern):
        ssmred.order_from_energy([2.0, 1.0], energy)


@pytest.mark.parametrize("tol", [0.0, -1.0, np.nan, np.inf, True])
def test_tol_not_positive(stable, tol):
    pattern = r"tol \(admissible H-infinity error\) must be a finite number > 0"
    with pytest.raises(ValueError, match=pattern):
        ssmred.balanced_truncation(stable, tol=tol)
    with pytest.raises(ValueError, match=pattern):
        ssmred.singular_perturbation(stable, tol=tol)


@pytest.mark.parametrize(
    ("hsv", "pattern"),
    [
        ([1.0, 2.0], "hsv must be sorted in descending order"),
        ([1.0, -0.5], "hsv must be finite and non-negative"),
        ([1.0, np.nan], "hsv must be finite and non-negative"),
        ([], r"hsv must be a non-empty 1-D array; got shape \(0,\)"),
        ([[1.0]], r"hsv must be a non-empty 1-D array; got shape \(1, 1\)"),
    ],
)
def test_bad_hsv_for_bounds(hsv, pattern):
    with pytest.raises(ValueError, match=pattern):
        ssmred.bt_error_bounds(hsv)


# ---------------------------------------------------------------------------------------- methods
@pytest.mark.parametrize("method", ["foo", "SR", "", None, 1])
def test_unknown_bt_method(stable, method):
    with pytest.raises(ValueError, match=r"method must be one of 'sr', 'bfsr'; got"):
        ssmred.balanced_truncation(stable, 1, method=method)


GRAMIAN_CALLS = [
    pytest.param(lambda s, m: ssmred.hankel_singular_values(s, method=m), id="hankel_singular_values"),
    pytest.param(lambda s, m: ssmred.controllability_gramian(s, method=m), id="controllability_gramian"),
    pytest.param(lambda s, m: ssmred.observability_gramian(s, method=m), id="observability_gramian"),
    pytest.param(lambda s, m: ssmred.gramian_factors(s, method=m), id="gramian_factors"),
    pytest.param(lambda s, m: ssmred.balanced_truncation(s, 1, gramian_method=m), id="balanced_truncation"),
    pytest.param(lambda s, m: ssmred.singular_perturbation(s, 1, gramian_method=m), id="singular_perturbation"),
]


@pytest.mark.parametrize("call", GRAMIAN_CALLS)
@pytest.mark.parametrize("method", ["foo", "Scipy", "lapack", None])
def test_unknown_gramian_method(stable, call, method):
    pattern = r"method must be one of 'auto', 'scipy', 'slycot', 'diagonal'; got"
    with pytest.raises(ValueError, match=pattern):
        call(stable, method)


@pytest.mark.parametrize("call", GRAMIAN_CALLS)
@pytest.mark.parametrize("dt", [None, 1.0])
def test_slycot_with_complex_system(call, dt):
    sys = StateSpace(np.diag([-0.5 + 0.2j, -0.3]), B2, C2, dt=dt)
    with pytest.raises(TypeError, match=r"method='slycot' is real-only.*to_real\(\)"):
        call(sys, "slycot")


@pytest.mark.parametrize("call", GRAMIAN_CALLS)
def test_diagonal_method_with_dense_a(call):
    sys = StateSpace([[-1.0, 0.5], [0.0, -2.0]], B2, C2)
    with pytest.raises(ValueError, match=r"method='diagonal' needs a diagonal A"):
        call(sys, "diagonal")


# ---------------------------------------------------------------------------------------- wrong types
@pytest.mark.parametrize(
    "call",
    [
        pytest.param(ssmred.hankel_singular_values, id="hankel_singular_values"),
        pytest.param(ssmred.controllability_gramian, id="controllability_gramian"),
        pytest.param(ssmred.observability_gramian, id="observability_gramian"),
        pytest.param(ssmred.gramian_factors, id="gramian_factors"),
        pytest.param(lambda s: ssmred.balanced_truncation(s, 1), id="balanced_truncation"),
        pytest.param(lambda s: ssmred.singular_perturbation(s, 1), id="singular_perturbation"),
        pytest.param(ssmred.h2_norm, id="h2_norm"),
        pytest.param(ssmred.hinf_norm, id="hinf_norm"),
        pytest.param(ssmred.hankel_norm, id="hankel_norm"),
    ],
)
@pytest.mark.parametrize("bad", [np.eye(2), "sys", None], ids=["ndarray", "str", "None"])
def test_sys_must_be_a_statespace(call, bad):
    with pytest.raises(TypeError, match=r"sys must be a ssmred.StateSpace; got"):
        call(bad)


# ---------------------------------------------------------------------------------------- diagonal batch inputs
@pytest.mark.parametrize(
    ("lam", "B", "C", "pattern"),
    [
        ([0.5, 0.1], np.ones((3, 1)), np.ones((1, 2)), r"B must have shape \(2, 'n_inputs'\) .*got \(3, 1\)"),
        ([0.5, 0.1], np.ones(2), np.ones((1, 2)), r"B must have shape .*got \(2,\)"),
        ([0.5, 0.1], np.ones((2, 1)), np.ones((1, 3)), r"C must have shape \('n_outputs', 2\) .*got \(1, 3\)"),
        ([[0.5, 0.1]], np.ones((2, 2, 1)), np.ones((1, 1, 2)), r"B must have shape \(1, 2, 'n_inputs'\)"),
        ([], np.ones((0, 1)), np.ones((1, 0)), r"lam must have shape \(..., n_states\) with n_states >= 1"),
        (0.5, np.ones((1, 1)), np.ones((1, 1)), r"lam must have shape"),
    ],
)
def test_diagonal_shapes(lam, B, C, pattern):
    with pytest.raises(DimensionError, match=pattern):
        ssmred.hsv_diagonal(lam, B, C, dt=1.0)
    with pytest.raises(DimensionError, match=pattern):
        ssmred.diagonal_gramians(lam, B, C, dt=1.0)


@pytest.mark.parametrize("which", ["lam", "B", "C"])
def test_diagonal_non_finite(which):
    args = {"lam": np.array([0.5, 0.1]), "B": np.ones((2, 1)), "C": np.ones((1, 2))}
    args[which] = args[which].astype(float).copy()
    args[which].flat[0] = np.nan
    with pytest.raises(ValueError, match=rf"^{which} must be finite"):
        ssmred.hsv_diagonal(args["lam"], args["B"], args["C"], dt=1.0)


# ---------------------------------------------------------------------------------------- constructors, misc
def test_from_diagonal_eigs_must_be_1d():
    with pytest.raises(DimensionError, match=r"eigs must be 1-D .*got shape \(2, 2\)"):
        ssmred.from_diagonal(np.eye(2), B2, C2)


def test_from_diagonal_shape_mismatch():
    with pytest.raises(DimensionError, match=r"B must have shape \(n_states=3"):
        ssmred.from_diagonal([0.5, 0.1, 0.2], B2, C2)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"n_states": 0}, "n_states must be a positive integer; got 0"),
        ({"n_states": 2.5}, "n_states must be a positive integer; got 2.5"),
        ({"n_states": True}, "n_states must be a positive integer; got True"),
        ({"n_states": 2, "n_inputs": 0}, "n_inputs must be a positive integer; got 0"),
        ({"n_states": 2, "n_outputs": -1}, "n_outputs must be a positive integer; got -1"),
        ({"n_states": 2, "margin": 0.0}, r"margin must be in \(0, 1\); got 0.0"),
        ({"n_states": 2, "margin": 1.5}, r"margin must be in \(0, 1\); got 1.5"),
        ({"n_states": 2, "margin": np.nan}, r"margin must be in \(0, 1\); got nan"),
    ],
)
def test_random_stable_arguments(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        ssmred.random_stable(**kwargs)


@pytest.mark.parametrize("omega", [np.ones((2, 2)), [np.nan], [np.inf], [1j]])
def test_frequency_response_omega(stable, omega):
    with pytest.raises(ValueError, match="omega must be a finite real 1-D array"):
        stable.frequency_response(omega)


@pytest.mark.parametrize("rtol", [0.0, -1.0, np.nan])
def test_hinf_rtol_validated(stable, rtol):
    with pytest.raises(ValueError, match="rtol"):
        ssmred.hinf_norm(stable, rtol=rtol)


def test_with_unknown_field(stable):
    with pytest.raises(TypeError, match=r"with_\(\) got unknown field\(s\) \['F'\]; valid: A, B, C, D, dt"):
        stable.with_(F=1)


def test_diagonal_routines_need_an_explicit_time_base():
    """A CT eigenvalue set with |lambda| < 1 must not be analysed as DT by default (issue 9, defect 7)."""
    lam, B, C = np.array([-0.5, -0.2]), np.ones((2, 1)), np.ones((1, 2))
    with pytest.raises(TypeError, match="dt"):
        ssmred.hsv_diagonal(lam, B, C)
    with pytest.raises(TypeError, match="dt"):
        ssmred.diagonal_gramians(lam, B, C)
    ct = ssmred.hsv_diagonal(lam, B, C, dt=None)
    np.testing.assert_allclose(ct, ssmred.hankel_singular_values(ssmred.from_diagonal(lam, B, C)), rtol=1e-12)
