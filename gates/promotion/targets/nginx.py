"""The local canary through nginx (gates/promotion/nginx.py): weights and mirror mode by reloading
its config, both read back from the running workers; the analysis reads its per-request log (the
``proxy`` metric provider), where mirrored copies are the canary's requests.
"""

from __future__ import annotations

from collections.abc import Sequence

from gates.ledger import CanaryState
from gates.promotion.haproxy import ARMS
from gates.promotion.nginx import NginxEndpoint, read_split
from gates.promotion.targets.proxy import ProxyTarget


class NginxTarget(ProxyTarget[NginxEndpoint]):
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

    def synthetic_arms(self) -> Sequence[str]:
        # while mirroring, the proxy makes the pairs: each request to stable is copied to the canary
        return ("stable",) if read_split(self.endpoint.url)[1] else ARMS
