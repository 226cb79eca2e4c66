"""The locust process: ``python -m gates.loadgen.worker SPEC.json OUT_DIR``.

It runs in its own process because locust needs gevent's monkey-patching, which must happen
before anything else is imported and would otherwise leak into the gates process (subprocess
handling, torch). Each simulated user sends baseline and candidate requests alternately, in a
random order per pair, so both arms see the same time window, the same prompts and the same
contention. Requests stream over Triton's HTTP ``generate_stream`` (server-sent events, one per
token), read with geventhttpclient, which cooperates with gevent (gRPC's client does not without
extra care). Every request becomes one row of ``requests.csv`` with its end-to-end latency, time to
first token and inter-token latency; ``summary.json`` records what the generator itself used
(CPU), for the self-check.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import csv  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from gates.judge.adaptive import CONTINUE, Look, Plan, settle  # noqa: E402
from gates.loadgen.open_loop import OpenLoop, arrivals_user  # noqa: E402
from gates.loadgen.request import send  # noqa: E402

RUN_STARTED = time.monotonic()


def main(argv: list[str]) -> int:
    import http.client
    import os

    from gates.loadgen.run import PARENT_ENV, die_with_parent

    if os.environ.get(PARENT_ENV):
        die_with_parent(int(os.environ[PARENT_ENV]))

    import gevent
    import psutil
    from locust import User, constant, task

    from gates.loadgen.spec import RECORD_FIELDS, LoadSpec

    spec = LoadSpec.read(Path(argv[0]))
    out_dir = Path(argv[1])
    records: list[dict[str, Any]] = []
    rng = random.Random(spec.seed)
    state = {"t0": 0.0, "next_user": 0}
    host, port = spec.url.rsplit(":", 1)

    class ArmsUser(User):
        wait_time = constant(0)

        def on_start(self) -> None:
            self.user_id = state["next_user"]
            state["next_user"] += 1
            # The standard library's client, made cooperative by gevent's monkey-patching: its
            # readline() on a chunked body returns each server-sent event as soon as it arrives.
            self.client = http.client.HTTPConnection(host, int(port), timeout=spec.timeout_s)

        def on_stop(self) -> None:
            self.client.close()

        @task
        def pair(self) -> None:
            prompt = rng.choices(spec.prompts, weights=spec.prompt_weights)[0]
            max_new = rng.randint(spec.max_new_tokens, spec.max_new_tokens_max)
            arms = list(spec.arms.items())
            rng.shuffle(arms)
            for arm, model in arms:
                self._one(arm, model, prompt, max_new)

        def _one(self, arm: str, model: str, prompt: str, max_new: int) -> None:
            record_and_fire(send(self.client, arm, model, prompt, max_new, state["t0"], int(self.user_id)))

    def record_and_fire(record: dict[str, Any]) -> None:
        records.append(record)
        env.events.request.fire(  # type: ignore[no-untyped-call]
            request_type="generate_stream",
            name=record["arm"],
            response_time=record["latency_ms"],
            response_length=record["output_tokens"],
            exception=record["error"] or None,
            context={},
        )

    from locust.env import Environment

    open_loop = OpenLoop(spec, record_and_fire) if spec.mode == "open" else None
    user_class = arrivals_user(open_loop, lambda: state["t0"]) if open_loop else ArmsUser
    env = Environment(user_classes=[user_class])
    runner = env.create_local_runner()
    proc = psutil.Process()
    cpu0 = proc.cpu_times()
    state["t0"] = time.monotonic()
    lags: list[float] = []

    def watch_loop() -> None:
        # How late a 20 ms sleep wakes up: a busy event loop delays every response we time.
        while True:
            before = time.monotonic()
            gevent.sleep(0.02)
            lags.append((time.monotonic() - before - 0.02) * 1000)

    watcher = gevent.spawn(watch_loop)
    stopped: dict[str, Any] = {"reason": "", "duration_s": 0.0}

    def enough() -> bool:
        ok: dict[str, int] = dict.fromkeys(spec.arms, 0)
        for r in records:
            if not r["error"] and r["t_start_s"] >= spec.warmup_s:
                ok[r["arm"]] += 1
        return all(n >= spec.min_requests for n in ok.values())

    def stopper() -> None:
        # duration_s first; then on until every arm has min_requests or the deadline passes
        while True:
            gevent.sleep(0.2)
            elapsed = time.monotonic() - state["t0"]
            if elapsed >= spec.duration_s and enough():
                stopped["reason"] = "duration" if elapsed < spec.duration_s + 0.5 else "min_requests"
                break
            if elapsed >= spec.deadline_s:
                stopped["reason"] = "max_duration"
                break
        stopped["duration_s"] = round(time.monotonic() - state["t0"], 3)
        runner.quit()

    def measured() -> tuple[list[float], list[float]]:
        arms: dict[str, list[float]] = {"baseline": [], "candidate": []}
        for r in list(records):
            if not r["error"] and r["t_start_s"] >= spec.warmup_s and r["arm"] in arms:
                arms[r["arm"]].append(float(r["latency_ms"]))
        return arms["baseline"], arms["candidate"]

    def adaptive_stopper(adaptive: dict[str, Any]) -> None:
        # looks every look_interval_s from first_look_s; settled -> stop; at max_duration_s the last look
        plan = Plan(**{**adaptive["plan"], "tail_limits": tuple(map(tuple, adaptive["plan"]["tail_limits"]))})
        looks: list[Look] = []
        next_look = float(adaptive["first_look_s"])
        span = max(spec.deadline_s - spec.warmup_s, 1e-9)
        while True:
            gevent.sleep(0.2)
            elapsed = time.monotonic() - state["t0"]
            last = elapsed >= spec.deadline_s
            if not last and elapsed < next_look:
                continue
            next_look = max(next_look + float(adaptive["look_interval_s"]), elapsed)
            b, c = measured()
            if min(len(b), len(c)) < plan.min_samples and not last:
                continue
            look = Look(len(b), len(c), 1.0 if last else min((elapsed - spec.warmup_s) / span, 1.0))
            if not looks or look.info > looks[-1].info or last:
                looks.append(look)
            decision = settle(b, c, looks, plan) if min(len(b), len(c)) >= 2 else None
            if last or (decision is not None and decision.status != CONTINUE):
                stopped["reason"] = "max_duration" if last else "settled"
                stopped["decision"] = decision.status if decision else "no_data"
                stopped["detail"] = decision.reason if decision else "too few requests"
                break
        stopped["looks"] = [x.to_json() for x in looks]
        stopped["duration_s"] = round(time.monotonic() - state["t0"], 3)
        runner.quit()

    runner.start(1 if open_loop else spec.users, spawn_rate=spec.spawn_rate)
    if spec.adaptive:
        gevent.spawn(adaptive_stopper, spec.adaptive)
    else:
        gevent.spawn(stopper)
    runner.greenlet.join()
    if open_loop:  # arrivals have stopped; the requests in flight finish (or time out) first
        open_loop.drain(spec.timeout_s + 1.0)
    watcher.kill()
    wall = time.monotonic() - state["t0"]
    cpu1 = proc.cpu_times()
    cpu_s = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)

    with (out_dir / "requests.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=RECORD_FIELDS)
        writer.writeheader()
        writer.writerows(records)
    stats = env.stats.total
    (out_dir / "summary.json").write_text(
        json.dumps(
            {
                "wall_s": wall,
                "generator_cpu_s": cpu_s,
                "generator_cpu_util": cpu_s / wall if wall > 0 else None,
                "loop_lag_ms_p50": _pct(lags, 50),
                "loop_lag_ms_p95": _pct(lags, 95),
                "loop_lag_samples": len(lags),
                "users": spec.users,
                "locust_requests": stats.num_requests,
                "locust_failures": stats.num_failures,
                "records": len(records),
                "stopped": stopped,
                "mode": spec.mode,
                **({"rate": spec.rate, "arrivals": spec.arrivals, **open_loop.summary()} if open_loop else {}),
            },
            indent=2,
        )
    )
    return 0


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
