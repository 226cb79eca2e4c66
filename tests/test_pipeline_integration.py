"""The whole spine through the real CLI: tiny model, modelopt, tritonserver, locust."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest

from gates.artifacts import tree_digest
from gates.report.schema import SCHEMA_PATH
from gates.testing import tritonserver_pids

pytestmark = pytest.mark.integration

PIPELINE = """
name: {name}
model:
  source: builtin:tiny-llama
optimize:
  quantize:
    format: int8
    calibration: golden_prompts/calibration.jsonl
    samples: 16
    {extra}
load:
  users: 2
  duration_s: {duration}
  warmup_s: 1
  max_new_tokens: 8
  generator_max_lag_ms: 60   # a shared 2-core CI machine: the self-check has its own test
golden:
  suites: [golden_prompts/demo.jsonl]
  max_new_tokens: 8
gates:
  top1_agreement_min: 0.95
  exact_match_rate_min: 0.8
  mean_kl_max: 0.05
  min_requests: 10
"""

BROKEN = """quant_cfg:
      "*weight_quantizer": {num_bits: 2, axis: 0}"""


def _one_point(text: str) -> str:
    """One load window (the throughput point) where a test is not about the operating points."""
    return text.replace("load:\n", "load:\n  operating_points: [throughput]\n", 1)


def gates(args: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gates.cli", *args], capture_output=True, text=True, timeout=600, **kw)  # type: ignore[call-overload,no-any-return]


def test_spine_passes_and_writes_the_report_contract(
    write_pipeline: Callable[..., Path], artifacts_root: Path, tiny_model: Path, tmp_path: Path, no_leaked_servers: None
) -> None:
    cfg = write_pipeline(PIPELINE.format(name="spine-ok", extra="", duration=6))
    out = tmp_path / "run"
    proc = gates(["run", str(cfg), "--output", str(out), "--artifacts", str(artifacts_root)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for stage in ("preflight", "optimize", "build", "deploy", "load", "drift", "judge", "report", "publish"):
        assert f"[{stage}] done" in proc.stdout
    assert "verdict: PASS" in proc.stdout and f"report: {out / 'report.md'}" in proc.stdout
    report = json.loads((out / "report.json").read_text())
    jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text())).validate(report)  # what consumers rely on
    assert report["verdict"] == "PASS" and report["pipeline"] == "spine-ok"
    assert len(report["baseline"]["digest"]) == 64 and len(report["candidate"]["digest"]) == 64
    assert report["baseline"]["digest"] != report["candidate"]["digest"]
    for arm in ("baseline", "candidate"):
        load = report["load"][arm]
        assert set(load["latency_ms"]) >= {"p50", "p95", "p99"}
        assert 0 < load["latency_ms"]["p50"] <= load["latency_ms"]["p95"] <= load["latency_ms"]["p99"]
        assert load["rps"] > 0 and load["output_tokens_per_s"] > 0 and load["error_rate"] == 0
    drift = report["drift"]
    assert {"exact_match_rate", "top1_agreement", "mean_kl"} <= set(drift)
    assert drift["top1_agreement"] >= 0.95 and drift["mean_kl"] < 0.05
    names = {g["name"]: g for g in report["gates"]}
    assert {"latency_p95_ratio", "error_rate", "exact_match_rate", "top1_agreement", "mean_kl"} <= set(names)
    assert all({"name", "status", "observed", "threshold"} <= set(g) for g in report["gates"])
    assert names["latency_p95_ratio"]["status"] == "not_applied" and "simulate" in names["latency_p95_ratio"]["reason"]
    assert set(report["durations_s"]) >= {"preflight", "optimize", "build", "deploy", "load", "drift"}
    md = (out / "report.md").read_text()
    assert md.startswith("<!-- gates:report pipeline=spine-ok -->") and "**PASS**" in md and "simulated" in md
    assert (out / "report.html").read_text().startswith("<!doctype html>")
    assert (out / "load" / "requests.csv").read_text().count("\n") > 20


# slow (CI runs it): make demo gates int8 latency on the same kernels, and
# test_engine_quantized_candidate_is_identified_by_its_build runs that engine in every make test
@pytest.mark.slow
def test_int8_engine_gates_latency_on_real_kernels(
    write_pipeline: Callable[..., Path], artifacts_root: Path, tiny_model: Path, tmp_path: Path, no_leaked_servers: None
) -> None:
    text = PIPELINE.format(name="spine-int8", extra="", duration=4)
    cfg = write_pipeline(text.replace("load:", "engine:\n  backend: torch-int8\nload:", 1))
    out = tmp_path / "run"
    proc = gates(["run", str(cfg), "--output", str(out), "--artifacts", str(artifacts_root)])
    report = json.loads((out / "report.json").read_text())
    assert proc.returncode in (0, 1, 3), proc.stdout + proc.stderr
    assert report["engine"]["backend"] == "torch-int8"
    # latency is measured on INT8 kernels, so the performance gates are judged, not voided
    latency = {g["name"]: g for g in report["gates"]}["latency_p95_ratio"]
    assert latency["status"] != "not_applied", latency
    assert report["drift"]["top1_agreement"] >= 0.95, report["drift"]
    assert "INT8 integer GEMMs" in (out / "report.md").read_text()


def test_damaged_candidate_fails_on_drift_gates(
    write_pipeline: Callable[..., Path], artifacts_root: Path, tiny_model: Path, tmp_path: Path, no_leaked_servers: None
) -> None:
    cfg = write_pipeline(_one_point(PIPELINE.format(name="spine-broken", extra=BROKEN, duration=3)))
    out = tmp_path / "run"
    proc = gates(["run", str(cfg), "--output", str(out), "--artifacts", str(artifacts_root)])
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads((out / "report.json").read_text())
    failed = {g["name"] for g in report["gates"] if g["status"] == "fail"}
    assert {"top1_agreement", "exact_match_rate", "mean_kl"} <= failed
    assert "verdict: FAIL" in proc.stdout and "top1_agreement" in report["reason"]
    assert "top1_agreement" in (out / "report.md").read_text()


def _wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.1)


def _start_until_load(cfg: Path, out: Path, artifacts_root: Path) -> subprocess.Popen[str]:
    """`gates run` in the background, returned once its load stage has started."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "gates.cli", "run", str(cfg), "--output", str(out), "--artifacts", str(artifacts_root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for(out / "load" / "load_spec.json", proc)
    return proc


