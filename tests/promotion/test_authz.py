"""Who may promote: logins, team members (asked of GitHub), CODEOWNERS of the pipeline file."""

from __future__ import annotations

import pytest

from gates.config.schema import PromotionSection
from gates.promotion.authz import authorize, codeowners_for

CODEOWNERS = """
# comments are ignored
*                       @org/everyone
/pipelines/             @org/ml-platform
pipelines/int4-*.yaml   @alice @org/quant-team   # later lines win
docs/                   @docs-team
"""


@pytest.mark.parametrize(
    ("path", "owners"),
    [
        ("pipelines/demo.yaml", ["@org/ml-platform"]),
        ("pipelines/int4-awq.yaml", ["@alice", "@org/quant-team"]),
        ("README.md", ["@org/everyone"]),
        ("docs/x.md", ["@docs-team"]),
    ],
)
def test_codeowners_last_match_wins(path: str, owners: list[str]) -> None:
    assert codeowners_for(CODEOWNERS, path) == owners


def members(org: str, team: str, login: str) -> bool:
    return (org, team, login) in {("org", "release-managers", "rita"), ("org", "ml-platform", "pat")}


def test_logins_teams_and_codeowners() -> None:
    cfg = PromotionSection(approvers=["@org/release-managers", "bob"])
    assert authorize("rita", "pipelines/demo.yaml", cfg, members, None).allowed
    assert authorize("Bob", "pipelines/demo.yaml", cfg, members, None).allowed
    denied = authorize("pat", "pipelines/demo.yaml", cfg, members, CODEOWNERS)
    assert not denied.allowed and "pat is not in promotion.approvers" in denied.reason
    with_owners = PromotionSection(approvers=["bob"], codeowners=True)
    assert authorize("pat", "pipelines/demo.yaml", with_owners, members, CODEOWNERS).allowed
    assert not authorize("mallory", "pipelines/demo.yaml", with_owners, members, CODEOWNERS).allowed


def test_nobody_configured_means_nobody() -> None:
    decision = authorize("root", "pipelines/demo.yaml", PromotionSection(), members, None)
    assert not decision.allowed and "is empty" in decision.reason


def test_approver_entries_are_validated() -> None:
    with pytest.raises(ValueError, match="neither a login nor @org/team"):
        PromotionSection(approvers=["@org"])
