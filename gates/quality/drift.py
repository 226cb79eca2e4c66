"""Drift between baseline and candidate on golden prompts: pure functions, no I/O.

For each prompt the baseline generates greedily and returns its top-k log-probabilities at each
position; the candidate generates on its own (exact match, edit distance) and is also
teacher-forced on the baseline's tokens (same contexts), returning its log-probabilities for the
baseline's top-k tokens. KL(baseline || candidate) is computed over those k tokens plus one
bucket for the rest of the vocabulary: merging outcomes can only lower KL, so this is a lower
bound of the full-vocabulary KL (exact when k covers the vocabulary).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

EPS = 1e-12


@dataclasses.dataclass(frozen=True)
class PromptDrift:
    id: str
    suite: str
    line: int
    tags: tuple[str, ...]
    weight: float
    prompt: str
    baseline_text: str
    candidate_text: str
    exact_match: bool
    edit_distance: int
    first_divergence: int | None
    positions: int
    top1_agreement: float
    mean_kl: float  # lower bound: over the baseline's top-k tokens plus one bucket for the rest
    max_kl: float
    baseline_task_pass: bool | None  # of the greedy answer
    candidate_task_pass: bool | None
    # sampled rows (temperature > 0): the task check of each draw, repeat r of both arms drawn
    # with the same seed; the item's score is then the pass rate of these, not the greedy answer
    temperature: float | None = None
    baseline_samples: tuple[bool, ...] = ()
    candidate_samples: tuple[bool, ...] = ()
    mean_kl_full: float | None = None  # over the whole vocabulary, when both models returned it
    candidate_tokens: int = 0  # of the candidate's greedy answer (the baseline's is ``positions``)

    def outcomes(self, arm: str) -> tuple[bool, ...] | None:
        """The task outcomes the item is scored on: its draws, or the greedy answer's check."""
        samples = self.baseline_samples if arm == "baseline" else self.candidate_samples
        greedy = self.baseline_task_pass if arm == "baseline" else self.candidate_task_pass
        if samples:
            return samples
        return None if greedy is None else (greedy,)

    def score(self, arm: str) -> float | None:
        """The item's task score: its pass rate (0 or 1 when answered once)."""
        o = self.outcomes(arm)
        return None if o is None else sum(o) / len(o)


@dataclasses.dataclass(frozen=True)
class DriftSummary:
    prompts: int
    positions: int
    exact_match_rate: float
    top1_agreement: float
    mean_kl: float  # a lower bound of the full-vocabulary KL: the baseline's top_k tokens + the rest
    max_kl: float
    mean_edit_distance: float
    baseline_task_pass_rate: float | None
    candidate_task_pass_rate: float | None
    by_tag: dict[str, dict[str, float]]
    top_k: int
    mean_kl_full: float | None = None  # over the whole vocabulary (golden.full_kl), else None

    @property
    def kl_note(self) -> str:
        """What "mean KL" is, for the report: a lower bound, and over which tokens."""
        note = (
            f"mean/max KL(baseline ‖ candidate) are lower bounds: the baseline's top-{self.top_k} tokens "
            "plus one bucket for the rest of the vocabulary"
        )
        full = self.mean_kl_full
        return note + (f"; over the full vocabulary: {full:.4g}" if full is not None else "")


def kl_topk(p_logprobs: NDArray[Any], q_logprobs: NDArray[Any]) -> NDArray[Any]:
    """Per-position KL(p || q) over k shared tokens plus a rest-of-vocabulary bucket. Shapes [T, k]."""
    p = np.exp(p_logprobs.astype(np.float64))
    q = np.exp(q_logprobs.astype(np.float64))
    p_rest = np.clip(1.0 - p.sum(axis=1), 0.0, 1.0)
    q_rest = np.clip(1.0 - q.sum(axis=1), 0.0, 1.0)
    terms = p * (np.log(p + EPS) - np.log(q + EPS))
    rest = np.where(p_rest > EPS, p_rest * (np.log(p_rest + EPS) - np.log(q_rest + EPS)), 0.0)
    out: NDArray[Any] = np.maximum(terms.sum(axis=1) + rest, 0.0)
    return out


