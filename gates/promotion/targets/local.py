"""The local canary: a weighted router (``weighted_router.py``) in front of one Triton.

Its admin endpoint sets and reads the weight; the live re-check sends generations through it (the
router tags each answer with the arm that served it) and compares the two models on Triton's gRPC
endpoint, which the router knows.
"""

from __future__ import annotations

import dataclasses
import json
import urllib.request
from collections.abc import Sequence
from typing import Any

from gates.config.analysis import AnalysisSection
from gates.config.promotion import RecheckSection
from gates.config.schema import GatesSection
from gates.errors import BadInputError, InfraError
from gates.ledger import CanaryState
from gates.promotion.machine import Checker
from gates.promotion.recheck import DriftProbe, LiveChecker, stream_once
from gates.promotion.targets.base import cannot_mirror


@dataclasses.dataclass(frozen=True)
class LocalEndpoint:
    admin: str  # host:port of the router (admin API and inference)

    @classmethod
    def of(cls, state: CanaryState) -> LocalEndpoint:
        if not state.endpoint:
            raise InfraError(f"pipeline {state.pipeline!r}: the local canary has no router endpoint recorded")
        return cls(state.endpoint)


def _admin(admin: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    url = f"http://{admin}/gates/router"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return dict(json.loads(r.read()))
    except OSError as exc:
        raise InfraError(f"the local canary router at {admin} did not answer: {exc}") from exc


class LocalRouterTarget:
    kind = "local"

    def __init__(self, endpoint: LocalEndpoint):
        self.endpoint = endpoint

    @classmethod
    def from_state(cls, state: CanaryState) -> LocalRouterTarget:
        return cls(LocalEndpoint.of(state))

    def set_weight(self, weight: int) -> None:
        _admin(self.endpoint.admin, {"weight": weight})

    def read_weight(self) -> int:
        return int(_admin(self.endpoint.admin)["weight"])

    def set_mirror(self, on: bool) -> None:
        raise cannot_mirror(self.kind)

    def checker(self, prompts: Sequence[str], cfg: RecheckSection) -> Checker:
        snap = _admin(self.endpoint.admin)
        grpc = snap.get("upstream_grpc")
        if not grpc:
            raise InfraError(f"the canary router at {self.endpoint.admin} does not know Triton's gRPC endpoint")
        admin, served = self.endpoint.admin, str(snap["served"])

        def send(prompt: str) -> tuple[str, str]:
            return stream_once(admin, served, prompt, cfg.max_new_tokens)

        drift = DriftProbe(str(grpc), str(snap["stable"]), str(grpc), str(snap["canary"]))
        return LiveChecker(send, drift, prompts, cfg, self.read_weight)

    def analysis_checker(self, prompts: Sequence[str], gates: GatesSection, cfg: AnalysisSection) -> Checker:
        raise BadInputError(
            "gates' built-in router keeps no per-request timings for canary analysis (promotion.analysis): "
            "serve the canary through HAProxy (gates canary serve --proxy haproxy)"
        )
