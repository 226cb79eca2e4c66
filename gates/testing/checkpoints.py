"""Small checkpoints of many architectures, saved the way published ones are (``save_pretrained``).

Tests load them through the same code path a real checkpoint takes (``model.source`` = the
folder). Each is trained for a few steps on the builtin corpus so that its next-token
distributions are peaked (drift on a random init measures noise), and its tokenizer has *no pad
token*, as SmolLM2's, Llama's and Mistral's have none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gates.models.tiny import CORPUS, train_tokenizer

VOCAB = 384
HIDDEN = 128
LAYERS = 2
HEADS = 4
FFN = 256
CONTEXT = 256

# model_type -> (config class, keyword arguments in that family's spelling)
ARCHITECTURES: dict[str, tuple[str, dict[str, Any]]] = {
    "llama": ("LlamaConfig", {"num_key_value_heads": 2}),
    "qwen2": ("Qwen2Config", {"num_key_value_heads": 2}),
    "mistral": ("MistralConfig", {"num_key_value_heads": 2, "sliding_window": None}),
    "gemma": ("GemmaConfig", {"num_key_value_heads": 1, "head_dim": HIDDEN // HEADS}),
    "phi3": ("Phi3Config", {"num_key_value_heads": 2, "pad_token_id": None}),
    "gpt2": ("GPT2Config", {"n_embd": HIDDEN, "n_layer": LAYERS, "n_head": HEADS, "n_positions": CONTEXT}),
    "gpt_neox": ("GPTNeoXConfig", {}),
}


def _config(model_type: str, tokenizer: Any) -> Any:
    import transformers

    cls_name, extra = ARCHITECTURES[model_type]
    common: dict[str, Any] = {
        "vocab_size": len(tokenizer),
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "tie_word_embeddings": False,
    }
    if model_type != "gpt2":
        common.update(
            hidden_size=HIDDEN,
            intermediate_size=FFN,
            num_hidden_layers=LAYERS,
            num_attention_heads=HEADS,
            max_position_embeddings=CONTEXT,
        )
    return getattr(transformers, cls_name)(**{**common, **extra})


def build_checkpoint(model_type: str, out: Path, steps: int = 40, seed: int = 0) -> Path:
    """A trained-for-a-moment ``model_type`` checkpoint in ``out`` (a Hugging Face folder)."""
    import torch
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    text = CORPUS.read_text(encoding="utf-8")
    trained = train_tokenizer(text, VOCAB)
    # the same vocabulary, declared without a pad token (as real checkpoints ship it)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=trained.backend_tokenizer,  # type: ignore[attr-defined]
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
    )
    # AutoTokenizer picks the family's own class from config.json whatever tokenizer_config says,
    # and Qwen2's declares <|endoftext|> (real Qwen2 vocabularies hold it): so does this one.
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|endoftext|>"]})
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(_config(model_type, tokenizer))
    ids = torch.tensor(tokenizer(text.replace("\n", " "))["input_ids"], dtype=torch.long)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        starts = torch.randint(0, len(ids) - 33, (8,), generator=gen).tolist()
        batch = torch.stack([ids[s : s + 32] for s in starts])
        loss = model(input_ids=batch, labels=batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out
