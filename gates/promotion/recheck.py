"""The re-check at each canary step: the target's weight read back, live traffic, then drift.

1. The weight the target really applies must be the one the step set (a target that drifted from
   the ledger, or was changed by hand, has not been checked).
2. ``requests`` generations are sent through the target as clients would (the local router tags
   each answer with the arm that served it; a KServe canary is reached at its own URL).
3. No traffic, no data: if fewer than ``min_canary_requests`` reached the canary (at a weight
   above 0), the check fails — a canary that is not being exercised has not been checked.
4. The canary's error rate must not exceed ``max_error_rate`` (any error fails by default).
5. Drift on the live canary: a few golden prompts, the stable model's greedy continuation scored
   by the canary (teacher forcing); top-1 agreement must reach ``top1_agreement_min``.

Each target (``gates.promotion.targets``) supplies how to send one request and where the two
models answer gRPC; the checking is the same for all.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import urllib.parse
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from gates.config.promotion import RecheckSection
from gates.errors import InfraError
from gates.loadgen.sse import read_stream
from gates.promotion.machine import CheckResult
from gates.quality.drift import top1_matches
from gates.triton.client import TextModelClient

Send = Callable[[str], tuple[str, str]]  # prompt -> (arm that answered, error or "")


def stream_once(
    base: str,
    served: str,
    prompt: str,
    max_new_tokens: int,
    arm: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[str, str]:
    """One streamed generation at ``base`` (host:port or an http(s) URL); (arm, error or "").

    The arm is the router's ``X-Gates-Arm`` header, else ``arm`` (a URL that reaches one arm only)."""
    url = urllib.parse.urlsplit(base if "://" in base else f"http://{base}")
    conn_type = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
    conn = conn_type(url.hostname or "127.0.0.1", url.port, timeout=60)
    body = json.dumps({"PROMPT": prompt, "MAX_NEW_TOKENS": max_new_tokens, "STREAM": True})
    try:
        path = f"{url.path.rstrip('/')}/v2/models/{served}/generate_stream"
        conn.request("POST", path, body=body, headers=dict(headers or {}))
        resp = conn.getresponse()
        who = resp.getheader("X-Gates-Arm") or arm or "unknown"
        if resp.status != 200:
            return who, f"HTTP {resp.status}: {resp.read()[:200]!r}"
        times, error = read_stream(resp)
        if not error and not times:
            error = "no tokens streamed"
        return who, error
    except OSError as exc:
        return "unknown", f"{base} unreachable: {exc}"
    finally:
        conn.close()


@dataclasses.dataclass(frozen=True)
class DriftProbe:
    """Where the stable and the canary model answer gRPC (the same Triton locally, two revisions on KServe)."""

    stable_grpc: str
    stable_model: str
    canary_grpc: str
    canary_model: str

    def top1_agreement(self, prompts: Sequence[str], max_new_tokens: int) -> float | None:
        stable = TextModelClient(self.stable_grpc)
        canary = stable if self.canary_grpc == self.stable_grpc else TextModelClient(self.canary_grpc)
        agree = total = 0
        try:
            for prompt in prompts:
                ref = stable.generate(self.stable_model, prompt, max_new_tokens, top_k=1)
                got = canary.generate(
                    self.canary_model, prompt, max_new_tokens, top_k=1, forced_ids=np.array(ref.token_ids)
                )
                agree += top1_matches(np.asarray(got.top_ids)[:, 0], ref.token_ids)
                total += len(ref.token_ids)
        except InfraError as exc:
            raise InfraError(f"drift re-check against {self.canary_model!r} failed: {exc}") from exc
        finally:
            stable.close()
            if canary is not stable:
                canary.close()
        return agree / total if total else None


@dataclasses.dataclass
class LiveChecker:
    send: Send
    drift: DriftProbe | None  # None: the target cannot compare the models (fails when drift is asked for)
    prompts: Sequence[str]
    cfg: RecheckSection
    read_weight: Callable[[], int] | None = None

    def check(self, pipeline: str, weight: int) -> CheckResult:
        if self.read_weight is not None:
            try:
                actual = self.read_weight()
            except InfraError as exc:
                return CheckResult(False, f"could not read the canary's weight back: {exc}"[:400], 0)
            if actual != weight:
                return CheckResult(False, f"the target applies {actual}% to the canary, not the {weight}% set", 0)
        counts = {"stable": 0, "canary": 0}
        errors = {"stable": 0, "canary": 0}
        failures: list[str] = []
        for i in range(self.cfg.requests):
            prompt = self.prompts[i % len(self.prompts)] if self.prompts else "Hello"
            arm, error = self.send(prompt)
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

    def _top1_agreement(self) -> float | None:
        if not self.cfg.drift_prompts or not self.prompts:
            return None
        if self.drift is None:
            raise InfraError(
                "this canary target records no gRPC endpoints to compare the models on "
                "(record them, or set promotion.recheck.drift_prompts: 0)"
            )
        return self.drift.top1_agreement(list(self.prompts)[: self.cfg.drift_prompts], self.cfg.max_new_tokens)
