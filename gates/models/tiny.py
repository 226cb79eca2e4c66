"""``builtin:tiny-llama``: a small Llama-shaped model trained here, offline, in seconds.

A random-init model has flat next-token distributions, which makes drift numbers meaningless;
a few hundred steps on a small public-domain text make them peaked. The result is saved with
``save_pretrained`` and every consumer loads it back through :func:`gates.models.loader.load_model`,
the same path a real checkpoint takes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from gates.artifacts import ArtifactStore, move_aside, write_manifest

CORPUS = Path(__file__).with_name("data") / "corpus.txt"
# Bump when the recipe below changes: it is part of the cache key.
RECIPE_VERSION = 1
HYPER: dict[str, int] = {
    "vocab_size": 384,
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "max_position_embeddings": 256,
    "steps": 300,
    "seq_len": 48,
    "batch": 16,
    "seed": 1234,
}
LEARNING_RATE = 3e-3


def recipe_key() -> str:
    blob = json.dumps(
        {"v": RECIPE_VERSION, "hyper": HYPER, "lr": LEARNING_RATE, "corpus": _sha256(CORPUS)}, sort_keys=True
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def ensure_tiny_llama(cache_root: Path, progress: Callable[[str], None] | None = None) -> Path:
    """Return the directory of the cached tiny model, building it once if needed."""
    target = cache_root / "models" / f"tiny-llama-{recipe_key()}"
    if target.is_dir():  # verified before every use: flipped bytes in the weights are never served
        problem = ArtifactStore.verify(target)
        if problem is None:
            return target
        aside = move_aside(target)
        if progress:
            progress(f"builtin:tiny-llama cache does not match its manifest ({problem}): moved to {aside}, rebuilding")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tiny-llama-", dir=target.parent))
    try:
        if progress:
            progress(f"building builtin:tiny-llama (one-time, {HYPER['steps']} training steps)")
        build_tiny_llama(tmp)
        write_manifest(tmp, "model", {"builtin": "tiny-llama", "recipe": recipe_key()})
        try:
            os.rename(tmp, target)  # atomic: a concurrent builder's result wins, ours is dropped
        except OSError:
            if not (target / "config.json").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def train_tokenizer(text: str, vocab_size: int) -> object:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(text.splitlines(), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )


def build_tiny_llama(out_dir: Path) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    text = CORPUS.read_text(encoding="utf-8")
    tokenizer = train_tokenizer(text, HYPER["vocab_size"])
    ids = tokenizer(text.replace("\n", " "))["input_ids"]  # type: ignore[operator]
    data = torch.tensor(ids, dtype=torch.long)

    torch.manual_seed(HYPER["seed"])
    config = LlamaConfig(
        vocab_size=len(tokenizer),  # type: ignore[arg-type]
        hidden_size=HYPER["hidden_size"],
        intermediate_size=HYPER["intermediate_size"],
        num_hidden_layers=HYPER["num_hidden_layers"],
        num_attention_heads=HYPER["num_attention_heads"],
        num_key_value_heads=HYPER["num_key_value_heads"],
        max_position_embeddings=HYPER["max_position_embeddings"],
        bos_token_id=tokenizer.bos_token_id,  # type: ignore[attr-defined]
        eos_token_id=tokenizer.eos_token_id,  # type: ignore[attr-defined]
        pad_token_id=tokenizer.pad_token_id,  # type: ignore[attr-defined]
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    opt = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE)
    gen = torch.Generator().manual_seed(HYPER["seed"])
    seq = HYPER["seq_len"]
    model.train()
    for _ in range(HYPER["steps"]):
        starts = torch.randint(0, len(data) - seq - 1, (HYPER["batch"],), generator=gen)
        batch = torch.stack([data[s : s + seq] for s in starts.tolist()])
        loss = model(input_ids=batch, labels=batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id  # type: ignore[attr-defined]
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)  # type: ignore[attr-defined]
    (out_dir / "gates-builtin.json").write_text(
        json.dumps({"builtin": "tiny-llama", "recipe": recipe_key(), "final_loss": float(loss.detach())}, indent=2)
    )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
