"""nginx as the local canary proxy (gates/promotion/nginx.py, targets/nginx.py): a real nginx
before a small streaming upstream. Weights read back from nginx, sticky users, mirror copies read
to their last byte and logged as the canary's, stopped by its process group; mirror mode in the
state machine (before any user weight, FAIL rolls back, no decision stops with the mirror off)."""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import ValidationError

from gates.config.analysis import AnalysisSection
from gates.config.promotion import PromotionSection
from gates.errors import BadInputError, InfraError
from gates.ledger import CanaryState, Ledger
from gates.ledger.states import PromotionState
from gates.promotion.analysis.providers.proxy_nginx import mirrored_window, parse_nginx_line, read_nginx_log
from gates.promotion.analysis.records import WindowData
from gates.promotion.haproxy import ProxySpec
from gates.promotion.machine import CheckResult, Outcome, PromotionRun
from gates.promotion.nginx import Nginx, Ports, nginx_available, read_split, render_config
from gates.promotion.targets import target_for

DIGEST = "d" * 64
needs_nginx = pytest.mark.skipif(nginx_available() is not None, reason=str(nginx_available()))
CANARY_DELAY_S = 0.05  # per streamed chunk, where a test makes the canary model the slow one
CHUNKS = 3


class _Streamer(BaseHTTPRequestHandler):
    """Answers like Triton's generate_stream: headers first, then chunks, each after the model's delay."""

    protocol_version = "HTTP/1.1"
    served: ClassVar[list[str]] = []  # every model path served to the end (the mirror must not hang up early)
    delay_s: ClassVar[dict[str, float]] = {}  # per chunk, by model

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        model = self.path.split("/")[3]
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for i in range(CHUNKS):
            time.sleep(_Streamer.delay_s.get(model, 0.0))
            data = f'data: {{"model": "{model}", "i": {i}}}\n\n'.encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()
        _Streamer.served.append(model)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def upstream() -> Iterator[str]:
    _Streamer.served, _Streamer.delay_s = [], {}
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Streamer)
    srv.daemon_threads = True
    srv.handle_error = lambda *a: None  # type: ignore[method-assign]
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def _call(url: str, headers: dict[str, str]) -> tuple[str, str]:
    req = urllib.request.Request(f"http://{url}/v2/models/model/generate_stream", data=b"{}", headers=headers)
    with urllib.request.urlopen(req, timeout=10) as r:
        return str(r.headers["X-Gates-Arm"]), r.read().decode()


