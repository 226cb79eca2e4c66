"""What the two local proxy targets (HAProxy, nginx) share: the live re-check and canary analysis
through the proxy's URL, and drift on Triton's gRPC endpoint; each subclass sets and reads weights
its own way."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, Generic, Protocol, TypeVar

from gates.config.analysis import AnalysisSection
from gates.config.promotion import RecheckSection
from gates.config.schema import GatesSection
from gates.ledger import CanaryState
from gates.promotion.analysis.checker import AnalysisChecker
from gates.promotion.analysis.providers import PROVIDERS
from gates.promotion.analysis.synthetic import paired_load
from gates.promotion.haproxy import ARMS
from gates.promotion.machine import Checker
from gates.promotion.recheck import DriftProbe, LiveChecker, stream_once

STICKY_HEADER = "X-User-Id"  # `gates canary serve --sticky-header`'s default (HAProxy's endpoint does not record it)


class ProxyEndpoint(Protocol):
    @property
    def url(self) -> str: ...  # host:port clients call
    @property
    def served(self) -> str: ...  # the model name they call
    @property
    def triton_grpc(self) -> str | None: ...


E = TypeVar("E", bound=ProxyEndpoint)


class ProxyTarget(Generic[E]):
    state: CanaryState
    endpoint: E

    def read_weight(self) -> int:
        raise NotImplementedError

    def synthetic_arms(self) -> Sequence[str]:
        """The arms the synthetic paired load sends each prompt to (the proxy may make the pair)."""
        return ARMS

    def _drift(self) -> DriftProbe | None:
        grpc, s = self.endpoint.triton_grpc, self.state
        if not grpc or not s.stable or not s.canary:
            return None
        return DriftProbe(grpc, s.stable, grpc, s.canary)

    def checker(self, prompts: Sequence[str], cfg: RecheckSection) -> Checker:
        url, served = self.endpoint.url, self.endpoint.served
        # one user per request: both proxies pick the arm by hashing the sticky header, else the
        # client's address, which would send every request of this one client to the same arm
        header = str(getattr(self.endpoint, "sticky_header", None) or STICKY_HEADER)
        users = itertools.count()

        def send(prompt: str) -> tuple[str, str]:
            user = {header: f"gates-recheck-{next(users)}"}
            return stream_once(url, served, prompt, cfg.max_new_tokens, headers=user)  # the arm: X-Gates-Arm

        return LiveChecker(send, self._drift(), prompts, cfg, self.read_weight)

    def analysis_checker(self, prompts: Sequence[str], gates: GatesSection, cfg: AnalysisSection) -> Checker:
        url, served = self.endpoint.url, self.endpoint.served

        def traffic(seconds: float) -> Any:
            arms = self.synthetic_arms()
            return paired_load(url, served, prompts, cfg.synthetic_rate_per_s, seconds, cfg.max_new_tokens, arms)

        provider = PROVIDERS[cfg.provider.value]
        return AnalysisChecker(self.state, gates, cfg, provider, self.read_weight, self._drift(), prompts, traffic)
