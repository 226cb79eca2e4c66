"""The base of every config section: strict, frozen, bounded."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

MAX_TEXT = 4096  # no config string (a path, a URL, a name) is longer; longer ones fail deep in the OS instead


class Strict(BaseModel):
    # strict: YAML's `yes` is not a rate and "10" is not a count; no infinities or NaN (`.inf`
    # would disable a bound, NaN compares false with every threshold)
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, strict=True, allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _bounded_text(cls, v: Any) -> Any:
        for s in v if isinstance(v, list) else (v,):
            if isinstance(s, str) and (len(s) > MAX_TEXT or "\x00" in s):
                raise ValueError(f"text values must be at most {MAX_TEXT} characters without NUL bytes")
        return v
