"""The state machine's checker for canary analysis: one analysis window per call.

1. The weight the target really applies must be the step's (read back from the proxy or cluster);
   one it cannot read is no data (the step holds), one that differs is a failed check.
2. The window: ``interval_s`` of what both arms serve (live, or the synthetic paired load).
3. Its figures from the metric provider; a provider that does not answer is no data.
4. Drift once per step: stable's greedy continuation of a few golden prompts scored by the canary.
5. The step's windows so far judged together (judge.py): PASS, FAIL or NODATA (hold).

After a decision the next call starts a new analysis (a FAIL's retry is judged on fresh windows).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

from gates.config.analysis import AnalysisSection, TrafficMode
from gates.config.schema import GatesSection
from gates.errors import InfraError
from gates.ledger import CanaryState
from gates.promotion.analysis.judge import WindowStatus, judge_step
from gates.promotion.analysis.providers import MetricProvider
from gates.promotion.analysis.records import WindowData
from gates.promotion.machine import CheckResult
from gates.promotion.recheck import DriftProbe

Traffic = Callable[[float], None]  # drive load for this many seconds (synthetic), then return


@dataclasses.dataclass
class AnalysisChecker:
    canary: CanaryState
    gates: GatesSection
    cfg: AnalysisSection
    provider: MetricProvider
    read_weight: Callable[[], int]
    drift: DriftProbe | None = None
    prompts: Sequence[str] = ()
    traffic: Traffic | None = None  # None: live traffic only (wait out the window)
    sleep: Callable[[float], None] = time.sleep
    _weight: int | None = dataclasses.field(default=None, init=False)
    _windows: list[WindowData] = dataclasses.field(default_factory=list, init=False)
    _top1: float | None = dataclasses.field(default=None, init=False)

    def check(self, pipeline: str, weight: int) -> CheckResult:
        if weight != self._weight:
            self._reset(weight)
        try:
            actual = self.read_weight()
        except InfraError as exc:
            return self._nodata(weight, f"could not read the canary's weight back: {exc}")
        if actual != weight:
            return CheckResult(False, f"the target applies {actual}% to the canary, not the {weight}% set", 0)
        start = time.time()
        if self.traffic is not None and self.cfg.traffic == TrafficMode.SYNTHETIC:
            self.traffic(self.cfg.interval_s)
        else:
            self.sleep(self.cfg.interval_s)
        end = time.time()
        try:
            window = self.provider.window(self.canary, self.cfg, start, end)
            top1, prompts = self._drift()
        except InfraError as exc:
            return self._nodata(weight, f"window {len(self._windows) + 1} unreadable: {exc}")
        self._windows.append(window)
        j = judge_step(self._windows, self.gates, self.cfg, top1, prompts)
        figures: dict[str, Any] = {"weight": weight, "traffic": self.cfg.traffic.value, **j.figures}
        if top1 is not None:
            figures["top1_agreement"] = round(top1, 4)
        where = f"window {len(self._windows)}/{self.cfg.max_windows} at {weight}%"
        detail = f"{where}: {_summary(window)}; {j.status}: {j.reason}"
        n = window.canary.requests
        if j.status != WindowStatus.NODATA:
            self._reset(weight)
        return CheckResult(j.status == WindowStatus.PASS, detail[:2000], n, j.status == WindowStatus.NODATA, figures)

    def _reset(self, weight: int) -> None:
        self._weight, self._windows, self._top1 = weight, [], None

    def _nodata(self, weight: int, why: str) -> CheckResult:
        figures = {"weight": weight, "decision": WindowStatus.NODATA.value, "reason": why[:1000]}
        return CheckResult(False, why[:1000], 0, hold=True, figures=figures)

    def _drift(self) -> tuple[float | None, int]:
        n = min(self.cfg.drift_prompts, len(self.prompts))
        if n == 0:
            return None, 0
        if self.drift is None:
            raise InfraError(
                "this canary target records no gRPC endpoints to compare the models on "
                "(record them, or set promotion.analysis.drift_prompts: 0)"
            )
        if self._top1 is None:
            self._top1 = self.drift.top1_agreement(list(self.prompts)[:n], self.cfg.max_new_tokens)
        return self._top1, n


def _summary(w: WindowData) -> str:
    def arm(name: str, a: Any) -> str:
        lat = a.figures().get("latency_ms")
        timing = f", p50 {lat['p50']:.0f} ms, p99 {lat['p99']:.0f} ms" if lat else ""
        return f"{name} {a.requests} req, {a.errors} err{timing}"

    return f"{arm('canary', w.canary)} vs {arm('stable', w.stable)}"
