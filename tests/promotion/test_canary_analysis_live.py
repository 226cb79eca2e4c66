"""Acceptance of canary analysis: a real tritonserver behind a real HAProxy, synthetic paired load.

A canary that is the same model with a served delay per token is rolled back at the first step,
the reason naming the metric, its shift and its interval; an identical canary walks every step to
stable. Both through the state machine, the HAProxy target and the ``proxy`` metric provider.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gates.config.analysis import AnalysisMetric, AnalysisSection, TrafficMode
from gates.config.promotion import PromotionSection
from gates.config.schema import GatesSection
from gates.errors import ExitCode
from gates.ledger import CanaryState, Ledger
from gates.ledger.states import PromotionState
from gates.promotion import canary as ops
from gates.promotion.analysis.providers.proxy_nginx import read_nginx_log
from gates.promotion.haproxy import HAProxy, HAProxyEndpoint, ProxySpec, haproxy_available
from gates.promotion.machine import PromotionRun
from gates.promotion.nginx import Nginx, nginx_available, read_split
from gates.promotion.targets import target_for
from gates.triton.repository import set_parameters, write_model
from gates.triton.server import TritonServer

pytestmark = [pytest.mark.integration]
needs_haproxy = pytest.mark.skipif(haproxy_available() is not None, reason=str(haproxy_available()))

DIGEST = "d" * 64
PROMPTS = ["Four score and seven", "The quick brown fox", "Once upon a time"]
# small windows for a test (the defaults are 30 s and 100 requests per arm); a wide allowance so an
# identical canary can certify PASS on ~60 requests per arm of a shared 2-core machine
ANALYSIS = AnalysisSection(
    interval_s=3.0,
    min_requests=20,
    max_windows=3,
    metrics=[AnalysisMetric(name="latency_ms", allowed_effect=0.5), AnalysisMetric(name="ttft_ms", allowed_effect=0.5)],
    latency_p95_ratio_max=2.0,
    latency_p99_ratio_max=3.0,
    traffic=TrafficMode.SYNTHETIC,
    synthetic_rate_per_s=8.0,
    max_new_tokens=3,
    drift_prompts=2,
)


def _walk(ledger: Ledger, name: str, proxy: HAProxy, canary_model: str, grpc: str) -> tuple[object, list[str]]:
    endpoint = HAProxyEndpoint(proxy.url, str(proxy.admin), str(proxy.log_path), proxy.pid or 0, "model", grpc)
    state = CanaryState(name, "haproxy", endpoint.encode(), "stable", canary_model, 0, time.time(), DIGEST)
    ledger.set_canary(state, "ci", "canary_deploy")
    cfg = PromotionSection(steps=[50, 100], retry_interval_s=0, analysis=ANALYSIS)
    checker = target_for(state).analysis_checker(PROMPTS, GatesSection(), ANALYSIS)
    said: list[str] = []

    def move(weight: int, action: str) -> None:
        ops.set_weight(ledger, name, weight, "alice", action)

    run = PromotionRun(ledger, name, cfg, checker, move, "alice", lock_wait_s=5, progress=said.append)
    return run.promote(DIGEST), said


@needs_haproxy
def test_slow_canary_rolls_back_and_identical_canary_walks_to_stable(
    tmp_path: Path, tiny_model: Path, no_leaked_servers: None
) -> None:
    repo = tmp_path / "models"
    write_model(repo, "stable", tiny_model)
    write_model(repo, "same", tiny_model)
    write_model(repo, "slow", tiny_model, delay_ms=60)  # the same model, 60 ms more per token
    ledger = Ledger(str(tmp_path / "ledger.sqlite"))
    with TritonServer(repo, tmp_path / "triton") as server:
        for model in ("stable", "same", "slow"):
            server.load_model(model)
        with HAProxy(ProxySpec(server.url, "model", "stable", "slow"), tmp_path / "proxy-slow") as proxy:
            outcome, said = _walk(ledger, "slow", proxy, "slow", server.grpc_url)
            assert outcome.state == PromotionState.ROLLED_BACK, said  # type: ignore[attr-defined]
            assert outcome.exit_code == ExitCode.FAIL  # type: ignore[attr-defined]
            assert proxy.read_weight() == 0  # read back from HAProxy itself
        history = ledger.history("slow")
        moves = [h["weight"] for h in history if h["action"].startswith("promote_step")]
        assert set(moves) == {50}, "rolled back at the first step"
        failed = [h for h in history if h["action"] == "check_failed"]
        assert failed
        reason = str(failed[0]["detail"])
        # the metric, the shift and its interval (the PR gate's own Hodges-Lehmann figures)
        assert "_ms shift" in reason and "HL" in reason and "CI" in reason and "%" in reason, reason
        windows = [h for h in history if h["action"] == "analysis_window"]
        assert windows and all(w["weight"] == 50 for w in windows)
        assert any('"decision": "FAIL"' in str(w["detail"]) for w in windows)

        with HAProxy(ProxySpec(server.url, "model", "stable", "same"), tmp_path / "proxy-same") as proxy:
            outcome, said = _walk(ledger, "same", proxy, "same", server.grpc_url)
            assert outcome.state == PromotionState.STABLE, said  # type: ignore[attr-defined]
            assert proxy.read_weight() == 100
        history = ledger.history("same")
        assert [h["weight"] for h in history if h["action"] == "step_passed"] == [50]
        assert any(h["action"] == "promoted" for h in history)
        passed = [h for h in history if h["action"] == "analysis_window" and h["verdict"] == "PASS"]
        assert len(passed) == 2  # one decided window per step
        assert '"top1_agreement": 1.0' in str(passed[0]["detail"])


@pytest.mark.slow  # 65 s: CI runs it; the rollback test above keeps live analysis in every make test
@pytest.mark.skipif(nginx_available() is not None, reason=str(nginx_available()))
def test_mirror_judges_copies_before_any_user_is_sent_to_the_canary(
    tmp_path: Path, tiny_model: Path, no_leaked_servers: None
) -> None:
    """nginx copies stable's requests to the canary before the first weight: a slow canary is rolled
    back with no user ever served by it; an identical one passes the mirror, then walks to stable."""
    repo = tmp_path / "models"
    logs = {name: str(tmp_path / f"{name}.requests.jsonl") for name in ("stable", "same", "slow")}
    for name, delay in (("stable", 0), ("same", 0), ("slow", 60)):  # slow: 60 ms more per token
        set_parameters(write_model(repo, name, tiny_model, delay_ms=delay), {"request_log": logs[name]})
    ledger = Ledger(str(tmp_path / "ledger.sqlite"))
    cfg = PromotionSection(steps=[50, 100], retry_interval_s=0, analysis=ANALYSIS, mirror=True)

    def walk(name: str, proxy: Nginx, grpc: str) -> object:
        endpoint = proxy.endpoint(grpc, {"stable": logs["stable"], "canary": logs[name]})
        state = CanaryState(name, "nginx", endpoint.encode(), "stable", name, 0, time.time(), DIGEST)
        ledger.set_canary(state, "ci", "canary_deploy")
        checker = target_for(state).analysis_checker(PROMPTS, GatesSection(), ANALYSIS)

        def move(weight: int, action: str) -> None:
            ops.set_weight(ledger, name, weight, "alice", action)

        def mirror(on: bool) -> None:
            ops.set_mirror(ledger, name, on, "alice")

        run = PromotionRun(ledger, name, cfg, checker, move, "alice", lock_wait_s=5, progress=print, mirror=mirror)
        return run.promote(DIGEST)

    with TritonServer(repo, tmp_path / "triton") as server:
        for model in ("stable", "same", "slow"):
            server.load_model(model)
        with Nginx(ProxySpec(server.url, "model", "stable", "slow"), tmp_path / "nginx-slow") as proxy:
            outcome = walk("slow", proxy, server.grpc_url)
            assert outcome.state == PromotionState.ROLLED_BACK  # type: ignore[attr-defined]
            assert read_split(proxy.url) == (0, False)  # the rollback ended the mirror
            logged = read_nginx_log(proxy.log_path)
        history = ledger.history("slow")
        assert not [h for h in history if h["action"].startswith("promote_step")], "no user weight was ever set"
        windows = [h for h in history if h["action"] == "analysis_window"]
        assert windows and all(w["weight"] == 0 for w in windows)
        failed = [h for h in history if h["action"] == "check_failed"]
        # slower copies, or copies so slow they had not ended after the window (the canary's errors)
        assert failed and ("_ms shift" in str(failed[0]["detail"]) or "error_rate" in str(failed[0]["detail"])), failed
        # every request the canary served was a copy: its answers went to no user
        assert {ln.request.arm for ln in logged if not ln.copy} == {"stable"}
        assert any(ln.copy and ln.request.arm == "canary" for ln in logged)
        with Nginx(ProxySpec(server.url, "model", "stable", "same"), tmp_path / "nginx-same") as proxy:
            outcome = walk("same", proxy, server.grpc_url)
            assert outcome.state == PromotionState.STABLE  # type: ignore[attr-defined]
            assert read_split(proxy.url) == (100, False)
        actions = [h["action"] for h in ledger.history("same")]
        assert actions.index("mirror_passed") < actions.index("step_passed") < actions.index("promoted")
        # inter-token latency per request from the models' own records, judged beside TTFT and latency
        passed = [h for h in ledger.history("same") if h["action"] == "analysis_window" and h["verdict"] == "PASS"]
        assert passed and '"itl_ms"' in str(passed[0]["detail"]), passed
