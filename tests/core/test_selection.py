"""ssmred.selection: the order rules shared by every adapter, validated where they are made."""

from __future__ import annotations

import numpy as np
import pytest

from ssmred.selection import (
    Fraction,
    Pragmatic,
    Rank,
    Tolerance,
    check_gate,
    check_mode,
    fraction,
    numerical_rank,
    pragmatic,
    rank,
    select_orders,
    tolerance,
)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: Tolerance(5.0), r"tau must be in \[0, 1\)"),  # issue 9 defect 5: silently reduced to 1 state
        (lambda: Tolerance(-0.1), r"tau must be in \[0, 1\)"),
        (lambda: Tolerance(float("nan")), "tau must be a finite float"),
        (lambda: Tolerance(True), "tau must be a finite float"),
        (lambda: Fraction(-3.0), r"f must be in \(0, 1\)"),  # defect 5: silently skipped
        (lambda: Fraction(0.0), r"f must be in \(0, 1\)"),
        (lambda: Fraction(1.0), r"f must be in \(0, 1\)"),
        (lambda: Rank(), "exactly one of r"),
        (lambda: Rank(3, total=4), "exactly one of r"),
        (lambda: Rank(0), "r must be an int >= 1"),
        (lambda: Rank([2, 0]), r"r\[1\] must be an int >= 1"),
        (lambda: Rank([]), "must not be an empty sequence"),
        (lambda: Rank(total=1.5), "total must be an int >= 1"),
        (lambda: Pragmatic(0.1, -0.01), "tolerance must be a finite float >= 0"),
        (lambda: Pragmatic(0.1, float("inf")), "tolerance must be a finite float"),
        (lambda: Pragmatic(1.5), r"f must be in \(0, 1\)"),
    ],
)
def test_modes_validate_in_post_init(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_factories_are_the_classes():
    assert tolerance(0.1) == Tolerance(0.1)
    assert fraction(0.25) == Fraction(0.25)
    assert rank([3, 2]) == Rank((3, 2))
    assert rank(total=5) == Rank(total=5)
    assert pragmatic(0.1, 0.02) == Pragmatic(0.1, 0.02, True)
    assert isinstance(Tolerance(0).tau, float)


def test_check_mode_and_gate():
    with pytest.raises(TypeError, match="selection mode"):
        check_mode(0.1)
    for bad in (0.0, 1.5, float("nan"), True, "0.9"):
        with pytest.raises(ValueError, match="gate"):
            check_gate(bad)
    assert check_gate(1) == 1.0


def test_tolerance_is_the_discarded_fraction_of_the_plain_sum():
    hsv = [5.0, 3.0, 1.5, 0.5]  # sum 10: keep >= 9 -> 3 states
    assert select_orders(tolerance(0.1), [hsv]) == (3,)
    assert select_orders(tolerance(0.0), [hsv]) == (4,)
    assert select_orders(tolerance(0.5), [hsv]) == (1,)  # 5 >= 5


def test_fraction_and_rank():
    hsvs = [np.linspace(1, 0.1, 10), np.linspace(1, 0.1, 7)]
    assert select_orders(fraction(0.25), hsvs) == (7, 5)
    assert select_orders(pragmatic(0.25), hsvs) == (7, 5)
    assert select_orders(rank(20), hsvs) == (10, 7)  # capped at n
    assert select_orders(rank([2, 3]), hsvs) == (2, 3)
    with pytest.raises(ValueError, match="2 entries but there are 1 systems"):
        select_orders(rank([2, 3]), hsvs[:1])


def test_budget_keeps_the_largest_normalised_values():
    hsvs = [[4.0, 3.0, 2.0, 1.0], [1.0, 0.5, 0.01]]  # normalised: .4 .3 .2 .1 | .662 .331 .0066
    assert select_orders(rank(total=2), hsvs) == (1, 1)
    assert select_orders(rank(total=3), hsvs) == (1, 2)  # .331 beats .3
    assert select_orders(rank(total=5), hsvs) == (3, 2)
    with pytest.raises(ValueError, match="smaller than the number of systems"):
        select_orders(rank(total=1), hsvs)


def test_numerical_rank_caps_every_mode():
    hsv = [1.0, 1e-3, 1e-20, 0.0]
    assert numerical_rank(hsv) == 2
    assert numerical_rank([0.0, 0.0]) == 0
    assert numerical_rank(hsv, rtol=1e-2) == 1
    assert select_orders(rank(4), [hsv]) == (2,)
    assert select_orders(tolerance(0.0), [hsv]) == (2,)
    assert select_orders(rank(3), [[0.0, 0.0, 0.0]]) == (1,)  # a zero Hankel operator keeps one state


def test_bad_hsv_vectors_are_refused():
    for bad in ([], [1.0, 2.0], [1.0, -1.0], [np.nan]):
        with pytest.raises(ValueError, match="hsv"):
            select_orders(tolerance(0.1), [bad])
