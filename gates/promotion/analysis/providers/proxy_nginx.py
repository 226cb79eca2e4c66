"""The ``proxy`` provider's reading of nginx's log (gates/promotion/nginx.py), mirror mode included.

Each arm's server logs a request when it ends. A window is the user-facing requests *accepted* in
it. While the proxy mirrors, the canary's side of the window is the copies of those requests,
paired by the id nginx gives a request and its copy, and timed as the canary served them. A copy
that has not ended ``drain_s`` after the window is the canary's error (a request that slow is a
timeout to any user), never a missing value: a canary that falls behind on its copies cannot look
faster by leaving its slowest ones out.
"""

from __future__ import annotations

import dataclasses
import shlex
import time
from collections.abc import Callable
from pathlib import Path

from gates.promotion.analysis.records import Request, WindowData, parsed_lines
from gates.promotion.nginx import NginxEndpoint, read_split


@dataclasses.dataclass(frozen=True)
class NginxLine:
    request: Request
    copy: bool  # a mirrored copy (the canary's), not a user's request
    id: str  # shared by a request and its copy


def _seconds(field: str) -> float | None:
    # nginx writes "-" when there was no upstream answer, "a, b" when it tried two (never here)
    try:
        return float(field.split(",")[-1].strip())
    except ValueError:
        return None


def parse_nginx_line(line: str) -> NginxLine | None:
    """One ``gates`` line of nginx's log; the accept time is the log time less the request's time;
    the timings are Triton's as nginx saw them, in seconds with millisecond resolution."""
    if not line.startswith("gates "):
        return None
    try:
        _, end, request_s, arm, status, header_s, total_s, _bytes, _user, synthetic, copy, rid = shlex.split(line)
        ttft, total = _seconds(header_s), _seconds(total_s)
        code = int(status)
        request = Request(
            at=float(end) - float(request_s),
            arm=arm,
            status=code if total is not None or code >= 500 else -1,
            ttft_ms=ttft * 1000 if ttft is not None else None,
            latency_ms=total * 1000 if total is not None and code > 0 else None,
            synthetic=synthetic not in ("", "-"),
        )
    except ValueError:
        return None
    return NginxLine(request, copy == "mirror", rid)


def read_nginx_log(path: Path) -> list[NginxLine]:
    return list(parsed_lines(path, parse_nginx_line, "nginx's request log"))


def mirrored_window(lines: list[NginxLine], start: float, end: float) -> tuple[list[Request], int]:
    """(the window's requests: stable's and their copies as the canary's, unfinished copies as the
    canary's errors; how many copies have not ended)."""
    mains = [ln for ln in lines if not ln.copy and start <= ln.request.at < end]
    copies = {ln.id: ln.request for ln in lines if ln.copy}
    out, unfinished = [], 0
    for m in mains:
        out.append(m.request)
        if m.request.arm != "stable":
            continue  # a request the canary served itself is not copied
        copy = copies.get(m.id)
        if copy is None:
            unfinished += 1
            copy = Request(m.request.at, "canary", -1, None, None, m.request.synthetic)
        out.append(dataclasses.replace(copy, at=m.request.at))  # in the window of what it copies
    return out, unfinished


def nginx_window(
    endpoint: NginxEndpoint,
    start: float,
    end: float,
    drain_s: float,
    sleep: Callable[[float], None] = time.sleep,
) -> WindowData:
    _, mirror = read_split(endpoint.url)  # an unreachable proxy is no data, never a PASS
    path = Path(endpoint.log)
    if not mirror:
        requests = [ln.request for ln in read_nginx_log(path) if not ln.copy]
        return WindowData.of(start, end, requests, "proxy")
    deadline = time.monotonic() + drain_s
    while True:
        requests, unfinished = mirrored_window(read_nginx_log(path), start, end)
        if not unfinished or time.monotonic() >= deadline:
            return WindowData.of(start, end, requests, "proxy")
        sleep(0.25)
