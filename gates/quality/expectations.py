"""Great Expectations checks on JSONL data files, run before any model work.

A failed expectation is a bad-input error that names the file, the expectation and the rows
(1-based line numbers in the JSONL file), so the PR author can fix the data without guessing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.metadata
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gates.errors import DataError


@dataclasses.dataclass(frozen=True)
class Expectation:
    """One column check: ``kind`` is a Great Expectations expectation class name."""

    kind: str
    column: str
    kwargs: dict[str, Any]
    says: str  # what a reader is told when rows fail it


def validate_rows(
    path: Path,
    rows: Sequence[dict[str, Any]],
    lines: Sequence[int],
    checks: Sequence[Expectation],
    passed: Path | None = None,
) -> None:
    """Run ``checks`` over ``rows``; raise :class:`DataError` listing every failing row.

    ``passed``: a directory remembering validations that passed, keyed by the rows, their lines,
    the checks and the Great Expectations version: the same data is not validated twice (its
    import alone is ~1.7 s of every run's preflight). Failures are never remembered."""
    key = None
    if passed is not None:
        material = {
            "path": str(path),
            "rows": list(rows),
            "lines": list(lines),
            "checks": [dataclasses.asdict(c) for c in checks],
            "gx": importlib.metadata.version("great_expectations"),
        }
        key = hashlib.sha256(json.dumps(material, sort_keys=True, default=repr).encode()).hexdigest()
        if (passed / key).is_file():
            return
    _validate(path, rows, lines, checks)
    if passed is not None and key is not None:
        with contextlib.suppress(OSError):  # a cache that cannot be written costs only time
            passed.mkdir(parents=True, exist_ok=True)
            (passed / key).touch()


def _validate(path: Path, rows: Sequence[dict[str, Any]], lines: Sequence[int], checks: Sequence[Expectation]) -> None:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("TQDM_DISABLE", "1")
    import io

    import pandas as pd

    with contextlib.redirect_stderr(io.StringIO()):
        import great_expectations as gx

    columns = {c.column for c in checks}
    frame = pd.DataFrame({col: [r.get(col) for r in rows] for col in columns})
    context = gx.get_context(mode="ephemeral")
    asset = context.data_sources.add_pandas("gates").add_dataframe_asset("rows")
    batch = asset.add_batch_definition_whole_dataframe("all").get_batch(batch_parameters={"dataframe": frame})
    problems = []
    for check in checks:
        expectation = getattr(gx.expectations, check.kind)(column=check.column, **check.kwargs)
        with contextlib.redirect_stderr(io.StringIO()):  # GX draws progress bars on stderr
            result = batch.validate(expectation, result_format={"result_format": "COMPLETE"})
        if result.success:
            continue
        indexes = result.result.get("unexpected_index_list") or []
        bad_lines = sorted({lines[i] for i in indexes if isinstance(i, int) and i < len(lines)})
        shown = ", ".join(str(n) for n in bad_lines[:20]) + (" …" if len(bad_lines) > 20 else "")
        problems.append(f"{path}: lines {shown or '?'}: {check.says} (expectation {check.kind} on '{check.column}')")
    if problems:
        raise DataError("data expectations failed:\n" + "\n".join(problems))
