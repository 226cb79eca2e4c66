"""Golden files for what reviewers read: the markdown for PASS, FAIL and INCONCLUSIVE."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gates.config.schema import PIPELINE_NAME
from gates.report.render import MARKER, render_html, render_markdown

DATA = Path(__file__).with_name("data")
HOSTILE = "</details><script>alert(1)</script> @org/team #12 | a | b |\n**bold** [x](https://evil.example)"


def _report() -> dict[str, Any]:
    return json.loads((DATA / "report_pass.json").read_text())


def _fail() -> dict[str, Any]:
    r = _report()
    r["verdict"] = "FAIL"
    for g in r["gates"]:
        if g["name"] == "top1_agreement":
            g.update(
                status="fail",
                observed=0.41,
                reason="next-token top-1 agreement 0.41 over 18 golden prompts (below 0.95)",
            )
    r["reason"] = "failed: top1_agreement (next-token top-1 agreement 0.41 over 18 golden prompts (below 0.95))"
    r["drift"]["worst"][0]["candidate_text"] = HOSTILE
    paris = {"id": "capital-fr", "prompt": "The capital of France is", "baseline_text": " Paris, on the Seine."}
    paris |= {"candidate_text": " la la ville de ville de la", "baseline_task_pass": True, "candidate_task_pass": False}
    r["drift"]["worst"].insert(0, {**r["drift"]["worst"][1], **paris, "exact_match": False, "first_divergence": 0})
    r["drift"]["baseline_task_pass_rate"], r["drift"]["candidate_task_pass_rate"] = 1.0, 0.9444
    return r


def _inconclusive() -> dict[str, Any]:
    r = _report()
    r.update(
        verdict="INCONCLUSIVE",
        load=None,
        drift=None,
        cost=None,
        gates=[],
        reason="inconclusive: the run did not complete: tritonserver died",
        error="tritonserver died\n  command: tritonserver ...",
    )
    return r


@pytest.mark.parametrize(("name", "make"), [("pass", _report), ("fail", _fail), ("inconclusive", _inconclusive)])
def test_markdown_golden(name: str, make: Callable[[], dict[str, Any]], golden: Callable[[str, str], None]) -> None:
    md = render_markdown(make())
    golden(f"report_{name}.md", md)
    assert md.startswith("<!-- gates:report pipeline=demo -->\n")
    assert len(md) < 65_536


def test_hostile_model_output_renders_inertly() -> None:
    md = render_markdown(_fail())
    assert "alert(1)" not in md
    row = next(line for line in md.splitlines() if "alert&#40;1" in line)
    assert "&lt;/details&gt;&lt;script&gt;alert&#40;1&#41;&lt;/script&gt;" in row
    assert "@\u200borg/team" in row and "#\u200b12" in row and "&#124; a &#124; b &#124;" in row
    assert "&#42;&#42;bold&#42;&#42; &#91;x&#93;&#40;https&#58;//evil.example&#41;" in row
    assert md.count("<details>") == md.count("</details>")
    # every table row keeps its column count: nothing from the model opened a new cell
    assert row.count(" | ") == 6
    html = render_html(_fail())
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_verdict_and_reason_come_first() -> None:
    lines = render_markdown(_fail()).splitlines()
    assert lines[1].startswith("## ❌ gates: **FAIL**")
    assert lines[3].startswith("failed&#58; top1&#95;agreement")


def test_report_copy_is_not_mutated() -> None:
    r = _report()
    before = copy.deepcopy(r)
    render_markdown(r)
    assert r == before


def _quality() -> dict[str, Any]:
    """A report with quality verdicts computed by the real statistics (deterministic: seeded)."""
    from gates.config.schema import GatesSection
    from gates.judge.quality import ACCURACY, LOGLIKELIHOOD, accuracy_entry, drift_entry, perplexity_entry

    cfg = GatesSection(accuracy_drop_max=0.05, recovery_min=0.9, perplexity_increase_max=0.05)
    task_b = [True] * 23 + [False] * 5
    task_c = [True] * 21 + [False] * 2 + [True] + [False] * 4
    mc_b = [True] * 150 + [False] * 50
    mc_c = [True] * 100 + [False] * 50 + [True] * 10 + [False] * 40
    tokens = [120, 80, 95, 130, 60, 110]
    nll = [r * t for r, t in zip([2.1, 2.3, 1.9, 2.0, 2.4, 2.2], tokens, strict=True)]
    entries = [
        *accuracy_entry("task_accuracy", ACCURACY, task_b, task_c, cfg),
        drift_entry("top1_agreement", [1.0, 0.97, 0.99, 1.0] * 7, [16.0] * 28, 0.95, cfg, minimum=True),
        *accuracy_entry("multiple_choice_accuracy", LOGLIKELIHOOD, mc_b, mc_c, cfg),
        perplexity_entry(
            nll, [n * f for n, f in zip(nll, [1.01, 1.0, 1.03, 0.99, 1.02, 1.0], strict=True)], tokens, cfg
        ),
    ]
    r = _fail()
    r["quality"] = [e.to_json() for e in entries]
    r["confidence_level"] = 0.98
    r["quality_warnings"] = ["task checks: 28 items detect accuracy drops of 0.339 with 80% power"]
    return r


def test_quality_section_golden(golden: Callable[[str, str], None]) -> None:
    md = render_markdown(_quality())
    golden("report_quality.md", md)
    section = md.split("### Quality verdicts", 1)[1].split("<details>", 1)[0]
    for name in ("task&#95;accuracy", "multiple&#95;choice&#95;accuracy", "| perplexity |", "top1&#95;agreement"):
        assert name in section
    assert "McNemar" in section and "❌ fail" in section and "⚠️ inconclusive" in section
    assert "<h2>Quality verdicts (paired: both arms on the same items; intervals 98%)</h2>" in render_html(_quality())


def _capacity() -> dict[str, Any]:
    """A sweep of three rates, built from per-request records like the load stage builds it."""
    from gates.loadgen.capacity import SweepStep, capacity
    from gates.loadgen.stats import summarize

    def records(arm: str, latency: float, n: int) -> list[dict[str, Any]]:
        return [
            {"arm": arm, "t_start_s": 1 + i * 0.06, "latency_ms": latency + i, "ttft_ms": 5.0, "itl_ms": 2.0,
             "ok": True, "output_tokens": 16, "error": ""}
            for i in range(n)
        ]  # fmt: skip

    table = [(0.5, 300.0, 250.0), (1.0, 600.0, 300.0), (2.0, 1500.0, 700.0)]
    steps = [
        SweepStep(
            rate,
            # 150 requests in the 10 s window: the p95's exact 99% interval has a finite upper end from 104
            summarize(records("baseline", b, 150), "baseline", 1.0, 10.0, {"latency_ms": 1000.0}),
            summarize(records("candidate", c, 150), "candidate", 1.0, 10.0, {"latency_ms": 1000.0}),
            None,
        )
        for rate, b, c in table
    ]
    r = _report()
    r["capacity"] = json.loads(json.dumps(capacity("rate", steps, {"latency_ms": 1000.0}, 0.001, 0.99, 2.5).to_json()))
    r["load"].update(mode="open", rate=1.0, arrivals="poisson")
    return r


def test_capacity_section_golden(golden: Callable[[str, str], None]) -> None:
    md = render_markdown(_capacity())
    golden("report_capacity.md", md)
    section = md.split("### Capacity at the SLO", 1)[1]
    assert "| baseline | 1 | 1 to 2 |" in section and "| candidate | 2 | 2 to beyond the sweep |" in section
    assert "xychart-beta" in section and 'x-axis "req/s per arm" ["0.5", "1", "2"]' in section
    assert "    line [1000, 1000, 1000]" in section  # the SLO line
    assert "### Load (open loop, poisson arrivals at 1 requests/s per arm" in md
    html = render_html(_capacity())
    assert "<h2>Capacity at the SLO (p95 latency_ms ≤ 1000;" in html and 'alt="p95 latency against throughput' in html


def test_a_searched_capacity_states_its_interval_and_how_it_was_found() -> None:
    r = _capacity()
    arm = {
        "boundary": 1.2,
        "low": 1.1,
        "high": 1.3,
        "cliff": None,
        "censored": None,
        "rates": [1.0, 2.0],
        "offered": [0.96, None],
    }
    r["capacity"]["search"] = {
        "metric": "latency_ms", "limit_ms": 1000.0, "probes_per_arm": 12, "per_arm": True, "rates": [1.0, 2.0],
        "baseline": arm, "candidate": {**arm, "boundary": 2.0}, "gain_halfwidth": 0.08, "arm_correlation": 0.41,
    }  # fmt: skip
    r["capacity"]["gain_interval"] = [1.5, 1.8]
    for text in (render_markdown(r), render_html(r)):
        assert "99% interval 1.5 to 1.8" in text and "bracket 1.5" not in text
        assert "12 probes per arm, each arm at its own rate, p95 " in text and "ms ≤ 1000" in text
        assert "the arms' errors paired window by window (correlation 0.41)" in text
    r["capacity"]["search"]["arm_correlation"] = None  # no lines fitted: nothing to pair
    assert "paired" not in render_markdown(r)
    r["capacity"]["search"] = None  # a fixed sweep: a bracket on its grid
    assert "bracket" in render_markdown(r) and "probes per arm" not in render_markdown(r)


def test_capacity_text_is_escaped() -> None:
    r = _capacity()
    r["capacity"]["steps"][0]["baseline"]["status"] = HOSTILE
    r["capacity"]["steps"][0]["generator_problem"] = HOSTILE
    md = render_markdown(r)
    assert "<script>" not in md and "</details><script>" not in md
    assert "<script>" not in render_html(r)


def test_stop_reason_of_a_fixed_and_an_adaptive_load() -> None:
    fixed = _report()
    fixed["load"]["stopped"] = {"reason": "min_requests", "duration_s": 52.0}  # no looks: not adaptive
    md = render_markdown(fixed)
    assert "Stopped after 52 s: min&#95;requests." in md and "adaptive" not in md
    adaptive = _report()
    looks = [{"n_baseline": 50, "n_candidate": 50, "fraction": 0.5}]
    adaptive["load"]["stopped"] = {"reason": "settled", "duration_s": 20.0, "looks": looks, "detail": "shift within"}
    assert "**adaptive** load, 1 looks (shift within)" in render_markdown(adaptive)


def _sampled() -> dict[str, Any]:
    from gates.config.schema import GatesSection
    from gates.judge.quality import ACCURACY, sampled_accuracy_entry

    cfg = GatesSection(accuracy_drop_max=0.05)
    rates_b = [1.0, 0.8, 0.6, 0.4, 1.0, 0.8] * 5
    rates_c = [1.0, 0.6, 0.6, 0.4, 0.8, 0.8] * 5
    draws = [[[r < round(x * 5) for r in range(5)] for x in rates] for rates in (rates_b, rates_c)]
    entries = sampled_accuracy_entry("task_accuracy", ACCURACY, draws[0], draws[1], cfg, [0.7] * 30)
    r = _fail()
    r["quality"] = [e.to_json() for e in entries]
    r["confidence_level"] = 0.98
    return r


def test_sampled_quality_section_golden(golden: Callable[[str, str], None]) -> None:
    r = _sampled()
    md = render_markdown(r)
    section = md.split("### Quality verdicts", 1)[1].split("<details>", 1)[0]
    golden("report_quality_sampled.md", section)
    assert "temperature 0.7, 5 draws per sampled item and arm" in section and "sign-flip" in section
    assert "(sampled: temperature 0.7, 5 draws)" in render_html(r)


def _points() -> dict[str, Any]:
    """A real report.json of `make demo` (ONNX Runtime GenAI int8 vs fp32, batching, two operating points)."""
    return dict(json.loads((DATA / "report_points.json").read_text()))


def test_operating_points_lead_the_report_golden(golden: Callable[[str, str], None]) -> None:
    r = _points()
    md = render_markdown(r)
    golden("report_points.md", md)
    head = md.split("| gate | status", 1)[0]
    assert "| latency | 1 |" in head and "| throughput | 8 |" in head  # both points before the gate table
    assert "engine steps of 3.27 sequences on average (at most 4; the engine may run 4)" in md
    assert "under batching (every golden prompt asked at once)" in md
    html = render_html(r)
    assert "<th>operating point</th>" in html and "Under batching" in html


# every golden report file and the report.json it is rendered from
GOLDEN_REPORTS: dict[str, Callable[[], dict[str, Any]]] = {
    "report_pass.md": _report,
    "report_fail.md": _fail,
    "report_inconclusive.md": _inconclusive,
    "report_quality.md": _quality,
    "report_capacity.md": _capacity,
    "report_quality_sampled.md": _sampled,
    "report_points.md": _points,
    "report_corpus.md": lambda: _corpus(),  # defined below, with the corpus tests
}


def test_every_golden_report_is_listed() -> None:
    golden_dir = Path(__file__).resolve().parent.parent / "golden"
    assert {p.name for p in golden_dir.glob("report_*.md")} == set(GOLDEN_REPORTS)


@pytest.mark.parametrize("name", sorted(GOLDEN_REPORTS))
def test_every_golden_report_matches_the_schema(name: str) -> None:
    """report.json's JSON Schema (what consumers validate with) and the model (what the report stage checks)."""
    import jsonschema

    from gates.report.model import report_json
    from gates.report.schema import SCHEMA_PATH

    report = GOLDEN_REPORTS[name]()
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(report)]
    assert not errors, errors
    report_json(report)


