"""Capacity by search: bracket, then bisect the highest rate meeting the SLO, per arm, with an interval.

Every probe is one window in which both arms get load, each at its own rate (``Probe.rate_of``:
the slower arm a share of the same arrivals) or both at one; each probe informs both searches
(``probes_per_arm`` counts windows). The SLO is a limit on the p95 of one per-request metric (and
the error rate). Which rates are probed (bracket, bisect, refine around the boundaries) is
gates/judge/capacity_probes.py; this module reads the boundaries and their intervals off the probes.

The **boundary** of an arm is where its p95 crosses the limit, interpolated between the probes
read as the last passing and the first failing (where the fewest probes disagree), linearly in
1/p95 (exact for an M/M/1 queue, whose p95 is ln 20 / (μ − λ); near the knee of any server the
bracket is narrow enough for the choice to matter little). Its **interval** is a moving-block
bootstrap (gates/judge/steady.py) of every probe's requests, in arrival order after the warm-up
cut (MSER-5 where it is a real change: steady.warmup_cut), the boundary recomputed on each
replicate; ``capacity_gain`` (candidate / baseline) takes the ratio replicate by replicate, so its
interval is judged, not a ratio of bounds. Where each arm has at least three probes within 1.2×
of its boundary (the bisection puts them there), the boundary is instead the crossing of a line
of log p95 on the rate fitted to them (each probe at the rate that arrived in its measured span,
not the nominal one), with the error of that crossing from the probes' scatter around the lines
(:func:`window_error`): the line pools the probes, so the gain's interval is about half as wide
as from the two straddling probes (simulated M/M/8 servers, 240 s probes: median half-width 0.11
against 0.21, gain coverage 0.93). Both arms run in the same windows, so the gain's error pairs
their residuals window by window (a slowdown of the machine moves both crossings alike and
cancels in the ratio). A **cliff**: between two neighbouring probes (rates within 1.5×) the p95
jumped more than 3× — the boundary is then a step, not a slope, and the interpolation says where
the step is only to within those two probes (the interval then spans them whole).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.stats import t as student_t

from gates.judge.capacity_boundary import boundary_of, split
from gates.judge.steady import block_resample, warmup_cut

ARMS = ("baseline", "candidate")
CLIFF_JUMP, CLIFF_RATES = 3.0, 1.5
# The residuals' correlation counts only as far as it lies beyond chance: pulled toward 0 by 1.645
# standard errors on Fisher's z (0 where it is within them). From 6–10 windows of independent arms
# it read above 0.3 one time in eight when taken half a standard error low (0.5, before),
# narrowing the gain's interval by 20–40% on nothing.
SHRINK = 1.645


@dataclasses.dataclass(frozen=True)
class ArmProbe:
    samples: tuple[float, ...]  # the SLO metric of every successful request, in arrival order
    error_rate: float
    # requests per second that arrived at this arm in the measured span (None: not known, the
    # probe's nominal rate stands in): Poisson arrivals scatter around the nominal rate
    offered: float | None = None

    def series(self) -> NDArray[Any]:
        x = np.asarray(self.samples, dtype=float)
        return x[warmup_cut(x) :]  # MSER-5's cut where it is a real change, never a chance run


@dataclasses.dataclass(frozen=True)
class Probe:
    rate: float  # the window's arrival rate (the highest arm's)
    arms: dict[str, ArmProbe]
    # each arm's own rate where the window sent the arms different rates (a thinned share of the
    # same arrivals, gates/loadgen/open_loop.py); None: every arm got ``rate``
    arm_rates: dict[str, float] | None = None

    def rate_of(self, arm: str) -> float:
        return self.arm_rates[arm] if self.arm_rates is not None else self.rate

    def offered_of(self, arm: str) -> float:
        """The rate that arrived at ``arm`` in the measured span (its nominal rate if not known)."""
        offered = self.arms[arm].offered
        return offered if offered is not None and offered > 0 else self.rate_of(arm)

    @classmethod
    def at(cls, rates: Mapping[str, float], arms: dict[str, ArmProbe]) -> Probe:
        """A window at these rates per arm (``arm_rates`` only where they differ)."""
        return cls(max(rates.values()), arms, own_rates(rates))


def own_rates(rates: Mapping[str, float]) -> dict[str, float] | None:
    """Each arm's rate where the arms' rates differ; None where one rate serves every arm."""
    return None if len(set(rates.values())) == 1 else dict(rates)


@dataclasses.dataclass(frozen=True)
class SearchPlan:
    limit: float  # the p95 limit of the SLO metric
    error_rate_max: float
    start: float
    tolerance: float = 0.05
    max_probes: int = 12
    # each arm probed at its own rate in every window (False: one rate per window for both arms)
    per_arm: bool = False
    # once the brackets settle, keep probing around the boundaries until the gain's half-width is
    # within this (0: stop when they settle), up to max_probes
    halfwidth: float = 0.0
    confidence: float = 0.95  # of the interval whose half-width is meant (the judge's)
    min_rate: float = 1e-3
    max_rate: float = 1e4
    quantile: float = 95.0


def p95(x: NDArray[Any], q: float = 95.0) -> float:
    return float(np.percentile(x, q)) if x.size else math.inf


def passes(p: ArmProbe, plan: SearchPlan) -> bool:
    x = p.series()
    return x.size > 0 and p.error_rate <= plan.error_rate_max and p95(x, plan.quantile) <= plan.limit


def bracket(probes: Sequence[Probe], arm: str, plan: SearchPlan) -> tuple[Probe | None, Probe | None]:
    """(the last probe read as passing, the first read as failing: :func:`split`)."""
    ordered = sorted(probes, key=lambda p: p.rate_of(arm))
    k = split([passes(p.arms[arm], plan) for p in ordered])
    return (ordered[k - 1] if k > 0 else None), (ordered[k] if k < len(ordered) else None)


@dataclasses.dataclass(frozen=True)
class ArmBoundary:
    estimate: float | None  # None: no probe passed (or none failed: inf is reported as None too)
    low: float | None
    high: float | None
    cliff: str | None  # which neighbouring probes the p95 jumped between
    censored: str | None  # "above": no probe failed; "below": no probe passed


@dataclasses.dataclass(frozen=True)
class SearchResult:
    probes: tuple[Probe, ...]
    baseline: ArmBoundary
    candidate: ArmBoundary
    gain: float | None
    gain_low: float | None
    gain_high: float | None
    confidence: float
    # of the two arms' residuals around their lines in the same windows (None: no lines fitted)
    arm_correlation: float | None = None
    # the gain's half-width as if the arms' errors were independent (the search's stopping rule
    # needs both; the same as gain_halfwidth where no lines were fitted, or with paired=False)
    unpaired_halfwidth: float | None = None
    # of the gain's Student t interval (None: a bootstrap one), for gain_log_se and --replay's F test
    gain_df: int | None = None

    @property
    def probes_per_arm(self) -> int:
        return len(self.probes)

    @property
    def gain_halfwidth(self) -> float | None:
        if self.gain is None or self.gain_low is None or self.gain_high is None:
            return None
        return (self.gain_high - self.gain_low) / 2 / self.gain

    @property
    def gain_log_se(self) -> float | None:
        """The standard error of log gain its Student t interval states (None: a bootstrap one)."""
        if not (self.gain_df and self.gain_low and self.gain_high):
            return None
        t = float(student_t.ppf(0.5 + self.confidence / 2, self.gain_df))
        return math.log(self.gain_high / self.gain_low) / (2 * t)


def cliff_of(probes: Sequence[Probe], arm: str, plan: SearchPlan) -> str | None:
    ordered = sorted(probes, key=lambda p: p.rate_of(arm))
    for a, b in itertools.pairwise(ordered):
        pa, pb = p95(a.arms[arm].series(), plan.quantile), p95(b.arms[arm].series(), plan.quantile)
        ra, rb = a.rate_of(arm), b.rate_of(arm)
        if rb / ra <= CLIFF_RATES and pa > 0 and pb / pa > CLIFF_JUMP and pa <= plan.limit < pb:
            return f"p95 {pa:.0f} → {pb:.0f} between {ra:.3g} and {rb:.3g}"
    return None


def replicate_boundaries(
    probes: Sequence[Probe], arm: str, plan: SearchPlan, replicates: int, rng: np.random.Generator
) -> NDArray[Any]:
    """The boundary on each block-bootstrap replicate of every probe's requests."""
    ordered = sorted(probes, key=lambda p: p.rate_of(arm))
    rates = [p.rate_of(arm) for p in ordered]
    cols = []
    for p in ordered:
        x = p.arms[arm].series()
        if p.arms[arm].error_rate > plan.error_rate_max or not x.size:
            cols.append(np.full(replicates, math.inf))  # errors fail a probe whatever its latency
        else:
            cols.append(np.percentile(block_resample(x, replicates, rng), plan.quantile, axis=1))
    table = np.stack(cols, axis=1)
    return np.array([boundary_of(rates, list(row), plan.limit) for row in table])