def _pids_in_group(pgid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == pgid:
                    out.append(int(entry.name))
            except OSError:
                continue
    return out


def test_render_refuses_a_mirror_with_users_on_the_canary(tmp_path: Path) -> None:
    spec, ports = ProxySpec("127.0.0.1:1", "model", "s", "c"), Ports(8080, 8081, 8082)
    with pytest.raises(ValueError, match="weight must be 0"):
        render_config(spec, ports, tmp_path, 10, mirror=True)
    assert "mirror /_gates_mirror" in render_config(spec, ports, tmp_path, 0, mirror=True)
    assert "mirror /_gates_mirror" not in render_config(spec, ports, tmp_path, 10, mirror=False)


def _line(end: float, took: float, arm: str, status: int, total: str, copy: str, rid: str) -> str:
    return f'gates {end} {took} {arm} {status} 0.001 {total} 297 "u" "-" {copy} {rid}'


def test_nginx_log_lines_are_parsed() -> None:
    copy = parse_nginx_line(_line(1796449999.210, 0.152, "canary", 200, "0.152", "mirror", "r1"))
    assert copy is not None and copy.copy and copy.id == "r1" and copy.request.arm == "canary"
    assert copy.request.ttft_ms == pytest.approx(1.0) and copy.request.latency_ms == pytest.approx(152.0)
    assert copy.request.at == pytest.approx(1796449999.058)  # logged at the end: accepted 152 ms before
    failed = parse_nginx_line('gates 1796449999.210 0.002 stable 502 - - 150 "a" "stable" - r2')
    assert failed is not None and failed.request.error and failed.request.synthetic and not failed.copy
    assert parse_nginx_line("2026/12/05 [error] upstream prematurely closed") is None


def test_a_copy_still_running_after_the_drain_is_the_canarys_error_not_a_missing_value() -> None:
    lines = [
        parse_nginx_line(_line(100.05, 0.05, "stable", 200, "0.050", "-", "a")),
        parse_nginx_line(_line(100.25, 0.25, "canary", 200, "0.250", "mirror", "a")),
        parse_nginx_line(_line(101.05, 0.05, "stable", 200, "0.050", "-", "b")),  # its copy never ended
        parse_nginx_line(_line(103.05, 0.05, "stable", 200, "0.050", "-", "c")),  # outside the window
        parse_nginx_line(_line(103.25, 0.25, "canary", 200, "0.250", "mirror", "c")),
    ]
    requests, unfinished = mirrored_window([ln for ln in lines if ln is not None], 99.0, 102.0)
    window = WindowData.of(99.0, 102.0, requests, "proxy")
    assert unfinished == 1
    assert window.stable.requests == 2 and window.canary.requests == 2 and window.canary.errors == 1
    assert window.canary.latency_ms == (250.0,)


@needs_nginx
def test_nginx_weights_read_back_sticky_and_stopped_by_process_group(tmp_path: Path, upstream: str) -> None:
    proxy = Nginx(ProxySpec(upstream, "model", "s", "c"), tmp_path, weight=20)
    with proxy:
        pid = proxy.pid
        assert pid is not None and proxy.read_weight() == 20
        assert len(_pids_in_group(pid)) >= 2  # master and worker
        arms = [_call(proxy.url, {"X-User-Id": f"user-{u}"}) for u in range(1000)]
        canary = sum(a == "canary" for a, _ in arms)
        # split_clients hashes users (MurmurHash2): 200 ± what hashing allows (binomial 3σ ≈ 38)
        assert 162 <= canary <= 238, canary
        assert all('"model": "c"' in body for a, body in arms if a == "canary")
        proxy.set_weight(50)  # users only move stable -> canary when the canary's weight rises
        assert read_split(proxy.url) == (50, False)
        assert all(
            _call(proxy.url, {"X-User-Id": f"user-{u}"})[0] == "canary" for u in range(1000) if arms[u][0] == "canary"
        )
        proxy.set_weight(0)
        assert _call(proxy.url, {"X-Gates-Synthetic": "canary"})[0] == "canary"  # the paired load's arm
        assert all(_call(proxy.url, {"X-User-Id": f"user-{u}"})[0] == "stable" for u in range(50))
    deadline = time.monotonic() + 10
    while _pids_in_group(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _pids_in_group(pid) == [], "nginx's master or workers left running"
    with pytest.raises(InfraError, match="did not answer"):
        read_split(proxy.url)  # a proxy that does not answer: never a weight


@needs_nginx
def test_mirror_copies_every_request_to_the_canary_and_reads_it_to_the_end(tmp_path: Path, upstream: str) -> None:
    _Streamer.delay_s = {"c": CANARY_DELAY_S}
    with Nginx(ProxySpec(upstream, "model", "s", "c"), tmp_path, weight=0, mirror=True) as proxy:
        assert read_split(proxy.url) == (0, True)
        start = time.time()
        answers = [_call(proxy.url, {"X-User-Id": f"user-{u}"}) for u in range(20)]
        assert all(a == "stable" and '"model": "s"' in body for a, body in answers)  # no user sees the canary
        deadline = time.monotonic() + 10  # each copy is logged when it ends
        while len(read_nginx_log(proxy.log_path)) < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
        requests, unfinished = mirrored_window(read_nginx_log(proxy.log_path), start - 1, time.time() + 1)
        window = WindowData.of(start - 1, time.time() + 1, requests, "proxy")
    assert unfinished == 0
    assert _Streamer.served.count("c") == 20  # each copy streamed to its last chunk, not cut after headers
    assert window.stable.requests == 20 and window.canary.requests == 20 and window.canary.errors == 0
    # the copy is timed to its last token: three chunks of 50 ms
    assert min(window.canary.latency_ms) >= 1000 * CHUNKS * CANARY_DELAY_S * 0.9
    assert max(window.stable.latency_ms) < min(window.canary.latency_ms)


@needs_nginx
def test_nginx_target_mirrors_then_a_user_weight_ends_the_mirror(tmp_path: Path, upstream: str) -> None:
    with Nginx(ProxySpec(upstream, "model", "s", "c"), tmp_path / "p", weight=0) as proxy:
        state = CanaryState("p", "nginx", proxy.endpoint().encode(), "s", "c", 0, time.time(), DIGEST)
        target = target_for(state)
        target.set_mirror(True)
        assert read_split(proxy.url) == (0, True)
        target.set_weight(10)
        assert read_split(proxy.url) == (10, False) and target.read_weight() == 10
    endpoint = {"url": "127.0.0.1:1", "admin": "/nonexistent", "log": "/nonexistent", "pid": 0, "served": "m"}
    haproxy_state = CanaryState("p", "haproxy", json.dumps(endpoint), "s", "c", 0, time.time(), DIGEST)
    with pytest.raises(BadInputError, match="cannot copy traffic"):
        target_for(haproxy_state).set_mirror(True)


def test_mirror_needs_canary_analysis() -> None:
    with pytest.raises(ValidationError, match=r"promotion\.mirror needs promotion\.analysis"):
        PromotionSection(mirror=True)
    assert PromotionSection(mirror=True, analysis=AnalysisSection()).mirror


class _Script:
    """A checker answering from a list; records (weight, mirror on) at every check."""

    def __init__(self, answers: list[str]) -> None:
        self.answers = answers
        self.seen: list[tuple[int, bool]] = []
        self.mirror = False

    def check(self, pipeline: str, weight: int) -> CheckResult:
        self.seen.append((weight, self.mirror))
        a = self.answers.pop(0) if self.answers else "PASS"
        figures = {"decision": a}
        return CheckResult(a == "PASS", f"window {a}", 10, hold=a == "NODATA", figures=figures)


def _run(
    tmp_path: Path, answers: list[str], failure_limit: int = 2
) -> tuple[Outcome, _Script, list[object], list[str]]:
    ledger = Ledger(str(tmp_path / "l.sqlite"))
    ledger.set_canary(CanaryState("p", "nginx", None, "s", "c", 0, time.time(), DIGEST), "ops", "canary_deploy")
    script = _Script(answers)
    events: list[object] = []

    def move(weight: int, action: str) -> None:
        script.mirror = False  # a user weight ends the mirror (as the nginx target does)
        events.append(weight)

    def mirror(on: bool) -> None:
        script.mirror = on
        events.append("mirror on" if on else "mirror off")

    cfg = PromotionSection(
        steps=[50, 100], retry_interval_s=0, failure_limit=failure_limit, mirror=True,
        analysis=AnalysisSection(max_windows=2),
    )  # fmt: skip
    run = PromotionRun(ledger, "p", cfg, script, move, "alice", 2, progress=lambda _: None, mirror=mirror)
    outcome = run.promote(DIGEST)
    history = [h["action"] for h in ledger.history("p")]
    return outcome, script, events, history


def test_mirror_is_judged_before_any_user_weight(tmp_path: Path) -> None:
    outcome, script, events, history = _run(tmp_path, ["NODATA", "PASS", "PASS", "PASS"])
    assert outcome.state == PromotionState.STABLE
    assert events == ["mirror on", 50, 100]
    assert script.seen == [(0, True), (0, True), (50, False), (100, False)]
    assert history.index("mirror_passed") < history.index("step_passed")


def test_a_canary_failing_on_copies_is_rolled_back_without_serving_a_user(tmp_path: Path) -> None:
    outcome, _, events, history = _run(tmp_path, ["FAIL", "FAIL"])
    assert outcome.state == PromotionState.ROLLED_BACK
    assert events == ["mirror on", 0]  # the rollback's weight 0 ends the mirror; no user weight ever
    assert "mirror_passed" not in history and history.count("check_failed") == 2


def test_no_decision_on_copies_stops_with_the_mirror_off(tmp_path: Path) -> None:
    outcome, _, events, history = _run(tmp_path, ["NODATA", "NODATA"])
    assert outcome.held
    assert events == ["mirror on", "mirror off"] and "analysis_held" in history


def test_a_target_that_cannot_mirror_is_refused_before_anything_moves(tmp_path: Path) -> None:
    ledger = Ledger(str(tmp_path / "l.sqlite"))
    ledger.set_canary(CanaryState("p", "haproxy", None, "s", "c", 0, time.time(), DIGEST), "ops", "canary_deploy")
    moves: list[int] = []
    cfg = PromotionSection(retry_interval_s=0, mirror=True, analysis=AnalysisSection())
    run = PromotionRun(ledger, "p", cfg, _Script([]), lambda w, a: moves.append(w), "alice", 2, progress=lambda _: None)
    with pytest.raises(BadInputError, match="cannot mirror"):
        run.promote(DIGEST)
    assert moves == []
    assert json.dumps(ledger.history("p"))  # nothing recorded is lost


@needs_nginx
def test_canary_serve_records_nginx_and_stops_it_on_sigterm(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    ledger_path = tmp_path / "l.sqlite"
    cmd = [sys.executable, "-m", "gates.cli", "canary", "serve", "demo", "--triton", "127.0.0.1:9", "--proxy", "nginx"]
    cmd += ["--stable", "s", "--canary", "c", "--weight", "10", "--digest", DIGEST, "--workdir", str(tmp_path / "p")]
    cmd += ["--ledger", str(ledger_path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        deadline = time.monotonic() + 120
        state = None
        while time.monotonic() < deadline and state is None:
            time.sleep(0.5)
            state = Ledger(str(ledger_path)).canary("demo") if ledger_path.exists() else None
        assert state is not None and state.target == "nginx" and state.weight == 10
        pid = json.loads(state.endpoint or "{}")["pid"]
        assert target_for(state).read_weight() == 10  # read back from nginx itself
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "nginx stopped" in out
    deadline = time.monotonic() + 10
    while _pids_in_group(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _pids_in_group(pid) == [], "nginx left running after SIGTERM"
