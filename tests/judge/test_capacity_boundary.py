"""The pass/fail split of an arm's probes and the boundary interpolated there (gates/judge/capacity_boundary.py)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gates.judge.capacity_boundary import boundary_of, split


def test_the_boundary_interpolates_in_inverse_p95() -> None:
    # 1/p95 linear in the rate: 1 at rate 1, 0.25 at rate 4 -> 0.5 two thirds of the way, at rate 3
    assert boundary_of([1.0, 4.0], [1.0, 4.0], 2.0) == pytest.approx(3.0)
    assert boundary_of([1.0, 2.0], [1.0, 1.5], 2.0) == math.inf  # never failed: above the probes
    assert boundary_of([1.0, 2.0], [3.0, 4.0], 2.0) == 0.0  # never passed: below them


@given(st.lists(st.booleans(), max_size=14))
def test_the_split_disagrees_with_the_fewest_probes(passed: list[bool]) -> None:
    def wrong(k: int) -> int:
        return sum(not ok for ok in passed[:k]) + sum(passed[k:])

    k = split(passed)
    assert wrong(k) == min(wrong(j) for j in range(len(passed) + 1))
    assert all(wrong(j) > wrong(k) for j in range(k))  # the lowest such: the conservative reading
    if passed == sorted(passed, reverse=True):  # every probe agrees: the first failing one
        assert k == passed.count(True)
