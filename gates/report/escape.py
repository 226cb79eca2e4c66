"""Make untrusted text (model output, prompts, ids) inert in markdown and HTML.

Model output is attacker-controllable (a prompt can make a model print anything), so in the PR
comment it must not open or close tags, start markdown constructs, break out of a table or
``<details>`` block, or ping people (@org/team) or link issues (#1).
"""

from __future__ import annotations

_ENTITIES = {
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
    '"': "&quot;",
    "'": "&#39;",
    "`": "&#96;",
    "*": "&#42;",
    "_": "&#95;",
    "[": "&#91;",
    "]": "&#93;",
    "(": "&#40;",
    ")": "&#41;",
    "|": "&#124;",
    "~": "&#126;",
    "!": "&#33;",
    "\\": "&#92;",
    "{": "&#123;",
    "}": "&#125;",
    "$": "&#36;",
    # ':' stops GitHub's autolinker (https://…, mailto:) from turning model text into links
    ":": "&#58;",
}
ZWSP = "\u200b"


def md_inline(text: str, limit: int = 400) -> str:
    """One table-cell-safe line: entities for markup, a zero-width space after @ and #."""
    if len(text) > limit:
        text = text[:limit] + "…"
    out = []
    for ch in text:
        if ch in "@#":
            out.append(ch + ZWSP)
        elif ch == "\n":
            out.append("↵")
        elif ch == "\r" or (ord(ch) < 32 and ch != "\t"):
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(_ENTITIES.get(ch, ch))
    return "".join(out)