@dataclasses.dataclass(frozen=True)
class LocalLine:
    """Least-squares line of log p95 on the rate through the probes near a boundary, each probe at
    the rate that arrived (:meth:`Probe.offered_of`): the p95 follows the load a window got, not
    the one it was meant to get, and a Poisson window's count scatters (60 s at 2 req/s: ±9%)."""

    slope: float
    rss: float  # residual sum of squares
    n: int  # probes
    r_mean: float
    y_mean: float
    sxx: float
    # (the probe's index among the probes given, its rate, its residual) for every point
    points: tuple[tuple[int, float, float], ...] = ()

    def crossing(self, limit: float) -> float:
        """The rate where the line reaches ``log(limit)``."""
        return self.r_mean + (math.log(limit) - self.y_mean) / self.slope

    def leverage(self, rate: float) -> float:
        """``√(1/n + (r − r̄)²/Sxx)``: the line's own error at ``rate`` over one probe's."""
        return math.sqrt(1.0 / self.n + (rate - self.r_mean) ** 2 / self.sxx)

    def weights(self, rate: float) -> dict[int, float]:
        """How much each probe's residual moves the log of the crossing at ``rate``: the crossing
        moves by −Σ hᵢ εᵢ / slope, hᵢ = 1/n + (rate − r̄)(rᵢ − r̄)/Sxx (Σ hᵢ² = leverage²)."""
        return {
            i: (1.0 / self.n + (rate - self.r_mean) * (r - self.r_mean) / self.sxx) / (self.slope * rate)
            for i, r, _ in self.points
        }


