"""Canary targets behind one protocol: the factory, KServe's typed endpoint, its weight read back,
and the live re-check of a KServe canary through its URL (a real tritonserver stands in for the
canary revision; kubectl is a script that answers as a cluster would)."""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from pathlib import Path

import pytest

from gates.config.promotion import RecheckSection
from gates.errors import BadInputError, CapabilityError, InfraError
from gates.ledger import CanaryState
from gates.promotion.recheck import LiveChecker
from gates.promotion.targets import TARGETS, target_for
from gates.promotion.targets.kserve import KServeEndpoint, KServeTarget
from gates.promotion.targets.local import LocalRouterTarget
from gates.triton.repository import write_model
from gates.triton.server import TritonServer


def kserve_state(endpoint: str, weight: int = 0) -> CanaryState:
    return CanaryState("demo", "kserve", endpoint, None, "s3://b/demo", weight, time.time(), "d" * 64)


@pytest.fixture()
def kubectl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A kubectl that keeps the applied InferenceService and answers ``get`` with it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "kubectl"
    store = tmp_path / "cluster.yaml"
    script.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = apply ]; then cp "$3" {store}; echo configured; exit 0; fi\n'
        f'if [ "$1" = get ]; then [ -f {store} ] || {{ echo "NotFound" >&2; exit 1; }}; '
        f"{sys.executable} -c 'import json,sys,yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))' {store}; "
        "exit 0; fi\n"
        "exit 3\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return store


def test_one_factory_per_recorded_kind() -> None:
    assert set(TARGETS) == {"haproxy", "local", "nginx", "kserve"}
    assert isinstance(target_for(CanaryState("p", "local", "127.0.0.1:9", "s", "c", 0, 0.0)), LocalRouterTarget)
    assert isinstance(target_for(kserve_state("ml/demo/s3://b/demo")), KServeTarget)
    with pytest.raises(BadInputError, match="unknown canary target 'nomad'"):
        target_for(CanaryState("p", "nomad", "x", None, None, 0, 0.0))
    with pytest.raises(InfraError, match="no router endpoint"):
        target_for(CanaryState("p", "local", None, "s", "c", 0, 0.0))


def test_kserve_endpoint_is_typed_and_reads_what_older_ledgers_wrote() -> None:
    e = KServeEndpoint("ml", "demo", "s3://b/demo", url="http://latest-demo.ml.example.com", model="llm")
    assert KServeEndpoint.parse(e.encode()) == e
    assert KServeEndpoint.parse("ml/demo/s3://b/demo") == KServeEndpoint("ml", "demo", "s3://b/demo")
    for bad in ("", "just-a-name", '{"namespace": "ml"}', "{not json"):
        with pytest.raises(BadInputError, match="unreadable KServe endpoint"):
            KServeEndpoint.parse(bad)


def test_kserve_weight_is_set_then_read_back_from_the_cluster(kubectl: Path, tmp_path: Path) -> None:
    target = KServeTarget(KServeEndpoint("ml", "demo", "s3://b/demo"), tmp_path)
    with pytest.raises(Exception, match="kubectl get failed"):
        target.read_weight()  # nothing applied yet: the cluster says NotFound
    target.set_weight(25)
    assert target.read_weight() == 25
    target.set_weight(0)
    assert target.read_weight() == 0


def test_kserve_weight_cannot_be_read_without_kubectl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(CapabilityError, match="kubectl is not installed"):
        KServeTarget(KServeEndpoint("ml", "demo", "s3://b/demo"), tmp_path).read_weight()


def test_a_target_whose_weight_differs_from_the_step_fails_the_check() -> None:
    cfg = RecheckSection(requests=3, drift_prompts=0)
    sent: list[str] = []

    def send(prompt: str) -> tuple[str, str]:
        sent.append(prompt)
        return "canary", ""

    checker = LiveChecker(send, None, ["a"], cfg, read_weight=lambda: 10)
    result = checker.check("demo", 25)
    assert not result.passed and "applies 10%" in result.detail and sent == []
    assert LiveChecker(send, None, ["a"], cfg, read_weight=lambda: 25).check("demo", 25).passed


def test_drift_asked_for_without_endpoints_fails_closed() -> None:
    checker = LiveChecker(lambda p: ("canary", ""), None, ["a"], RecheckSection(requests=2, drift_prompts=1))
    result = checker.check("demo", 50)
    assert not result.passed and "no gRPC endpoints" in result.detail


@pytest.mark.integration
def test_kserve_canary_is_rechecked_live_through_its_url(
    tmp_path: Path, tiny_model: Path, kubectl: Path, no_leaked_servers: None
) -> None:
    repo = tmp_path / "models"
    write_model(repo, "llm", tiny_model)
    with TritonServer(repo, tmp_path) as server:  # stands in for the canary (and stable) revision
        server.load_model("llm")
        endpoint = KServeEndpoint(
            "ml",
            "demo",
            "s3://b/demo",
            url=f"http://{server.url}",
            model="llm",
            grpc=server.grpc_url,
            stable_grpc=server.grpc_url,
        )
        target = target_for(kserve_state(endpoint.encode()), tmp_path)
        target.set_weight(25)
        cfg = RecheckSection(requests=4, max_new_tokens=3, drift_prompts=2, top1_agreement_min=0.99)
        result = target.checker(["Four score and", "The quick brown"], cfg).check("demo", 25)
        assert result.passed, result.detail
        assert "4/4 requests to the canary, 0 errors" in result.detail and "top-1 agreement 1.000" in result.detail
        broken = KServeEndpoint("ml", "demo", "s3://b/demo", url=f"http://{server.url}", model="no-such-model")
        failed = KServeTarget(broken, tmp_path).checker(["x"], cfg).check("demo", 25)
        assert not failed.passed and "canary errors" in failed.detail
    assert json.loads(json.dumps(endpoint.encode()))  # what the ledger keeps is plain JSON text
