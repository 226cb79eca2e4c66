"""deploy/arc: runner scale set values, one per GPU architecture, against the AutoscalingRunnerSet CRD.

The chart (gha-runner-scale-set 0.14.2) ships no values.schema.json, so the values are mapped
to the AutoscalingRunnerSet the chart renders (the keys we use, as its template maps them) and
validated against that CRD's schema (fetched into tests/data/schemas).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent.parent
VALUES = sorted((REPO / "deploy" / "arc").glob("values-*.yaml"))
CHART_VALUES = REPO / "tests" / "data" / "schemas" / "arc-gha-runner-scale-set-0.14.2-values.yaml"


def chart_keys() -> set[str]:
    """Top-level keys the chart reads: set in its values.yaml or documented there as commented examples."""
    return set(re.findall(r"^#? ?([A-Za-z]\w*):", CHART_VALUES.read_text(), flags=re.M))


def render(values: dict[str, Any]) -> dict[str, Any]:
    """templates/autoscalingrunnerset.yaml, for the keys these values use."""
    spec: dict[str, Any] = {
        "githubConfigUrl": values["githubConfigUrl"].rstrip("/"),
        "githubConfigSecret": values["githubConfigSecret"],
        "runnerScaleSetName": values["runnerScaleSetName"],
        "runnerScaleSetLabels": values["scaleSetLabels"],
        "minRunners": values["minRunners"],
        "maxRunners": values["maxRunners"],
        "template": values["template"],
    }
    return {
        "apiVersion": "actions.github.com/v1alpha1",
        "kind": "AutoscalingRunnerSet",
        "metadata": {"name": values["runnerScaleSetName"], "namespace": "arc-runners"},
        "spec": spec,
    }


def test_one_scale_set_per_architecture() -> None:
    assert {p.stem.removeprefix("values-") for p in VALUES} >= {"h100", "l40s", "a100"}


@pytest.mark.parametrize("path", VALUES, ids=lambda p: p.stem)
def test_values_render_a_valid_autoscaling_runner_set(path: Path, crd: Callable[[str], Any]) -> None:
    values = yaml.safe_load(path.read_text())
    arch = path.stem.removeprefix("values-")
    assert set(values) <= chart_keys(), set(values) - chart_keys()
    assert crd("arc-autoscalingrunnerset-v1alpha1.json")(render(values)) == []
    # what gates.yml's runs-on [self-hosted, gpu, <arch>] and promote.yml's [self-hosted, gpu] match
    assert values["scaleSetLabels"] == ["self-hosted", "gpu", arch]
    assert len(values["runnerScaleSetName"]) <= 45 and arch in values["runnerScaleSetName"]  # the chart's limit
    assert all(0 < len(label) < 256 for label in values["scaleSetLabels"])
    assert 0 <= values["minRunners"] <= values["maxRunners"]
    pod = values["template"]["spec"]
    (runner,) = [c for c in pod["containers"] if c["name"] == "runner"]
    assert runner["command"] == ["/home/runner/run.sh"]  # the runner the GPU image carries
    assert re.fullmatch(r"\S+/gates-gpu:\d+\.\d+\.\d+", runner["image"])  # a released tag, never :latest
    assert runner["resources"]["limits"]["nvidia.com/gpu"] == runner["resources"]["requests"]["nvidia.com/gpu"] == 1
    assert "nvidia.com/gpu.product" in pod["nodeSelector"]
    env = {e["name"]: e for e in runner["env"]}
    assert env["GATES_EPHEMERAL_RUNNER"]["value"] == "1"  # so gates refuses a ledger that dies with the pod
    assert "secretKeyRef" in env["GATES_LEDGER"]["valueFrom"]  # the URL's password stays in a Secret


def test_the_crd_schema_rejects_what_the_api_server_would(crd: Callable[[str], Any]) -> None:
    """The validation above can fail: a typo and a wrong type are caught."""
    values = yaml.safe_load(VALUES[0].read_text())
    rendered = render(values)
    rendered["spec"]["maxRunners"] = "four"
    rendered["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    errors = crd("arc-autoscalingrunnerset-v1alpha1.json")(rendered)
    assert any("maxRunners" in e for e in errors) and any("imagePullPolcy" in e for e in errors)
