"""Gates on the drift corpus (golden.drift_corpus): mean KL, KL p99, same top-1, perplexity ratio.

Each is judged on its interval by document (gates/quality/corpus_stats.py, cluster bootstrap):
PASS needs the whole interval on the good side of the threshold, FAIL the whole interval on the
bad side, else INCONCLUSIVE; fewer than MIN_DOCUMENTS documents never PASS. A threshold left null
is not applied. The entries join the verdict through quality_gates.py like every quality gate.
"""

from __future__ import annotations

import math

from gates.config.schema import GatesSection
from gates.judge.paired import Interval
from gates.judge.quality import MIN_DOCUMENTS, QualityEntry
from gates.judge.verdict import Status
from gates.quality.corpus_scoring import CorpusRun
from gates.quality.corpus_stats import Estimate

CORPUS = "corpus"
METHOD = "cluster bootstrap over documents, percentile"


def corpus_entries(run: CorpusRun | None, cfg: GatesSection) -> list[QualityEntry]:
    if run is None:
        return []
    f = run.figures
    mass = f.tail_mass
    mean, most = mass.get("mean", math.nan), mass.get("max", math.nan)
    tail = f"baseline mass outside its top-{f.top_k}: mean {mean:.3g}, max {most:.3g}"
    return [
        _entry(
            "corpus_kl_mean",
            f.kl_mean,
            cfg.corpus_kl_mean_max,
            f.documents,
            minimum=False,
            note=f"lower bound ({tail}); ± {f.kl_mean_se:.2g} (jackknife SE)",
        ),
        _entry(
            "corpus_kl_p99",
            f.kl_percentiles.get("p99", _NAN),
            cfg.corpus_kl_p99_max,
            f.documents,
            minimum=False,
            note=f"lower bound ({tail})",
        ),
        _entry("corpus_same_top1", f.same_top1, cfg.corpus_same_top1_min, f.documents, minimum=True, note=""),
        _entry(
            "corpus_ppl_ratio",
            f.ppl_ratio,
            cfg.corpus_ppl_ratio_max,
            f.documents,
            minimum=False,
            note="candidate / baseline",
        ),
    ]


_NAN = Estimate(math.nan, math.nan, math.nan)


def _entry(name: str, e: Estimate, limit: float | None, docs: int, *, minimum: bool, note: str) -> QualityEntry:
    iv = Interval(e.estimate, e.low, e.high)
    thr = f"{'≥' if minimum else '≤'} {limit:.3g}" if limit is not None else "—"
    if not math.isfinite(e.estimate):
        status = Status.NO_DATA if limit is not None else Status.NOT_APPLIED
        return QualityEntry(name, CORPUS, 0, None, None, iv, None, None, status, thr, f"no {name} measured")
    text = f"{name} {e.estimate:.4g} ({e.low:.4g} to {e.high:.4g}) over {docs} documents ({METHOD}; prefill path)"
    text += f"; {note}" if note else ""
    if limit is None:
        return QualityEntry(
            name, CORPUS, docs, None, iv, iv, None, None, Status.NOT_APPLIED, thr, f"{text}; no threshold configured"
        )
    good = e.low >= limit if minimum else e.high <= limit
    bad = e.high < limit if minimum else e.low > limit
    status = Status.PASS if good else Status.FAIL if bad else Status.INCONCLUSIVE
    word = {Status.PASS: "clears", Status.FAIL: "misses", Status.INCONCLUSIVE: "straddles"}[status]
    reason = f"{text}: the interval {word} {limit:.3g}"
    if status == Status.PASS and docs < MIN_DOCUMENTS:
        status, reason = Status.INCONCLUSIVE, f"{reason}; fewer than {MIN_DOCUMENTS} documents: too few to certify it"
    return QualityEntry(name, CORPUS, docs, None, iv, iv, None, None, status, thr, reason)
