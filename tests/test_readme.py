"""The README starts with its reader (issue 31 item 6), and what it says runs.

Set-up commands first, adoption near the top, under 3,000 words, the reference in docs/ (every
page linked), every command it shows answers ``--help``, every config key it names exists.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from gates.cli.main import cli
from gates.config.parse import parse_pipeline
from gates.config.reference import PAGE, keys, page

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
SECTIONS = ("model", "optimize", "engine", "serve", "load", "golden", "gates", "promotion")


def test_the_two_set_up_commands_come_first_and_adoption_is_near_the_top() -> None:
    first = re.search(r"```sh\n(.*?)```", README, flags=re.S)
    assert first is not None and README.index(first.group(0)) < 20
    assert [line.split()[:2] for line in first.group(1).splitlines()] == [["make", "demo"], ["make", "test"]]
    lines = README.splitlines()
    assert lines.index("## Use gates in your repository") < 120
    assert len(README.split()) < 3000


def test_every_docs_page_is_linked_and_every_link_resolves() -> None:
    linked = set(re.findall(r"\]\((docs/[\w.-]+\.md)(?:#[\w-]+)?\)", README))
    assert {f"docs/{p.name}" for p in (REPO / "docs").glob("*.md")} <= linked
    for doc in [REPO / "README.md", *(REPO / "docs").glob("*.md")]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[\w-]+)?\)", doc.read_text()):
            assert (doc.parent / target).exists(), f"{doc.name}: {target}"


def _commands() -> set[tuple[str, ...]]:
    """Every `gates COMMAND [SUBCOMMAND]` the README shows, in code blocks or inline code."""
    blocks = re.findall(r"```(?:sh|yaml)?\n(.*?)```", README, flags=re.S)
    lines = [line for b in blocks for line in b.splitlines()] + re.findall(r"`([^`\n]+)`", README)
    found: set[tuple[str, ...]] = set()
    for line in lines:  # a command line: `gates …` first, or after a shell `do` (not prose that says "gates")
        for m in re.finditer(r"(?:^\s*(?:- run: |\$ )?|\bdo )gates ([a-z-]+)(?: ([a-z-]+))?", line):
            found.add((m.group(1), m.group(2) or "") if m.group(1) == "canary" else (m.group(1),))
    return found


@pytest.mark.parametrize("command", sorted(_commands()))
def test_every_command_the_readme_shows_answers_help(command: tuple[str, ...]) -> None:
    argv = [c for c in command if c]
    result = CliRunner().invoke(cli, [*argv, "--help"])
    assert result.exit_code == 0, f"gates {' '.join(argv)} --help: {result.output}"
    assert "Usage: " in result.output


def test_the_readme_names_commands_of_every_kind() -> None:
    assert {("run",), ("validate",), ("promote",), ("recheck",), ("history",)} <= _commands()


def test_every_config_key_the_readme_names_exists() -> None:
    known = {k for k, _, _ in keys()}
    named = {k for k in re.findall(r"`([a-z_]+(?:\.[a-z0-9_]+)+)`", README) if k.split(".")[0] in SECTIONS}
    assert named, "the README names config keys"
    assert named <= known, named - known
    example = README.split("## A pipeline file", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", example, flags=re.S)
    assert block is not None
    parse_pipeline(block.group(1), REPO / "pipelines" / "readme.yaml")  # every key valid, no unknown one


def test_the_defaults_page_is_generated_from_the_schema() -> None:
    assert PAGE.read_text() == page(), "run python -m gates.config.reference"
