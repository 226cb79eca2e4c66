"""Report: report.json (contract), report.md (PR comment), report.html."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from gates.context import RunContext
from gates.report.build import build_report
from gates.report.render import render_html, render_markdown
from gates.stages.load import LoadResult


@dataclasses.dataclass(frozen=True)
class ReportResult:
    json: Path
    markdown: Path
    html: Path
    note: str


class ReportStage:
    name = "report"

    def run(self, ctx: RunContext) -> None:
        report = build_report(ctx)
        paths = ReportResult(ctx.run_dir / "report.json", ctx.run_dir / "report.md", ctx.run_dir / "report.html", "")
        paths.markdown.write_text(render_markdown(report))
        load = ctx.get("load", LoadResult)
        samples = {"baseline": load.baseline.samples_ms, "candidate": load.candidate.samples_ms} if load else None
        paths.html.write_text(render_html(report, samples))
        # durations_s includes the report stage itself only in run.json; report.json is written last
        paths.json.write_text(json.dumps(report, indent=2, sort_keys=False))
        ctx.put(self.name, dataclasses.replace(paths, note=str(paths.markdown)))
