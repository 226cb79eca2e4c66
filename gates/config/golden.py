"""The ``golden:`` section: the prompts, quality items and drift corpus both served arms read."""

from __future__ import annotations

from pydantic import Field

from gates.config.strict import Strict


class GoldenSection(Strict):
    suites: list[str] = Field(min_length=1)
    max_new_tokens: int = Field(default=16, ge=1, le=4096)
    top_k: int = Field(default=20, ge=1, le=1000)
    # KL over the whole vocabulary too (each position's full distribution from both served
    # models: ~vocabulary × 12 bytes per position); the top-k KL alone is a lower bound
    full_kl: bool = False
    allowed_tags: list[str] | None = None  # when set, a tag outside this list fails the suite's expectations
    max_prompt_words: int = Field(default=1024, ge=1)  # whitespace tokens; a tokenizer-free bound, checked first
    worst: int = Field(default=5, ge=0, le=100)  # worst prompts shown side by side in the report
    # quality items scored by log-likelihood through the served models (issue 14)
    multiple_choice: list[str] = Field(default_factory=list)  # JSONL {id, question, choices, answer}
    perplexity: list[str] = Field(default_factory=list)  # text files, documents separated by blank lines
    perplexity_max_tokens: int = Field(default=256, ge=8, le=8192)  # per document, longer ones are cut
    lm_eval: list[str] = Field(default_factory=list)  # lm-evaluation-harness task YAMLs (local data_files)
    # token-level drift at corpus scale (issue 29, gates/quality/corpus.py): UTF-8 text files,
    # documents separated by a line "---", cut into windows of drift_context tokens, each window
    # scored by both served arms in one teacher-forced pass (the engine's prefill path)
    drift_corpus: list[str] = Field(default_factory=list)
    drift_context: int = Field(default=512, ge=16, le=131072)
    drift_max_windows: int | None = Field(default=None, ge=1)  # the first N windows only (null: all)
    # documents joined in order (a blank line between) before windows are cut, so a window can be
    # longer than a document (long context); each window is then its own cluster for the intervals
    drift_join_documents: bool = False
    # windows also scored token by token (the decode path), first DECODE_POSITIONS tokens each
    drift_decode_sample: int = Field(default=2, ge=0, le=1000)
