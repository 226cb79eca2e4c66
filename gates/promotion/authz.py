"""Who may promote or roll back a pipeline: configured logins, team members, or CODEOWNERS.

``promotion.approvers`` lists GitHub logins (``alice``) and teams (``@org/team``; membership is
asked of GitHub). With ``promotion.codeowners: true`` the owners of the pipeline file in
CODEOWNERS may too. CODEOWNERS is read from the checkout gates runs in, which for comment and
review events is the *default branch*: a pull request cannot grant itself rights by editing it.
Everyone else is refused with the reason, and nothing happens.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Callable
from pathlib import Path

from gates.config.promotion import PromotionSection

TeamCheck = Callable[[str, str, str], bool]  # (org, team slug, login) -> active member
CODEOWNERS_PATHS = (".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS")


@dataclasses.dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


def codeowners_for(text: str, path: str) -> list[str]:
    """Owners of ``path`` (repository-relative) by CODEOWNERS rules: the last matching line wins."""
    owners: list[str] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip() if not raw.lstrip().startswith("\\#") else raw.strip()
        if not line:
            continue
        pattern, *names = line.split()
        if _matches(pattern, path):
            owners = [n for n in names if n.startswith("@")]
    return owners


def _matches(pattern: str, path: str) -> bool:
    anchored = pattern.startswith("/")
    pat = pattern.lstrip("/")
    if pat.endswith("/"):  # a directory: everything below it
        pat += "**"
    if "/" not in pat.rstrip("/") and not anchored:  # a bare name or glob matches at any depth
        return any(fnmatch.fnmatchcase(part, pat) for part in path.split("/")) or fnmatch.fnmatchcase(path, pat)
    if pat.endswith("/**"):
        return path.startswith(pat[:-2]) or fnmatch.fnmatchcase(path, pat.replace("/**", "/*"))
    return fnmatch.fnmatchcase(path, pat) or path.startswith(pat.rstrip("/") + "/")


def read_codeowners(repo_dir: Path) -> str | None:
    for rel in CODEOWNERS_PATHS:
        p = repo_dir / rel
        if p.is_file():
            return p.read_text(encoding="utf-8", errors="replace")
    return None


def authorize(
    login: str,
    pipeline_path: str,
    cfg: PromotionSection,
    team_member: TeamCheck,
    codeowners: str | None,
    what: str = "promote",
) -> Decision:
    entries = list(cfg.approvers)
    source = "promotion.approvers"
    if cfg.codeowners:
        entries += codeowners_for(codeowners or "", pipeline_path)
        source += " and CODEOWNERS"
    if not entries:
        return Decision(False, f"nobody may {what} {pipeline_path}: {source} is empty")
    lowered = login.lower()
    for entry in entries:
        name = entry.removeprefix("@")
        if "/" in name:
            org, team = name.split("/", 1)
            if team_member(org, team, login):
                return Decision(True, f"{login} is a member of @{org}/{team}")
        elif name.lower() == lowered:
            return Decision(True, f"{login} is listed in {source}")
    return Decision(False, f"{login} is not in {source} of {pipeline_path} ({', '.join(entries)})")
