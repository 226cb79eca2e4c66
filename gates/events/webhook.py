"""``gates serve``: a GitHub webhook receiver that verifies, de-duplicates and queues deliveries.

- HTTP is waitress's (a production WSGI server): it buffers whole requests before our code
  runs, so slow or malformed clients hold no worker; it bounds bodies and headers, closes idle
  connections, and answers malformed requests with a 4xx itself.
- The body must carry ``X-Hub-Signature-256: sha256=HMAC(secret, body)``; it is compared in
  constant time and anything unsigned or wrongly signed gets 401 before it is even parsed.
- Every delivery is recorded in the ledger (with its payload) before it is queued. A replay of
  a processed delivery gets 409, and so does the same event under a new delivery id (its comment
  or review id, else its body: the signature does not cover the delivery id); a redelivery of
  one that was received but never processed (its worker crashed, the server was killed) or
  whose processing failed is processed, and on
  start the receiver queues whatever an earlier process received and did not process.
- Accepted deliveries are answered 202 at once (GitHub gives a hook 10 s); worker threads
  handle them. If the ledger does not answer within ``ledger_timeout_s`` the receiver says 503
  (GitHub shows it; a redelivery is processed) instead of hanging past GitHub's timeout.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import hmac
import json
import queue
import re
import threading
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

from gates.errors import BadInputError, GatesError
from gates.events.plan import parse_payload
from gates.journal import retry
from gates.ledger import Ledger

MAX_BODY = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB
MAX_HEADERS = 64 * 1024
_DELIVERY_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_EVENT = re.compile(r"[a-z_]{1,64}")

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def signature(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, header: str | None) -> bool:
    if not header or not secret:
        return False
    return hmac.compare_digest(signature(secret, body).encode(), header.strip().encode(errors="replace"))


# the object whose id names the event, and the field that tells its edits apart
_EVENT_OBJECT = {
    "issue_comment": ("comment", "updated_at"),
    "pull_request_review_comment": ("comment", "updated_at"),
    "pull_request_review": ("review", "submitted_at"),
}


def event_identity(event: str, payload: Any, body: bytes) -> str:
    """What makes two deliveries one event whatever their X-GitHub-Delivery (which the signature
    does not cover): the comment or review id (with the action and the edit time), else the body."""
    name, version = _EVENT_OBJECT.get(event, ("", ""))
    obj = payload.get(name) if isinstance(payload, dict) and name else None
    ident = obj.get("id") if isinstance(obj, dict) else None
    if isinstance(obj, dict) and isinstance(ident, int) and not isinstance(ident, bool):
        key = json.dumps([event, payload.get("action"), name, ident, obj.get(version)], default=str)
    else:
        key = f"{event}:body:{hashlib.sha256(body).hexdigest()}"
    return hashlib.sha256(key.encode()).hexdigest()


@dataclasses.dataclass(frozen=True)
class Delivery:
    id: str
    event: str
    payload: Any


# Returns a line for the log; raising marks the delivery failed (a redelivery processes it again).
Processor = Callable[[Delivery], str | None]
_STATUS = {200: "OK", 202: "Accepted", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}
_STATUS |= {405: "Method Not Allowed", 409: "Conflict", 413: "Content Too Large", 503: "Service Unavailable"}


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
        ledger_timeout_s: float = 5.0,
        idle_timeout_s: int = 10,
        read_timeout_s: float = 10.0,
        per_address_limit: int = 64,
    ):
        from waitress.server import create_server

        if not secret:
            raise ValueError("a webhook secret is required")
        self.secret, self.ledger, self.process, self.log = secret, ledger, process, log
        self.ledger_timeout_s = ledger_timeout_s
        self.queue: queue.Queue[Delivery | None] = queue.Queue()
        self._queued: set[str] = set()  # ids queued or being processed by this process
        self._queued_lock = threading.Lock()
        # ledger calls of the request path run here, so a busy ledger cannot hold a reply
        self._ledger_pool = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="gates-serve-ledger")
        self._httpd = create_server(
            self._app,
            host=host,
            port=port,
            threads=8,
            channel_timeout=idle_timeout_s,  # idle or slow connections are closed
            cleanup_interval=max(1, idle_timeout_s // 2),
            max_request_body_size=MAX_BODY,
            max_request_header_size=MAX_HEADERS,
            connection_limit=256,
            backlog=256,  # bursts of deliveries are not reset
            # whole seconds: waitress casts it to int, and 0.5 became a 0 s poll that spun a core
            # and held the GIL from the ledger's threads (a 200-delivery burst took 2 minutes)
            asyncore_loop_timeout=1,
            asyncore_use_poll=True,  # select() cannot watch descriptors above 1024
            ident="gates",
            expose_tracebacks=False,
        )
        guard_connections(self._httpd, read_timeout_s, per_address_limit)
        self._threads = [threading.Thread(target=self._work, daemon=True) for _ in range(workers)]
        self._serve = threading.Thread(target=self._httpd.run, daemon=True)

    def __enter__(self) -> WebhookServer:
        self.start()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self._httpd.effective_host}:{self._httpd.effective_port}"

    def start(self) -> None:
        for t in self._threads:
            t.start()
        for delivery_id, event, payload in self.ledger.unprocessed_deliveries():  # what a killed server left
            try:
                self._enqueue(Delivery(delivery_id, event, json.loads(payload)))
                self.log(f"delivery {delivery_id} ({event}): received earlier, not processed: queued again")
            except (ValueError, RecursionError):
                self.ledger.delivery_done(delivery_id, "exit 2: stored payload is not JSON")
        self._serve.start()

    def stop(self, drain: bool = True) -> None:
        from waitress import wasyncore

        # The request threads finish first: one still answering when the sockets close wakes the
        # loop through its trigger, which close_all has closed (waitress logged EBADF tracebacks).
        self._httpd.task_dispatcher.shutdown(timeout=5)
        loop_map = self._httpd._map
        if self._serve.is_alive():
            # The loop's own thread takes every channel off its map (never closing a socket under
            # its poll()), so it ends; they are closed here once it has. Closing them in the thunk
            # closed the wake-up pipe too, and the loop may run the thunk before pull_trigger has
            # written its byte (another thread's wake-up got there first): the write failed (EBADF).
            detached: dict[int, Any] = {}

            def detach() -> None:
                detached.update(loop_map)
                loop_map.clear()

            self._httpd.trigger.pull_trigger(detach)
            self._serve.join(timeout=10)
            loop_map.update(detached)
        wasyncore.close_all(loop_map)
        if drain:
            self.queue.join()  # accepted deliveries are processed before we stop
        for _ in self._threads:
            self.queue.put(None)
        self._ledger_pool.shutdown(wait=False, cancel_futures=True)

    # -- processing ------------------------------------------------------------------------------
    def _enqueue(self, delivery: Delivery) -> bool:
        with self._queued_lock:
            if delivery.id in self._queued:
                return False
            self._queued.add(delivery.id)
        self.queue.put(delivery)
        return True

    def _work(self) -> None:
        while True:
            item = self.queue.get()
            try:
                if item is None:
                    return
                self._process_one(item)
            finally:
                self.queue.task_done()

    def _process_one(self, item: Delivery) -> None:
        failed, text = False, ""
        try:
            text = self.process(item) or "processed"
        except Exception as exc:  # one bad delivery must not stop the worker; its redelivery is processed
            failed, text = True, f"failed: {type(exc).__name__}: {exc}"
            self.log(f"delivery {item.id} ({item.event}) {text}")
        try:
            retry(f"marking delivery {item.id}", lambda: self.ledger.delivery_done(item.id, text, failed), 30.0)
        except Exception as exc:  # it stays "received": the next start processes it again
            self.log(f"delivery {item.id}: could not record its outcome: {exc}")
        finally:
            with self._queued_lock:
                self._queued.discard(item.id)

    def _accept(self, delivery: Delivery, body: bytes) -> tuple[int, str]:
        identity = event_identity(delivery.event, delivery.payload, body)
        state = self.ledger.receive_delivery(delivery.id, delivery.event, body.decode("utf-8", "replace"), identity)
        if state == "done":
            return 409, f"delivery {delivery.id} was already processed"
        if state == "duplicate":
            return 409, f"delivery {delivery.id} repeats an event another delivery carries; not processed again"
        queued = self._enqueue(delivery)
        if state == "new":
            return 202, f"queued {delivery.event} {delivery.id}"
        if not queued:
            return 202, f"delivery {delivery.id} is already queued"
        return 202, f"delivery {delivery.id} was received but not processed: queued again"

    # -- HTTP --------------------------------------------------------------------------------------
    def _app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            status, message = self._route(environ)
        except GatesError as exc:  # the ledger is down or restarting: GitHub shows why; a redelivery is processed
            self.log(f"webhook request failed: {type(exc).__name__}: {exc}")
            status, message = 503, f"{exc}; redeliver later"
        except Exception as exc:  # never a traceback to the client; the log says what broke
            self.log(f"webhook request failed: {type(exc).__name__}: {exc}")
            status, message = 503, "the receiver failed; redeliver later"
        data = json.dumps({"message": message}).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
        if status == 503:
            headers.append(("Retry-After", "10"))
        start_response(f"{status} {_STATUS.get(status, 'Error')}", headers)
        return [data]

    def _health(self) -> tuple[int, str]:
        """200 when deliveries can be recorded; else 503 saying what is wrong (the ledger's problem,
        its URL without credentials). The ledger reconnects by itself, with backoff."""
        future = self._ledger_pool.submit(self.ledger.check)
        try:
            future.result(timeout=self.ledger_timeout_s)
        except concurrent.futures.TimeoutError:
            return 503, f"ledger {self.ledger.url}: no answer within {self.ledger_timeout_s:.0f}s (busy or unreachable)"
        except GatesError as exc:
            return 503, str(exc)
        return 200, "ok"

    def _route(self, environ: dict[str, Any]) -> tuple[int, str]:
        method, path = environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")
        if method == "GET":
            return self._health() if path == "/healthz" else (404, "POST GitHub webhooks to /")
        if method != "POST":
            return 405, "POST GitHub webhooks to /"
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return 400, "bad Content-Length"
        if length <= 0 or length > MAX_BODY:
            return (413 if length > MAX_BODY else 400), "a webhook body of 1 byte to 25 MB is expected"
        body = environ["wsgi.input"].read(length)
        if not verify(self.secret, body, environ.get("HTTP_X_HUB_SIGNATURE_256")):
            return 401, "missing or wrong X-Hub-Signature-256"
        event, delivery = environ.get("HTTP_X_GITHUB_EVENT"), environ.get("HTTP_X_GITHUB_DELIVERY")
        if not event or not delivery:
            return 400, "X-GitHub-Event and X-GitHub-Delivery are required"
        if not _EVENT.fullmatch(event) or not _DELIVERY_ID.fullmatch(delivery):
            return 400, "X-GitHub-Event or X-GitHub-Delivery is malformed"
        try:
            payload = parse_payload(body, "the body")
        except BadInputError as exc:
            return 400, str(exc)
        future = self._ledger_pool.submit(self._accept, Delivery(delivery, event, payload), body)
        try:
            return future.result(timeout=self.ledger_timeout_s)
        except concurrent.futures.TimeoutError:
            # the record may still complete (then the delivery is queued); if not, a redelivery is processed
            return 503, "the ledger is busy; redeliver later"


def guard_connections(httpd: Any, read_timeout_s: float, per_address_limit: int) -> None:
    """Against a trickle slowloris (a byte every few seconds resets waitress' idle timeout, and 256
    such connections fill its limit): a request must arrive whole within ``read_timeout_s`` of its
    first byte, and one client address holds at most ``per_address_limit`` connections. Also: the
    event loop sleeps while task threads answer (see ``writable``)."""
    import time

    from waitress.channel import HTTPChannel

    class Channel(HTTPChannel):  # type: ignore[misc]
        request_started = 0.0

        def received(self, data: bytes) -> bool:
            now = time.time()
            if self.request is None:
                self.request_started = now
            elif now - self.request_started > read_timeout_s:
                self.will_close = True  # too slow to be GitHub: its bytes are not read further
                return False
            return bool(super().received(data))

        def writable(self) -> bool:
            # While a task thread answers, waitress calls the channel writable as soon as the answer
            # is buffered, though only that thread may send it until its request ends (it sends it
            # itself, and wakes the loop when done): poll() returned at once until then, and the loop
            # spun, holding the GIL. Past the high watermark the task waits for the loop to drain.
            if self.requests and not (self.will_close or self.close_when_flushed):
                return bool(self.total_outbufs_len > self.adj.outbuf_high_watermark)
            return bool(super().writable())

    def channel(server: Any, sock: Any, addr: Any, adj: Any, map: Any = None) -> Any:
        peer = addr[0] if isinstance(addr, tuple) else addr
        held = sum(1 for c in list(server.active_channels.values()) if c.addr and c.addr[0] == peer)
        if held >= per_address_limit:
            sock.close()
            return None
        return Channel(server, sock, addr, adj, map=map)

    original = httpd.maintenance

    def maintenance(now: float) -> None:  # a partial request that stopped short of the deadline
        original(now)
        for c in list(httpd.active_channels.values()):
            if getattr(c, "request", None) is not None and now - getattr(c, "request_started", now) > read_timeout_s:
                c.will_close = True

    httpd.channel_class = channel
    httpd.maintenance = maintenance


def serve_forever() -> None:
    """Block until SIGTERM/Ctrl-C (the CLI turns SIGTERM into KeyboardInterrupt)."""
    import time

    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
