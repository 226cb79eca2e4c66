"""A workload's conversations inside the locust process (gates/workloads/): every turn to both arms.

How conversations start follows the load mode: ``open`` starts a trace's at their own times
(``at_s``, already scaled by ``load.trace_speed``) and the others at the mode's arrivals (Poisson
or constant at ``load.rate``), both at once when workloads are mixed; ``closed`` runs ``load.users``
users, each taking the next conversation as soon as its last one ended. Within a conversation the turns go one after the
other, ``think_s`` after the previous turn's two responses; each turn goes to both arms at once (on
two greenlets, in a random order), so the arms stay paired in time. Generated workloads are reused
from the start when the load outlasts them (with new pair ids); a trace ends the load when it ends.
"""

from __future__ import annotations

import http.client
import itertools
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

import gevent
from gevent.pool import Group

from gates.loadgen.request import send
from gates.loadgen.spec import LoadSpec
from gates.loadgen.summary import ArrivalStats
from gates.workloads.base import Conversation, Turn
from gates.workloads.classes import encode

Send = Callable[..., dict[str, Any]]  # gates.loadgen.request.send


class ScheduleLoop:
    def __init__(
        self,
        spec: LoadSpec,
        conversations: list[Conversation],
        sink: Callable[[dict[str, Any]], None],
        users: int | None,
        times: Iterator[float] | None,
        sender: Send = send,
    ):
        self.spec = spec
        self.conversations = conversations
        self.sink = sink
        self.users = users  # closed loop: this many users; None: open loop
        self.times = times  # open loop without a trace's own times: the mode's arrivals
        self.send = sender
        self.t0 = 0.0
        self.group = Group()
        self.lags_ms: list[float] = []
        self.arrivals = 0
        self.in_flight = 0
        self.dropped = 0
        self.finished = False  # a trace's every conversation has ended: the load may stop
        self.stopping = False  # the load stopped: no conversation starts another turn
        self.rng = random.Random(spec.seed)
        self.host, port = spec.url.rsplit(":", 1)
        self.port = int(port)

    def run(self, t0: float) -> None:
        """Start conversations until killed (the locust runner kills its user's greenlet at the stop)."""
        self.t0 = t0
        if self.users is not None:
            source = itertools.count()
            workers = [self.group.spawn(self._user, source) for _ in range(self.users)]
            gevent.joinall(workers)
            return
        timed = [(i, c.at_s) for i, c in enumerate(self.conversations) if c.at_s is not None]
        others = [i for i, c in enumerate(self.conversations) if c.at_s is None]
        if timed:
            self.group.spawn(self._start, iter(timed))
        if others and self.times is not None:  # reused from the start past the last (new pair ids)
            ids = (others[k % len(others)] + len(self.conversations) * (k // len(others)) for k in itertools.count())
            self._start(zip(ids, self.times, strict=False))
        self.group.join()  # only a trace alone gets here: every conversation ran to its end
        self.finished = True

    def _start(self, starts: Iterator[tuple[int, float]]) -> None:
        for i, at in starts:
            delay = self.t0 + at - time.monotonic()
            if delay > 0:
                gevent.sleep(delay)
            self.lags_ms.append(max(0.0, time.monotonic() - (self.t0 + at)) * 1000)
            self.arrivals += 1
            self.group.spawn(self._conversation, i)

    def _user(self, source: Iterator[int]) -> None:
        for i in source:
            if self.stopping:
                return
            self.arrivals += 1
            self._conversation(i)

    def _conversation(self, i: int) -> None:
        conv = self.conversations[i % len(self.conversations)]
        for k, turn in enumerate(conv.turns, 1):
            if k > 1 and turn.think_s > 0:
                gevent.sleep(turn.think_s)
            if self.stopping:
                return
            self._turn(turn, f"{i}:{k}", i)

    def _turn(self, turn: Turn, pair: str, conversation: int) -> None:
        arms = list(self.spec.arms.items())
        self.rng.shuffle(arms)
        labels = encode(turn.labels)
        if self.in_flight + len(arms) > self.spec.max_in_flight:
            self.dropped += len(arms)
            for arm, _ in arms:
                self.sink(self._error(arm, turn, pair, labels, conversation))
            return
        self.in_flight += len(arms)
        both = [gevent.spawn(self._one, arm, model, turn, pair, labels, conversation) for arm, model in arms]
        gevent.joinall(both)

    def _one(self, arm: str, model: str, turn: Turn, pair: str, labels: str, conversation: int) -> None:
        client = http.client.HTTPConnection(self.host, self.port, timeout=self.spec.timeout_s)
        try:
            record = self.send(client, arm, model, turn.prompt, turn.max_new_tokens, self.t0, conversation)
        finally:
            client.close()
            self.in_flight -= 1
        self.sink({**record, "pair": pair, "labels": labels})

    def _error(self, arm: str, turn: Turn, pair: str, labels: str, conversation: int) -> dict[str, Any]:
        return {
            "arm": arm,
            "max_new_tokens": turn.max_new_tokens,
            "user": conversation,
            "t_start_s": round(time.monotonic() - self.t0, 6),
            "latency_ms": 0.0,
            "ttft_ms": "",
            "itl_ms": "",
            "ok": 0,
            "output_tokens": 0,
            "prompt_chars": len(turn.prompt),
            "error": "workload: in-flight limit (the server did not keep up with the offered load)",
            "pair": pair,
            "labels": labels,
        }

    def drain(self, timeout_s: float) -> None:
        """Wait for the requests in flight (up to ``timeout_s``; no turn starts meanwhile), then stop the rest."""
        self.stopping = True
        self.group.join(timeout=timeout_s)
        self.group.kill(block=False)

    def summary(self) -> ArrivalStats:
        lags = sorted(self.lags_ms)
        p95 = lags[min(len(lags) - 1, round(0.95 * (len(lags) - 1)))] if lags else None
        return ArrivalStats(self.spec.rate, self.arrivals, p95, self.dropped)