def edit_distance(a: Sequence[int], b: Sequence[int]) -> int:
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        cur = [i]
        for j, y in enumerate(b, start=1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def first_divergence(a: Sequence[int], b: Sequence[int]) -> int | None:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def task_pass(
    text: str,
    expected: str | None,
    must_contain: Sequence[str],
    regex: str | None,
    must_contain_any: Sequence[str] = (),
) -> bool | None:
    """None when the prompt has no task check. Every check given must hold: ``must_contain`` needs
    *all* its strings, ``must_contain_any`` at least one of its strings (case-sensitive)."""
    if expected is None and not must_contain and not must_contain_any and regex is None:
        return None
    ok = True
    if expected is not None:
        ok &= text.strip() == expected.strip()
    ok &= all(s in text for s in must_contain)
    if must_contain_any:
        ok &= any(s in text for s in must_contain_any)
    if regex is not None:
        ok &= re.search(regex, text) is not None
    return ok


def top1_matches(forced_argmax: NDArray[Any], reference_ids: Sequence[int]) -> int:
    """How many of the reference's greedy tokens the other model also ranks first when fed the
    reference's own continuation (teacher forcing): the one definition of top-1 agreement, used by
    the gate's drift stage and by the canary's live re-check."""
    ref = np.asarray(reference_ids).reshape(-1)
    got = np.asarray(forced_argmax).reshape(-1)[: ref.size]
    return int((got == ref[: got.size]).sum())


def prompt_drift(
    *,
    meta: dict[str, Any],
    baseline_ids: Sequence[int],
    baseline_text: str,
    baseline_top_logprobs: NDArray[Any],
    candidate_ids: Sequence[int],
    candidate_text: str,
    candidate_forced_argmax: NDArray[Any],
    candidate_forced_logprobs: NDArray[Any],
    baseline_samples: Sequence[str] = (),
    candidate_samples: Sequence[str] = (),
    top_k: int | None = None,
    full_vocabulary: bool = False,
) -> PromptDrift:
    """``*_samples``: the texts of a sampled row's draws (repeat r of both arms with one seed).

    ``full_vocabulary``: the log-probabilities cover the whole vocabulary (in the baseline's
    descending order): ``mean_kl`` is still the top-``top_k`` bound, ``mean_kl_full`` the exact KL."""
    positions = len(baseline_ids)
    full: float | None = None
    if positions == 0:
        top1, kls = math.nan, np.array([])
    else:
        top1 = top1_matches(candidate_forced_argmax, baseline_ids) / positions
        k = top_k or baseline_top_logprobs.shape[-1]
        kls = kl_topk(baseline_top_logprobs[:, :k], candidate_forced_logprobs[:, :k])
        if full_vocabulary:
            full = float(kl_topk(baseline_top_logprobs, candidate_forced_logprobs).mean())
    check = (meta.get("expected"), meta.get("must_contain", ()), meta.get("regex"), meta.get("must_contain_any", ()))
    return PromptDrift(
        id=meta["id"],
        suite=meta["suite"],
        line=meta["line"],
        tags=tuple(meta.get("tags", ())),
        weight=float(meta.get("weight", 1.0)),
        prompt=meta["prompt"],
        baseline_text=baseline_text,
        candidate_text=candidate_text,
        exact_match=tuple(baseline_ids) == tuple(candidate_ids),
        edit_distance=edit_distance(baseline_ids, candidate_ids),
        first_divergence=first_divergence(baseline_ids, candidate_ids),
        positions=positions,
        top1_agreement=top1,
        mean_kl=float(kls.mean()) if kls.size else math.nan,
        max_kl=float(kls.max()) if kls.size else math.nan,
        baseline_task_pass=task_pass(baseline_text, *check),
        candidate_task_pass=task_pass(candidate_text, *check),
        temperature=meta.get("temperature"),
        baseline_samples=tuple(bool(task_pass(t, *check)) for t in baseline_samples),
        candidate_samples=tuple(bool(task_pass(t, *check)) for t in candidate_samples),
        mean_kl_full=full,
        candidate_tokens=len(candidate_ids),
    )


def summarize(rows: Sequence[PromptDrift], top_k: int) -> DriftSummary:
    """Aggregate: exact match weighted by prompt weight; top-1 and KL weighted by positions."""
    nan = math.nan
    if not rows:
        return DriftSummary(0, 0, nan, nan, nan, nan, nan, None, None, {}, top_k)

    def agg(sel: Sequence[PromptDrift]) -> dict[str, float]:
        w = sum(r.weight for r in sel)
        pos = sum(r.positions for r in sel)
        return {
            "prompts": float(len(sel)),
            "exact_match_rate": sum(r.weight * r.exact_match for r in sel) / w if w else nan,
            "top1_agreement": sum(r.top1_agreement * r.positions for r in sel if r.positions) / pos if pos else nan,
            "mean_kl": sum(r.mean_kl * r.positions for r in sel if r.positions) / pos if pos else nan,
        }

    overall = agg(rows)
    tags = sorted({t for r in rows for t in r.tags})
    checked = [r for r in rows if r.baseline_task_pass is not None]
    b_scores = [r.score("baseline") or 0.0 for r in checked]
    c_scores = [r.score("candidate") or 0.0 for r in checked]
    return DriftSummary(
        prompts=len(rows),
        positions=sum(r.positions for r in rows),
        exact_match_rate=overall["exact_match_rate"],
        top1_agreement=overall["top1_agreement"],
        mean_kl=overall["mean_kl"],
        max_kl=max((r.max_kl for r in rows if r.positions), default=nan),
        mean_edit_distance=float(np.mean([r.edit_distance for r in rows])),
        baseline_task_pass_rate=sum(b_scores) / len(checked) if checked else None,  # sampled rows: pass rates
        candidate_task_pass_rate=sum(c_scores) / len(checked) if checked else None,
        by_tag={t: agg([r for r in rows if t in r.tags]) for t in tags},
        top_k=top_k,
        mean_kl_full=_full_kl(rows),
    )


def _full_kl(rows: Sequence[PromptDrift]) -> float | None:
    """Position-weighted full-vocabulary KL; None unless every row that has positions measured it."""
    measured = [r for r in rows if r.positions]
    if not measured or any(r.mean_kl_full is None for r in measured):
        return None
    return sum((r.mean_kl_full or 0.0) * r.positions for r in measured) / sum(r.positions for r in measured)