def local_line(
    probes: Sequence[Probe], arm: str, plan: SearchPlan, around: float, band: float = 1.2
) -> LocalLine | None:
    """The line through the probes within ``band``× of ``around`` (at least 3 with a finite p95), or None."""
    pts = []
    for i, p in enumerate(probes):
        a = p.arms[arm]
        v = p95(a.series(), plan.quantile) if passes_errors(a, plan) else math.inf
        if math.isfinite(v) and v > 0 and around / band <= p.offered_of(arm) <= around * band:
            pts.append((i, p.offered_of(arm), math.log(v)))
    if len(pts) < 3:
        return None
    r = np.array([x for _, x, _ in pts])
    y = np.array([v for _, _, v in pts])
    sxx = float(((r - r.mean()) ** 2).sum())
    if sxx <= 0:
        return None
    slope = float(((r - r.mean()) * (y - y.mean())).sum()) / sxx
    resid = y - y.mean() - slope * (r - r.mean())
    points = tuple((i, float(x), float(e)) for (i, x, _), e in zip(pts, resid, strict=True))
    return LocalLine(slope, float((resid**2).sum()), len(pts), float(r.mean()), float(y.mean()), sxx, points)


@dataclasses.dataclass(frozen=True)
class WindowError:
    estimates: dict[str, float]  # each arm's boundary: the crossing of its local line
    se: dict[str, float]  # of the crossing
    window_se: dict[str, float]  # of a boundary read off one window's p95: the scatter over the slope
    df: int
    gain_se: float  # of the log of the gain, the arms' errors paired window by window
    correlation: float  # of the two arms' residuals in the windows both lines went through


