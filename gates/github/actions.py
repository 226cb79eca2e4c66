"""GitHub Actions integration: job summary, step outputs and error annotations."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def error_annotation(message: str, file: str | None = None, line: int | None = None, title: str | None = None) -> str:
    """A ``::error file=…,line=…::message`` workflow command (shown on the PR's Files tab)."""
    props = []
    if file:
        props.append(f"file={_escape_property(file)}")
    if line:
        props.append(f"line={line}")
    if title:
        props.append(f"title={_escape_property(title)}")
    return f"::error {','.join(props)}::{_escape_data(message)}" if props else f"::error::{_escape_data(message)}"


def write_summary(env: Mapping[str, str], markdown: str) -> bool:
    path = env.get("GITHUB_STEP_SUMMARY")
    if not path:
        return False
    with Path(path).open("a", encoding="utf-8") as f:
        f.write(markdown.rstrip("\n") + "\n")
    return True


def write_outputs(env: Mapping[str, str], outputs: Mapping[str, str]) -> bool:
    path = env.get("GITHUB_OUTPUT")
    if not path:
        return False
    with Path(path).open("a", encoding="utf-8") as f:
        for key, value in outputs.items():
            if "\n" in value:
                f.write(f"{key}<<GATES_EOF\n{value}\nGATES_EOF\n")
            else:
                f.write(f"{key}={value}\n")
    return True
