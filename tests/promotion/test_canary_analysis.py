"""Canary analysis without Triton: the step judge, the proxy log, a real HAProxy's weights and
stickiness, and the state machine holding on NODATA (fail closed)."""

from __future__ import annotations

import html
import re
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from gates.config.analysis import AnalysisSection
from gates.config.promotion import PromotionSection
from gates.config.schema import GatesSection
from gates.errors import ExitCode, InfraError
from gates.ledger import CanaryState, Ledger
from gates.promotion.analysis.judge import WindowStatus, judge_step
from gates.promotion.analysis.providers.proxy import parse_line, read_log
from gates.promotion.analysis.records import ArmSamples, WindowData
from gates.promotion.haproxy import HAProxy, ProxySpec, haproxy_available
from gates.promotion.machine import CheckResult, PromotionRun

DIGEST = "d" * 64
needs_haproxy = pytest.mark.skipif(haproxy_available() is not None, reason=str(haproxy_available()))


def arm(rng: np.random.Generator, n: int, factor: float = 1.0) -> ArmSamples:
    lat = rng.lognormal(np.log(100.0), 0.3, n) * factor
    return ArmSamples(n, 0, n, tuple(lat), tuple(lat / 5))


def test_identical_arms_never_fail_and_a_slower_canary_fails_naming_shift_and_interval() -> None:
    rng = np.random.default_rng(3)
    cfg = AnalysisSection(max_windows=3)
    windows: list[WindowData] = []
    for _ in range(3):
        windows.append(WindowData(0, 1, arm(rng, 300), arm(rng, 300), "sim"))
        j = judge_step(windows, GatesSection(), cfg)
        assert j.status != WindowStatus.FAIL, j.reason
    assert j.status == WindowStatus.PASS, j.reason  # the last window decides
    slow = judge_step([WindowData(0, 1, arm(rng, 300), arm(rng, 300, 1.5), "sim")], GatesSection(), cfg)
    assert slow.status == WindowStatus.FAIL
    assert "latency_ms shift" in slow.reason and "CI" in slow.reason and "HL" in slow.reason, slow.reason
    assert slow.figures["decision"] == "FAIL" and slow.figures["this_window"]["canary"]["requests"] == 300


def test_a_short_window_is_nodata_never_pass() -> None:
    rng = np.random.default_rng(4)
    j = judge_step([WindowData(0, 1, arm(rng, 300), arm(rng, 20), "sim")], GatesSection(), AnalysisSection())
    assert j.status == WindowStatus.NODATA and "too few requests" in j.reason
    errors = ArmSamples(300, 30, 0, tuple(rng.lognormal(4, 0.3, 270)), tuple(rng.lognormal(2, 0.3, 270)))
    failed = judge_step([WindowData(0, 1, arm(rng, 300), errors, "sim")], GatesSection(), AnalysisSection())
    assert failed.status == WindowStatus.FAIL and "error_rate" in failed.reason


def test_proxy_log_lines_are_parsed(tmp_path: Path) -> None:
    ok = parse_line('gates 1796438578.149 canary 200 12 112 185 "user-0" "canary"')
    assert ok is not None and ok.arm == "canary" and ok.ttft_ms == 12 and ok.latency_ms == 112 and ok.synthetic
    aborted = parse_line('gates 1796438578.149 stable -1 -1 -1 0 "u" ""')
    assert aborted is not None and aborted.error and not aborted.synthetic
    assert parse_line("[WARNING] something") is None
    with pytest.raises(InfraError, match="not readable"):
        list(read_log(tmp_path / "absent.log"))


