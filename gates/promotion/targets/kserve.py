"""KServe: the canary is an InferenceService with the Triton runtime and ``canaryTrafficPercent``.

KServe keeps the last ready revision as stable and sends ``canaryTrafficPercent`` of the
traffic to the newest one; promotion is setting it to 100 (or removing it), rollback setting it
to 0. We render the manifest (tested here by validating its structure) and apply it with
``kubectl`` where one is configured; the weight is read back from the cluster with ``kubectl get``.
Live re-checks reach the canary revision at its own URL (KServe's tag routing, ``latest-<name>``)
and compare the two revisions on their gRPC endpoints, when those are recorded.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from gates.config.analysis import AnalysisSection, ProviderKind
from gates.config.promotion import RecheckSection
from gates.config.schema import GatesSection
from gates.errors import BadInputError, CapabilityError, InfraError, SubprocessError
from gates.ledger import CanaryState
from gates.promotion.analysis.checker import AnalysisChecker
from gates.promotion.analysis.providers import PROVIDERS
from gates.promotion.machine import Checker
from gates.promotion.recheck import DriftProbe, LiveChecker, stream_once
from gates.promotion.targets.base import cannot_mirror

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


def _kubectl(args: list[str], what: str, manifest: Path | None = None) -> str:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        where = f"; the InferenceService manifest is in {manifest}" if manifest else ""
        raise CapabilityError(f"kubectl is not installed here{where}")
    cmd = [kubectl, *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise SubprocessError(f"kubectl {what} failed", cmd, proc.returncode, proc.stdout, proc.stderr)
    return proc.stdout.strip()


def apply(manifest: dict[str, Any], out: Path) -> str:
    """Write the manifest; apply it with kubectl when one is installed. Returns what was done."""
    out.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return _kubectl(["apply", "-f", str(out)], "apply", out)


@dataclasses.dataclass(frozen=True)
class KServeEndpoint:
    """Where a KServe canary lives, as recorded in the ledger (JSON in ``CanaryState.endpoint``)."""

    namespace: str
    name: str
    storage_uri: str
    url: str | None = None  # the canary revision's URL (tag routing), for live re-checks
    model: str | None = None  # the Triton model name both revisions serve
    grpc: str | None = None  # host:port of the canary revision's gRPC endpoint (drift)
    stable_grpc: str | None = None  # host:port of the stable revision's gRPC endpoint (drift)

    def encode(self) -> str:
        return json.dumps({k: v for k, v in dataclasses.asdict(self).items() if v is not None}, sort_keys=True)

    @classmethod
    def parse(cls, text: str | None) -> KServeEndpoint:
        text = text or ""
        if text.startswith("{"):
            try:
                return cls(**json.loads(text))
            except (TypeError, ValueError) as exc:
                raise BadInputError(f"unreadable KServe endpoint in the ledger: {text!r}: {exc}") from exc
        parts = text.split("/", 2)  # written by gates before endpoints were typed: namespace/name/storage
        if len(parts) != 3:
            raise BadInputError(f"unreadable KServe endpoint in the ledger: {text!r}")
        return cls(*parts)


class KServeTarget:
    kind = "kserve"

    def __init__(self, endpoint: KServeEndpoint, workdir: Path):
        self.endpoint = endpoint
        self.workdir = workdir

    @classmethod
    def from_state(cls, state: CanaryState, workdir: Path) -> KServeTarget:
        return cls(KServeEndpoint.parse(state.endpoint), workdir)

    def set_weight(self, weight: int) -> None:
        e = self.endpoint
        manifest = render_inference_service(e.name, e.namespace, e.storage_uri, weight)
        apply(manifest, self.workdir / f"{e.name}.inferenceservice.yaml")

    def set_mirror(self, on: bool) -> None:
        raise cannot_mirror(self.kind)

    def read_weight(self) -> int:
        e = self.endpoint
        out = _kubectl(["get", "inferenceservice", e.name, "-n", e.namespace, "-o", "json"], "get")
        try:
            weight = json.loads(out)["spec"]["predictor"].get("canaryTrafficPercent", 100)
        except (ValueError, KeyError, TypeError) as exc:
            raise InfraError(f"kubectl get inferenceservice {e.namespace}/{e.name}: unreadable answer: {exc}") from exc
        return int(weight)

    def checker(self, prompts: Sequence[str], cfg: RecheckSection) -> Checker:
        e = self.endpoint
        if not e.url or not e.model:
            raise InfraError(
                f"live re-checks of the KServe canary {e.namespace}/{e.name} need its URL and model name "
                "(gates canary register-kserve --url … --model …)"
            )
        url, model = e.url, e.model

        def send(prompt: str) -> tuple[str, str]:
            return stream_once(url, model, prompt, cfg.max_new_tokens, arm="canary")

        drift = DriftProbe(e.stable_grpc, model, e.grpc, model) if e.grpc and e.stable_grpc else None
        return LiveChecker(send, drift, prompts, cfg, self.read_weight)

    def analysis_checker(self, prompts: Sequence[str], gates: GatesSection, cfg: AnalysisSection) -> Checker:
        """Canary analysis on the cluster's Prometheus (the revisions' Triton metrics): there is no
        proxy log to read, and live traffic only (KServe splits it; no synthetic pairing)."""
        if cfg.provider != ProviderKind.PROMETHEUS:
            raise BadInputError(
                "a KServe canary is analysed on Prometheus: set promotion.analysis.provider: prometheus "
                "and promotion.analysis.prometheus.url"
            )
        e = self.endpoint
        drift = DriftProbe(e.stable_grpc, e.model, e.grpc, e.model) if e.grpc and e.stable_grpc and e.model else None
        state = CanaryState(e.name, "kserve", self.endpoint.encode(), e.model, e.model, 0, 0.0)
        return AnalysisChecker(state, gates, cfg, PROVIDERS[cfg.provider.value], self.read_weight, drift, prompts)
