"""``gates canary serve PIPELINE`` without ``--triton``: stable and canary served from the builds the
gate measured, on a real tritonserver behind a real proxy; refused (exit 2) when there are none."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from gates.artifacts import ArtifactStore, tree_digest
from gates.config import load_pipeline
from gates.engines import EngineBuild, ModelRef
from gates.ledger import Ledger
from gates.promotion.nginx import nginx_available
from gates.promotion.targets import target_for
from gates.triton.warm import remember

CFG = "name: local-canary\nmodel:\n  source: builtin:tiny-llama\ngolden:\n  suites: [golden_prompts/demo.jsonl]\n"


def _build(path: Path, role: str) -> EngineBuild:
    return EngineBuild("torch", ModelRef(role, path, "m-" + role, "none", "real"), path, role, True, True, "")


def _gates(cwd: Path, *args: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "gates.cli", "canary", "serve", *args]
    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd, env=dict(os.environ)
    )


def test_a_pipeline_without_measured_builds_is_refused(write_pipeline: Callable[..., Path], tmp_path: Path) -> None:
    path = write_pipeline(CFG)
    proc = _gates(tmp_path, str(path), "--artifacts", str(tmp_path / "a"), "--ledger", str(tmp_path / "l.sqlite"))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "run `gates run" in err and "no builds" in err, err
    proc = _gates(tmp_path, str(path), "--stable", "x", "--ledger", str(tmp_path / "l.sqlite"))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "pass --triton" in err, err


@pytest.mark.integration
@pytest.mark.skipif(nginx_available() is not None, reason=str(nginx_available()))
def test_canary_serve_starts_triton_with_the_measured_builds(
    write_pipeline: Callable[..., Path], tiny_model: Path, tmp_path: Path, no_leaked_servers: None
) -> None:
    path = write_pipeline(CFG)
    store = ArtifactStore(tmp_path / "a")
    remember(
        store, load_pipeline(path).config, {"baseline": _build(tiny_model, "b"), "candidate": _build(tiny_model, "c")}
    )
    ledger_path = tmp_path / "l.sqlite"
    proc = _gates(tmp_path, str(path), "--proxy", "nginx", "--artifacts", str(store.root), "--ledger", str(ledger_path),
                  "--workdir", str(tmp_path / "proxy"))  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        state = None
        while time.monotonic() < deadline and state is None and proc.poll() is None:
            time.sleep(0.5)
            state = Ledger(str(ledger_path)).canary("local-canary") if ledger_path.exists() else None
        assert state is not None, proc.stderr.read() if proc.stderr and proc.poll() is not None else "not recorded"
        assert (state.target, state.stable, state.canary) == ("nginx", "baseline", "candidate")
        assert state.digest == tree_digest(tiny_model)  # what the canary serves, as promotion checks it
        endpoint = json.loads(state.endpoint or "{}")
        assert endpoint["triton_grpc"]  # live drift checks can reach both models
        assert target_for(state).read_weight() == 0
        body = json.dumps({"PROMPT": "Hello", "MAX_NEW_TOKENS": 3, "STREAM": True}).encode()
        req = urllib.request.Request(f"http://{endpoint['url']}/v2/models/model/generate_stream", data=body)
        with urllib.request.urlopen(req, timeout=60) as r:
            assert r.headers["X-Gates-Arm"] == "stable" and r.read().count(b"data:") == 3
        # the stable model's own record of it: what canary analysis reads for ITL and output tokens
        record = json.loads(Path(endpoint["request_logs"]["stable"]).read_text().splitlines()[-1])
        assert record["output_tokens"] == 3 and record["ok"] and record["itl_ms"] > 0
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "nginx stopped" in out and "tritonserver stopped" in out