class _Upstream(BaseHTTPRequestHandler):
    """Answers every POST with :meth:`body` (here the path it was sent to); the other model
    stand-ins below change only the body, its timing and its type."""

    protocol_version = "HTTP/1.1"
    content_type: str | None = None

    def body(self) -> bytes:
        return self.path.encode()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = self.body()
        self.send_response(200)
        if self.content_type:
            self.send_header("Content-Type", self.content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def upstream() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    srv.handle_error = lambda *a: None  # type: ignore[method-assign]
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def _call(url: str, headers: dict[str, str]) -> tuple[str, str]:
    req = urllib.request.Request(f"http://{url}/v2/models/model/generate_stream", data=b"{}", headers=headers)
    with urllib.request.urlopen(req, timeout=10) as r:
        return str(r.headers["X-Gates-Arm"]), r.read().decode()


@needs_haproxy
def test_haproxy_weights_are_read_back_sticky_and_stopped_by_pid(tmp_path: Path, upstream: str) -> None:
    proxy = HAProxy(ProxySpec(upstream, "model", "s", "c"), tmp_path, weight=20)
    with proxy:
        pid = proxy.pid
        assert pid is not None and proxy.read_weight() == 20
        arms = [_call(proxy.url, {"X-User-Id": f"user-{u}"}) for u in range(1000)]
        canary = sum(a == "canary" for a, _ in arms)
        # consistent hashing over users, not an exact sequence: 200 ± what hashing allows (docs/canary.md)
        assert 150 <= canary <= 250, canary
        assert {p for a, p in arms if a == "canary"} == {"/v2/models/c/generate_stream"}
        assert all(_call(proxy.url, {"X-User-Id": f"user-{u}"})[0] == arms[u][0] for u in range(0, 1000, 50))
        proxy.set_weight(50)  # users only move stable -> canary when the canary's weight rises
        moved_back = [
            u
            for u in range(0, 300, 3)
            if arms[u][0] == "canary" and _call(proxy.url, {"X-User-Id": f"user-{u}"})[0] == "stable"
        ]
        assert moved_back == []
        proxy.set_weight(0)
        assert proxy.read_weight() == 0
        assert _call(proxy.url, {"X-Gates-Synthetic": "canary"})[0] == "canary"  # the paired load's arm
        assert all(_call(proxy.url, {"X-User-Id": f"user-{u}"})[0] == "stable" for u in range(50))
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
    with pytest.raises(InfraError, match="admin socket"):
        proxy.read_weight()  # a proxy that does not answer: never a weight
    logged = list(read_log(proxy.log_path))
    assert len(logged) >= 1000 and all(r.status == 200 for r in logged)


@needs_haproxy
def test_haproxy_starts_in_a_workdir_too_deep_for_a_unix_socket_path(tmp_path: Path, upstream: str) -> None:
    """A consumer's runner checkout can be deeper than a Unix socket path may be (108 bytes): HAProxy
    refused its own config ('stats socket') in a fresh clone's pytest temp directory."""
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    with HAProxy(ProxySpec(upstream, "model", "s", "c"), deep, weight=30) as proxy:
        assert proxy.read_weight() == 30 and len(str(proxy.admin)) < 100
        assert _call(proxy.url, {"X-Gates-Synthetic": "canary"})[0] == "canary"


class _NoData:
    def __init__(self) -> None:
        self.checks = 0

    def check(self, pipeline: str, weight: int) -> CheckResult:
        self.checks += 1
        return CheckResult(False, "Prometheus did not answer", 0, hold=True, figures={"decision": "NODATA"})


def test_nodata_holds_the_step_and_never_promotes(tmp_path: Path) -> None:
    ledger = Ledger(str(tmp_path / "l.sqlite"))
    ledger.set_canary(CanaryState("p", "haproxy", None, "s", "c", 0, time.time(), DIGEST), "ops", "canary_deploy")
    moves: list[int] = []
    checker = _NoData()
    cfg = PromotionSection(retry_interval_s=0, analysis=AnalysisSection(max_windows=3))
    run = PromotionRun(ledger, "p", cfg, checker, lambda w, a: moves.append(w), "alice", 2, progress=lambda _: None)
    outcome = run.promote(DIGEST)
    assert outcome.held and outcome.exit_code == ExitCode.INFRA and "held, not promoted" in outcome.message
    assert moves == [10] and checker.checks == 3  # the weight set once, three windows, no change
    rec = ledger.promotion("p")
    assert rec is not None and rec.step == -1 and rec.failures == 0  # not a failure, not a pass
    actions = [h["action"] for h in ledger.history("p")]
    assert actions.count("analysis_window") == 3 and "analysis_held" in actions


@needs_haproxy
def test_canary_serve_records_haproxy_and_stops_it_on_sigterm(tmp_path: Path) -> None:
    import json
    import os
    import signal
    import subprocess
    import sys

    ledger_path = tmp_path / "l.sqlite"
    cmd = [sys.executable, "-m", "gates.cli", "canary", "serve", "demo", "--triton", "127.0.0.1:9"]
    cmd += ["--stable", "s", "--canary", "c", "--weight", "10", "--digest", DIGEST, "--workdir", str(tmp_path / "p")]
    cmd += ["--ledger", str(ledger_path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        deadline = time.monotonic() + 120
        state = None
        while time.monotonic() < deadline and state is None:
            time.sleep(0.5)
            state = Ledger(str(ledger_path)).canary("demo") if ledger_path.exists() else None
        assert state is not None and state.target == "haproxy" and state.weight == 10
        pid = json.loads(state.endpoint or "{}")["pid"]
        assert Path(f"/proc/{pid}").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "HAProxy stopped" in out
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists(), "HAProxy left running after SIGTERM"


def test_comment_and_history_show_each_window_canary_against_stable(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from gates.cli.history import command as history
    from gates.ledger.states import PromotionState
    from gates.promotion.comments import promotion_comment
    from gates.promotion.machine import Outcome

    rng = np.random.default_rng(5)
    j = judge_step([WindowData(0, 1, arm(rng, 300), arm(rng, 300, 1.5), "proxy")], GatesSection(), AnalysisSection())
    ledger = Ledger(str(tmp_path / "l.sqlite"))
    figures = {"weight": 10, "traffic": "synthetic", **j.figures}
    ledger.record("p", "alice", "analysis_window", None, None, weight=10, verdict="FAIL", detail=figures)
    text = promotion_comment("p", Outcome(PromotionState.ROLLED_BACK, 0, "p: rolled back"), ledger.history("p"))
    row = html.unescape(next(line for line in text.splitlines() if line.startswith("| 10% |")))
    assert "1/6 (synthetic)" in row and "300 / 300" in row and "FAIL" in row
    assert re.search(r"\+[45]\d\.\d% \(\+\d+\.\d% to \+\d+\.\d%\)", row), row  # the shift and its interval
    out = CliRunner().invoke(history, ["p", "--ledger", str(tmp_path / "l.sqlite")]).output
    assert "window 1/6 (synthetic): requests 300 / 300" in out and "shift +" in out


def test_analysis_limits_default_to_the_pipelines_gates() -> None:
    from pydantic import ValidationError

    from gates.config.analysis import P99_RATIO_DEFAULT, ProviderKind, TrafficMode
    from gates.promotion.analysis.judge import analysis_gates

    section = PromotionSection.model_validate({"analysis": {"traffic": "synthetic", "provider": "prometheus"}})
    assert section.analysis is not None
    assert section.analysis.traffic == TrafficMode.SYNTHETIC and section.analysis.provider == ProviderKind.PROMETHEUS
    with pytest.raises(ValidationError):
        PromotionSection.model_validate({"analysis": {"provider": "datadog"}})
    with pytest.raises(ValidationError):
        PromotionSection.model_validate({"analysis": {"intervall_s": 5}})
    own = GatesSection(latency_p95_ratio_max=1.2, error_rate_max=0.01)
    cfg = analysis_gates(own, AnalysisSection(), drift=True)
    assert (cfg.latency_p95_ratio_max, cfg.latency_p99_ratio_max, cfg.error_rate_max) == (1.2, P99_RATIO_DEFAULT, 0.01)
    assert [m.name for m in cfg.metrics] == ["latency_ms", "ttft_ms"] and all(m.critical for m in cfg.metrics)
    tighter = analysis_gates(own, AnalysisSection(latency_p99_ratio_max=1.05, error_rate_max=0.0), drift=False)
    assert (tighter.latency_p99_ratio_max, tighter.error_rate_max, tighter.top1_agreement_min) == (1.05, 0.0, None)


def test_kserve_is_analysed_on_prometheus_and_the_builtin_router_refuses(tmp_path: Path) -> None:
    from gates.config.analysis import PrometheusSection, ProviderKind
    from gates.errors import BadInputError
    from gates.promotion.analysis.checker import AnalysisChecker
    from gates.promotion.targets import target_for
    from gates.promotion.targets.kserve import KServeEndpoint

    endpoint = KServeEndpoint("ml", "demo", "s3://b/demo", url="http://latest-demo.ml", model="llm").encode()
    kserve = target_for(CanaryState("demo", "kserve", endpoint, None, "s3://b/demo", 0, 0.0, DIGEST), tmp_path)
    with pytest.raises(BadInputError, match="provider: prometheus"):
        kserve.analysis_checker([], GatesSection(), AnalysisSection())
    cfg = AnalysisSection(provider=ProviderKind.PROMETHEUS, prometheus=PrometheusSection(url="http://127.0.0.1:9"))
    assert isinstance(kserve.analysis_checker([], GatesSection(), cfg), AnalysisChecker)
    local = target_for(CanaryState("demo", "local", "127.0.0.1:9", "s", "c", 0, 0.0, DIGEST))
    with pytest.raises(BadInputError, match="no per-request timings"):
        local.analysis_checker([], GatesSection(), AnalysisSection())


class _Models(_Upstream):
    """Stands in for Triton's streaming endpoint: the canary model answers 4x slower."""

    def body(self) -> bytes:
        time.sleep(0.04 if "/models/c/" in self.path else 0.01)
        return b'data: {"TEXT": "x"}\n\n'


@needs_haproxy
def test_gates_promote_traffic_synthetic_rolls_back_a_slower_canary(tmp_path: Path, project: Path) -> None:
    """The CLI end to end: gates promote --traffic synthetic through a real HAProxy (the models are
    a small HTTP server here; the live test runs Triton), rolled back at the first step."""
    import os
    import shutil
    import subprocess
    import sys

    from gates.promotion.haproxy import HAProxyEndpoint

    repo_root = Path(__file__).resolve().parents[2]
    text = (repo_root / "pipelines" / "demo.yaml").read_text().replace('["@org/release-managers"]', '["rita"]')
    text = text.replace(
        "  steps: [10, 25, 50, 100]\n",
        "  steps: [50, 100]\n  analysis: {interval_s: 2, min_requests: 15, max_windows: 3, drift_prompts: 0,"
        " synthetic_rate_per_s: 12}\n",
    )
    (project / "pipelines" / "demo.yaml").write_text(text)
    shutil.rmtree(project / "golden_prompts")
    shutil.copytree(repo_root / "golden_prompts", project / "golden_prompts")
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Models)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    ledger_path = tmp_path / "l.sqlite"
    ledger = Ledger(str(ledger_path))
    ledger.add_run("demo", "PASS", "ci", digest=DIGEST, config="pipelines/demo.yaml")
    try:
        with HAProxy(ProxySpec(f"127.0.0.1:{srv.server_address[1]}", "model", "s", "c"), tmp_path / "p") as proxy:
            endpoint = HAProxyEndpoint(proxy.url, str(proxy.admin), str(proxy.log_path), proxy.pid or 0, "model")
            ledger.set_canary(
                CanaryState("demo", "haproxy", endpoint.encode(), "s", "c", 0, time.time(), DIGEST), "ops", "deploy"
            )
            cmd = [sys.executable, "-m", "gates.cli", "promote", "pipelines/demo.yaml", "--traffic", "synthetic"]
            cmd += ["--ledger", str(ledger_path), "--actor", "rita"]
            env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB", "GATES_GITHUB"))}
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=project, env=env)
            assert proc.returncode == 1, proc.stdout + proc.stderr
            assert "rolled back" in proc.stdout + proc.stderr and "latency_ms shift" in proc.stdout + proc.stderr
            assert proxy.read_weight() == 0
    finally:
        srv.shutdown()
        srv.server_close()
    windows = [h for h in Ledger(str(ledger_path)).history("demo") if h["action"] == "analysis_window"]
    assert windows and all(w["weight"] == 50 for w in windows)
    assert '"traffic": "synthetic"' in str(windows[0]["detail"])


def _records(path: Path, rows: list[tuple[float, int, float | None, bool]]) -> None:
    import json

    lines = [
        json.dumps({"model": "m", "at": at, "output_tokens": n, "itl_ms": itl, "ok": ok}) for at, n, itl, ok in rows
    ]
    path.write_text("\n".join(lines) + "\n{cut by a cra")


def test_model_records_give_each_arm_its_itl_and_output_tokens_in_the_window(tmp_path: Path) -> None:
    from gates.promotion.analysis.providers.model_log import with_model_records

    _records(tmp_path / "s.jsonl", [(10.0, 8, 5.0, True), (11.0, 8, 6.0, True), (30.0, 8, 5.0, True)])
    _records(tmp_path / "c.jsonl", [(10.5, 4, 9.0, True), (11.5, 1, None, True), (12.0, 8, 50.0, False)])
    window = WindowData(9.0, 20.0, ArmSamples(2), ArmSamples(3), "proxy")
    logs = {"stable": str(tmp_path / "s.jsonl"), "canary": str(tmp_path / "c.jsonl")}
    got = with_model_records(window, logs)
    assert got.measures_itl and got.stable.itl_ms == (5.0, 6.0) and got.stable.output_tokens == (8, 8)
    # one token has no inter-token time; a failed request is the proxy's error, not a timing
    assert got.canary.itl_ms == (9.0,) and got.canary.output_tokens == (4, 1)
    absent = with_model_records(window, {"stable": str(tmp_path / "none"), "canary": str(tmp_path / "c.jsonl")})
    assert absent.stable.itl_ms == ()  # the model served no streamed request yet


def test_inter_token_latency_is_judged_where_the_models_records_are_read() -> None:
    rng = np.random.default_rng(6)

    def with_itl(a: ArmSamples, factor: float) -> ArmSamples:
        import dataclasses

        return dataclasses.replace(a, itl_ms=tuple(rng.lognormal(np.log(20.0), 0.2, a.requests) * factor))

    # end-to-end latency and TTFT alike; only the time between tokens regressed
    slower = WindowData(0, 1, with_itl(arm(rng, 300), 1.0), with_itl(arm(rng, 300), 1.4), "proxy", measures_itl=True)
    j = judge_step([slower], GatesSection(), AnalysisSection(max_windows=3))
    assert j.status == WindowStatus.FAIL and "itl_ms shift" in j.reason, j.reason
    unmeasured = WindowData(0, 1, arm(rng, 300), arm(rng, 300), "proxy", measures_itl=True)
    j = judge_step([unmeasured], GatesSection(), AnalysisSection())
    assert j.status == WindowStatus.NODATA and "inter-token latency" in j.reason, j.reason
    same = WindowData(0, 1, arm(rng, 300), arm(rng, 300), "proxy")  # a source without model records
    assert "itl_ms" not in str(judge_step([same], GatesSection(), AnalysisSection()).figures.get("sequential"))


class _Streaming(_Upstream):
    """Triton's generate_stream as the proxies see it: two token events."""

    content_type = "text/event-stream"

    def body(self) -> bytes:
        return b'data: {"TEXT": "a"}\n\ndata: {"TEXT": "b"}\n\n'


@needs_haproxy
def test_the_live_recheck_through_haproxy_reaches_both_arms_by_weight(tmp_path: Path) -> None:
    """Every re-check request comes from one client address, HAProxy's fallback sticky key: without a
    user of its own per request, all of them went to one arm (the canary got none at 50%: no data)."""
    from gates.config.promotion import RecheckSection
    from gates.promotion.haproxy import HAProxyEndpoint
    from gates.promotion.targets.haproxy import HAProxyTarget

    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Streaming)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        with HAProxy(ProxySpec(f"127.0.0.1:{srv.server_address[1]}", "model", "s", "c"), tmp_path, weight=50) as proxy:
            endpoint = HAProxyEndpoint(proxy.url, str(proxy.admin), str(proxy.log_path), proxy.pid or 0, "model")
            state = CanaryState("demo", "haproxy", endpoint.encode(), "s", "c", 50, time.time(), "d" * 64)
            cfg = RecheckSection(requests=40, drift_prompts=0)
            result = HAProxyTarget(state).checker(["Four score"], cfg).check("demo", 50)
            assert result.passed, result.detail  # before: "no data: 0/40 requests to the canary"
            assert 8 <= int(result.detail.split("/", 1)[0]) <= 32, result.detail  # by weight, not all on one arm
    finally:
        srv.shutdown()
        srv.server_close()
