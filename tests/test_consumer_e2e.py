"""Issue 31's acceptance: a consumer repository made from the README's snippets alone runs the PR
gate, a ``/gates promote`` comment and the scheduled re-check end to end.

The consumer holds only what the README tells a team to write (the three workflow files of "Use
gates in your repository", verbatim) plus its own pipeline and golden data. gates reaches it only
as the release: the wheel built from this checkout as release.yml builds it, with its
constraints.txt, at the README's download URLs, and the reusable workflows its ``uses:`` name
(tests/workflow_runner.py resolves them to this checkout's files and runs their jobs' ``run:``
steps as a runner would). This machine stands in for both runners: a real local tritonserver
serves the gate and the canary, HAProxy routes the canary, and the local GitHub test server takes
the comments, statuses and team membership checks.

No downloads: the runner's Python environments see this test's site-packages (except gates) through
a path line, so ``pip install -c constraints.txt <wheel>`` finds every dependency already there
(as on the GPU runner image) and installs only the wheel, with ``PIP_NO_INDEX=1``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest

from gates.ledger import Ledger
from gates.ledger.states import PromotionState
from gates.testing import webhooks_dir
from gates.testing.github_server import GitHubTestServer
from tests.workflow_runner import Runner, runner_env

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()
SECTION = README[README.index("## Use gates in your repository") :].split("\n## ", 1)[0]
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
DOWNLOADS = f"https://github.com/OWNER/gates/releases/download/v{VERSION}/"

# What the consumer writes itself: a pipeline on the builtin tiny model (a couple of minutes on 2
# cores), its golden prompts and calibration text, and who may promote.
PIPELINE = """\
name: demo
model:
  source: builtin:tiny-llama
optimize:
  quantize: {format: int8, calibration: golden_prompts/calibration.jsonl, samples: 8}
load:
  operating_points: [throughput]
  users: 2
  duration_s: 6
  max_duration_s: 40
  warmup_s: 1
  max_new_tokens: 8
  generator_max_lag_ms: 60
golden:
  suites: [golden_prompts/golden.jsonl]
  max_new_tokens: 8
gates:
  top1_agreement_min: 0.9
  exact_match_rate_min: 0.5
  min_requests: 10
promotion:
  steps: [50, 100]
  manual_gate_after: 50
  approvers: ["@org/release-managers"]
  recheck: {requests: 6, drift_prompts: 2}
"""
LINES = [
    "Four score and seven years ago",
    "we can not dedicate, we can not consecrate",
    "The world will little note, nor long remember",
    "It is for us the living, rather, to be dedicated",
    "that this nation, under God, shall have a new birth",
    "Now we are engaged in a great civil war",
]


def blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", SECTION, flags=re.S)


def workflow_file(path: str) -> str:
    """The README's yaml block that names ``path`` on its first line."""
    [block] = [b for b in blocks("yaml") if b.startswith(f"# {path}:")]
    return block


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t"}
    env["GIT_COMMITTER_EMAIL"] = "t@e"
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env).stdout


def consumer_repository(root: Path, default_branch: str) -> tuple[Path, str, str]:
    """The consumer's repository: the README's workflows, its pipeline and data on the default
    branch; a PR branch that changes the golden prompts. Returns (repo, base sha, head sha)."""
    for name in ("gates", "gates-promote", "gates-recheck"):
        path = root / ".github" / "workflows" / f"{name}.yml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(workflow_file(f".github/workflows/{name}.yml"))
    (root / "pipelines").mkdir()
    (root / "pipelines" / "demo.yaml").write_text(PIPELINE)
    (root / "golden_prompts").mkdir()
    golden = [{"id": f"p{i}", "prompt": line} for i, line in enumerate(LINES[:5])]
    (root / "golden_prompts" / "golden.jsonl").write_text("".join(json.dumps(g) + "\n" for g in golden))
    cal = [{"id": f"c{i}", "text": line} for i, line in enumerate(LINES * 2)]
    (root / "golden_prompts" / "calibration.jsonl").write_text("".join(json.dumps(c) + "\n" for c in cal))
    subprocess.run(["git", "init", "-q", "-b", default_branch, str(root)], check=True)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "gates: the PR gate, promotion and re-check")
    base = git(root, "rev-parse", "HEAD").strip()
    git(root, "checkout", "-qb", "changes")
    with (root / "golden_prompts" / "golden.jsonl").open("a") as f:
        f.write(json.dumps({"id": "p5", "prompt": LINES[5]}) + "\n")
    git(root, "commit", "-qam", "golden: one more prompt")
    head = git(root, "rev-parse", "HEAD").strip()
    git(root, "checkout", "-q", default_branch)
    return root, base, head


