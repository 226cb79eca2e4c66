"""A release is a tag vX.Y.Z matching pyproject's version, with its CHANGELOG.md section as notes."""

from __future__ import annotations

import re
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


def test_the_readme_docs_and_workflows_point_at_the_released_tag() -> None:
    """Consumers copy these snippets: every pin is the current version's tag, every download its assets."""
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    tag = f"v{version}"
    texts = {p: (REPO / p).read_text() for p in ("README.md", "docs/adoption.md", "CHANGELOG.md")}
    texts |= {f".github/workflows/{w}": (REPO / ".github" / "workflows" / w).read_text()
              for w in ("gates-pr.yml", "gates-promote.yml", "gates-recheck.yml")}  # fmt: skip
    pins = 0
    for path, text in texts.items():
        assert "not tagged" not in text and "no release is tagged" not in text, path
        for ref in re.findall(r"OWNER/gates(?:/\.github/workflows/[\w-]+\.yml)?@([\w.-]+)", text):
            assert ref == tag, f"{path}: pinned to {ref}, not {tag}"
            pins += 1
        for asset in re.findall(r"releases/download/([^\s\"'`]+)", text):
            assert asset in (f"{tag}/gates-{version}-py3-none-any.whl", f"{tag}/constraints.txt"), f"{path}: {asset}"
    assert pins >= 5  # the action, the three reusable workflows in the README, the workflow headers
    assert re.search(rf"^## {re.escape(version)} — \d{{4}}-\d{{2}}-\d{{2}}$", texts["CHANGELOG.md"], flags=re.M)
