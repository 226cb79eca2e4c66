"""Rendering the golden chats: the base model's template once, then a cache hit that needs no transformers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gates.artifacts import ArtifactStore, tree_digest
from gates.errors import DataError
from gates.models.tiny import train_tokenizer
from gates.quality.golden import ChatMessage, GoldenPrompt, GoldenRow
from gates.stages.optimize import render_prompts

TEMPLATE = "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}</s>{% endfor %}<assistant>"
GOLDEN = (
    GoldenPrompt("s.jsonl", 1, GoldenRow(id="a", prompt="plain text")),
    GoldenPrompt("s.jsonl", 2, GoldenRow(id="b", messages=(ChatMessage(role="user", content="Hi there"),))),
    GoldenPrompt("s.jsonl", 3, GoldenRow(id="c", messages=(ChatMessage(role="user", content="Bye"),))),
)


def tokenizer_dir(path: Path, template: str | None) -> Path:
    tok = train_tokenizer("hello there\nbye now\n" * 20, 300)
    if template is not None:
        tok.chat_template = template  # type: ignore[attr-defined]
    tok.save_pretrained(path)  # type: ignore[attr-defined]
    return path


def test_chats_are_rendered_once_then_read_back_without_transformers(tmp_path: Path) -> None:
    base = tokenizer_dir(tmp_path / "base", TEMPLATE)
    store = ArtifactStore(tmp_path / "a")
    digest = tree_digest(base)
    first = render_prompts(store, base, digest, GOLDEN)
    assert first == ("plain text", "<user>Hi there</s><assistant>", "<user>Bye</s><assistant>")
    script = (
        "import sys, json; from pathlib import Path\n"
        "from gates.artifacts import ArtifactStore\n"
        "from gates.stages.optimize import render_prompts\n"
        "from tests.stages.test_optimize import GOLDEN\n"
        f"out = render_prompts(ArtifactStore(Path({str(store.root)!r})), Path({str(base)!r}), {digest!r}, GOLDEN)\n"
        "print(json.dumps([list(out), 'transformers' in sys.modules]))\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=root, check=True)
    again, imported = json.loads(done.stdout.splitlines()[-1])
    assert tuple(again) == first and not imported


def test_a_chat_without_a_template_is_bad_input_naming_the_row(tmp_path: Path) -> None:
    base = tokenizer_dir(tmp_path / "base", None)
    with pytest.raises(DataError, match=r"s\.jsonl:2: at key 'messages'"):
        render_prompts(ArtifactStore(tmp_path / "a"), base, tree_digest(base), GOLDEN)
    assert render_prompts(ArtifactStore(tmp_path / "a"), base, "x", GOLDEN[:1]) == ("plain text",)  # no chats
