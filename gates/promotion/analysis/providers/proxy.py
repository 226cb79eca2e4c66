"""The ``proxy`` provider: the local proxy's own per-request log (HAProxy: gates/promotion/haproxy.py;
nginx: gates/promotion/nginx.py, whose log also holds the mirrored copies, as the canary's).

Each line is one request as the proxy saw it: accept time, the arm that served it, status, time to
the response headers (Triton streams them with the first token: TTFT) and to the last byte
(end-to-end latency), user and synthetic label. A window is the requests *accepted* in it; requests
still in flight at its end are logged when they finish and belong to it when the next read comes.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from gates.config.analysis import AnalysisSection
from gates.ledger import CanaryState
from gates.promotion.analysis.providers.model_log import with_model_records
from gates.promotion.analysis.providers.proxy_nginx import nginx_window
from gates.promotion.analysis.records import Request, WindowData, parsed_lines
from gates.promotion.haproxy import HAProxyEndpoint
from gates.promotion.nginx import NginxEndpoint

T = TypeVar("T")


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


def read_log(path: Path, parse: Callable[[str], T | None] = parse_line) -> Iterator[T]:  # type: ignore[assignment]
    return parsed_lines(path, parse, "the proxy's request log")


class ProxyProvider:
    def window(self, canary: CanaryState, cfg: AnalysisSection, start: float, end: float) -> WindowData:
        if canary.target == "nginx":
            nginx = NginxEndpoint.of(canary)
            window = nginx_window(nginx, start, end, drain_s=min(cfg.interval_s, 60.0))
            logs = nginx.request_logs
        else:
            endpoint = HAProxyEndpoint.of(canary)
            endpoint.check_alive()
            window = WindowData.of(start, end, read_log(Path(endpoint.log)), "proxy")
            logs = endpoint.request_logs
        return with_model_records(window, logs) if logs else window
