"""``gates serve``: a GitHub webhook receiver that verifies, de-duplicates and queues deliveries.

- The body must carry ``X-Hub-Signature-256: sha256=HMAC(secret, body)``; it is compared in
  constant time and anything unsigned or wrongly signed gets 401 before it is even parsed.
- ``X-GitHub-Delivery`` ids are recorded in the ledger: a replayed (or redelivered) id gets 409
  and is not processed again, across restarts too.
- Accepted deliveries are queued and answered 202 at once (GitHub gives a hook 10 s); worker
  threads handle them. Promotions of one pipeline still run one at a time (the ledger lock).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import queue
import threading
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Any

from gates.httpjson import JSONHandler
from gates.ledger import Ledger

MAX_BODY = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB


def signature(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, header: str | None) -> bool:
    if not header or not secret:
        return False
    return hmac.compare_digest(signature(secret, body).encode(), header.strip().encode())


@dataclasses.dataclass(frozen=True)
class Delivery:
    id: str
    event: str
    payload: Any


Processor = Callable[[Delivery], None]


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # the default listen backlog (5) resets bursts of deliveries
    daemon_threads = True


class WebhookServer:
    def __init__(
        self,
        secret: bytes,
        ledger: Ledger,
        process: Processor,
        host: str = "127.0.0.1",
        port: int = 0,
        workers: int = 4,
        log: Callable[[str], None] = print,
    ):
        if not secret:
            raise ValueError("a webhook secret is required")
        self.secret, self.ledger, self.process, self.log = secret, ledger, process, log
        self.queue: queue.Queue[Delivery | None] = queue.Queue()
        self._httpd = _Server((host, port), self._handler())
        self._threads = [threading.Thread(target=self._work, daemon=True) for _ in range(workers)]
        self._serve = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> WebhookServer:
        self.start()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        for t in self._threads:
            t.start()
        self._serve.start()

    def stop(self, drain: bool = True) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if drain:
            self.queue.join()  # accepted deliveries are processed before we stop
        for _ in self._threads:
            self.queue.put(None)

    def _work(self) -> None:
        while True:
            item = self.queue.get()
            try:
                if item is None:
                    return
                self.process(item)
            except Exception as exc:  # one bad delivery must not stop the worker
                self.log(f"delivery {item.id if item else '?'} failed: {type(exc).__name__}: {exc}")
            finally:
                self.queue.task_done()

    def _handler(self) -> type[JSONHandler]:
        server = self

        class Handler(JSONHandler):
            def _reply(self, status: int, message: str) -> None:
                self.send_json(status, {"message": message})

            def do_GET(self) -> None:
                if self.path == "/healthz":
                    self._reply(200, "ok")
                else:
                    self._reply(404, "POST GitHub webhooks to /")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length <= 0 or length > MAX_BODY:
                    self._reply(413 if length > MAX_BODY else 400, "a webhook body of 1 byte to 25 MB is expected")
                    return
                body = self.rfile.read(length)
                if not verify(server.secret, body, self.headers.get("X-Hub-Signature-256")):
                    self._reply(401, "missing or wrong X-Hub-Signature-256")
                    return
                event = self.headers.get("X-GitHub-Event")
                delivery = self.headers.get("X-GitHub-Delivery")
                if not event or not delivery:
                    self._reply(400, "X-GitHub-Event and X-GitHub-Delivery are required")
                    return
                try:
                    payload = json.loads(body)
                except ValueError:
                    self._reply(400, "the body is not JSON")
                    return
                if not server.ledger.first_delivery(delivery, event):
                    self._reply(409, f"delivery {delivery} was already received")
                    return
                server.queue.put(Delivery(delivery, event, payload))
                self._reply(202, f"queued {event} {delivery}")

        return Handler


def serve_forever() -> None:
    """Block until SIGTERM/Ctrl-C (the CLI turns SIGTERM into KeyboardInterrupt)."""
    import time

    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
