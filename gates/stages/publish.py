"""Publish: post the markdown report on the PR, only when a GitHub target is configured."""

from __future__ import annotations

import dataclasses

from gates.context import RunContext
from gates.judge.policy import Verdict
from gates.stages.report import ReportResult


@dataclasses.dataclass(frozen=True)
class PublishResult:
    posted: bool
    url: str | None
    note: str


class PublishStage:
    name = "publish"

    def run(self, ctx: RunContext) -> None:
        from gates.github.publish import GitHubTarget, publish_report

        target = GitHubTarget.from_env(ctx.env)
        if target is None:
            ctx.put(self.name, PublishResult(False, None, "not posted: no GitHub token/repository/PR configured"))
            return
        report = ctx.need("report", ReportResult)
        verdict = ctx.need("judge", Verdict)
        url = publish_report(target, ctx.config.name, report.markdown.read_text(), verdict.verdict, verdict.reason)
        ctx.put(self.name, PublishResult(True, url, f"posted {url}"))
