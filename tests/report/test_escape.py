from __future__ import annotations

from gates.report.escape import md_inline

HOSTILE = "</details><script>alert(1)</script> @org/team #12 | a | b |\n**bold** [x](https://evil) `code` <!-- x -->"


def test_hostile_model_output_is_inert() -> None:
    out = md_inline(HOSTILE)
    for raw in ("</details>", "<script>", "|", "**", "[x]", "(https", "`", "<!--", "\n"):
        assert raw not in out, raw
    assert "&lt;/details&gt;" in out and "&lt;script&gt;" in out
    assert "@\u200borg/team" in out and "#\u200b12" in out
    assert "&#124;" in out and "&#96;code&#96;" in out


def test_plain_text_stays_readable_and_is_truncated() -> None:
    assert md_inline("four score and seven years") == "four score and seven years"
    assert md_inline("x" * 50, limit=10) == "x" * 10 + "…"
