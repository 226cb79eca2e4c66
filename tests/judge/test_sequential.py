"""Group-sequential boundaries on hand-computed and published cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import multivariate_normal, norm

from gates.judge.sequential import OBRIEN_FLEMING, POCOCK, boundaries, spent, stagewise_p


def test_spending_functions_hand_computed() -> None:
    # O'Brien-Fleming type at t=1/4, alpha=0.025: 2 - 2 Phi(z_{0.9875} / 0.5) = 2 - 2 Phi(4.4826)
    assert spent(0.25, 0.025) == pytest.approx(2 - 2 * norm.cdf(norm.ppf(0.9875) * 2), rel=1e-9)
    assert spent(1.0, 0.025) == pytest.approx(0.025)
    assert spent(0.5, 0.025, POCOCK) == pytest.approx(0.025 * math.log(1 + (math.e - 1) * 0.5))
    assert spent(0.0, 0.025) == 0.0
    with pytest.raises(ValueError, match="unknown spending"):
        spent(0.5, 0.025, "haybittle")


def test_one_look_is_the_fixed_test() -> None:
    assert boundaries([10.0], [1.0], 0.005)[0] == pytest.approx(norm.isf(0.005), abs=1e-8)


def test_five_equal_looks_match_published_obrien_fleming_boundaries() -> None:
    # Lan-DeMets O'Brien-Fleming type, one-sided 0.025, 5 equally spaced looks (rpact / gsDesign)
    got = boundaries([1, 2, 3, 4, 5], [0.2, 0.4, 0.6, 0.8, 1.0], 0.025, OBRIEN_FLEMING)
    assert got == pytest.approx((4.877, 3.357, 2.680, 2.290, 2.031), abs=2e-3)


def test_two_looks_against_the_bivariate_normal() -> None:
    # look 1 at info 1 (fraction 0.5), look 2 at info 2: corr = sqrt(1/2)
    alpha = 0.01
    c1, c2 = boundaries([1.0, 2.0], [0.5, 1.0], alpha)
    assert c1 == pytest.approx(norm.isf(spent(0.5, alpha)), abs=1e-8)
    rho = math.sqrt(0.5)
    both_below = multivariate_normal(mean=[0, 0], cov=[[1, rho], [rho, 1]]).cdf([c1, c2])
    assert 1 - both_below == pytest.approx(alpha, abs=2e-5)


def test_repeated_looks_keep_the_error_by_simulation() -> None:
    rng = np.random.default_rng(0)
    info = np.arange(1, 11, dtype=float)
    c = np.array(boundaries(info, info / 10, 0.05))
    z = np.cumsum(rng.standard_normal((40_000, 10)), axis=1) / np.sqrt(info)
    crossed = (z >= c).any(axis=1).mean()
    naive = (z >= norm.isf(0.05)).any(axis=1).mean()
    assert crossed == pytest.approx(0.05, abs=0.006)
    assert naive > 0.15  # what looking ten times at the fixed critical value does


def test_nothing_left_to_spend_is_an_infinite_boundary_and_bad_info_is_refused() -> None:
    assert math.isinf(boundaries([1.0, 2.0], [1e-6, 1.0], 0.005)[0])
    with pytest.raises(ValueError, match="grow"):
        boundaries([2.0, 1.0], [0.5, 1.0], 0.005)


def test_stagewise_p_agrees_with_the_boundary() -> None:
    info, frac = [1.0, 2.0, 3.0], [1 / 3, 2 / 3, 1.0]
    c = boundaries(info, frac, 0.005)
    assert stagewise_p(c[-1], info, frac, 0.005) == pytest.approx(0.005, abs=1e-7)
    assert stagewise_p(c[-1] + 0.3, info, frac, 0.005) < 0.005 < stagewise_p(c[-1] - 0.3, info, frac, 0.005)
    assert stagewise_p(5.0, [1.0], [1.0], 0.005) == pytest.approx(norm.sf(5.0))
