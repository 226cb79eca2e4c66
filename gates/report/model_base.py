"""The base of report.json's typed model (gates/report/model.py): objects, open objects, measured numbers."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

# A measured number: report.json writes NaN and infinity as null (a missing value reads as missing).
Measured = float | None
Status = Literal["pass", "fail", "inconclusive", "no_data", "not_applied"]  # of a gate or a quality entry


class _Object(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, use_attribute_docstrings=True)


class _Open(BaseModel):
    """An object whose listed keys are always there; other keys may be added without a new schema."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True, use_attribute_docstrings=True)