def test_kl_is_labelled_as_a_top_k_lower_bound_with_the_full_figure() -> None:
    """Issue 24: the PR comment showed "mean KL" without saying it is a lower bound over the top-k."""
    from gates.quality.drift import DriftSummary

    s = DriftSummary(18, 288, 0.9, 0.99, 0.00404, 0.01, 0.7, None, None, {}, 20, mean_kl_full=0.00507)
    r = _report()
    r["drift"]["kl_note"] = s.kl_note
    r["candidate"]["build_digest"] = "ab" * 32
    md = render_markdown(r)
    assert "| mean KL (≥, top-20) | max KL (≥, top-20) |" in md
    assert "are lower bounds&#58; the baseline&#39;s top-20 tokens plus one bucket" in md
    assert "over the full vocabulary&#58; 0.00507" in md
    assert f"(build `{'ab' * 6}`)" in md
    assert "lower bounds" in render_html(r, {})


@settings(max_examples=60, deadline=None)  # each renders a whole report (~70 ms)
@given(st.from_regex(PIPELINE_NAME, fullmatch=True))
def test_the_sticky_marker_round_trips_every_pipeline_name(name: str) -> None:
    """publish finds its comment by MARKER.format(name=…): the rendered body must hold exactly that."""
    r = _report()
    r["pipeline"] = name
    assert render_markdown(r).startswith(MARKER.format(name=name) + "\n")


