"""The served models' own per-request records (gates/triton/python_model.py ``request_log``).

A proxy sees each request's time to first token and to its last byte, not its tokens. Where gates
served the models itself (``gates canary serve PIPELINE``), each model also writes one line per
streamed request: when it came, its output tokens and its mean inter-token time. A window takes,
per arm, the records of requests that came in it: inter-token latency (``itl_ms``) and output
length per request, for both arms over the same interval. Failed requests are the proxy's errors
and not counted here. A record log that is absent holds no requests (the model served none yet);
one that cannot be read is no data, never a PASS.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path

from gates.errors import InfraError
from gates.promotion.analysis.records import ArmSamples, WindowData


@dataclasses.dataclass(frozen=True)
class ModelRecord:
    at: float
    output_tokens: int
    itl_ms: float | None
    ok: bool


def read_records(path: Path) -> list[ModelRecord]:
    if not path.exists():
        return []
    out = []
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    r = json.loads(line)
                    itl = r.get("itl_ms")
                    out.append(
                        ModelRecord(
                            float(r["at"]), int(r["output_tokens"]), None if itl is None else float(itl), bool(r["ok"])
                        )
                    )
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut by a crash mid-write
    except OSError as exc:
        raise InfraError(f"the served model's request log {path} is not readable: {exc}") from exc
    return out


def _with(arm: ArmSamples, records: list[ModelRecord], start: float, end: float) -> ArmSamples:
    done = [r for r in records if start <= r.at < end and r.ok]
    return dataclasses.replace(
        arm,
        itl_ms=tuple(r.itl_ms for r in done if r.itl_ms is not None),
        output_tokens=tuple(r.output_tokens for r in done),
    )


def with_model_records(window: WindowData, logs: Mapping[str, str]) -> WindowData:
    """``window`` with each arm's ITL and output tokens from its model's records."""
    if set(logs) != {"stable", "canary"}:
        raise InfraError(f"the canary records request logs for {sorted(logs)}, not for both arms")
    stable = _with(window.stable, read_records(Path(logs["stable"])), window.start, window.end)
    canary = _with(window.canary, read_records(Path(logs["canary"])), window.start, window.end)
    return dataclasses.replace(window, stable=stable, canary=canary, measures_itl=True)
