"""Who may promote or roll back a pipeline: configured logins, team members, or CODEOWNERS.

``promotion.approvers`` lists GitHub logins (``alice``) and teams (``@org/team``; membership is
asked of GitHub). With ``promotion.codeowners: true`` the owners of the pipeline file in
CODEOWNERS may too. CODEOWNERS is read from the checkout gates runs in, which for comment and
review events is the *default branch*: a pull request cannot grant itself rights by editing it.
Everyone else is refused with the reason, and nothing happens.
"""

from __future__ import annotations

import dataclasses
import functools
import re
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
    """Owners of ``path`` (repository-relative) by GitHub's CODEOWNERS rules: the last matching
    line wins, and a matching line without owners leaves the path unowned."""
    owners: list[str] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        pattern, *names = line.split()
        regex = _pattern_regex(pattern)
        if regex is not None and regex.fullmatch(path):
            owners = [n for n in names if n.startswith("@")]
    return owners


@functools.lru_cache(maxsize=1024)
def _pattern_regex(pattern: str) -> re.Pattern[str] | None:
    """GitHub's gitignore-like pattern as a regex over the whole path; None for syntax GitHub does
    not support (``!`` negation, ``[ ]`` ranges): GitHub skips such lines, and so do we.

    As GitHub documents: a pattern with no slash but a trailing one matches at any depth; a slash
    at the start or in the middle anchors it to the root; ``*`` and ``?`` never cross a ``/``;
    ``**`` spans directories; a trailing ``/`` owns everything below; a final ``/*`` owns only
    the directory's direct children; any other pattern also owns whatever is below a directory
    it names. (The same construction as the widely used hmarr/codeowners matcher.)
    """
    if not pattern or pattern.startswith("!") or "[" in pattern or "]" in pattern:
        return None
    segs = pattern.split("/")
    if segs[0] == "":
        segs = segs[1:]  # anchored to the root
    elif (len(segs) == 1 or (len(segs) == 2 and segs[1] == "")) and segs[0] != "**":
        segs = ["**", *segs]  # a bare name matches at any depth
    if len(segs) > 1 and segs[-1] == "":
        segs[-1] = "**"  # a directory: everything below it
    out, need_slash, last = "", False, len(segs) - 1
    for i, seg in enumerate(segs):
        if seg == "**":
            if i == 0 and i == last:
                out += ".+"
            elif i == 0:
                out, need_slash = out + "(?:.+/)?", False
            elif i == last:
                out += "/.*"
            else:
                out, need_slash = out + "(?:/.+)?", True
            continue
        out += "/" if need_slash else ""
        need_slash = True
        if seg == "*":
            out += "[^/]+"  # a final /* is the directory's children, not deeper
            continue
        escape = False
        for ch in seg:
            if escape:
                out, escape = out + re.escape(ch), False
            elif ch == "\\":
                escape = True
            else:
                out += {"*": "[^/]*", "?": "[^/]"}.get(ch, re.escape(ch))
        if i == last:
            out += "(?:/.*)?"  # a file, or a directory and everything below it
    return re.compile(out)


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
