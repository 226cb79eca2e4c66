"""Report: report.json (contract), report.md (PR comment), report.html."""

from __future__ import annotations

import dataclasses
import json

from gates.context import RunContext
from gates.errors import InfraError
from gates.record import LoadResult, ReportResult
from gates.report.assemble import build_report
from gates.report.model import report_json
from gates.report.render import minimal_html, minimal_markdown, render_html, render_markdown


class ReportStage:
    name = "report"

    def run(self, ctx: RunContext) -> None:
        report = build_report(ctx)
        paths = ReportResult(ctx.run_dir / "report.json", ctx.run_dir / "report.md", ctx.run_dir / "report.html", "")
        try:
            text = report_json(report)  # fails closed when a producer drifted from the schema
        except InfraError as exc:
            # kept for the fix, under a name no consumer reads as the run's report
            unchecked = ctx.run_dir / "report.unchecked.json"
            unchecked.write_text(json.dumps(report, indent=2, default=str))
            raise InfraError(f"{exc}; the report as produced: {unchecked}") from None
        load = ctx.get(LoadResult)
        samples = {"baseline": load.baseline.samples_ms, "candidate": load.candidate.samples_ms} if load else None
        # a rendering failure (a chart, a template) costs that rendering, never the verdict
        try:
            markdown = render_markdown(report)
        except Exception as exc:
            ctx.progress(f"warning: report.md could not be rendered ({_what(exc)}); writing the verdict only")
            markdown = minimal_markdown(report, _what(exc))
        paths.markdown.write_text(markdown)
        try:
            html = render_html(report, samples)
        except Exception as exc:
            ctx.progress(f"warning: report.html could not be rendered ({_what(exc)}); writing the verdict only")
            html = minimal_html(report, _what(exc))
        paths.html.write_text(html)
        # durations_s includes the report stage itself only in run.json; report.json is written last
        paths.json.write_text(text)
        ctx.put(dataclasses.replace(paths, note=str(paths.markdown)))


def _what(exc: Exception) -> str:
    return f"{type(exc).__name__}: {str(exc)[:300]}"