def test_a_name_with_an_underscore_keeps_one_sticky_comment() -> None:
    from gates.github.client import GitHubTarget
    from gates.github.publish import publish_report
    from gates.testing.github_server import GitHubTestServer

    with GitHubTestServer(token="t") as gh:
        gh.add_pull_request("o/r", 3)
        target = GitHubTarget(api_url=gh.url, token="t", repository="o/r", pr=3, sha=None, backoff_s=0.0)
        r = _report()
        r["pipeline"] = "my_model.v2"
        for _ in range(3):
            publish_report(target, "my_model.v2", render_markdown(r), "PASS", "ok")
        assert len(gh.comments_on("o/r", 3)) == 1


MATH = [r"$\color{red}{x}$", r"$\frac{1}{0}$", "$x^{", r"\$a$b$", "$$", r"$\undefinedcommand$", "<b>$1$</b>"]


@pytest.mark.parametrize("text", MATH)
def test_math_markup_in_ids_and_prompts_is_drawn_as_text(text: str) -> None:
    """matplotlib parses $…$ as mathtext: a golden prompt id `$\\color{red}{x}$` crashed report.html."""
    r = _report()
    r["drift"]["per_prompt"][0]["id"] = text
    r["drift"]["worst"][0].update(id=text, prompt=text, candidate_text=text)
    html = render_html(r, {"baseline": [1.0, 2.0], "candidate": [1.5, 2.5]})
    assert "data:image/png;base64," in html and "<b>$1$</b>" not in html
    assert text.replace("<", "&lt;") in html or "&lt;b&gt;" in html