def shared_site(into: Path) -> Path:
    """Links to every distribution this test runs with, gates itself excepted (the wheel brings it)."""
    into.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        # not pip: each venv gets its own (ensurepip, offline), so `pip` in an activated one is that one
        if not re.match(r"(gates\b|gates-|__editable__.*gates|.*\.pth$|pip\b|pip-)", entry.name):
            (into / entry.name).symlink_to(entry)
    return into


def environment(path: Path, site: Path) -> Path:
    """A virtual environment that sees ``site``: what the runner image (or a developer) already has."""
    subprocess.run([sys._base_executable, "-m", "venv", str(path)], check=True)  # type: ignore[attr-defined]
    purelib = next(path.glob("lib/python3*/site-packages"))
    for own in ("setuptools", "pkg_resources", "_distutils_hack", "distutils-precedence.pth"):  # ensurepip's old
        shutil.rmtree(purelib / own, ignore_errors=True)  # setuptools would hide the one Model Optimizer needs
        (purelib / own).unlink(missing_ok=True)
    for info in purelib.glob("setuptools-*.dist-info"):
        shutil.rmtree(info)
    (purelib / "gates_runner_image.pth").write_text(f"{site}\n")
    return path


def release(root: Path, release_assets: Path) -> dict[str, str]:
    """The README's download URLs -> the release's assets here."""
    names = [f"gates-{VERSION}-py3-none-any.whl", "constraints.txt"]
    assert all((release_assets / n).is_file() for n in names), sorted(release_assets.iterdir())
    return {DOWNLOADS + n: str(release_assets / n) for n in names}


def offline(text: str, assets: dict[str, str]) -> str:
    for url, path in assets.items():
        text = text.replace(url, path)
    assert DOWNLOADS not in text, "a download the release does not attach"
    return text


def payload(kind: str, name: str) -> dict[str, Any]:
    return dict(json.loads((webhooks_dir() / "examples" / kind / name).read_text()))