def test_server_dying_mid_run_exits_3_and_never_passes(
    write_pipeline: Callable[..., Path], artifacts_root: Path, tiny_model: Path, tmp_path: Path, no_leaked_servers: None
) -> None:
    cfg = write_pipeline(PIPELINE.format(name="spine-crash", extra="", duration=30))
    out = tmp_path / "run"
    proc = _start_until_load(cfg, out, artifacts_root)
    time.sleep(2)
    os.kill(json.loads((out / "triton.json").read_text())["pid"], signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 3, stdout + stderr
    assert "tritonserver died" in stdout
    report = json.loads((out / "report.json").read_text())
    assert report["verdict"] == "INCONCLUSIVE" and "tritonserver died" in report["reason"]
    assert "verdict: INCONCLUSIVE" in stdout


def test_sigterm_mid_run_stops_the_server(
    write_pipeline: Callable[..., Path], artifacts_root: Path, tiny_model: Path, tmp_path: Path, no_leaked_servers: None
) -> None:
    cfg = write_pipeline(PIPELINE.format(name="spine-term", extra="", duration=30))
    out = tmp_path / "run"
    proc = _start_until_load(cfg, out, artifacts_root)
    pid = json.loads((out / "triton.json").read_text())["pid"]
    assert pid in tritonserver_pids()
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert pid not in tritonserver_pids()


def test_streaming_records_are_consistent(
    write_pipeline: Callable[..., Path], artifacts_root: Path, tiny_model: Path, tmp_path: Path, no_leaked_servers: None
) -> None:
    """TTFT ≤ end-to-end latency; ITL × (tokens − 1) + TTFT ≈ latency within 10% (GenAI-Perf's definitions)."""
    cfg = write_pipeline(
        _one_point(PIPELINE.format(name="spine-stream", extra="", duration=4)).replace(
            "max_new_tokens: 8", "max_new_tokens: 12", 1
        )
    )
    out = tmp_path / "run"
    proc = gates(["run", str(cfg), "--output", str(out), "--artifacts", str(artifacts_root)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    import csv

    rows = [r for r in csv.DictReader((out / "load" / "requests.csv").open()) if r["ok"] == "1"]
    assert len(rows) > 20
    gaps = []
    for r in rows:
        latency, ttft, itl, n = float(r["latency_ms"]), float(r["ttft_ms"]), float(r["itl_ms"]), int(r["output_tokens"])
        assert n == 12 and 0 < ttft <= latency and itl > 0
        gaps.append(abs(itl * (n - 1) + ttft - latency) / latency)
    # latency runs to the end of the stream (the final flag after the last token), so the identity
    # holds up to that close; on a shared 2-core machine a few requests see a late close (one of
    # ~100 requests of a few ms each was 47% off once, a 5 ms scheduling hiccup): the bound is on
    # the share of requests, not on the single worst one
    assert sorted(gaps)[int(0.95 * (len(gaps) - 1))] <= 0.10, sorted(gaps)[-10:]
    assert sum(g > 0.25 for g in gaps) <= max(1, len(gaps) // 50), sorted(gaps)[-10:]
    report = json.loads((out / "report.json").read_text())
    for arm in ("baseline", "candidate"):
        assert 0 < report["load"][arm]["ttft_ms"]["p50"] <= report["load"][arm]["latency_ms"]["p50"]
    assert next(g for g in report["gates"] if g["name"] == "load_generator")["status"] == "pass"


def test_starved_generator_is_inconclusive(
    write_pipeline: Callable[..., Path], artifacts_root: Path, tiny_model: Path, tmp_path: Path, no_leaked_servers: None
) -> None:
    """A client host that cannot drive the offered load (here: the locust process niced to 19 and
    sharing its only core with a busy loop) must make the run INCONCLUSIVE, not PASS or FAIL."""
    import multiprocessing

    import psutil

    # the default lag limit (20 ms): the starved worker's loop ran 36-48 ms late (p50-p95), an
    # unstarved one 1-5 ms; the 60 ms the other tests allow for a busy CI machine hides it
    text = PIPELINE.format(name="spine-starved", extra="", duration=10)
    # one window (the throughput point): the worker starved below is the one whose figures are judged
    # (the latency point's own generator check is tests/judge/test_points.py's)
    text = text.replace("load:\n", "load:\n  operating_points: [throughput]\n", 1)
    cfg = write_pipeline(re.sub(r"generator_max_lag_ms: 60.*", "generator_max_lag_ms: 20", text))
    out = tmp_path / "run"
    proc = _start_until_load(cfg, out, artifacts_root)
    deadline = time.monotonic() + 10
    workers: list[psutil.Process] = []
    while not workers and time.monotonic() < deadline:
        workers = [
            c
            for c in psutil.Process(proc.pid).children(recursive=True)
            if "gates.loadgen.worker" in " ".join(c.cmdline())
        ]
    assert workers, "locust worker not found"
    # starve it once its load runs (a connection to the server is open), not while it imports
    # locust: at nice 19 beside a busy loop an import takes minutes, and the run then ends as
    # "did not finish" instead of exercising the saturation check
    while not workers[0].net_connections(kind="tcp") and time.monotonic() < deadline + 60:
        time.sleep(0.05)
    # every thread of the worker (affinity and niceness are per thread on Linux: pinning the pid
    # alone left its other threads free on the second core, and the loop was no longer starved)
    for thread in workers[0].threads():
        os.sched_setaffinity(thread.id, {0})
        os.setpriority(os.PRIO_PROCESS, thread.id, 19)
    # three busy loops beside it (one left the worker enough CPU to keep its loop on time, lag p95
    # 8-11 ms, once the served models answered faster than when this test was calibrated), for 6 s
    # of the 10 s load: starved to the end, the worker did not even finish (a different INCONCLUSIVE)
    hogs = [multiprocessing.get_context("fork").Process(target=_busy_on_cpu0, daemon=True) for _ in range(3)]
    for hog in hogs:
        hog.start()

    def release() -> None:
        for hog in hogs:
            hog.kill()

    timer = threading.Timer(6.0, release)
    timer.start()
    try:
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        timer.cancel()
        release()
    assert proc.returncode == 3, stdout + stderr
    report = json.loads((out / "report.json").read_text())
    assert report["verdict"] == "INCONCLUSIVE"
    assert "load generator was saturated" in report["reason"]


def _busy_on_cpu0() -> None:
    os.sched_setaffinity(0, {0})
    end = time.monotonic() + 120
    while time.monotonic() < end:
        pass


@pytest.mark.slow  # 25 s: CI runs it; tests/loadgen cover the mix and length draws on the real server
def test_request_mix_and_output_length_distribution(
    write_pipeline: Callable[..., Path], artifacts_root: Path, tiny_model: Path, tmp_path: Path, no_leaked_servers: None
) -> None:
    """A mix of golden and peak-context prompts, output lengths drawn in a range: the records show both."""
    import csv

    text = _one_point(PIPELINE.format(name="spine-mix", extra="", duration=5)).replace(
        "  max_new_tokens: 8\n  generator_max_lag_ms",
        "  max_new_tokens: 2\n  max_new_tokens_max: 6\n  mix: {golden: 0.5, peak_context: 0.5}\n  generator_max_lag_ms",
        1,
    )
    out = tmp_path / "run"
    proc = gates(["run", str(write_pipeline(text)), "--output", str(out), "--artifacts", str(artifacts_root)])
    assert proc.returncode in (0, 1, 3), proc.stdout + proc.stderr
    rows = [r for r in csv.DictReader((out / "load" / "requests.csv").open()) if r["ok"] == "1"]
    lengths = {int(r["max_new_tokens"]) for r in rows}
    assert lengths <= set(range(2, 7)) and len(lengths) >= 3
    assert all(int(r["output_tokens"]) == int(r["max_new_tokens"]) for r in rows)
    chars = sorted(int(r["prompt_chars"]) for r in rows)
    assert chars[0] < 60 and chars[-1] > 400, "both short golden and peak-context prompts were sent"


ORT_PIPELINE = """
name: ort-identity
model:
  source: builtin:tiny-llama
engine:
  backend: onnxruntime-genai
  precision: int8
  accuracy_level: 4
  block_size: 32
load:
  users: 2
  duration_s: 4
  warmup_s: 1
  max_new_tokens: 8
  generator_max_lag_ms: 60
golden:
  suites: [golden_prompts/demo.jsonl]
  max_new_tokens: 8
  full_kl: true
gates:
  latency_p95_ratio_max: null
  exact_match_rate_min: null
  top1_agreement_min: 0.5
  error_rate_max: 0.5
  min_requests: 5
  metrics: []
promotion:
  approvers: [ci]
"""


def test_engine_quantized_candidate_is_identified_by_its_build(
    write_pipeline: Callable[..., Path], artifacts_root: Path, tiny_model: Path, tmp_path: Path, no_leaked_servers: None
) -> None:
    """Issue 24 (what `make demo` shows on SmolLM2): both arms are built by onnxruntime-genai from one
    checkpoint, so their model digests are equal; their build digests differ, the ledger's run row
    holds the candidate's, and a canary serving another build is refused naming both digests."""
    pytest.importorskip("onnxruntime_genai", reason="onnxruntime-genai is not installed (make install)")
    from gates.ledger import CanaryState, Ledger
    from gates.promotion.targets.weighted_router import WeightedRouter

    cfg = write_pipeline(ORT_PIPELINE)
    out = tmp_path / "run"
    ledger_path = tmp_path / "ledger.sqlite"  # GATES_LEDGER (conftest)
    # from the repository's root, as a workflow runs it: the run is recorded under pipelines/p.yaml
    args = ["run", str(cfg), "--output", str(out), "--artifacts", str(artifacts_root), "--actor", "ci"]
    proc = gates(args, cwd=cfg.parent.parent)
    report = json.loads((out / "report.json").read_text())
    # judged (a saturated load generator on a busy machine may leave it INCONCLUSIVE: still measured)
    assert proc.returncode in (0, 1, 3) and report["error"] is None, proc.stdout[-3000:] + proc.stderr[-3000:]
    baseline, candidate = report["baseline"], report["candidate"]
    assert baseline["digest"] == candidate["digest"]  # one checkpoint: the model artifact cannot tell them apart
    assert len(candidate["build_digest"]) == 64 and candidate["build_digest"] != baseline["build_digest"]
    assert candidate["build_digest"] == tree_digest(Path(candidate["build_path"]))
    assert report["quantization"]["format"] == "int8_wo"
    assert report["quantization"]["by"] == "onnxruntime-genai builder"
    assert (report["quantization"]["block_size"], report["quantization"]["accuracy_level"]) == (32, 4)
    ledger = Ledger(str(ledger_path))
    (run,) = ledger.runs("ort-identity")
    assert run.digest == candidate["build_digest"] and run.verdict == report["verdict"]
    assert f"(build `{candidate['build_digest'][:12]}`)" in (out / "report.md").read_text()
    # the full-vocabulary KL through the served models, beside the top-k figure it bounds from above
    drift = report["drift"]
    assert drift["mean_kl_full"] is not None and drift["mean_kl_full"] >= drift["mean_kl"] - 1e-9, drift
    assert "lower bounds" in drift["kl_note"] and "top-20" in drift["kl_note"]
    if report["verdict"] != "PASS":
        return  # a FAIL is refused before the digests are compared
    # the canary serves the baseline's build (deployed by mistake): refused, naming both digests
    with WeightedRouter("127.0.0.1:9", "model", "s", "c", 0, 0, "127.0.0.1:9") as router:
        state = CanaryState("ort-identity", "local", router.url, "s", "c", 0, time.time(), baseline["build_digest"])
        ledger.set_canary(state, "ops", "canary_deploy")
        refused = gates(["promote", str(cfg), "--repo-dir", str(cfg.parent.parent), "--actor", "ci"])
    assert router.weight == 0  # nothing moved
    assert refused.returncode == 1, refused.stdout + refused.stderr
    said = refused.stdout + refused.stderr
    assert baseline["build_digest"] in said and candidate["build_digest"] in said, said
