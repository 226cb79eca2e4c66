"""The one object passed down through the stages of a run."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from gates.artifacts import ArtifactStore
from gates.config.parse import PipelineFile
from gates.config.schema import Pipeline
from gates.record import RunRecord
from gates.triton.warm import WarmServer

T = TypeVar("T")


@dataclasses.dataclass
class RunContext:
    """Config, artifact store, output directory, progress sink and the run record.

    Stages read earlier results with :meth:`need` (by type) and add their own with :meth:`put`;
    results are frozen dataclasses held by the typed :class:`~gates.record.RunRecord`, so no stage
    can change what another measured. ``resources`` holds what must be released on every exit path
    (the Triton server, the warm-started one too).
    """

    pipeline: PipelineFile
    store: ArtifactStore
    run_dir: Path
    run_id: str
    progress: Callable[[str], None] = print
    clock: Callable[[], float] = time.monotonic
    resources: contextlib.ExitStack = dataclasses.field(default_factory=contextlib.ExitStack)
    record: RunRecord = dataclasses.field(default_factory=RunRecord)
    durations_s: dict[str, float] = dataclasses.field(default_factory=dict)
    env: dict[str, str] = dataclasses.field(default_factory=dict)  # GitHub target etc., never printed
    warm: WarmServer | None = None  # Triton started before deploy (gates/triton/warm.py), when any

    @property
    def config(self) -> Pipeline:
        return self.pipeline.config

    def put(self, result: object) -> None:
        self.record.put(result)

    def need(self, kind: type[T]) -> T:
        return self.record.need(kind)

    def get(self, kind: type[T]) -> T | None:
        return self.record.get(kind)
