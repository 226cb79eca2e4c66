"""Canary targets, listed explicitly: one module and one entry each (see ``base.Target``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gates.errors import BadInputError
from gates.ledger import CanaryState
from gates.promotion.targets.base import Target
from gates.promotion.targets.haproxy import HAProxyTarget
from gates.promotion.targets.kserve import KServeTarget
from gates.promotion.targets.local import LocalRouterTarget
from gates.promotion.targets.nginx import NginxTarget

# kind recorded in the ledger -> how to reach that canary (the state, a directory for manifests)
TARGETS: dict[str, Callable[[CanaryState, Path], Target]] = {
    "haproxy": lambda state, workdir: HAProxyTarget.from_state(state),
    "local": lambda state, workdir: LocalRouterTarget.from_state(state),
    "nginx": lambda state, workdir: NginxTarget.from_state(state),
    "kserve": KServeTarget.from_state,
}


def target_for(state: CanaryState, workdir: Path | None = None) -> Target:
    factory = TARGETS.get(state.target)
    if factory is None:
        known = ", ".join(sorted(TARGETS))
        raise BadInputError(f"pipeline {state.pipeline!r}: unknown canary target {state.target!r} (known: {known})")
    return factory(state, workdir or Path("."))


__all__ = ["TARGETS", "Target", "target_for"]
