"""Canary weights on a target (local router or KServe), each change recorded in the ledger.

Promotion and rollback are the state machine's (``gates.promotion.machine``); they move weights here."""

from __future__ import annotations

import dataclasses
import json
import time
import urllib.request
from pathlib import Path
from typing import Any

from gates.errors import BadInputError, InfraError
from gates.ledger import CanaryState, Ledger
from gates.promotion.targets.kserve import apply, render_inference_service


def router_set_weight(admin_url: str, weight: int) -> dict[str, object]:
    req = urllib.request.Request(
        f"http://{admin_url}/gates/router",
        data=json.dumps({"weight": weight}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return dict(json.loads(r.read()))
    except OSError as exc:
        raise InfraError(f"the local canary router at {admin_url} did not answer: {exc}") from exc


def router_snapshot(admin_url: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"http://{admin_url}/gates/router", timeout=10) as r:
            return dict(json.loads(r.read()))
    except OSError as exc:
        raise InfraError(f"the local canary router at {admin_url} did not answer: {exc}") from exc


def set_weight(
    ledger: Ledger, pipeline: str, weight: int, actor: str, action: str = "canary_set", workdir: Path | None = None
) -> CanaryState:
    """Move the canary to ``weight`` on its recorded target, then record it (target first: a
    failure leaves the ledger describing what is really deployed)."""
    if not 0 <= weight <= 100:
        raise BadInputError(f"canary weight must be between 0 and 100, got {weight}")
    state = ledger.canary(pipeline)
    if state is None:
        raise BadInputError(f"pipeline {pipeline!r} has no canary deployment recorded; deploy one first")
    if state.target == "local":
        if not state.endpoint:
            raise InfraError(f"pipeline {pipeline!r}: the local canary has no router endpoint recorded")
        router_set_weight(state.endpoint, weight)
    elif state.target == "kserve":
        namespace, name, storage = (state.endpoint or "").split("/", 2)
        manifest = render_inference_service(name, namespace, storage, weight)
        apply(manifest, (workdir or Path(".")) / f"{name}.inferenceservice.yaml")
    new = dataclasses.replace(state, weight=weight, updated_at=time.time())
    ledger.set_canary(new, actor, action)
    return new
