"""Successive halving over group-sequential tests: measure every live candidate a little, stop each
one as soon as its fate is settled, and spend the rest of the budget on those still undecided.

The measurement of each candidate grows in rungs (``search.rungs``: shares of the pipeline's full
load, e.g. 1/4, 1/2, 1); after each rung every live candidate is looked at with the
group-sequential boundaries of gates/judge/sequential.py (information = the rung's share; error
spent by ``search.spending``), which keep each test's error at its level however many rungs are
looked at. A candidate stops when

- **its quality is settled** as *inferior* (the loss is certainly beyond the margin), or as
  *futile* (not yet shown within the margin, and the loss is certainly beyond ``futility`` × the
  margin, half by default: the full load could not show it within the margin), or its other gates
  failed: it leaves the front;
- **it is certainly dearer** than a candidate already settled *non-inferior* (the cheaper one
  PASSes quality, so this one can no longer be the answer); the same test is also made on a
  candidate's cost alone, between its load and its quality measurement, against the candidates
  already measured at the same rung (:func:`dearer_than`): a candidate it stops there does not
  spend the time of its quality measurement (``Observation.quality_measured`` false);
- **it is the answer**: settled non-inferior, and certainly cheaper than every candidate still
  running; then the search is over.

At the last rung (the full load) every test decides as a fixed design would; the recommendation
is the cheapest candidate (point estimate) settled non-inferior with every gate passed.

Error rates (one-sided, Bonferroni):
- recommending a candidate whose true quality loss is beyond the margin: ≤ ``false_recommend``
  (each of the K non-inferiority tests at ``false_recommend / K``);
- stopping a candidate as dearer than another when it is not: ≤ ``cost_error`` (each of the
  K·(K−1) ordered comparisons at ``cost_error / (K·(K−1))``).
- stopping as futile a candidate whose loss is within ``futility`` × the margin: ≤ ``miss_error``
  (``miss_error / K`` each). A futility stop can only remove chances to PASS, so it does not raise
  the false-recommendation rate.
Missing the truly cheapest non-inferior candidate is otherwise the power side: it depends on how far its
cost and quality sit from the others and the margin (benchmarks/search.py measures it).

Pure functions: the measuring is a callback, so the benchmark's simulated candidates and real gate
runs (gates/search/run.py) go through the same rule.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from enum import StrEnum

from gates.judge.sequential import boundaries


class Fate(StrEnum):
    """Why a candidate stopped (or that it ran to the end)."""

    RUNNING = "running"
    INFERIOR = "inferior"  # quality loss certainly beyond the margin
    FUTILE = "futile"  # quality loss certainly beyond search.futility of the margin: it cannot be shown within it
    GATES_FAILED = "gates_failed"  # another gate of the pipeline failed (errors, latency, ...)
    DEARER = "dearer"  # certainly dearer than a non-inferior candidate
    CHEAPEST = "cheapest"  # non-inferior and certainly cheaper than every candidate still running
    NON_INFERIOR = "non_inferior"  # settled non-inferior, not the cheapest
    UNSETTLED = "unsettled"  # the full load could not settle its quality
    UNMEASURED = "unmeasured"  # the budget ran out before its first rung


class Quality(StrEnum):
    """The non-inferiority verdict shown on the front."""

    PASS = "PASS"  # non-inferior: the loss is within the margin at the error level
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"


@dataclasses.dataclass(frozen=True)
class Observation:
    """A candidate's cumulative measurement at a rung, both against the one baseline."""

    cost: float  # log(candidate objective / baseline objective): negative is cheaper
    cost_se: float  # its standard error (0: measured exactly, e.g. model size)
    drop: float  # quality loss against the baseline (positive: worse)
    drop_se: float  # its standard error (0: measured exactly, e.g. greedy drift on fixed prompts)
    margin: float  # the non-inferiority margin of drop
    gates_pass: bool = True  # every other gate of the pipeline passed on this measurement
    # false: stopped on its cost alone before its quality was measured (dearer_than); drop is unknown
    quality_measured: bool = True


@dataclasses.dataclass(frozen=True)
class Rule:
    rungs: tuple[float, ...] = (0.25, 0.5, 1.0)
    false_recommend: float = 0.05
    cost_error: float = 0.05
    spending: str = "pocock"
    futility: float = 0.5  # share of the margin: a loss certainly beyond it stops the candidate
    miss_error: float = 0.05  # chance that a candidate with a loss within futility·margin is stopped so

    def futility_bound(self, n: int, at: int) -> float:
        return _bound(self.rungs[: at + 1], self.miss_error / max(n, 1), self.spending)

    def quality_bound(self, n: int, at: int) -> float:
        """The z a non-inferiority (or inferiority) test must reach at rung ``at`` (0-based)."""
        return _bound(self.rungs[: at + 1], self.false_recommend / max(n, 1), self.spending)

    def cost_bound(self, n: int, at: int) -> float:
        pairs = max(n * (n - 1), 1)
        return _bound(self.rungs[: at + 1], self.cost_error / pairs, self.spending)


def _bound(rungs: Sequence[float], alpha: float, spending: str) -> float:
    return boundaries(rungs, rungs, alpha, spending)[-1]


@dataclasses.dataclass
class Track:
    """One candidate's course through the rungs."""

    index: int
    fate: Fate = Fate.RUNNING
    quality: Quality = Quality.INCONCLUSIVE
    spent: float = 0.0  # the share of a full measurement it used
    last: Observation | None = None
    rung: int = -1  # the last rung measured

    def z_ni(self) -> float:
        o = self.last
        assert o is not None
        return _z(o.margin - o.drop, o.drop_se)

    def z_inferior(self) -> float:
        o = self.last
        assert o is not None
        return _z(o.drop - o.margin, o.drop_se)


