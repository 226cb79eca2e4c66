"""KServe: the canary is an InferenceService with the Triton runtime and ``canaryTrafficPercent``.

KServe keeps the last ready revision as stable and sends ``canaryTrafficPercent`` of the
traffic to the newest one; promotion is setting it to 100 (or removing it), rollback setting it
to 0. We render the manifest (tested here by validating its structure) and apply it with
``kubectl`` where one is configured.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from gates.errors import BadInputError, CapabilityError, SubprocessError

_DNS = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def render_inference_service(
    name: str,
    namespace: str,
    storage_uri: str,
    canary_percent: int,
    *,
    runtime_version: str = "24.10-py3",
    cpu: str = "2",
    memory: str = "8Gi",
    gpus: int = 0,
) -> dict[str, Any]:
    resources: dict[str, Any] = {"limits": {"cpu": cpu, "memory": memory}, "requests": {"cpu": cpu, "memory": memory}}
    if gpus:
        resources["limits"]["nvidia.com/gpu"] = str(gpus)
    manifest = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/managed-by": "gates"}},
        "spec": {
            "predictor": {
                "canaryTrafficPercent": int(canary_percent),
                "model": {
                    "modelFormat": {"name": "triton"},
                    "protocolVersion": "v2",
                    "runtimeVersion": runtime_version,
                    "storageUri": storage_uri,
                    "resources": resources,
                },
            }
        },
    }
    problems = validate(manifest)
    if problems:
        raise BadInputError("invalid InferenceService: " + "; ".join(problems))
    return manifest


def validate(manifest: dict[str, Any]) -> list[str]:
    """Structural checks of what KServe would reject (a subset of its CRD schema that we use)."""
    problems = []
    if manifest.get("apiVersion") != "serving.kserve.io/v1beta1" or manifest.get("kind") != "InferenceService":
        problems.append("apiVersion/kind must be serving.kserve.io/v1beta1 InferenceService")
    meta = manifest.get("metadata", {})
    for key in ("name", "namespace"):
        if not _DNS.match(str(meta.get(key, ""))):
            problems.append(f"metadata.{key} {meta.get(key)!r} is not a DNS-1123 label")
    predictor = manifest.get("spec", {}).get("predictor", {})
    pct = predictor.get("canaryTrafficPercent")
    if not isinstance(pct, int) or not 0 <= pct <= 100:
        problems.append("spec.predictor.canaryTrafficPercent must be an integer in 0..100")
    model = predictor.get("model", {})
    if model.get("modelFormat", {}).get("name") != "triton":
        problems.append("spec.predictor.model.modelFormat.name must be 'triton'")
    if not re.match(r"^(s3|gs|pvc|https?|hf|oci)://", str(model.get("storageUri", ""))):
        problems.append("spec.predictor.model.storageUri must be a s3://, gs://, pvc://, http(s):// or oci:// URI")
    return problems


def apply(manifest: dict[str, Any], out: Path) -> str:
    """Write the manifest; apply it with kubectl when one is installed. Returns what was done."""
    out.write_text(yaml.safe_dump(manifest, sort_keys=False))
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise CapabilityError(f"kubectl is not installed here; the InferenceService manifest is in {out}")
    cmd = [kubectl, "apply", "-f", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise SubprocessError("kubectl apply failed", cmd, proc.returncode, proc.stdout, proc.stderr)
    return proc.stdout.strip()
