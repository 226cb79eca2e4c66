"""Posts the report on the PR: one sticky comment per pipeline, plus a commit status or check run."""

from __future__ import annotations

import time
from collections.abc import Callable

from gates.github.client import GitHubClient, GitHubTarget
from gates.report.render import fit_comment, report_marker


def publish_report(
    target: GitHubTarget,
    pipeline: str,
    markdown: str,
    verdict: str,
    reason: str,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Post (or update) the sticky comment and set the commit's status/check; return the comment URL."""
    client = GitHubClient(target, sleep)
    body = fit_comment(markdown)
    url = client.upsert_comment(report_marker(pipeline), body)
    if target.sha:
        context = f"gates/{pipeline}"
        if target.check_runs:
            client.set_check_run(context, verdict, f"{verdict}: {reason}", body)
        else:
            client.set_status(context, verdict, f"{verdict}: {reason}")
    return url