def _z(diff: float, se: float) -> float:
    if se > 0:
        return diff / se
    return math.inf if diff > 0 else (-math.inf if diff < 0 else 0.0)


def cost_z(a: Observation, b: Observation) -> float:
    """z of "a is dearer than b" (both measured against the same baseline)."""
    return _z(a.cost - b.cost, math.hypot(a.cost_se, b.cost_se))


def dearer_than(
    obs: Observation, measured: Sequence[tuple[int, Observation]], rule: Rule, n: int, r: int
) -> int | None:
    """The first of ``measured`` (index, observation at rung ``r``) that is settled non-inferior
    with every gate passed and that ``obs`` is certainly dearer than, at rung ``r``'s boundaries:
    the test the end of the rung would make (:func:`_decide`), made on ``obs``'s cost alone."""
    qb, cb = rule.quality_bound(n, r), rule.cost_bound(n, r)
    for j, o in measured:
        settled = o.quality_measured and o.gates_pass and _z(o.margin - o.drop, o.drop_se) >= qb
        if settled and cost_z(obs, o) >= cb:
            return j
    return None


Measure = Callable[[int, int], Observation]  # (candidate index, rung index) -> cumulative observation


@dataclasses.dataclass(frozen=True)
class Outcome:
    tracks: tuple[Track, ...]
    recommended: int | None
    time_used: float  # in full measurements: sum of each candidate's share
    time_full: float  # gating every candidate fully: the number of candidates


def search(
    n: int,
    rule: Rule,
    measure: Measure,
    out_of_time: Callable[[], bool] = lambda: False,
    observe: Callable[[int], Observation] | None = None,
) -> Outcome:
    """Run the rule over ``n`` candidates; ``measure`` is called once per live candidate per rung.

    ``observe``: each measured candidate's observation as it stands after the rung, when it depends
    on the others' measurements too (gates/search/run.py: whether the baselines differ)."""
    tracks = [Track(i) for i in range(n)]
    for r, share in enumerate(rule.rungs):
        live = [t for t in tracks if t.fate == Fate.RUNNING]
        if not live:
            break
        for t in live:
            if out_of_time():
                break
            t.last = measure(t.index, r)
            t.spent, t.rung = share, r
        if observe is not None:
            for t in tracks:
                if t.last is not None:
                    t.last = observe(t.index)
        _decide(tracks, rule, n, r, last=r == len(rule.rungs) - 1)
        if out_of_time():
            break
    for t in tracks:
        if t.fate == Fate.RUNNING:
            t.fate = Fate.UNMEASURED if t.last is None else _final(t)
    passed = [t for t in tracks if t.quality == Quality.PASS and t.last is not None and t.last.gates_pass]
    best = min(passed, key=lambda t: t.last.cost if t.last else math.inf, default=None)
    return Outcome(tuple(tracks), best.index if best else None, sum(t.spent for t in tracks), float(n))


def _final(t: Track) -> Fate:
    """A candidate the budget stopped before the last rung: what its last look says, nothing more."""
    return Fate.NON_INFERIOR if t.quality == Quality.PASS else Fate.UNSETTLED


def _decide(tracks: list[Track], rule: Rule, n: int, r: int, last: bool) -> None:
    qb = rule.quality_bound(n, r)
    for t in tracks:
        if t.fate != Fate.RUNNING or t.rung != r or t.last is None:
            continue
        if not t.last.quality_measured:  # stopped by dearer_than before its quality measurement
            t.fate = Fate.DEARER
        elif not t.last.gates_pass:
            t.fate, t.quality = Fate.GATES_FAILED, Quality.FAIL
        elif t.z_inferior() >= qb:
            t.fate, t.quality = Fate.INFERIOR, Quality.FAIL
        elif t.z_ni() >= qb:  # shown within the margin: futility (could it still be shown?) is moot
            t.quality = Quality.PASS
        elif _z(t.last.drop - rule.futility * t.last.margin, t.last.drop_se) >= rule.futility_bound(n, r):
            t.fate, t.quality = Fate.FUTILE, Quality.FAIL
        elif last:  # the full load decides as the fixed test: not shown non-inferior
            t.fate, t.quality = Fate.UNSETTLED, Quality.FAIL
    cb = rule.cost_bound(n, r)
    settled = [t for t in tracks if t.quality == Quality.PASS and t.last is not None and t.last.gates_pass]
    live = [t for t in tracks if t.fate == Fate.RUNNING]
    for t in live:  # dearer than a non-inferior one: it cannot be the answer
        if t.last is None:
            continue  # not measured yet (the budget ran out mid-rung)
        if any(s is not t and s.last is not None and cost_z(t.last, s.last) >= cb for s in settled):
            t.fate = Fate.DEARER
    still = [t for t in tracks if t.fate == Fate.RUNNING]
    for s in settled:
        if s.fate != Fate.RUNNING:
            continue
        others = [t for t in still if t is not s]
        assert s.last is not None
        if all(t.last is not None and cost_z(t.last, s.last) >= cb for t in others):
            s.fate = Fate.CHEAPEST
            for t in others:  # the answer is settled: nothing else can change it
                t.fate = Fate.DEARER
            return
    if last:
        for t in tracks:
            if t.fate == Fate.RUNNING:
                t.fate = Fate.NON_INFERIOR if t.quality == Quality.PASS else Fate.UNSETTLED