@settings(max_examples=40, deadline=None)
@given(st.text(alphabet="$\\{}^_ax", min_size=1, max_size=12))
def test_any_id_renders_a_chart(text: str) -> None:
    from gates.report.charts import png_drift

    assert png_drift([{"id": text, "mean_kl": 0.1, "top1_agreement": 0.9}])


def test_a_regressed_task_check_is_named_with_both_answers() -> None:
    """Issue 31: Paris answered with French gibberish was visible only among the worst-5 outputs."""
    import re

    md = render_markdown(_fail())
    head = re.sub(r"<details>.*?</details>", "", md, flags=re.S)  # outside anything the comment limit may trim
    assert "**Task checks that regressed** (baseline right, candidate wrong): 1." in head
    assert "| capital-fr | The capital of France is |  Paris, on the Seine. |  la la ville de ville de la |" in head
    html = render_html(_fail())
    assert "<b>Task checks that regressed</b> (baseline right, candidate wrong): 1.</p>" in html
    assert '<td class="fail"><pre> la la ville de ville de la</pre></td>' in html


def _cells(markdown: str) -> set[str]:
    """Every table cell and prose line a reader sees in the comment, as plain text."""
    import html as html_lib
    import re

    text = re.sub(r"```mermaid.*?```", "", markdown, flags=re.S)  # the HTML shows these charts as images
    out: set[str] = set()
    for line in text.splitlines():
        if line.startswith("|") and not line.startswith("|---"):  # cells split before unescaping a "|" in them
            cells = (
                html_lib.unescape(c).replace("\u200b", "").replace("↵", " ") for c in line.strip("| ").split(" | ")
            )
            out |= {c.strip().removesuffix("…") for c in cells}
        elif line and not line.startswith(("<", "`", "|", "> [!")):  # headings and prose, as plain text
            plain = re.sub(r"\[([^]]*)\]\([^)]*\)", r"\1", line)  # a link: its text
            plain = html_lib.unescape(plain).replace("**", "").replace("\u200b", "")
            plain = re.sub(r"^[#>\- ]+", "", plain).strip()
            # a `code` span may be shortened in the comment (a digest): each piece on its own
            out |= {piece.strip().removesuffix("…") for piece in plain.split("`")}
    for icon in ("✅ ", "❌ ", "⚠️ ", "➖ "):
        out = {c.removeprefix(icon) for c in out}
    return {c for c in out if c and c not in ("—",)}


