"""Against the real tritonserver: lifecycle, and the served candidate equals the optimized model."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from gates.artifacts import ArtifactStore, ModelRef, tree_digest
from gates.config.engine import EngineSection
from gates.engines import ENGINES
from gates.errors import InfraError, SubprocessError
from gates.models.loader import load_model
from gates.triton.client import TextModelClient
from gates.triton.repository import render_config, write_model
from gates.triton.server import TritonServer

pytestmark = pytest.mark.integration


def test_config_pbtxt_quotes_paths() -> None:
    text = render_config("m", Path('/tmp/we"ird'))
    assert 'string_value: "/tmp/we\\"ird"' in text
    assert "max_batch_size: 0" in text and 'backend: "python"' in text


def test_served_candidate_matches_optimized_model(
    tmp_path: Path, tiny_model: Path, int8_candidate: tuple[Path, Any], no_leaked_servers: None
) -> None:
    cand_path, quantized = int8_candidate
    engine = ENGINES["torch-int8"].build(
        ArtifactStore(tmp_path / "store"),
        ModelRef("candidate", cand_path, tree_digest(cand_path), "int8_sq", "simulated"),
        EngineSection(backend="torch-int8"),
    )
    int8_model, _ = load_model(engine.serve_path)
    repo = tmp_path / "models"
    write_model(repo, "baseline", tiny_model)
    write_model(repo, "candidate", cand_path)
    write_model(repo, "candidate-int8", engine.serve_path)
    _, tok = load_model(tiny_model)
    prompt = "Shall I compare thee to a"
    with TritonServer(repo, tmp_path) as server:
        client = TextModelClient(server.grpc_url)
        for name in ("baseline", "candidate", "candidate-int8"):
            server.load_model(name)
        base = client.generate("baseline", prompt, 12, top_k=8)
        served = {
            name: client.generate(
                name, prompt, 12, top_k=8, forced_ids=np.array(base.token_ids), logprob_ids=base.top_ids
            )
            for name in ("candidate", "candidate-int8")
        }
        client.close()
    ids = tok(prompt, return_tensors="pt")["input_ids"]
    full = torch.cat([ids[0], torch.tensor(base.token_ids)]).unsqueeze(0)
    # the served models are the in-memory ones: the simulated artifact, and the INT8 engine built from it
    for name, model in (("candidate", quantized), ("candidate-int8", int8_model)):
        with torch.no_grad():
            logits = model(input_ids=full).logits[0, ids.shape[1] - 1 : -1]
        want = torch.log_softmax(logits.float(), -1)
        want_sel = torch.gather(want, 1, torch.as_tensor(base.top_ids)).numpy()
        assert served[name].selected_logprobs.shape == (12, 8)
        np.testing.assert_allclose(served[name].selected_logprobs, want_sel, atol=1e-4, err_msg=name)
        assert served[name].top_ids[:, 0].tolist() == want.argmax(-1).tolist()


def test_dead_server_is_reported(tmp_path: Path, tiny_model: Path, no_leaked_servers: None) -> None:
    repo = tmp_path / "models"
    write_model(repo, "baseline", tiny_model)
    server = TritonServer(repo, tmp_path)
    server.start()
    try:
        server.check_alive()
        assert server.pid is not None
        os.kill(server.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while server.proc is not None and server.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(SubprocessError, match="tritonserver died"):
            server.check_alive()
        with pytest.raises(InfraError):
            server.load_model("baseline")
    finally:
        server.stop()
        server.stop()  # idempotent


def test_sampling_through_tritonserver_is_seeded_and_greedy_is_unchanged(
    tmp_path: Path, tiny_model: Path, no_leaked_servers: None
) -> None:
    from gates.engines.torch_runner import TorchRunner

    repo = tmp_path / "models"
    write_model(repo, "baseline", tiny_model)
    prompt = "Shall I compare thee to a"
    with TritonServer(repo, tmp_path) as server:
        server.load_model("baseline")
        client = TextModelClient(server.grpc_url)
        greedy = client.generate("baseline", prompt, 10, top_k=4)
        zero = client.generate("baseline", prompt, 10, top_k=4, temperature=0.0, seed=3)
        drawn = {s: client.generate("baseline", prompt, 10, temperature=1.0, seed=s).token_ids for s in range(1, 6)}
        again = client.generate("baseline", prompt, 10, temperature=1.0, seed=1).token_ids
        client.close()
    runner = TorchRunner(tiny_model, 1)
    ids = runner.encode(prompt)
    # no TEMPERATURE input (or 0) is greedy, exactly what the runner decodes greedily in process
    assert list(greedy.token_ids) == runner.generate(ids, 10)[0] == list(zero.token_ids)
    np.testing.assert_array_equal(greedy.top_logprobs, zero.top_logprobs)
    # the same seed draws the same answer, served or in process; other seeds draw others
    assert again == drawn[1]
    assert list(drawn[1]) == runner.generate(ids, 10, temperature=1.0, seed=1)[0]
    assert len(set(drawn.values())) > 1
