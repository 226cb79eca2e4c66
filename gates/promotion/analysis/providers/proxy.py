"""The ``proxy`` provider: the local HAProxy's own per-request log (gates/promotion/haproxy.py).

Each line is one request as the proxy saw it: accept time, the arm that served it, status, time to
the response headers (Triton streams them with the first token: TTFT) and to the last byte
(end-to-end latency), user and synthetic label. A window is the requests *accepted* in it; requests
still in flight at its end are logged when they finish and belong to it when the next read comes.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from pathlib import Path

from gates.config.analysis import AnalysisSection
from gates.errors import InfraError
from gates.ledger import CanaryState
from gates.promotion.analysis.records import Request, WindowData
from gates.promotion.haproxy import HAProxyEndpoint


def parse_line(line: str) -> Request | None:
    """One ``gates …`` log line (haproxy.LOG_FORMAT); None for anything else HAProxy prints."""
    if not line.startswith("gates "):
        return None
    try:
        _, at, arm, status, tr, ta, _bytes, _user, synthetic = shlex.split(line)
        t_r, t_a = int(tr), int(ta)
        return Request(
            at=float(at),
            arm=arm,
            status=int(status),
            ttft_ms=float(t_r) if t_r >= 0 else None,
            latency_ms=float(t_a) if t_a >= 0 and int(status) > 0 else None,
            synthetic=synthetic not in ("", "-"),
        )
    except ValueError:
        return None


def read_log(path: Path) -> Iterator[Request]:
    try:
        with path.open(errors="replace") as f:
            for line in f:
                req = parse_line(line.strip())
                if req is not None:
                    yield req
    except OSError as exc:
        raise InfraError(f"the proxy's request log {path} is not readable: {exc}") from exc


class ProxyProvider:
    def window(self, canary: CanaryState, cfg: AnalysisSection, start: float, end: float) -> WindowData:
        endpoint = HAProxyEndpoint.of(canary)
        endpoint.check_alive()  # an unreachable proxy is no data, never a PASS
        return WindowData.of(start, end, read_log(Path(endpoint.log)), "proxy")
