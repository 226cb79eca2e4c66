"""The one object passed down through the stages of a run."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from gates.artifacts import ArtifactStore
from gates.config.load import PipelineFile

T = TypeVar("T")


@dataclasses.dataclass
class RunContext:
    """Config, artifact store, output directory, progress sink and the stages' results.

    Stages read earlier results with :meth:`need` and add their own with :meth:`put`; results
    are frozen dataclasses, so no stage can change what another measured. ``resources`` holds
    what must be released on every exit path (the Triton server).
    """

    pipeline: PipelineFile
    store: ArtifactStore
    run_dir: Path
    run_id: str
    progress: Callable[[str], None] = print
    clock: Callable[[], float] = time.monotonic
    resources: contextlib.ExitStack = dataclasses.field(default_factory=contextlib.ExitStack)
    results: dict[str, Any] = dataclasses.field(default_factory=dict)
    durations_s: dict[str, float] = dataclasses.field(default_factory=dict)
    env: dict[str, str] = dataclasses.field(default_factory=dict)  # GitHub target etc., never printed

    @property
    def config(self) -> Any:
        return self.pipeline.config

    def put(self, key: str, value: Any) -> None:
        if key in self.results:
            raise RuntimeError(f"result {key!r} already recorded")
        self.results[key] = value

    def need(self, key: str, kind: type[T]) -> T:
        value = self.results.get(key)
        if not isinstance(value, kind):
            raise RuntimeError(f"stage result {key!r} is missing: a stage ran out of order")
        return value

    def get(self, key: str, kind: type[T]) -> T | None:
        value = self.results.get(key)
        return value if isinstance(value, kind) else None