def window_error(probes: Sequence[Probe], plan: SearchPlan, estimates: dict[str, float]) -> WindowError | None:
    """Each arm's boundary as the crossing of a line of log p95 on the rate fitted to the probes
    near it, with its standard error from the window-to-window scatter around the lines (residuals
    pooled over both arms), and the degrees of freedom.

    Near capacity a window holds a few long busy periods, so resampling one window's requests
    misses most of the variation between windows; the probes the bisection put around the
    boundary measure it directly. The fitted line pools them: interpolating between the two
    probes that straddle the limit rests on two windows' p95s, each with the whole scatter
    (the error was ``s / slope``, now ``s / slope · √(1/n + (r* − r̄)²/Sxx)``).

    Both arms run in the same windows, and what slows a window (a shared machine, a noisy
    neighbour) slows both; how much it does varies (the demo runs of 2026-12-05 measured −0.2 to
    0.4 with the shrink of then, a shared slowdown in simulation 0.9). The gain's error pairs them:
    Var(log gain) = s²(Σ g_b² + Σ g_c² − 2ρ Σ g_b g_c), the g the weights of each window in each
    log crossing (:meth:`LocalLine.weights`), ρ the residuals' correlation over the windows both
    lines pass through (independent arms: ρ ≈ 0, the unpaired error), pulled 1.645 standard errors
    toward 0 on Fisher's z (``SHRINK``): from 6–10 windows the estimate scatters ±0.3, so the
    pairing narrows (or widens) the gain only where the windows show a shared part (or an opposed
    one) beyond chance. (Taken half a standard error low, a chance correlation of independent arms
    narrowed the interval by 20–40% one time in eight.)"""
    lines = {arm: local_line(probes, arm, plan, est) for arm, est in estimates.items()}
    if any(v is None or v.slope <= 0 for v in lines.values()):
        return None
    df = sum(v.n - 2 for v in lines.values() if v is not None)
    if df < 2:
        return None
    s = math.sqrt(sum(v.rss for v in lines.values() if v is not None) / df)
    crossings, se, window, weights = {}, {}, {}, {}
    for arm, line in lines.items():
        assert line is not None
        r = line.crossing(plan.limit)
        if not 0 < r < 2 * estimates[arm]:  # a line too flat to place the crossing: keep the interpolation
            return None
        crossings[arm], se[arm], window[arm] = r, s / line.slope * line.leverage(r), s / line.slope
        weights[arm] = line.weights(r)
    b, c = lines["baseline"], lines["candidate"]
    assert b is not None and c is not None
    rho = _correlation(b, c)
    gb, gc = weights["baseline"], weights["candidate"]
    shared = sum(gb[i] * gc[i] for i in gb.keys() & gc.keys())
    var = s * s * (sum(v * v for v in gb.values()) + sum(v * v for v in gc.values()) - 2 * rho * shared)
    return WindowError(crossings, se, window, df, math.sqrt(max(var, 0.0)), rho)


def _correlation(b: LocalLine, c: LocalLine) -> float:
    """Of the two lines' residuals in the windows both pass through, pulled toward 0 (``SHRINK``):
    0 where fewer than 4 (Fisher's z needs 4)."""
    eb, ec = {i: e for i, _, e in b.points}, {i: e for i, _, e in c.points}
    both = sorted(eb.keys() & ec.keys())
    if len(both) < 4:
        return 0.0
    x, y = np.array([eb[i] for i in both]), np.array([ec[i] for i in both])
    den = math.sqrt(float((x * x).sum() * (y * y).sum()))
    rho = float((x * y).sum()) / den if den > 0 else 0.0
    z = math.atanh(max(min(rho, 0.999), -0.999))
    return math.tanh(math.copysign(max(abs(z) - SHRINK / math.sqrt(len(both) - 3), 0.0), z))


