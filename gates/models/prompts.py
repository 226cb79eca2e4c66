"""Golden rows and calibration samples as the text a served model receives.

A row is a plain prompt or a chat (``messages``); a chat is rendered with the model's own chat
template, so an instruct model sees what it was trained on. Rendering happens once, in the gates
process, with the base model's tokenizer (every artifact built from it ships the same one); the
served models then tokenize the rendered text, special tokens included.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from gates.errors import DataError
from gates.quality.golden import ChatMessage, GoldenPrompt, Sample


class NoChatTemplate(ValueError):
    """The tokenizer cannot render a chat."""


def render_chat(tokenizer: Any, messages: Sequence[ChatMessage], add_generation_prompt: bool = True) -> str:
    if not getattr(tokenizer, "chat_template", None):
        raise NoChatTemplate("the model's tokenizer has no chat template, so 'messages' rows cannot be rendered")
    turns = [{"role": m.role, "content": m.content} for m in messages]
    text = str(tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=add_generation_prompt))
    # Templates that write the BOS token themselves would get a second one from a tokenizer that
    # also adds it (Llama 3 style): drop the template's copy, the tokenizer adds it back.
    bos = getattr(tokenizer, "bos_token", None)
    if bos and text.startswith(bos) and _adds_bos(tokenizer):
        text = text[len(bos) :]
    return text


def _adds_bos(tokenizer: Any) -> bool:
    ids = tokenizer("a")["input_ids"]
    return bool(ids) and ids[0] == tokenizer.bos_token_id


def render_golden(tokenizer: Any, golden: Iterable[GoldenPrompt]) -> tuple[str, ...]:
    """Each golden row's model input; a chat row the tokenizer cannot render names its suite and line."""
    out = []
    for g in golden:
        if g.row.prompt is not None:
            out.append(g.row.prompt)
            continue
        try:
            out.append(render_chat(tokenizer, g.row.messages or ()))
        except NoChatTemplate as exc:
            raise DataError(f"{g.suite}:{g.line}: at key 'messages': {exc}") from None
    return tuple(out)


def sample_texts(tokenizer: Any, samples: Iterable[Sample], source: str = "calibration data") -> list[str]:
    """Calibration samples as text: a chat is rendered whole (its answer included, no generation prompt)."""
    out = []
    for s in samples:
        if isinstance(s, str):
            out.append(s)
            continue
        try:
            out.append(render_chat(tokenizer, s, add_generation_prompt=False))
        except NoChatTemplate as exc:
            raise DataError(f"{source}: at key 'messages': {exc}") from None
    return out
