"""Publish: post the markdown report on the PR, only when a GitHub target is configured."""

from __future__ import annotations

from gates.context import RunContext
from gates.github.client import GitHubTarget
from gates.github.publish import publish_report
from gates.judge.verdict import Verdict
from gates.record import PublishResult, ReportResult


class PublishStage:
    name = "publish"

    def run(self, ctx: RunContext) -> None:
        target = GitHubTarget.from_env(ctx.env)
        if target is None:
            ctx.put(PublishResult(False, None, "not posted: no GitHub token/repository/PR configured"))
            return
        report = ctx.need(ReportResult)
        verdict = ctx.need(Verdict)
        url = publish_report(target, ctx.config.name, report.markdown.read_text(), verdict.verdict, verdict.reason)
        ctx.put(PublishResult(True, url, f"posted {url}"))
