"""The drift corpus (``golden.drift_corpus``): text files cut into documents and token windows.

A corpus file is UTF-8 text; a line that is exactly ``---`` separates documents (a file without
one is one document). Documents are the unit of the intervals (gates/quality/corpus_stats.py):
positions of one document are correlated, documents are treated as independent. Each document
is tokenized with the base model's tokenizer and cut into non-overlapping windows of
``golden.drift_context`` tokens; a window's first token is its context and every later token is
scored (its log-probability given the window's earlier tokens), so a window of n tokens scores
n - 1 positions. A trailing piece shorter than ``MIN_WINDOW`` tokens is dropped.
"""

from __future__ import annotations

import bisect
import dataclasses
from pathlib import Path
from typing import Any

from gates.errors import ConfigError, DataError
from gates.quality.datafile import read_data_file

SEPARATOR = "---"
MIN_WINDOW = 16  # tokens; shorter trailing pieces add noise and little evidence


@dataclasses.dataclass(frozen=True)
class CorpusDocument:
    source: str  # the file as the pipeline names it
    line: int  # first line of the document in its file
    text: str


@dataclasses.dataclass(frozen=True)
class Window:
    document: int  # index into the corpus' documents (the interval's cluster)
    source: str
    line: int
    start: int  # first token's offset in its document
    ids: tuple[int, ...]  # ids[0] is the context; ids[1:] are the scored tokens

    @property
    def scored(self) -> int:
        return len(self.ids) - 1


def load_corpus(path: Path, label: str, key: str) -> list[CorpusDocument]:
    """Documents of one corpus file; a binary, non-UTF-8 or empty file is a DataError naming the
    file and ``key`` (the config key that names it, with its line)."""
    blob = read_data_file(path)
    if b"\x00" in blob:
        raise DataError(f"{path}: a binary file (NUL bytes), not text ({key})")
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc}) ({key})") from None
    docs: list[CorpusDocument] = []
    buf: list[str] = []
    start = 1
    for n, raw in enumerate([*text.splitlines(), SEPARATOR], start=1):
        if raw.strip() == SEPARATOR:
            body = "\n".join(buf).strip()
            if body:
                docs.append(CorpusDocument(label, start, body))
            buf, start = [], n + 1
        else:
            buf.append(raw)
    if not docs:
        raise DataError(f"{path}: an empty corpus (no text between '{SEPARATOR}' lines) ({key})")
    return docs


def cut_windows(
    tokenizer: Any, docs: list[CorpusDocument], context: int, max_windows: int | None = None, join: bool = False
) -> list[Window]:
    """Non-overlapping windows of ``context`` tokens over every document, in corpus order.
    ``join``: over the documents joined in order (a blank line between), each window its own
    cluster; its source and line are those of the document it starts in, ``start`` its offset there."""
    if join:
        return _joined_windows(tokenizer, docs, context, max_windows)
    out: list[Window] = []
    for d, doc in enumerate(docs):
        ids = [int(i) for i in tokenizer(doc.text, add_special_tokens=False)["input_ids"]]
        for start in range(0, len(ids), context):
            piece = ids[start : start + context]
            if len(piece) < min(MIN_WINDOW, context):
                break
            out.append(Window(d, doc.source, doc.line, start, tuple(piece)))
            if max_windows is not None and len(out) >= max_windows:
                return out
    return out


def _joined_windows(tokenizer: Any, docs: list[CorpusDocument], context: int, max_windows: int | None) -> list[Window]:
    gap = [int(i) for i in tokenizer("\n\n", add_special_tokens=False)["input_ids"]]
    stream: list[int] = []
    starts: list[int] = []  # each document's first token in the stream
    for d, doc in enumerate(docs):
        if d:
            stream += gap
        starts.append(len(stream))
        stream += [int(i) for i in tokenizer(doc.text, add_special_tokens=False)["input_ids"]]
    out: list[Window] = []
    for start in range(0, len(stream), context):
        piece = stream[start : start + context]
        if len(piece) < min(MIN_WINDOW, context):
            break
        d = bisect.bisect_right(starts, start) - 1  # the document the window starts in
        out.append(Window(len(out), docs[d].source, docs[d].line, start - starts[d], tuple(piece)))
        if max_windows is not None and len(out) >= max_windows:
            break
    return out


def served_context(path: Path) -> int | None:
    """Tokens the served artifact at ``path`` reads at most: ONNX Runtime GenAI's
    ``context_length``, else the Hugging Face config's ``max_position_embeddings`` (None: unknown)."""
    import json

    for name, keys in (
        ("genai_config.json", ("model", "context_length")),
        ("config.json", ("max_position_embeddings",)),
    ):
        f = path / name
        if not f.is_file():
            continue
        try:
            value: Any = json.loads(f.read_text())
            for k in keys:
                value = value[k]
            return int(value)
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return None


def check_context(context: int, served: dict[str, int | None], where: str, config_path: str) -> None:
    """golden.drift_context must fit what each arm's engine serves (``served``: arm -> tokens, None:
    unknown); else a ConfigError naming the pipeline file, line and key (exit 2)."""
    for arm, tokens in served.items():
        if tokens is not None and context > tokens:
            raise ConfigError(
                f"{where}: golden.drift_context {context} is longer than the {arm} engine serves ({tokens} tokens)",
                config_path,
            )


@dataclasses.dataclass(frozen=True)
class WorstWindow:
    index: int
    source: str
    line: int  # first line of the window's document
    start: int  # the window's first token in its document
    tokens: int
    kl_mean: float
    kl_max: float
    same_top1: float
    text: str  # decoded window (escaped where it is shown)
