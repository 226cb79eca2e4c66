"""Operating characteristics of the paired accuracy gate on SmolLM2-135M-Instruct.

Candidates with planted damage of known size (Gaussian noise on every decoder weight matrix,
scaled to each matrix's own standard deviation, at increasing scales and two seeds) and A/A pairs
(the unchanged model, and noise small enough to change nothing measurable) are scored on a pool
of multiple-choice items: golden_prompts/smollm2-choice.jsonl plus templated items generated
here (arithmetic, successors, comparisons, weekdays, months). A candidate's *true* drop is its
accuracy drop over the whole pool. Each trial draws a suite of ``--items`` items from the pool
(without replacement) and judges it twice:

- the gate (gates.judge.quality.accuracy_entry: McNemar, paired bootstrap + Newcombe interval,
  one-sided bounds at ``--confidence``, margin ``--margin``): PASS / FAIL / INCONCLUSIVE;
- the naive fixed-threshold rule: PASS when the observed drop is at most the margin, else FAIL.

false PASS: share of trials of candidates whose true drop exceeds the margin that were judged
PASS. A/A false FAIL: share of A/A trials (the unchanged model; in-process scoring is
deterministic, so its items agree one for one) judged FAIL. The smallest noise scale is a
near-A/A pair (true drop about zero): its line shows how often the gate certifies it.

To fit the CPU budget the items are scored in-process with transformers (batched forward
passes), not through Triton: the scoring is the served path's (same context/continuation split,
gates.quality.scoring.choice_prompt / continuation_ids), only the transport differs.

At the margin (``--parts margin``, simulated, no model): the one-sided damage design, where the
candidate never gets an item right that the baseline missed (the usual pattern of quantization
damage) and loses each item the baseline got right with chance margin / accuracy, so the true drop
equals the margin exactly. Suites of 60, 120 and 200 items at ``--margin-confidence`` (one-sided
bounds; nominal false PASS 1 − confidence); every PASS is false. ``false_pass_margin`` is the worst
size's rate with its 95% Wilson interval (goal: its upper end at most 1 − confidence).

    PYTHONPATH=. HF_HUB_OFFLINE=1 python benchmarks/quality_verdicts.py --artifacts artifacts
        [--parts model,margin] [--margin-trials 2000] [--margin-confidence 0.95]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from gates.artifacts import ArtifactStore
from gates.config.schema import GatesSection
from gates.judge.quality import LOGLIKELIHOOD, accuracy_entry
from gates.models.sources import SMOLLM2, resolve_source
from gates.quality.scoring import ChoiceRow, choice_prompt, continuation_ids, load_multiple_choice

REPO = Path(__file__).resolve().parent.parent
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]  # fmt: skip


def generated_items(seed: int = 7) -> list[ChoiceRow]:
    rng = np.random.default_rng(seed)
    rows: list[ChoiceRow] = []

    def add(kind: str, question: str, right: str, wrong: list[str]) -> None:
        choices = [right, *dict.fromkeys(w for w in wrong if w != right)][:4]
        order = rng.permutation(len(choices))
        rows.append(
            ChoiceRow(
                id=f"{kind}-{len(rows)}",
                question=question,
                choices=[choices[i] for i in order],
                answer=int(np.argsort(order)[0]),
            )
        )

    for _ in range(60):
        a, b = (int(x) for x in rng.integers(1, 30, 2))
        s = a + b
        add("add", f"What is {a} + {b}?", str(s), [str(s + 1), str(s - 1), str(s + 10), str(a * b)])
    for _ in range(40):
        n = int(rng.integers(1, 99))
        add("next", f"What number comes after {n}?", str(n + 1), [str(n - 1), str(n + 2), str(n + 10)])
    for _ in range(40):
        a, b = (int(x) for x in rng.choice(np.arange(1, 200), 2, replace=False))
        add("larger", f"Which number is larger, {a} or {b}?", str(max(a, b)), [str(min(a, b))])
    for i, d in enumerate(WEEKDAYS):
        others = [w for w in WEEKDAYS if w not in (d, WEEKDAYS[(i + 1) % 7])]
        add("weekday", f"What day comes after {d}?", WEEKDAYS[(i + 1) % 7], list(rng.choice(others, 3, False)))
    for i, m in enumerate(MONTHS):
        others = [x for x in MONTHS if x not in (m, MONTHS[(i + 1) % 12])]
        add("month", f"What month comes after {m}?", MONTHS[(i + 1) % 12], list(rng.choice(others, 3, False)))
    return rows


def score(model: Any, tok: Any, rows: list[ChoiceRow], batch_items: int = 16) -> np.ndarray:
    """Per item: does the highest summed log-probability choice equal the answer?

    The context is run once per item and its KV cache shared by the item's choices (items are
    grouped by context length and number of choices, so no context needs padding).
    """
    import torch

    prepared = []
    for row in rows:
        context, conts = choice_prompt(row)
        prepared.append((list(tok(context)["input_ids"]), [continuation_ids(tok, context, c) for c in conts]))
    groups: dict[tuple[int, int], list[int]] = {}
    for i, (ctx, conts) in enumerate(prepared):
        groups.setdefault((len(ctx), len(conts)), []).append(i)
    correct = np.zeros(len(rows), dtype=bool)
    for (_, n_choices), members in groups.items():
        for start in range(0, len(members), batch_items):
            chunk = members[start : start + batch_items]
            ctx = torch.tensor([prepared[i][0] for i in chunk])
            conts = [c for i in chunk for c in prepared[i][1]]
            width = max(len(c) for c in conts)
            ids = torch.zeros((len(conts), width), dtype=torch.long)
            mask = torch.ones((len(conts), ctx.shape[1] + width), dtype=torch.long)
            for j, c in enumerate(conts):
                ids[j, : len(c)] = torch.tensor(c)
                mask[j, ctx.shape[1] + len(c) :] = 0
            with torch.no_grad():
                first = model(input_ids=ctx, use_cache=True)
                past = first.past_key_values
                past.batch_repeat_interleave(n_choices)
                last = torch.log_softmax(first.logits[:, -1].float(), -1).repeat_interleave(n_choices, 0)
                rest = torch.log_softmax(
                    model(input_ids=ids, attention_mask=mask, past_key_values=past).logits.float(), -1
                )
            totals = []
            for j, c in enumerate(conts):
                lp = float(last[j, c[0]])
                for t in range(1, len(c)):
                    lp += float(rest[j, t - 1, c[t]])
                totals.append(lp)
            for k, i in enumerate(chunk):
                mine = totals[k * n_choices : (k + 1) * n_choices]
                correct[i] = int(np.argmax(mine)) == rows[i].answer
    return correct


def damaged(model: Any, scale: float, seed: int) -> Any:
    """A copy of ``model`` with N(0, (scale·std(W))²) added to every decoder weight matrix."""
    import copy

    import torch

    out = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in out.named_parameters():
            if ".layers." in name and p.dim() == 2 and scale > 0:
                p.add_(torch.randn(p.shape, generator=gen) * (scale * float(p.std())))
    return out


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    p = k / n
    mid, half = p + z * z / (2 * n), z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (mid - half) / (1 + z * z / n)), min(1.0, (mid + half) / (1 + z * z / n))


def margin_part(trials: int, margin: float, confidence: float, accuracy: float = 0.75) -> str:
    """False PASS of the drop gate at a true drop equal to the margin, the candidate never winning."""
    cfg = GatesSection(accuracy_drop_max=margin, confidence=confidence)
    rng = np.random.default_rng(3)
    print(
        f"\nat the margin (simulated): baseline accuracy {accuracy}, the candidate loses a right item with "
        f"chance {margin / accuracy:.3f} and never wins one (true drop {margin}), confidence {confidence}, "
        f"{trials} suites per size"
    )
    worst = (-1.0, 0.0, 1.0, 0)
    for n in (60, 120, 200):
        passed = 0
        for _ in range(trials):
            b = rng.random(n) < accuracy
            c = b & (rng.random(n) >= margin / accuracy)
            passed += accuracy_entry("mc", LOGLIKELIHOOD, list(b), list(c), cfg)[0].status == "pass"
        lo, hi = wilson(passed, trials)
        print(f"  N={n:>3}: false PASS {passed / trials:.4f} [{lo:.4f}-{hi:.4f}]", flush=True)
        if (passed / trials, hi) > (worst[0], worst[2]):
            worst = (passed / trials, lo, hi, n)
    return (
        f"false_pass_margin={worst[0]:.4f} false_pass_margin_high={worst[2]:.4f} "
        f"false_pass_margin_ci=[{worst[1]:.4f},{worst[2]:.4f}] "
        f"margin_worst_n={worst[3]} margin_trials={trials} margin_confidence={confidence}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--artifacts", type=Path, default=REPO / "artifacts")
    ap.add_argument("--items", type=int, default=120, help="suite size of one trial")
    ap.add_argument("--trials", type=int, default=200, help="suites drawn per candidate")
    ap.add_argument("--margin", type=float, default=0.05)
    ap.add_argument("--confidence", type=float, default=0.99)
    ap.add_argument("--scales", default="0,0.03,0.07,0.12,0.2")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--parts", default="model,margin", help="model (SmolLM2, needs its weights), margin (simulated)")
    ap.add_argument("--margin-trials", type=int, default=2000)
    ap.add_argument("--margin-confidence", type=float, default=0.95)
    args = ap.parse_args(argv)
    parts = set(args.parts.split(","))
    keys = [model_part(args)] if "model" in parts else []
    if "margin" in parts:
        keys.append(margin_part(args.margin_trials, args.margin, args.margin_confidence))
    print(" ".join(keys))
    return 0


def model_part(args: argparse.Namespace) -> str:
    """The SmolLM2 candidates with planted weight noise (module doc)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    torch.set_num_threads(2)
    started = time.monotonic()
    path = resolve_source(SMOLLM2, Path, ArtifactStore(args.artifacts), lambda s: None).path
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    base = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=torch.float32).eval()
    suite = REPO / "golden_prompts" / "smollm2-choice.jsonl"
    pool = [c.row for c in load_multiple_choice(suite, suite.name)] + generated_items()
    b = score(base, tok, pool)
    print(f"pool {len(pool)} items; baseline accuracy {b.mean():.3f} ({time.monotonic() - started:.0f}s)")
    cfg = GatesSection(accuracy_drop_max=args.margin, confidence=args.confidence)
    rng = np.random.default_rng(1)
    tally = {k: [0, 0] for k in ("aa_fail", "false_pass", "naive_pass", "naive_aa_fail", "within_fail")}
    for scale in (float(s) for s in args.scales.split(",")):
        for seed in range(args.seeds if scale > 0 else 1):
            c = score(damaged(base, scale, seed), tok, pool) if scale > 0 else b.copy()
            true_drop = float(b.mean() - c.mean())
            aa = scale <= 0.01
            counts = {"pass": 0, "fail": 0, "inconclusive": 0}
            naive_pass = 0
            for _ in range(args.trials):
                idx = rng.choice(len(pool), args.items, replace=False)
                entry = accuracy_entry("mc", LOGLIKELIHOOD, list(b[idx]), list(c[idx]), cfg)[0]
                counts[entry.status] += 1
                naive_ok = float(b[idx].mean() - c[idx].mean()) <= args.margin
                naive_pass += naive_ok
                if aa:
                    tally["aa_fail"][0] += entry.status == "fail"
                    tally["aa_fail"][1] += 1
                    tally["naive_aa_fail"][0] += not naive_ok
                    tally["naive_aa_fail"][1] += 1
                if true_drop > args.margin:
                    tally["false_pass"][0] += entry.status == "pass"
                    tally["false_pass"][1] += 1
                    tally["naive_pass"][0] += naive_ok
                    tally["naive_pass"][1] += 1
                elif true_drop < args.margin:
                    tally["within_fail"][0] += entry.status == "fail"
                    tally["within_fail"][1] += 1
            print(
                f"scale {scale:<5} seed {seed}: true drop {true_drop:+.3f}  gate pass {counts['pass']:>3} "
                f"fail {counts['fail']:>3} inconclusive {counts['inconclusive']:>3}  naive pass {naive_pass:>3} "
                f"of {args.trials}  (detectable effect {entry.detectable_effect:.3f}; "
                f"{time.monotonic() - started:.0f}s)",
                flush=True,
            )

    def rate(key: str) -> str:
        k, n = tally[key]
        return f"{k / n:.4f}" if n else "nan"

    print(
        f"suite {args.items} items, margin {args.margin}, confidence {args.confidence}; "
        f"within-margin false FAIL {rate('within_fail')}"
    )
    return (
        f"aa_false_fail={rate('aa_fail')} false_pass={rate('false_pass')} "
        f"naive_false_pass={rate('naive_pass')} naive_aa_false_fail={rate('naive_aa_fail')}"
    )


if __name__ == "__main__":
    sys.exit(main())
