"""Open-loop arrival times: the rate offered, evenly spaced or Poisson."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gates.loadmodes.arrivals import arrival_times


@settings(max_examples=50, deadline=None)
@given(st.floats(min_value=0.1, max_value=500, allow_nan=False))
def test_constant_arrivals_are_evenly_spaced_at_the_rate(rate: float) -> None:
    times = list(itertools.islice(arrival_times(rate, "constant"), 50))
    assert times[0] == 0.0
    assert np.allclose(np.diff(times), 1 / rate)


@pytest.mark.parametrize("rate", [0.5, 3.0, 40.0])
def test_poisson_gaps_are_exponential_with_mean_one_over_rate(rate: float) -> None:
    times = np.array(list(itertools.islice(arrival_times(rate, "poisson", seed=7), 20_000)))
    gaps = np.diff(np.concatenate([[0.0], times]))
    assert (gaps > 0).all()
    # mean 1/rate (standard error 1/rate/sqrt(n) = 0.7%) and coefficient of variation 1 (exponential)
    assert gaps.mean() * rate == pytest.approx(1.0, abs=0.03)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, abs=0.05)


def test_poisson_is_reproducible_and_bad_input_refused() -> None:
    a = list(itertools.islice(arrival_times(2.0, "poisson", seed=1), 5))
    assert a == list(itertools.islice(arrival_times(2.0, "poisson", seed=1), 5))
    assert a != list(itertools.islice(arrival_times(2.0, "poisson", seed=2), 5))
    with pytest.raises(ValueError):
        next(arrival_times(0.0, "constant"))
    with pytest.raises(ValueError):
        next(arrival_times(1.0, "bursty"))
