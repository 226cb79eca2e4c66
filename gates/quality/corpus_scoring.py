"""Corpus windows through both served arms: one teacher-forced pass per window and arm.

The baseline reads each window in one pass (``PREFILL``: the engine's prefill kernels) and
returns its top-k log-probabilities per position plus the true next token's; the candidate then
reads the same window in one pass and returns its log-probabilities at the true token and at the
baseline's top-k ids, and its own top-1. The two arms run side by side (one gRPC stream each):
the candidate scores window i while the baseline already reads window i + 1. Each arm's time is
the sum of its own requests' wall times (tokens/s per arm in the report).

A sample of windows is read again token by token (the decode kernels, ``Runner.score``) by
both arms, on their first ``DECODE_POSITIONS`` tokens, to state how far the prefill figures
are from what decoding would see.
"""

from __future__ import annotations

import contextlib
import dataclasses
import queue
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gates.errors import InfraError
from gates.quality.corpus import Window, WorstWindow
from gates.quality.corpus_stats import RESAMPLES, CorpusFigures, PathCheck, ScoredWindow, fin
from gates.quality.drift import kl_topk
from gates.triton.client import Generation, TextModelClient

DECODE_POSITIONS = 128  # tokens of each sampled window read token by token (the decode path is slow)


@dataclasses.dataclass(frozen=True)
class CorpusScores:
    windows: tuple[ScoredWindow, ...]
    seconds: dict[str, float]  # arm -> summed wall time of its scoring requests
    path_check: PathCheck | None
    baseline: tuple[Generation, ...] = ()  # the baseline's answers, reusable for another candidate


@dataclasses.dataclass(frozen=True)
class CorpusRun:
    """What the quality stage measured on the drift corpus (report.json's ``corpus``)."""

    files: tuple[str, ...]
    context: int  # tokens per window
    figures: CorpusFigures  # prefill path: each window read in one pass by both arms
    seconds: dict[str, float]  # arm -> its scoring requests' summed wall time
    path_check: PathCheck | None  # the decode path on a sample
    worst: tuple[WorstWindow, ...]
    rows_path: Path | None = None  # per-window figures, one JSON line each

    def to_json(self) -> dict[str, Any]:
        """report.json's ``corpus`` (gates/report/model.py: Corpus)."""
        return {
            "files": list(self.files),
            "context": self.context,
            "path": "prefill",
            **self.figures.to_json(),
            "interval_method": "cluster bootstrap over documents (percentile, "
            f"{RESAMPLES} resamples); ± SE: delete-one-document jackknife",
            "seconds": dict(self.seconds),
            "tokens_per_s": {arm: fin(self.tokens_per_s(arm)) for arm in self.seconds},
            "path_check": self.path_check.to_json() if self.path_check else None,
            "worst": [dataclasses.asdict(w) for w in self.worst],
            "rows": str(self.rows_path) if self.rows_path else None,
        }

    def tokens_per_s(self, arm: str) -> float:
        s = self.seconds.get(arm, 0.0)
        return self.figures.tokens / s if s > 0 else float("nan")


def _request(
    client: TextModelClient,
    model: str,
    ids: Sequence[int],
    top_k: int,
    logprob_ids: NDArray[Any],
    prefill: bool,
) -> Generation:
    forced = np.asarray(ids[1:], dtype=np.int64)
    out = client.generate(
        model,
        "",
        1,
        top_k=top_k,
        forced_ids=forced,
        logprob_ids=logprob_ids,
        prompt_ids=np.asarray(ids[:1], dtype=np.int64),
        prefill=prefill,
    )
    if out.selected_logprobs.shape[0] != forced.size or out.top_ids.shape[0] != forced.size:
        raise InfraError(f"model {model!r} returned {out.selected_logprobs.shape[0]} rows for {forced.size} tokens")
    return out


