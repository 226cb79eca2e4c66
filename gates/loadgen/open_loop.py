"""Open loop inside the locust process: one scheduler issues arrivals, each request on its own greenlet.

Arrivals do not wait for responses: at the times the load mode gives (gates/loadmodes/,
``Arrivals``) every arrival sends the same prompt to both arms (in a random order, on two
greenlets), so the arms stay paired in time as in the closed loop. With ``spec.arm_share`` (the
capacity search's per-arm rates) an arm takes arrival ``i`` only when one uniform draw ``u_i``,
common to both arms, is below its share: each arm's arrivals are still Poisson (a thinned Poisson
stream is one), and the slower arm's are a subset of the faster arm's, with the same prompts at
the same times. A scheduler that wakes up late
is a saturated client: its lateness is recorded for the self-check. Requests still in flight past
``max_in_flight`` are not sent but recorded as errors (the server is not keeping up); at the end
the requests in flight are waited for (up to their timeout), so an overloaded server's slowest
requests are not silently dropped from the statistics.
"""

from __future__ import annotations

import http.client
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import gevent
from gevent.pool import Group

from gates.loadgen.request import send
from gates.loadgen.spec import LoadSpec
from gates.loadgen.summary import ArrivalStats

Send = Callable[[Any, str, str, str, int, float, int], dict[str, Any]]  # gates.loadgen.request.send


class OpenLoop:
    def __init__(
        self, spec: LoadSpec, times: Iterator[float], sink: Callable[[dict[str, Any]], None], sender: Send = send
    ):
        self.spec = spec
        self.times = times  # seconds from the start, from the load mode
        self.sink = sink  # takes each finished request's record, once (the worker keeps and reports it)
        self.send = sender
        self.t0 = 0.0
        self.group = Group()
        self.in_flight: dict[int, tuple[str, float, int]] = {}  # request id -> (arm, start, prompt chars)
        self.lags_ms: list[float] = []
        self.dropped = 0
        self.arrivals = 0
        self.host, port = spec.url.rsplit(":", 1)
        self.port = int(port)

    def run(self, t0: float) -> None:
        """Issue arrivals until killed (the locust runner kills its user's greenlet at the stop) or
        the times run out."""
        self.t0 = t0
        spec = self.spec
        rng = random.Random(spec.seed)
        thin = random.Random(spec.seed + 104_729)  # its own stream: the prompts drawn do not depend on the shares
        share = spec.arm_share
        for i, at in enumerate(self.times):
            delay = t0 + at - time.monotonic()
            if delay > 0:
                gevent.sleep(delay)
            self.lags_ms.append(max(0.0, time.monotonic() - (t0 + at)) * 1000)
            self.arrivals += 1
            prompt, max_new, arms = spec.draw(rng)
            if share is not None:
                u = thin.random()
                arms = [(arm, model) for arm, model in arms if u < share.get(arm, 1.0)]
            for j, (arm, model) in enumerate(arms):
                key = 2 * i + j
                if len(self.in_flight) >= spec.max_in_flight:
                    self.dropped += 1
                    self._record(self._error(arm, time.monotonic(), len(prompt), max_new, i, "in-flight limit"))
                    continue
                self.in_flight[key] = (arm, time.monotonic(), len(prompt))
                self.group.spawn(self._one, key, arm, model, prompt, max_new, i)

    def _one(self, key: int, arm: str, model: str, prompt: str, max_new: int, arrival: int) -> None:
        client = http.client.HTTPConnection(self.host, self.port, timeout=self.spec.timeout_s)
        try:
            record = {**self.send(client, arm, model, prompt, max_new, self.t0, arrival), "pair": str(arrival)}
        finally:
            client.close()
        self.in_flight.pop(key, None)
        self._record(record)

    def _record(self, record: dict[str, Any]) -> None:
        self.sink(record)

    def _error(self, arm: str, start: float, chars: int, max_new: int, arrival: int, why: str) -> dict[str, Any]:
        return {
            "arm": arm,
            "max_new_tokens": max_new,
            "user": arrival,
            "t_start_s": round(start - self.t0, 6),
            "latency_ms": round((time.monotonic() - start) * 1000, 3),
            "ttft_ms": "",
            "itl_ms": "",
            "ok": 0,
            "output_tokens": 0,
            "prompt_chars": chars,
            "error": f"open loop: {why} (the server did not keep up with the offered rate)",
            "pair": str(arrival),
        }

    def drain(self, timeout_s: float) -> None:
        """Wait for the requests in flight; those still running after ``timeout_s`` become errors."""
        self.group.join(timeout=timeout_s)
        for key, (arm, start, chars) in list(self.in_flight.items()):
            self._record(self._error(arm, start, chars, 0, key // 2, "unfinished when the load stopped"))
        self.in_flight.clear()
        self.group.kill(block=False)

    def summary(self) -> ArrivalStats:
        lags = sorted(self.lags_ms)
        p95 = lags[min(len(lags) - 1, round(0.95 * (len(lags) - 1)))] if lags else None
        return ArrivalStats(self.spec.rate, self.arrivals, p95, self.dropped)
