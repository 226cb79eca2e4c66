"""A small weighted HTTP router in front of Triton: the local canary.

Triton has model versions but no percentage split, so requests for the served name go to the
stable model or the canary model by weight, and each is counted. The split is a smooth
deterministic sequence (request n goes to the canary when floor((n+1)·w/100) > floor(n·w/100)),
so 1,000 requests at weight 20 send exactly 200 to the canary, and weight 0 sends none.

Admin: ``GET /gates/router`` (weight and counts), ``POST /gates/router`` ``{"weight": N}``.
Inference: ``POST /v2/models/<served>/{infer,generate,generate_stream}`` is forwarded with the
model name rewritten; streamed responses are relayed as they arrive.
"""

from __future__ import annotations

import http.client
import json
import threading
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Any

from gates.httpjson import JSONHandler


class WeightedRouter:
    def __init__(
        self,
        upstream: str,
        served: str,
        stable: str,
        canary: str,
        weight: int = 0,
        port: int = 0,
        upstream_grpc: str | None = None,
    ):
        self.upstream = upstream  # host:port of Triton's HTTP endpoint
        self.upstream_grpc = upstream_grpc  # its gRPC endpoint, for re-checks that compare the two models
        self.served, self.stable, self.canary = served, stable, canary
        self._lock = threading.Lock()
        self._weight = 0
        self._n = 0
        self.counts = {"stable": 0, "canary": 0}
        self.set_weight(weight)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> WeightedRouter:
        self.start()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def weight(self) -> int:
        return self._weight

    def set_weight(self, weight: int) -> None:
        if not 0 <= int(weight) <= 100:
            raise ValueError("weight must be between 0 and 100")
        with self._lock:
            self._weight = int(weight)
            self._n = 0  # a new weight starts a new sequence

    def pick(self) -> str:
        with self._lock:
            n, w = self._n, self._weight
            self._n += 1
            arm = "canary" if ((n + 1) * w) // 100 > (n * w) // 100 else "stable"
            self.counts[arm] += 1
        return arm

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "weight": self._weight,
                "counts": dict(self.counts),
                "served": self.served,
                "stable": self.stable,
                "canary": self.canary,
                "upstream": self.upstream,
                "upstream_grpc": self.upstream_grpc,
            }

    def _handler(self) -> type[JSONHandler]:
        router = self

        class Handler(JSONHandler):
            def _json(self, status: int, payload: Any) -> None:
                self.send_json(status, payload)

            def do_GET(self) -> None:
                if self.path == "/gates/router":
                    self._json(200, router.snapshot())
                else:
                    self._json(404, {"error": "not found"})

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path == "/gates/router":
                    try:
                        router.set_weight(int(json.loads(body)["weight"]))
                    except (ValueError, KeyError, TypeError) as exc:
                        self._json(400, {"error": f"bad weight: {exc}"})
                        return
                    self._json(200, router.snapshot())
                    return
                prefix = f"/v2/models/{router.served}/"
                if not self.path.startswith(prefix):
                    self._json(404, {"error": f"the router serves only model {router.served!r}"})
                    return
                arm = router.pick()
                target = router.canary if arm == "canary" else router.stable
                self._forward(f"/v2/models/{target}/{self.path[len(prefix) :]}", body, arm)

            def _forward(self, path: str, body: bytes, arm: str) -> None:
                host, port = router.upstream.rsplit(":", 1)
                conn = http.client.HTTPConnection(host, int(port), timeout=120)
                try:
                    conn.request(
                        "POST",
                        path,
                        body=body,
                        headers={"Content-Type": self.headers.get("Content-Type", "application/json")},
                    )
                    resp = conn.getresponse()
                    self.send_response(resp.status)
                    self.send_header("Content-Type", resp.getheader("Content-Type", "application/json"))
                    self.send_header("X-Gates-Arm", arm)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    while chunk := resp.read1(65536):
                        self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                except OSError as exc:
                    self._json(502, {"error": f"upstream Triton failed: {exc}"})
                finally:
                    conn.close()

        return Handler