@pytest.mark.slow  # 114 s: CI runs it (make test took 27 min in a fresh clone, session 16)
def test_a_consumer_made_from_the_readme_gates_a_pr_promotes_by_comment_and_rechecks(
    release_assets: Path, tmp_path: Path, no_leaked_servers: None
) -> None:
    start = time.monotonic()
    pr_event = payload("pull_request", "opened.payload.json")
    full_name, number = pr_event["repository"]["full_name"], pr_event["number"]
    repo, base, head = consumer_repository(tmp_path / "consumer", pr_event["repository"]["default_branch"])
    pr_event["pull_request"]["base"]["sha"], pr_event["pull_request"]["head"]["sha"] = base, head
    assets = release(tmp_path, release_assets)
    site = shared_site(tmp_path / "site")
    bin_dir = tmp_path / "bin"  # the runner machine's python3 (no gates on PATH)
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys._base_executable)  # type: ignore[attr-defined]
    path = f"{bin_dir}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"

    # the README's first steps, on a developer's machine: a venv, the release in it, validate the pipeline
    environment(repo / ".venv", site)  # the venv the README creates, with the dependencies already there
    [install] = blocks("sh")[:1]
    env = runner_env(tmp_path / "dev-home", tmp_path / "dev-cache", path, "http://127.0.0.1:9")
    proc = subprocess.run(["bash", "-e", "-c", offline(install, assets)], cwd=repo, env={**env, "PIP_NO_INDEX": "1"},
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "pipelines/demo.yaml" in proc.stdout and (repo / ".venv" / "bin" / "gates").exists()

    # the GPU runner: its tool cache has the image's packages; the hosted runner's python for `plan`
    cache, home = tmp_path / "runner" / "toolcache", tmp_path / "runner" / "home"
    environment(cache / "gates-venv", site)
    hosted = environment(tmp_path / "hosted", site) / "bin"
    with GitHubTestServer() as gh:
        gh.add_pull_request(full_name, number, head_sha=head)
        gh.add_team_member("org", "release-managers", "rita")
        env = runner_env(home, cache, path, gh.url) | {"PIP_NO_INDEX": "1"}
        runner = Runner(tmp_path / "runner", repo, env, hosted, gh.token, downloads=assets)
        workflows = repo / ".github" / "workflows"

        # 1. the PR gate
        jobs = {j.name: j for j in runner.trigger(workflows / "gates.yml", "pull_request", pr_event)}
        log = "\n".join(j.log() for j in jobs.values())
        assert jobs["plan-0"].ok and jobs["plan-0"].outputs["pipelines"] == '["pipelines/demo.yaml"]', log
        gate = jobs["gate-0"]
        assert gate.ran and gate.ok, log[-6000:]
        assert gate.runs_on == ["self-hosted", "gpu", "h100"] and not jobs["fork-notice-0"].ran
        assert {p.name for p in gate.uploaded} == {"report.html", "report.md", "report.json"}
        assert "verdict: PASS" in gate.log()
        [report] = [c["body"] for c in gh.comments_on(full_name, number)]
        assert report.startswith("<!-- gates:report pipeline=demo -->") and "**PASS**" in report
        assert gh.combined_status(full_name, head)["gates/demo"]["state"] == "success"
        ledger = Ledger(str(home / ".cache" / "gates" / "artifacts" / "ledger.sqlite"))
        [run] = ledger.runs("demo")
        assert (run.verdict, run.pr, run.sha) == ("PASS", number, head), run
        # a same-repository PR: the fork-notice trigger runs nothing
        assert not any(j.ran for j in runner.trigger(workflows / "gates.yml", "pull_request_target", pr_event))

        # 2. the canary, as the README's promotion section deploys it (on the runner, default branch)
        if shutil.which("haproxy") is None:  # .ci/run installs it; the PR gate above has been checked
            pytest.skip("haproxy is not installed here: the README's canary runs behind it (apt-get install haproxy)")
        [promotion_sh] = [b for b in blocks("sh") if "gates canary serve" in b]
        lines = [ln.split("#")[0].strip() for ln in promotion_sh.splitlines()]
        export = next(ln for ln in lines if ln.startswith("export GATES_ARTIFACTS="))
        serve_cmd = next(ln for ln in lines if ln.startswith("gates canary serve")).removesuffix("&").strip()
        where = tmp_path / "runner" / "canary"
        git(tmp_path, "clone", "-q", str(repo), str(where))
        serve_env = {**env, "PATH": f"{cache / 'gates-venv' / 'bin'}:{path}"}
        with (tmp_path / "canary.log").open("w") as out:
            serve = subprocess.Popen(["bash", "-c", f"{export}\nexec {serve_cmd}"], cwd=where, env=serve_env,
                                     stdout=out, stderr=subprocess.STDOUT, text=True)  # fmt: skip
        try:
            deadline = time.monotonic() + 300
            while ledger.canary("demo") is None and serve.poll() is None and time.monotonic() < deadline:
                time.sleep(1)
            canary = ledger.canary("demo")
            assert canary is not None, (tmp_path / "canary.log").read_text()[-4000:]
            assert (canary.target, canary.weight, canary.digest) == ("haproxy", 0, run.digest)

            # 3. `/gates promote` by an approver: the promote job walks to the manual gate
            comment = payload("issue_comment", "created.payload.json")
            comment["repository"] = pr_event["repository"]
            comment["issue"]["number"] = number
            comment["issue"]["pull_request"] = {"url": f"{gh.url}/repos/{full_name}/pulls/{number}"}
            comment["comment"]["body"] = "/gates promote"
            comment["comment"]["user"]["login"] = comment["sender"]["login"] = "rita"
            jobs = {j.name: j for j in runner.trigger(workflows / "gates-promote.yml", "issue_comment", comment)}
            promote = jobs["promote-0"]
            assert promote.ran and promote.ok and not jobs["rollback-0"].ran, promote.log()[-6000:]
            assert promote.runs_on == ["self-hosted", "gpu"]
            record = ledger.promotion("demo")
            assert record is not None and record.state == PromotionState.PAUSED, record
            assert (record.sha, record.digest, record.actor) == (head, run.digest, "rita")
            assert ledger.canary("demo").weight == 50  # type: ignore[union-attr]
            reply = gh.comments_on(full_name, number)[-1]["body"]
            assert "50%" in reply, reply

            # 4. the scheduled re-check: the canary waiting at the manual gate is re-checked live
            schedule = {"schedule": "*/30 * * * *", "repository": pr_event["repository"]}
            [recheck] = runner.trigger(workflows / "gates-recheck.yml", "schedule", schedule)
            assert recheck.ran and recheck.ok and recheck.exit_code == 0, recheck.log()[-6000:]
            assert ledger.promotion("demo").state == PromotionState.PAUSED  # type: ignore[union-attr]
            history = [h["action"] for h in ledger.history("demo")]
            assert history[0] == "gate_run" and history[-1] == "recheck_passed", history  # the schedule's check
            assert history.index("canary_deploy") < len(history) - 1 and history.count("gate_run") == 1, history
        finally:
            serve.send_signal(signal.SIGTERM)
            serve.wait(timeout=120)
    assert serve.returncode == 0, (tmp_path / "canary.log").read_text()[-4000:]
    print(f"consumer end to end: {time.monotonic() - start:.0f} s")
