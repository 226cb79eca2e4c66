"""The local canary through HAProxy (gates/promotion/haproxy.py): weights over its admin socket,
read back from it; the analysis reads its per-request log (the ``proxy`` metric provider).

The ledger records where the proxy is (``CanaryState.endpoint``, JSON): its address, admin socket,
log file and PID, the served model name, and Triton's endpoints for drift.
"""

from __future__ import annotations

from gates.ledger import CanaryState
from gates.promotion.haproxy import HAProxyEndpoint, read_split, set_split
from gates.promotion.targets.base import cannot_mirror
from gates.promotion.targets.proxy import ProxyTarget


class HAProxyTarget(ProxyTarget[HAProxyEndpoint]):
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