def search_result(
    probes: Sequence[Probe],
    plan: SearchPlan,
    confidence: float = 0.95,
    replicates: int = 1000,
    seed: int = 0,
    paired: bool = True,
) -> SearchResult:
    """Each arm's boundary with its interval, and the gain with its own (see the module docstring).
    ``paired=False``: the gain's error treats the arms as independent (for the benchmark's side by
    side comparison)."""
    rng = np.random.default_rng(seed)
    ordered = sorted(probes, key=lambda p: p.rate)
    tail = (1 - confidence) / 2 * 100
    arms: dict[str, ArmBoundary] = {}
    reps: dict[str, NDArray[Any]] = {}
    for arm in ARMS:
        by_rate = sorted(probes, key=lambda p: p.rate_of(arm))
        rates = [p.rate_of(arm) for p in by_rate]
        point = [
            p95(p.arms[arm].series(), plan.quantile) if passes_errors(p.arms[arm], plan) else math.inf for p in by_rate
        ]
        est = boundary_of(rates, point, plan.limit)
        reps[arm] = replicate_boundaries(by_rate, arm, plan, replicates, rng)
        low, high = (float(v) for v in np.percentile(reps[arm], [tail, 100 - tail], method="nearest"))
        censored = "above" if est == math.inf else "below" if est == 0.0 else None
        arms[arm] = ArmBoundary(
            None if censored else est, _finite(low), _finite(high), cliff_of(by_rate, arm, plan), censored
        )
    b, c = arms["baseline"], arms["candidate"]
    gain = gain_low = gain_high = unpaired = None
    scatter = (
        window_error(ordered, plan, {"baseline": b.estimate, "candidate": c.estimate})
        if b.estimate and c.estimate
        else None
    )
    if scatter is not None and b.estimate and c.estimate:
        se, df = scatter.se, scatter.df
        t = float(student_t.ppf(0.5 + confidence / 2, df))
        for arm, est in scatter.estimates.items():
            # An arm's own interval keeps a single window's error around both the fitted crossing and
            # the interpolation: short windows started empty read the p95 low near the knee (a
            # window rarely holds a long busy period), a bias the scatter cannot show; with the
            # crossing's error alone the baseline's interval covered the truth 84% of the time on
            # simulated M/M/8 servers. The gain's is the crossings' own: the bias is common to
            # both arms and cancels in the ratio (its coverage, 93%, is measured there too).
            boot, interp, w = arms[arm], arms[arm].estimate or est, scatter.window_se[arm]
            low = min(boot.low or est, est - t * w, interp - t * w)  # the widest: none is trusted alone
            high = max(boot.high or est, est + t * w, interp + t * w)
            arms[arm] = dataclasses.replace(boot, estimate=est, low=_finite(low), high=_finite(high))
        b, c = arms["baseline"], arms["candidate"]
        gain = c.estimate / b.estimate if b.estimate and c.estimate else None
        alone = math.hypot(se["baseline"] / b.estimate, se["candidate"] / c.estimate)  # type: ignore[operator]
        rel = scatter.gain_se if paired else alone
        if gain is not None:
            gain_low, gain_high = gain * math.exp(-t * rel), gain * math.exp(t * rel)
            unpaired = math.sinh(t * alone)  # (e^(t·se) − e^(−t·se)) / 2: gain_halfwidth's form
    elif b.estimate and c.estimate:
        gain = c.estimate / b.estimate
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = reps["candidate"] / reps["baseline"]  # replicate by replicate: the gain's own interval
        ratio = np.where(np.isnan(ratio), np.inf, ratio)
        gain_low, gain_high = (_finite(float(v)) for v in np.percentile(ratio, [tail, 100 - tail], method="nearest"))
    rho = scatter.correlation if scatter is not None else None
    res = SearchResult(tuple(ordered), b, c, gain, gain_low, gain_high, confidence, rho)
    return dataclasses.replace(
        res,
        unpaired_halfwidth=res.gain_halfwidth if unpaired is None else unpaired,
        gain_df=scatter.df if scatter is not None and gain is not None else None,
    )


def passes_errors(p: ArmProbe, plan: SearchPlan) -> bool:
    return p.error_rate <= plan.error_rate_max and bool(p.samples)


def _finite(v: float) -> float | None:
    return v if math.isfinite(v) and v > 0 else None
