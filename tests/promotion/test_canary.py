"""Canary routing against the real tritonserver, KServe manifests, and the recorded state."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from gates.artifacts import tree_digest
from gates.errors import BadInputError, CapabilityError
from gates.ledger import CanaryState, Ledger
from gates.promotion import canary as ops
from gates.promotion.local_serve import digest_to_record, served_build_digest
from gates.promotion.targets.kserve import apply, render_inference_service, validate
from gates.promotion.targets.weighted_router import WeightedRouter
from gates.triton.repository import write_model
from gates.triton.server import TritonServer

REPO = Path(__file__).resolve().parents[2]


def _post(url: str, body: dict[str, object]) -> tuple[str, bytes]:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.headers["X-Gates-Arm"], r.read()


def test_split_is_exact_and_weight_zero_sends_nothing() -> None:
    router = WeightedRouter("127.0.0.1:1", "m", "s", "c", weight=20)
    picks = [router.pick() for _ in range(1000)]
    assert picks.count("canary") == 200
    router.set_weight(0)
    assert all(router.pick() == "stable" for _ in range(500))
    router.set_weight(100)
    assert all(router.pick() == "canary" for _ in range(50))
    with pytest.raises(ValueError):
        router.set_weight(101)


@pytest.mark.integration
def test_router_before_triton_weight_20_then_rollback(
    tmp_path: Path, tiny_model: Path, no_leaked_servers: None
) -> None:
    repo = tmp_path / "models"
    write_model(repo, "stable", tiny_model)
    write_model(repo, "canary", tiny_model)
    ledger = Ledger(str(tmp_path / "ledger.sqlite"))
    with TritonServer(repo, tmp_path) as server:
        server.load_model("stable")
        server.load_model("canary")
        # issue 24: `gates canary serve` records the build digest of what Triton's canary model loads
        assert served_build_digest(server.url, "canary") == (tree_digest(tiny_model), tiny_model)
        assert served_build_digest(server.url, "absent") is None
        with pytest.raises(BadInputError, match=f"is not the build Triton's model 'canary' serves .*{tiny_model}"):
            digest_to_record("e" * 64, served_build_digest(server.url, "canary"), "canary")
        with WeightedRouter(server.url, "model", "stable", "canary") as router:
            ledger.set_canary(
                CanaryState("demo", "local", router.url, "stable", "canary", 0, time.time()), "ci", "canary_deploy"
            )
            ops.set_weight(ledger, "demo", 20, "alice")
            url = f"http://{router.url}/v2/models/model/generate_stream"
            arms = [_post(url, {"PROMPT": "Four score", "MAX_NEW_TOKENS": 1, "STREAM": True})[0] for _ in range(1000)]
            share = arms.count("canary") / len(arms)
            assert 0.16 <= share <= 0.24, share
            counts = json.loads(urllib.request.urlopen(f"http://{router.url}/gates/router").read())["counts"]
            assert counts == {"stable": arms.count("stable"), "canary": arms.count("canary")}
            # the streamed body really came from Triton
            _, body = _post(url, {"PROMPT": "Four score", "MAX_NEW_TOKENS": 3, "STREAM": True})
            assert body.count(b"data:") == 3 and b"TOKEN_IDS" in body
            ops.set_weight(ledger, "demo", 0, "bob", "rollback")
            before = router.snapshot()["counts"]["canary"]
            for _ in range(100):
                assert _post(url, {"PROMPT": "x", "MAX_NEW_TOKENS": 1, "STREAM": True})[0] == "stable"
            assert router.snapshot()["counts"]["canary"] == before
    assert ledger.canary("demo").weight == 0  # type: ignore[union-attr]
    actions = [(h["action"], h["to"], h["actor"]) for h in ledger.history("demo")]
    assert actions == [
        ("canary_deploy", "weight=0", "ci"),
        ("canary_set", "weight=20", "alice"),
        ("rollback", "weight=0", "bob"),
    ]


def test_kserve_manifest_renders_and_validates(tmp_path: Path) -> None:
    m = render_inference_service("llama-int8", "models", "s3://bucket/llama-int8/", 25, gpus=1)
    assert m["spec"]["predictor"]["canaryTrafficPercent"] == 25
    assert m["spec"]["predictor"]["model"]["modelFormat"] == {"name": "triton"}
    assert m["spec"]["predictor"]["model"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert validate(m) == []
    with pytest.raises(BadInputError, match="DNS-1123"):
        render_inference_service("Bad_Name", "models", "s3://b/x", 10)
    with pytest.raises(BadInputError, match="storageUri"):
        render_inference_service("ok", "models", "/local/path", 10)
    broken = dict(m, spec={"predictor": {"canaryTrafficPercent": 150, "model": m["spec"]["predictor"]["model"]}})
    assert "canaryTrafficPercent" in validate(broken)[0]


def test_kserve_apply_without_kubectl_writes_the_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    out = tmp_path / "isvc.yaml"
    with pytest.raises(CapabilityError, match="kubectl is not installed"):
        apply(render_inference_service("a", "b", "s3://c/d", 10), out)
    assert yaml.safe_load(out.read_text())["kind"] == "InferenceService"


def test_kserve_canary_is_recorded_even_without_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    ledger = Ledger(str(tmp_path / "l.sqlite"))
    ledger.set_canary(CanaryState("p", "kserve", "models/p/s3://b/p", None, "s3://b/p", 0, 0.0), "ci", "canary_deploy")
    with pytest.raises(CapabilityError):
        ops.set_weight(ledger, "p", 30, "alice", workdir=tmp_path)
    assert ledger.canary("p").weight == 0, "a failed apply is not recorded as done"  # type: ignore[union-attr]
    assert (tmp_path / "p.inferenceservice.yaml").is_file()


def test_cli_without_canary_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "pipelines").mkdir()
    shutil.copy(REPO / "pipelines" / "demo.yaml", tmp_path / "pipelines" / "demo.yaml")
    cmd = [sys.executable, "-m", "gates.cli", "promote", "pipelines/demo.yaml", "--ledger", str(tmp_path / "l.db")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 2 and "no canary deployment recorded" in proc.stderr
    proc = subprocess.run([*cmd[:4], "pipelines/nope.yaml", *cmd[5:]], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2 and "pipelines/nope.yaml: no such pipeline file" in proc.stderr