def score_windows(
    url: str,
    models: dict[str, str],
    windows: Sequence[Window],
    top_k: int,
    check_alive: Callable[[], None],
    decode_sample: int = 0,
    baseline_answers: Sequence[Generation] = (),
    arm_after_arm: bool = False,
) -> CorpusScores:
    """Every window through both arms (``models``: arm -> served model name). ``baseline_answers``:
    the baseline's answers for these windows from an earlier call (another candidate against the
    same baseline build): the baseline is then not asked again and its time is 0 here.
    ``arm_after_arm``: the baseline reads every window before the candidate reads any (models
    served with all the cores each, instead of side by side on a share each)."""
    b_model, c_model = models["baseline"], models["candidate"]
    handoff: queue.Queue[tuple[int, Generation] | None] = queue.Queue(maxsize=0 if arm_after_arm else 4)
    seconds = {"baseline": 0.0, "candidate": 0.0}
    errors: list[BaseException] = []

    def baseline() -> None:
        client = TextModelClient(url, timeout_s=600)
        try:
            for i, w in enumerate(windows):
                if errors:
                    return
                check_alive()
                if baseline_answers:
                    handoff.put((i, baseline_answers[i]))
                    continue
                true = np.asarray(w.ids[1:], dtype=np.int64).reshape(-1, 1)
                t0 = time.perf_counter()
                out = _request(client, b_model, w.ids, top_k, true, prefill=True)
                seconds["baseline"] += time.perf_counter() - t0
                handoff.put((i, out))
        except BaseException as exc:  # handed to the caller's thread below
            errors.append(exc)
        finally:
            handoff.put(None)
            client.close()

    thread = threading.Thread(target=baseline, name="corpus-baseline", daemon=True)
    thread.start()
    if arm_after_arm:
        thread.join()
    scored: list[ScoredWindow] = []
    answers: list[Generation] = []
    client = TextModelClient(url, timeout_s=600)
    try:
        while (item := handoff.get()) is not None:
            i, b = item
            answers.append(b)
            w = windows[i]
            true = np.asarray(w.ids[1:], dtype=np.int64).reshape(-1, 1)
            t0 = time.perf_counter()
            c = _request(client, c_model, w.ids, 1, np.hstack([true, b.top_ids]), prefill=True)
            seconds["candidate"] += time.perf_counter() - t0
            scored.append(
                ScoredWindow(
                    index=i,
                    document=w.document,
                    base_top_ids=b.top_ids,
                    base_top_lp=b.top_logprobs,
                    base_true_lp=b.selected_logprobs[:, 0],
                    cand_top_lp=c.selected_logprobs[:, 1:],
                    cand_true_lp=c.selected_logprobs[:, 0],
                    cand_argmax=c.top_ids[:, 0],
                )
            )
    except BaseException:
        errors.append(InfraError("the candidate arm stopped"))
        raise
    finally:
        client.close()
        while thread.is_alive():  # the baseline may wait on a full queue: take what it hands over
            with contextlib.suppress(queue.Empty):
                handoff.get(timeout=0.1)
    if errors:
        raise errors[0]
    check = path_check(url, models, windows, scored, top_k, decode_sample, check_alive) if decode_sample else None
    return CorpusScores(tuple(scored), seconds, check, tuple(answers))


def sample_indices(n: int, sample: int) -> list[int]:
    """``sample`` window indices spread evenly over ``n`` windows."""
    if sample <= 0 or n == 0:
        return []
    return sorted({int(i) for i in np.linspace(0, n - 1, min(sample, n))})


def path_check(
    url: str,
    models: dict[str, str],
    windows: Sequence[Window],
    scored: Sequence[ScoredWindow],
    top_k: int,
    sample: int,
    check_alive: Callable[[], None],
) -> PathCheck:
    """A sample of windows read token by token by both arms, compared with their one-pass reading."""
    picked = sample_indices(len(scored), sample)
    differ = {"baseline": 0, "candidate": 0}
    kl_paths: dict[str, list[float]] = {"baseline": [], "candidate": []}
    kl_pre: list[float] = []
    kl_dec: list[float] = []
    same_pre: list[float] = []
    same_dec: list[float] = []
    client = TextModelClient(url, timeout_s=600)
    try:
        for j in picked:
            s = scored[j]
            n = min(DECODE_POSITIONS, s.base_top_ids.shape[0])
            ids = windows[s.index].ids[: n + 1]
            top = np.asarray(s.base_top_ids[:n])
            decoded = {}
            for arm in ("baseline", "candidate"):
                check_alive()
                decoded[arm] = _request(client, models[arm], ids, 1, top, prefill=False)
            b_dec, c_dec = decoded["baseline"], decoded["candidate"]
            differ["baseline"] += int((b_dec.top_ids[:, 0] != top[:, 0]).sum())
            differ["candidate"] += int((c_dec.top_ids[:, 0] != np.asarray(s.cand_argmax[:n])).sum())
            kl_paths["baseline"] += list(kl_topk(np.asarray(s.base_top_lp[:n]), b_dec.selected_logprobs))
            kl_paths["candidate"] += list(kl_topk(np.asarray(s.cand_top_lp[:n]), c_dec.selected_logprobs))
            kl_pre += list(kl_topk(np.asarray(s.base_top_lp[:n]), np.asarray(s.cand_top_lp[:n])))
            kl_dec += list(kl_topk(b_dec.selected_logprobs, c_dec.selected_logprobs))
            same_pre += list((np.asarray(s.cand_argmax[:n]) == top[:, 0]).astype(float))
            same_dec += list((c_dec.top_ids[:, 0] == b_dec.top_ids[:, 0]).astype(float))
    finally:
        client.close()
    return PathCheck(
        windows=len(picked),
        positions=len(kl_pre),
        top1_differ=differ,
        kl_paths={arm: float(np.mean(v)) if v else float("nan") for arm, v in kl_paths.items()},
        kl_prefill=float(np.mean(kl_pre)) if kl_pre else float("nan"),
        kl_decode=float(np.mean(kl_dec)) if kl_dec else float("nan"),
        same_top1_prefill=float(np.mean(same_pre)) if same_pre else float("nan"),
        same_top1_decode=float(np.mean(same_dec)) if same_dec else float("nan"),
    )
