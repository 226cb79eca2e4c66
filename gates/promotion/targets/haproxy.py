"""The local canary through HAProxy (gates/promotion/haproxy.py): weights over its admin socket,
read back from it; the analysis reads its per-request log (the ``proxy`` metric provider).

The ledger records where the proxy is (``CanaryState.endpoint``, JSON): its address, admin socket,
log file and PID, the served model name, and Triton's endpoints for drift.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gates.config.analysis import AnalysisSection
from gates.config.promotion import RecheckSection
from gates.config.schema import GatesSection
from gates.ledger import CanaryState
from gates.promotion.analysis.checker import AnalysisChecker
from gates.promotion.analysis.providers import PROVIDERS
from gates.promotion.analysis.synthetic import paired_load
from gates.promotion.haproxy import HAProxyEndpoint, read_split, set_split
from gates.promotion.machine import Checker
from gates.promotion.recheck import DriftProbe, LiveChecker, stream_once
from gates.promotion.targets.base import cannot_mirror


class HAProxyTarget:
    kind = "haproxy"

    def __init__(self, state: CanaryState):
        self.state = state
        self.endpoint = HAProxyEndpoint.of(state)

    @classmethod
    def from_state(cls, state: CanaryState) -> HAProxyTarget:
        return cls(state)

    def set_weight(self, weight: int) -> None:
        set_split(self.endpoint.admin, weight)

    def read_weight(self) -> int:
        return read_split(self.endpoint.admin)

    def set_mirror(self, on: bool) -> None:
        raise cannot_mirror(self.kind)

    def _drift(self) -> DriftProbe | None:
        grpc, s = self.endpoint.triton_grpc, self.state
        if not grpc or not s.stable or not s.canary:
            return None
        return DriftProbe(grpc, s.stable, grpc, s.canary)

    def checker(self, prompts: Sequence[str], cfg: RecheckSection) -> Checker:
        url, served = self.endpoint.url, self.endpoint.served

        def send(prompt: str) -> tuple[str, str]:
            return stream_once(url, served, prompt, cfg.max_new_tokens)  # the arm: X-Gates-Arm

        return LiveChecker(send, self._drift(), prompts, cfg, self.read_weight)

    def analysis_checker(self, prompts: Sequence[str], gates: GatesSection, cfg: AnalysisSection) -> Checker:
        url, served = self.endpoint.url, self.endpoint.served

        def traffic(seconds: float) -> Any:
            return paired_load(url, served, prompts, cfg.synthetic_rate_per_s, seconds, cfg.max_new_tokens)

        provider = PROVIDERS[cfg.provider.value]
        return AnalysisChecker(self.state, gates, cfg, provider, self.read_weight, self._drift(), prompts, traffic)
