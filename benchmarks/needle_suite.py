"""Writes golden_prompts/smollm2-needle.jsonl: a long-context retrieval suite (needle in a haystack).

A fact ("The code of the blue lighthouse is 4817.") is placed at several depths of a long public-
domain document (Shakespeare from golden_prompts/drift-corpus/, documents the corpus shares) and
asked at the end; the row passes when the answer holds the fact's value (``must_contain``). Rows
are task rows of a golden suite: both arms answer every row and the paired accuracy gate
(``gates.accuracy_drop_max``) judges the drop, tagged by length and depth so the report shows
where retrieval breaks. Deterministic: rerunning rewrites the same file.

    .venv/bin/python benchmarks/needle_suite.py [--words 1500 3000] [--depths 0.1 0.5 0.9] [--facts 2]

The shipped suite is the defaults: 12 rows of ~2,100 and ~4,300 tokens. Each row costs both arms two
long prefills (the answer, then the other arm's answer scored), ~77,000 tokens per arm in all: about
seven minutes on two CPU cores, which is what one run of pipelines/smollm2-long-context.yaml affords.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOURCE = REPO / "golden_prompts" / "drift-corpus" / "shakespeare.txt"
OUT = REPO / "golden_prompts" / "smollm2-needle.jsonl"
FACTS = (
    ("the blue lighthouse", "4817"),
    ("the northern gate", "2396"),
    ("the copper bridge", "7154"),
    ("the silent orchard", "6083"),
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--words", type=int, nargs="+", default=[1500, 3000])
    ap.add_argument("--depths", type=float, nargs="+", default=[0.1, 0.5, 0.9])
    ap.add_argument("--facts", type=int, default=2, choices=range(1, len(FACTS) + 1), help="facts per length and depth")
    args = ap.parse_args()
    words = SOURCE.read_text().replace("\n---\n", "\n").split()
    rows = []
    for n in args.words:
        for d in args.depths:
            for f, (place, code) in enumerate(FACTS[: args.facts]):
                offset = (f * 7919) % max(1, len(words) - n)  # a different stretch of text per fact
                hay = words[offset : offset + n]
                at = int(d * n)
                needle = f"The code of {place} is {code}."
                text = " ".join([*hay[:at], needle, *hay[at:]])
                prompt = f"{text}\n\nQuestion: What is the code of {place}?\nAnswer: The code of {place} is"
                rows.append(
                    {
                        "id": f"needle-{n}w-d{int(d * 100):02d}-{f}",
                        "prompt": prompt,
                        "must_contain": [code],
                        "max_new_tokens": 8,
                        "tags": ["needle", f"words-{n}", f"depth-{int(d * 100)}"],
                    }
                )
    OUT.write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(f"{OUT}: {len(rows)} rows")


if __name__ == "__main__":
    main()
