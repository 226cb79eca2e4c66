"""The stopping rule: settled decisions on planted cases, and the judge's final look."""

from __future__ import annotations

import numpy as np
import pytest

from gates.config.schema import GatesSection
from gates.judge.adaptive import CONTINUE, FAIL, PASS, Look, Plan, mw_z, plan_for, schedule, settle
from gates.judge.classify import classify
from gates.judge.sequential import boundaries


def _lat(seed: int, n: int, scale: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).lognormal(np.log(30 * scale), 0.25, n)


def _looks(ns: list[int], total: int) -> list[Look]:
    return [Look(n, n, n / total) for n in ns]


def test_mw_z_hand_computed() -> None:
    # candidate ranks 4,5,6 of 6: U = 15 - 6 = 9, mean 4.5, var 3*3*7/12 = 5.25
    z = mw_z(np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0, 6.0]))
    assert z == pytest.approx((9 - 4.5) / 5.25**0.5)


def test_schedule_merges_looks_without_new_data() -> None:
    info, frac = schedule([Look(10, 10, 0.2), Look(10, 10, 1.0)])
    assert info == (5.0,) and frac == (1.0,)


def test_clear_regression_settles_fail_early() -> None:
    plan = Plan(tail_limits=())
    d = settle(_lat(1, 200), _lat(2, 200, 1.3), _looks([100, 200], 500), plan)
    assert d.status == FAIL and "shift" in d.reason
    shift = d.tests[0]
    assert shift.z is not None and shift.boundary is not None and shift.z >= shift.boundary


def test_identical_arms_settle_pass_once_the_interval_is_inside_the_limit() -> None:
    plan = Plan(tail_limits=(), pass_error=0.1)
    b, c = _lat(3, 2000), _lat(4, 2000)
    assert settle(b[:40], c[:40], _looks([40], 2000), plan).status == CONTINUE
    d = settle(b, c, _looks([40, 2000], 4000), plan)
    assert d.status == PASS and "settled" in d.reason


def test_last_look_always_decides() -> None:
    plan = plan_for(GatesSection(), 0.05)
    d = settle(_lat(5, 60), _lat(6, 60, 1.04), _looks([60], 60), plan)
    assert d.status in (PASS, FAIL)


def test_judge_uses_the_spent_boundary_at_the_final_look() -> None:
    # z between the fixed and the sequential critical value: fixed says High, adaptive does not
    b, c = _lat(7, 300), _lat(8, 300, 1.085)
    kw = dict(direction="increase", allowed_effect=0.05, confidence=0.99, min_samples=30)
    fixed = classify(b, c, **kw)  # type: ignore[arg-type]
    looks = _looks(list(range(30, 301, 10)), 300)
    adaptive = classify(b, c, looks=looks, **kw)  # type: ignore[arg-type]
    assert adaptive.p_value is not None and fixed.p_value is not None
    assert adaptive.p_value > fixed.p_value
    assert "adaptive load, look" in adaptive.reason and "(adjusted)" in adaptive.reason
    info, frac = schedule(looks)
    assert f"{boundaries(info, frac, 0.005)[-1]:.2f}" in adaptive.reason
