"""A release is a tag vX.Y.Z matching pyproject's version, with its CHANGELOG.md section as notes."""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def build_step() -> str:
    wf = yaml.safe_load((REPO / ".github" / "workflows" / "release.yml").read_text())
    return str(next(s["run"] for s in wf["jobs"]["release"]["steps"] if "Build the wheel" in s.get("name", "")))


def notes(version: str, changelog: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The release step's tag check and notes extraction, with python and the build stubbed out."""
    (tmp_path / "CHANGELOG.md").write_text(changelog)
    (tmp_path / "pyproject.toml").write_text(f'[project]\nversion = "{version}"\n')
    script = build_step().split("python -m pip install", 1)[0]  # up to building: no network here
    env = {"PATH": "/usr/bin:/bin", "GITHUB_REF_NAME": f"v{version}", "RUNNER_TEMP": str(tmp_path)}
    env["PATH"] = f"{Path(__import__('sys').executable).parent}:{env['PATH']}"
    return subprocess.run(
        ["bash", "-eo", "pipefail", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
    )


def test_the_version_has_its_changelog_section() -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert f"\n## {version} " in (REPO / "CHANGELOG.md").read_text()


def test_the_release_notes_are_the_versions_section(tmp_path: Path) -> None:
    text = "# Changelog\n\n## Unreleased\n\n- next\n\n## 1.2.3 — 2026-12-01\n\n- this one\n\n## 1.2.0\n\n- old\n"
    proc = notes("1.2.3", text, tmp_path)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert (tmp_path / "notes.md").read_text() == "## 1.2.3 — 2026-12-01\n\n- this one\n\n"
    missing = notes("1.2.4", text, tmp_path)
    assert missing.returncode == 2 and "CHANGELOG.md has no section ## 1.2.4" in missing.stdout
