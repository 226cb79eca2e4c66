"""CODEOWNERS matched as GitHub documents it ("About code owners", example file), last match wins."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gates.promotion.authz import codeowners_for

# GitHub's documented example CODEOWNERS file (docs.github.com, "About code owners"), verbatim
# except for the two /apps/ blocks, which the documentation gives as alternatives (tested below).
GITHUB_EXAMPLE = """
# These owners will be the default owners for everything in
# the repo. Unless a later match takes precedence,
# @global-owner1 and @global-owner2 will be requested for
# review when someone opens a pull request.
*       @global-owner1 @global-owner2

# Order is important; the last matching pattern takes the most
# precedence. When someone opens a pull request that only
# modifies JS files, only @js-owner and not the global
# owner(s) will be requested for a review.
*.js    @js-owner #This is an inline comment.

# You can also use email addresses if you prefer. They'll be
# used to look up users just like we do for commit author
# emails.
*.go docs@example.com

# Teams can be specified as code owners as well.
*.txt @octo-org/octocats

# In this example, @doctocat owns any files in the build/logs
# directory at the root of the repository and any of its
# subdirectories.
/build/logs/ @doctocat

# The `docs/*` pattern will match files like
# `docs/getting-started.md` but not further nested files like
# `docs/build-app/troubleshooting.md`.
docs/*  docs@example.com

# In this example, @octocat owns any file in an apps directory
# anywhere in your repository.
apps/ @octocat

# In this example, @doctocat owns any file in the `/docs`
# directory in the root of your repository and any of its
# subdirectories.
/docs/ @doctocat

# In this example, any change inside the `/scripts` directory
# will require approval from @doctocat or @octocat.
/scripts/ @doctocat @octocat

# In this example, @octocat owns any file in a `/logs` directory such as
# `/build/logs`, `/scripts/logs`, and `/deeply/nested/logs`. Any changes
# in a `/logs` directory will require approval from @octocat.
**/logs @octocat
"""


@pytest.mark.parametrize(
    ("path", "owners"),
    [
        ("README.md", ["@global-owner1", "@global-owner2"]),
        ("src/app.js", ["@js-owner"]),  # the inline comment is not an owner
        ("main.go", []),  # an email owner: no GitHub login to authorize
        ("a/b/notes.txt", ["@octo-org/octocats"]),
        ("build/logs/x.log", ["@octocat"]),  # **/logs is later than /build/logs/ and matches too
        ("build/logs/deep/x.log", ["@octocat"]),
        ("src/build/logs/x.log", ["@octocat"]),
        ("docs/getting-started.md", ["@doctocat"]),  # /docs/ is later than docs/*
        ("docs/build-app/troubleshooting.md", ["@doctocat"]),
        ("web/apps/main.py", ["@octocat"]),  # apps/ anywhere
        ("apps/x.py", ["@octocat"]),
        ("scripts/deploy.sh", ["@doctocat", "@octocat"]),
        ("deeply/nested/logs/today.log", ["@octocat"]),
        ("deeply/nested/logs", ["@octocat"]),
        ("catalog.yaml", ["@global-owner1", "@global-owner2"]),
    ],
)
def test_githubs_documented_example(path: str, owners: list[str]) -> None:
    assert codeowners_for(GITHUB_EXAMPLE, path) == owners


def test_docs_star_matches_direct_children_only() -> None:
    text = "* @all\ndocs/* @docs\n"
    assert codeowners_for(text, "docs/getting-started.md") == ["@docs"]
    assert codeowners_for(text, "docs/build-app/troubleshooting.md") == ["@all"]
    assert codeowners_for(text, "src/docs/x.md") == ["@all"]  # a slash in the middle anchors to the root


def test_a_later_pattern_without_owners_leaves_the_subdirectory_unowned() -> None:
    text = "/apps/ @octocat\n/apps/github\n"
    assert codeowners_for(text, "apps/main.py") == ["@octocat"]
    assert codeowners_for(text, "apps/github/x.py") == []
    text = "/apps/ @octocat\n/apps/github @doctocat\n"
    assert codeowners_for(text, "apps/github/x.py") == ["@doctocat"]


def test_the_campaigns_case_root_glob_does_not_reach_into_directories() -> None:
    """Issue 27 item 5: `/*.yaml` matches root files only, so `/pipelines/` keeps pipelines/demo.yaml."""
    text = "/pipelines/ @org/ml\n/*.yaml @org/infra\n"
    assert codeowners_for(text, "pipelines/demo.yaml") == ["@org/ml"]
    assert codeowners_for(text, "release.yaml") == ["@org/infra"]


def test_paths_are_case_sensitive_and_unsupported_syntax_is_skipped() -> None:
    assert codeowners_for("/Pipelines/ @a\n", "pipelines/x.yaml") == []
    # GitHub does not support negation or character ranges: such lines are skipped, not guessed
    assert codeowners_for("* @all\n!pipelines/x.yaml @evil\n", "pipelines/x.yaml") == ["@all"]
    assert codeowners_for("* @all\npipelines/[xy].yaml @evil\n", "pipelines/x.yaml") == ["@all"]
    assert codeowners_for("* @all\n?ipelines/ @q\n", "pipelines/x.yaml") == ["@q"]


_SEG = st.text(alphabet="abcxyz-_.", min_size=1, max_size=6).filter(lambda s: s not in (".", ".."))


@given(st.lists(_SEG, min_size=1, max_size=4), st.lists(_SEG, min_size=0, max_size=3))
def test_an_anchored_directory_owns_exactly_what_is_below_it(dirs: list[str], rest: list[str]) -> None:
    text = f"/{'/'.join(dirs)}/ @owner\n"
    below = "/".join([*dirs, *rest, "f.txt"])
    assert codeowners_for(text, below) == ["@owner"]
    assert codeowners_for(text, "/".join(["other", *dirs, "f.txt"])) == []
    assert codeowners_for(text, "/".join(dirs)[:-1] + "Q/f.txt") == []
