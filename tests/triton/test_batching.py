"""Concurrent streamed requests to one served model run in the engine's own batches (real
tritonserver, ONNX Runtime GenAI's ``Engine``): each answer is the one-at-a-time answer, the
batch sizes are in Triton's metrics, and a request that fails or goes away fails alone."""

from __future__ import annotations

import http.client
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from gates.artifacts import ArtifactStore, EngineBuild, ModelRef, tree_digest
from gates.config.engine import Batching, EngineSection, ServeSection
from gates.engines import ENGINES, load_runner
from gates.models.tiny import ensure_tiny_llama
from gates.triton.metrics import ModelWindow, parse
from gates.triton.repository import serving, set_parameters
from gates.triton.server import TritonServer

pytest.importorskip("onnxruntime_genai", reason="onnxruntime-genai is not installed (make install)")

PROMPTS = [
    "Four score and seven years ago",
    "The quick brown fox",
    "It was the best of times",
    "Call me Ishmael.",
    "In the beginning",
    "All happy families are alike",
    "It is a truth universally acknowledged",
    "Whether I shall turn out to be the hero",
]
MAX_NEW = 24


@pytest.fixture(scope="module")
def candidate(tmp_path_factory: pytest.TempPathFactory) -> EngineBuild:
    root = tmp_path_factory.mktemp("ort-batching")
    base = ensure_tiny_llama(root)
    cfg = EngineSection(backend="onnxruntime-genai", precision="int8", accuracy_level=4)
    return ENGINES["onnxruntime-genai"].build(
        ArtifactStore(root), ModelRef("candidate", base, tree_digest(base), "none", "real"), cfg
    )


def stream(url: str, model: str, prompt: str, max_new: int, stop_after: int | None = None) -> tuple[list[int], str]:
    """Token ids of one ``generate_stream`` answer and its error ("" when none); ``stop_after``
    tokens, the client hangs up (a user who went away mid-answer)."""
    host, port = url.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=120)
    body = json.dumps({"PROMPT": prompt, "MAX_NEW_TOKENS": max_new, "STREAM": True})
    conn.request("POST", f"/v2/models/{model}/generate_stream", body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    tokens: list[int] = []
    error = ""
    while True:
        line = response.readline()
        if not line:
            break
        if not line.startswith(b"data:"):
            continue
        event = json.loads(line[5:])
        if "error" in event:
            error = str(event["error"])
            break
        ids = event["TOKEN_IDS"]
        tokens.extend(int(t) for t in (ids if isinstance(ids, list) else [ids]))
        if stop_after is not None and len(tokens) >= stop_after:
            conn.close()
            return tokens, "hung up"
    conn.close()
    return tokens, error


def concurrently(calls: list[Any]) -> list[Any]:
    results: list[Any] = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = calls[i]()
        except Exception as exc:  # shown in the assertion, not lost in a thread
            results[i] = ([], f"client: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    return results


def serve(repo: Path, build: EngineBuild, batching: Batching) -> None:
    model_dir = ENGINES["onnxruntime-genai"].write_serving(repo, "m", build, 1)
    set_parameters(model_dir, serving(ServeSection(batching=batching)))


def test_concurrent_requests_run_in_one_batch_and_answer_as_one_at_a_time(
    candidate: EngineBuild, tmp_path: Path, no_leaked_servers: None
) -> None:
    serve(tmp_path / "models", candidate, Batching.ENGINE)
    runner = load_runner(candidate.serve_path, 1)
    alone = {p: list(runner.stream(runner.encode(p), MAX_NEW)) for p in PROMPTS}
    with TritonServer(tmp_path / "models", tmp_path) as server:
        server.load_model("m")
        before = parse(server.metrics()).get("m", {})
        answers = concurrently([lambda p=p: stream(server.url, "m", p, MAX_NEW) for p in PROMPTS])
        window = ModelWindow.between(before, parse(server.metrics())["m"])
    for prompt, (tokens, error) in zip(PROMPTS, answers, strict=True):
        assert error == "", prompt
        assert tokens == alone[prompt], prompt  # batching does not change the answer
    assert window.batch_size_max is not None and window.batch_size_max >= 4
    assert window.max_batch == 4  # the CPU build's static scheduler: the engine's own size
    assert window.engine_tokens == sum(len(t) for t, _ in answers)
    assert window.engine_busy_s is not None and window.engine_busy_s > 0


def test_a_request_that_fails_or_hangs_up_mid_batch_leaves_the_others_whole(
    candidate: EngineBuild, tmp_path: Path, no_leaked_servers: None
) -> None:
    serve(tmp_path / "models", candidate, Batching.ENGINE)
    runner = load_runner(candidate.serve_path, 1)
    too_long = "word " * 400  # beyond the tiny model's 256-token context: refused by the engine
    alone = {p: list(runner.stream(runner.encode(p), MAX_NEW)) for p in PROMPTS[:5]}
    with TritonServer(tmp_path / "models", tmp_path) as server:
        server.load_model("m")
        calls = [lambda p=p: stream(server.url, "m", p, MAX_NEW) for p in PROMPTS[:5]]
        calls.append(lambda: stream(server.url, "m", too_long, MAX_NEW))
        calls.append(lambda: stream(server.url, "m", PROMPTS[5], MAX_NEW, stop_after=2))
        answers = concurrently(calls)
        # the model still serves afterwards
        after = stream(server.url, "m", PROMPTS[0], MAX_NEW)
    for prompt, (tokens, error) in zip(PROMPTS[:5], answers[:5], strict=True):
        assert error == "" and tokens == alone[prompt], prompt
    assert "exceed" in answers[5][1] and answers[5][0] == []
    assert answers[6][1] == "hung up"
    assert after == (alone[PROMPTS[0]], "")


def test_batching_off_serves_one_at_a_time(candidate: EngineBuild, tmp_path: Path, no_leaked_servers: None) -> None:
    serve(tmp_path / "models", candidate, Batching.OFF)
    with TritonServer(tmp_path / "models", tmp_path) as server:
        server.load_model("m")
        answers = concurrently([lambda p=p: stream(server.url, "m", p, 8) for p in PROMPTS[:4]])
        window = ModelWindow.between({}, parse(server.metrics())["m"])
    assert all(error == "" and tokens for tokens, error in answers)
    assert window.steps_by_size.keys() == {1} and window.max_batch == 1  # every step ran one sequence
    assert window.engine_tokens == sum(len(t) for t, _ in answers)


def test_a_scheduler_step_that_hangs_marks_the_model_unhealthy_in_the_metrics(
    candidate: EngineBuild, tmp_path: Path, no_leaked_servers: None
) -> None:
    """The watchdog's threshold at 0 s: any step running when it looks counts as hung (the real
    threshold is minutes; the load stage then stops the run as INCONCLUSIVE naming the arm)."""
    serve(tmp_path / "models", candidate, Batching.ENGINE)
    set_parameters(tmp_path / "models" / "m", {"stall_s": "0"})
    with TritonServer(tmp_path / "models", tmp_path) as server:
        server.load_model("m")
        assert ModelWindow.between({}, parse(server.metrics())["m"]).engine_healthy is True
        concurrently([lambda p=p: stream(server.url, "m", p, 200) for p in PROMPTS])
        window = ModelWindow.between({}, parse(server.metrics())["m"])
        log = server.log_path.read_text(errors="replace")
    assert window.engine_healthy is False
    assert "the engine's scheduler is unhealthy: an engine step has run for more than 0 s" in log
