"""The local canary through nginx (gates/promotion/nginx.py): weights and mirror mode by reloading
its config, both read back from the running workers; the analysis reads its per-request log (the
``proxy`` metric provider), where mirrored copies are the canary's requests.
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
from gates.promotion.haproxy import ARMS
from gates.promotion.machine import Checker
from gates.promotion.nginx import NginxEndpoint, read_split
from gates.promotion.recheck import DriftProbe, LiveChecker, stream_once


class NginxTarget:
    kind = "nginx"

    def __init__(self, state: CanaryState):
        self.state = state
        self.endpoint = NginxEndpoint.of(state)

    @classmethod
    def from_state(cls, state: CanaryState) -> NginxTarget:
        return cls(state)

    def set_weight(self, weight: int) -> None:
        self.endpoint.apply(weight, mirror=False)  # a user weight ends mirroring (rollback included)

    def read_weight(self) -> int:
        return read_split(self.endpoint.url)[0]

    def set_mirror(self, on: bool) -> None:
        """Copy stable's traffic to the canary (weight 0: no user is served by it), or stop."""
        self.endpoint.apply(0 if on else self.read_weight(), mirror=on)

    def _drift(self) -> DriftProbe | None:
        grpc, s = self.endpoint.triton_grpc, self.state
        if not grpc or not s.stable or not s.canary:
            return None
        return DriftProbe(grpc, s.stable, grpc, s.canary)

    def checker(self, prompts: Sequence[str], cfg: RecheckSection) -> Checker:
        url, served = self.endpoint.url, self.endpoint.served

        def send(prompt: str) -> tuple[str, str]:
            return stream_once(url, served, prompt, cfg.max_new_tokens)

        return LiveChecker(send, self._drift(), prompts, cfg, self.read_weight)

    def analysis_checker(self, prompts: Sequence[str], gates: GatesSection, cfg: AnalysisSection) -> Checker:
        url, served = self.endpoint.url, self.endpoint.served

        def traffic(seconds: float) -> Any:
            # while mirroring, the proxy makes the pairs: each request to stable is copied to the canary
            arms = ("stable",) if read_split(url)[1] else ARMS
            return paired_load(url, served, prompts, cfg.synthetic_rate_per_s, seconds, cfg.max_new_tokens, arms)

        provider = PROVIDERS[cfg.provider.value]
        return AnalysisChecker(self.state, gates, cfg, provider, self.read_weight, self._drift(), prompts, traffic)