@pytest.mark.parametrize("name", ["report_pass.md", "report_fail.md", "report_quality.md", "report_capacity.md",
                                  "report_quality_sampled.md"])  # fmt: skip
def test_the_html_report_holds_everything_the_comment_holds(name: str) -> None:
    import html as html_lib
    import re

    report = GOLDEN_REPORTS[name]()
    cells = re.sub(r"</?(td|th|tr|p|li|h\d|table|ul|pre|figure)\b[^>]*>", " ", render_html(report))
    page = html_lib.unescape(re.sub(r"<[^>]+>", "", cells))  # inline markup (b, code, a) joins its text
    page = " ".join(page.split())
    missing = sorted(c for c in _cells(render_markdown(report)) if " ".join(c.split()) not in page)
    assert not missing, missing


def test_status_cells_are_coloured() -> None:
    html = render_html(_fail())
    assert '<td class="status fail">❌ fail</td>' in html and '<td class="status pass">✅ pass</td>' in html
    assert "td.fail { background:" in html


def _corpus() -> dict[str, Any]:
    """A report with a drift corpus section from the real statistics on fixed logits, a window's
    text hostile (model-controlled corpus text is escaped like model output)."""
    import importlib.util

    from gates.config.schema import GatesSection
    from gates.judge.corpus_gates import corpus_entries
    from gates.quality.corpus import WorstWindow
    from gates.quality.corpus_scoring import CorpusRun
    from gates.quality.corpus_stats import PathCheck, figures, positions

    spec = importlib.util.spec_from_file_location(
        "corpus_case", Path(__file__).resolve().parent.parent / "quality" / "test_corpus_stats.py"
    )
    assert spec is not None and spec.loader is not None
    case = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(case)
    windows, _ = case._case()
    figs = figures(positions(windows), case.K, 0.98)
    check = PathCheck(
        2, 64, {"baseline": 0, "candidate": 3}, {"baseline": 0.0, "candidate": 0.002}, 0.05, 0.049, 0.9, 0.91
    )
    worst = (WorstWindow(3, "corpus.txt", 12, 512, 40, 0.2, 1.5, 0.8, HOSTILE),)
    run = CorpusRun(("corpus.txt",), 512, figs, {"baseline": 10.0, "candidate": 8.0}, check, worst, None)
    r = _report()
    r["quality"] = [e.to_json() for e in corpus_entries(run, GatesSection())]
    r["confidence_level"] = 0.98
    r["corpus"] = run.to_json()
    return r


def test_corpus_section_golden(golden: Callable[[str, str], None]) -> None:
    md = render_markdown(_corpus())
    golden("report_corpus.md", md)
    section = md.split("### Drift corpus", 1)[1].split("<details><summary>Artifacts", 1)[0]
    assert "(prefill path)" in section and "jackknife SE" in section and "outside its top-8" in section
    assert "decode path (sample)" in section and "cumulative share" in section
    assert "<script>" not in section and "&lt;script&gt;" in section
    html = render_html(_corpus())
    assert "<h2>Drift corpus" in html and "<script>alert" not in html


def test_goodput_tiers_per_arm_in_both_reports() -> None:
    r = _report()
    for arm, share in (("baseline", 0.9), ("candidate", 0.5)):
        r["load"][arm]["goodput_tiers"] = [
            {"name": "interactive", "ttft_ms": 200.0, "tokens_per_s": 20.0, "requests": 9, "share": share,
             "goodput_rps": share * 2, "extra": None},
        ]  # fmt: skip
        del r["load"][arm]["goodput_tiers"][0]["extra"]
    md = render_markdown(r)
    assert "| interactive | 200 | 20 | 1.80 (90%) | 1.00 (50%) |" in md
    assert "<td>interactive</td>" in render_html(r)
    assert "Goodput at SLO tiers" not in render_markdown(_report())  # a report without tiers: no table
