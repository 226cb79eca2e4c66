"""deploy/kserve: the ServingRuntime and InferenceService against KServe's CRD schemas, and against
what gates itself renders and re-applies on each canary step (gates/promotion/targets/kserve.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from gates.promotion.targets.kserve import render_inference_service

KSERVE = Path(__file__).resolve().parent.parent.parent / "deploy" / "kserve"
ISVC_SCHEMA = "kserve-inferenceservice-v1beta1.json"
RUNTIME_SCHEMA = "kserve-servingruntime-v1alpha1.json"


def load(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((KSERVE / name).read_text()))


def test_manifests_are_valid_kserve_objects(crd: Callable[[str], Any]) -> None:
    assert crd(ISVC_SCHEMA)(load("inferenceservice.yaml")) == []
    assert crd(RUNTIME_SCHEMA)(load("servingruntime.yaml")) == []


@pytest.mark.parametrize("weight", [0, 10, 50, 100])
def test_what_gates_applies_at_each_canary_step_is_valid_and_matches_the_deployed_manifest(
    weight: int, crd: Callable[[str], Any]
) -> None:
    deployed = load("inferenceservice.yaml")
    meta, model = deployed["metadata"], deployed["spec"]["predictor"]["model"]
    applied = render_inference_service(meta["name"], meta["namespace"], model["storageUri"], weight)
    assert crd(ISVC_SCHEMA)(applied) == []
    # kubectl apply of gates' manifest changes the canary share and nothing else
    deployed["spec"]["predictor"]["canaryTrafficPercent"] = weight
    assert applied == deployed


def test_the_runtime_serves_the_inference_service() -> None:
    isvc, runtime = load("inferenceservice.yaml"), load("servingruntime.yaml")
    model = isvc["spec"]["predictor"]["model"]
    assert runtime["metadata"]["namespace"] == isvc["metadata"]["namespace"]  # a namespaced runtime
    (fmt,) = [f for f in runtime["spec"]["supportedModelFormats"] if f["name"] == model["modelFormat"]["name"]]
    assert fmt["autoSelect"] is True and fmt["priority"] > 1  # chosen over the cluster's kserve-tritonserver
    assert "runtime" not in isvc["spec"]["predictor"]["model"]  # gates' re-apply would drop it
    assert model["protocolVersion"] in runtime["spec"]["protocolVersions"]
    (container,) = runtime["spec"]["containers"]
    repo, tag = container["image"].rsplit(":", 1)
    assert repo == "nvcr.io/nvidia/tritonserver" and tag == model["runtimeVersion"]  # KServe swaps in the tag
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container["securityContext"]["runAsNonRoot"] is True


def test_the_schema_rejects_a_misplaced_canary_field(crd: Callable[[str], Any]) -> None:
    """The validation can fail: canaryTrafficPercent under model (a common mistake) is an unknown field."""
    isvc = load("inferenceservice.yaml")
    isvc["spec"]["predictor"]["model"]["canaryTrafficPercent"] = 10
    isvc["spec"]["predictor"]["minReplicas"] = "one"
    errors = crd(ISVC_SCHEMA)(isvc)
    assert any("canaryTrafficPercent" in e for e in errors) and any("minReplicas" in e for e in errors)
