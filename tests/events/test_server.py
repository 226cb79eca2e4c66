"""The webhook receiver: signatures, replays, and 200 concurrent deliveries processed exactly once."""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from gates.events.server import Delivery, WebhookServer, signature
from gates.ledger import Ledger
from gates.testing import webhooks_dir
from gates.testing.github_server import GitHubTestServer

SECRET = b"s3cret-for-tests"
REPO = "Codertocat/Hello-World"
EXAMPLE = webhooks_dir() / "examples" / "issue_comment" / "created.payload.json"


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def signed(body: bytes, delivery: str, event: str = "issue_comment", secret: bytes = SECRET) -> dict[str, str]:
    return {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": signature(secret, body)}


def comment_payload(body: str) -> bytes:
    payload = json.loads(EXAMPLE.read_text())
    payload["issue"]["pull_request"] = {"url": f"https://api.github.com/repos/{REPO}/pulls/1"}
    payload["comment"]["body"] = body
    return json.dumps(payload).encode()


def test_signatures_replays_and_concurrency_in_process(tmp_path: Path) -> None:
    seen: Counter[str] = Counter()
    lock = threading.Lock()

    def process(d: Delivery) -> None:
        time.sleep(0.01)  # work takes time; replies must not wait for it
        with lock:
            seen[d.id] += 1

    body = comment_payload("hello")
    with WebhookServer(SECRET, Ledger(str(tmp_path / "l.db")), process, workers=4) as server:
        assert post(server.url, body, {})[0] == 401  # unsigned
        assert post(server.url, body, signed(body, "x1", secret=b"wrong"))[0] == 401
        assert post(server.url, body + b" ", signed(body, "x2"))[0] == 401  # body changed after signing
        bad = signed(body, "x3")
        bad["X-Hub-Signature-256"] = bad["X-Hub-Signature-256"].replace("sha256=", "sha1=")
        assert post(server.url, body, bad)[0] == 401
        with concurrent.futures.ThreadPoolExecutor(32) as pool:
            codes = list(pool.map(lambda i: post(server.url, body, signed(body, f"d-{i}"))[0], range(200)))
        assert codes == [202] * 200
        assert post(server.url, body, signed(body, "d-7"))[0] == 409  # replayed delivery
    assert sorted(seen) == sorted(f"d-{i}" for i in range(200)) and set(seen.values()) == {1}


@pytest.mark.integration
def test_gates_serve_processes_each_delivery_once(project: Path, tmp_path: Path) -> None:
    ledger = tmp_path / "serve.db"
    with GitHubTestServer() as gh:
        gh.add_pull_request(REPO, 1)
        env = {
            **os.environ,
            "GATES_WEBHOOK_SECRET": SECRET.decode(),
            "GITHUB_API_URL": gh.url,
            "GATES_GITHUB_TOKEN": gh.token,
            "GATES_GITHUB_BACKOFF_S": "0.05",
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "gates.cli", "serve", "--port", "0", "--repo-dir", str(project),
             "--ledger", str(ledger), "--workers", "4"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert "listening on" in line, line
            url = line.split("listening on ", 1)[1].split(" ", 1)[0]
            body = comment_payload("/gates frobnicate")
            assert post(url, body, {"X-GitHub-Event": "issue_comment", "X-GitHub-Delivery": "u"})[0] == 401
            with concurrent.futures.ThreadPoolExecutor(32) as pool:
                codes = list(pool.map(lambda i: post(url, body, signed(body, f"g-{i}"))[0], range(200)))
            assert codes == [202] * 200
            assert post(url, body, signed(body, "g-3"))[0] == 409
            deadline = time.monotonic() + 120
            while len(gh.comments_on(REPO, 1)) < 200 and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(0.5)  # nothing more may arrive
            comments = gh.comments_on(REPO, 1)
            assert len(comments) == 200 and all("Usage" in c["body"] for c in comments)
        finally:
            proc.send_signal(signal.SIGTERM)
            out = proc.communicate(timeout=60)[0]
        done = Ledger(str(ledger)).deliveries()
        assert len(done) == 200 and all(d[2] is not None for d in done), out[-2000:]
