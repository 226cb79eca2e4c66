"""The re-check at each canary step: live traffic through the canary target, then drift.

1. ``requests`` generations are sent to the served name through the router, as clients would;
   the router tags each answer with the arm that served it (``X-Gates-Arm``).
2. No traffic, no data: if fewer than ``min_canary_requests`` reached the canary (at a weight
   above 0), the check fails — a canary that is not being exercised has not been checked.
3. The canary's error rate must not exceed ``max_error_rate`` (any error fails by default).
4. Drift on the live canary: a few golden prompts, the stable model's greedy continuation scored
   by the canary (teacher forcing); top-1 agreement must reach ``top1_agreement_min``.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
from collections.abc import Sequence

import numpy as np

from gates.config.load import PipelineFile
from gates.config.schema import RecheckSection
from gates.errors import InfraError
from gates.ledger import CanaryState
from gates.loadgen.sse import read_stream
from gates.promotion.machine import Checker, CheckResult


@dataclasses.dataclass
class LiveChecker:
    router: str  # host:port of the canary router
    triton_grpc: str  # host:port of Triton's gRPC endpoint (for drift on the two models)
    served: str
    stable_model: str
    canary_model: str
    prompts: Sequence[str]
    cfg: RecheckSection

    def check(self, pipeline: str, weight: int) -> CheckResult:
        counts = {"stable": 0, "canary": 0}
        errors = {"stable": 0, "canary": 0}
        failures: list[str] = []
        for i in range(self.cfg.requests):
            prompt = self.prompts[i % len(self.prompts)] if self.prompts else "Hello"
            arm, error = self._one(prompt)
            counts[arm] = counts.get(arm, 0) + 1
            if error:
                errors[arm] = errors.get(arm, 0) + 1
                failures.append(f"{arm}: {error}")
        n = counts.get("canary", 0)
        summary = f"{n}/{self.cfg.requests} requests to the canary, {errors.get('canary', 0)} errors"
        if weight > 0 and n < self.cfg.min_canary_requests:
            return CheckResult(False, f"no data: {summary} (at least {self.cfg.min_canary_requests} needed)", n)
        if n and errors.get("canary", 0) / n > self.cfg.max_error_rate:
            return CheckResult(False, f"canary errors: {summary}; first: {failures[0][:200]}", n)
        if errors.get("unknown", 0):
            return CheckResult(False, f"requests failed before reaching an arm: {failures[0][:200]}", n)
        try:
            agreement = self._top1_agreement()
        except InfraError as exc:  # fail closed: a canary that cannot be compared has not passed
            return CheckResult(False, f"drift check failed: {exc}"[:400], n)
        if agreement is not None and agreement < self.cfg.top1_agreement_min:
            return CheckResult(
                False, f"drift: top-1 agreement {agreement:.3f} < {self.cfg.top1_agreement_min}; {summary}", n
            )
        drift = f"; top-1 agreement {agreement:.3f}" if agreement is not None else ""
        return CheckResult(True, summary + drift, n)

    def _one(self, prompt: str) -> tuple[str, str]:
        host, port = self.router.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        body = json.dumps({"PROMPT": prompt, "MAX_NEW_TOKENS": self.cfg.max_new_tokens, "STREAM": True})
        try:
            conn.request("POST", f"/v2/models/{self.served}/generate_stream", body=body)
            resp = conn.getresponse()
            arm = resp.getheader("X-Gates-Arm") or "unknown"
            if resp.status != 200:
                return arm, f"HTTP {resp.status}: {resp.read()[:200]!r}"
            times, error = read_stream(resp)
            if not error and not times:
                error = "no tokens streamed"
            return arm, error
        except OSError as exc:
            return "unknown", f"router unreachable: {exc}"
        finally:
            conn.close()

    def _top1_agreement(self) -> float | None:
        if not self.cfg.drift_prompts or not self.prompts:
            return None
        from gates.triton.client import TextModelClient

        client = TextModelClient(self.triton_grpc)
        agree = total = 0
        try:
            for prompt in list(self.prompts)[: self.cfg.drift_prompts]:
                ref = client.generate(self.stable_model, prompt, self.cfg.max_new_tokens, top_k=1)
                got = client.generate(
                    self.canary_model, prompt, self.cfg.max_new_tokens, top_k=1, forced_ids=np.array(ref.token_ids)
                )
                agree += int((np.asarray(got.top_ids)[:, 0] == np.asarray(ref.token_ids)).sum())
                total += len(ref.token_ids)
        except InfraError as exc:
            raise InfraError(f"drift re-check against {self.canary_model!r} failed: {exc}") from exc
        finally:
            client.close()
        return agree / total if total else None


def router_checker(pf: PipelineFile, canary: CanaryState) -> Checker:
    """Live re-check through the local router recorded for the canary."""
    from gates.promotion.canary import router_snapshot
    from gates.quality.golden import load_golden_suite

    if canary.target != "local" or not canary.endpoint:
        raise InfraError(
            f"live re-checks run through the local canary router; {pf.config.name!r} is on {canary.target!r}"
        )
    snap = router_snapshot(canary.endpoint)
    grpc = snap.get("upstream_grpc")
    if not grpc:
        raise InfraError(f"the canary router at {canary.endpoint} does not know Triton's gRPC endpoint")
    prompts: list[str] = []
    for suite in pf.config.golden.suites:
        prompts += [g.row.display for g in load_golden_suite(pf.resolve(suite), suite)]
    return LiveChecker(
        canary.endpoint,
        str(grpc),
        str(snap["served"]),
        str(snap["stable"]),
        str(snap["canary"]),
        prompts,
        pf.config.promotion.recheck,
    )
