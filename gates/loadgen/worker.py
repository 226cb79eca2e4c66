"""The locust process: ``python -m gates.loadgen.worker SPEC.json OUT_DIR``.

It runs in its own process because locust needs gevent's monkey-patching, which must happen
before anything else is imported and would otherwise leak into the gates process (subprocess
handling, torch). Both arms see the same time window, the same prompts and the same contention:
every request is a pair, baseline and candidate in a random order, paced as the spec's load mode
says (gates/loadmodes/: users in a closed loop, or arrivals in an open one). Requests stream
over Triton's HTTP ``generate_stream`` (server-sent events, one per token), read with the standard
library's client, which gevent makes cooperative. Every request becomes one row of
``requests.csv`` with its end-to-end latency, time to first token and inter-token latency;
``summary.json`` (gates/loadgen/summary.py) records what the generator itself used (CPU, event-loop
lag), for the self-check, and why the load stopped.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import csv  # noqa: E402
import dataclasses  # noqa: E402
import http.client  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, ClassVar  # noqa: E402

import gevent  # noqa: E402
import psutil  # noqa: E402
from locust import User, constant, task  # noqa: E402
from locust.env import Environment  # noqa: E402
from locust.runners import Runner  # noqa: E402

from gates.judge.adaptive import CONTINUE, Look, Plan, settle  # noqa: E402
from gates.loadgen import distributed  # noqa: E402
from gates.loadgen.open_loop import OpenLoop  # noqa: E402
from gates.loadgen.request import send  # noqa: E402
from gates.loadgen.run import PARENT_ENV, die_with_parent  # noqa: E402
from gates.loadgen.schedule import ScheduleLoop  # noqa: E402
from gates.loadgen.spec import RECORD_FIELDS, LoadSpec  # noqa: E402
from gates.loadgen.summary import GeneratorSummary, Stopped  # noqa: E402
from gates.loadmodes import LOAD_MODES, Arrivals, LoadMode, Users  # noqa: E402
from gates.workloads.base import read_conversations  # noqa: E402

Loop = OpenLoop | ScheduleLoop


class Load:
    """One run's state: the spec, every request's record, the start time, the loop's lateness."""

    def __init__(self, spec: LoadSpec) -> None:
        self.spec = spec
        self.records: list[dict[str, Any]] = []
        self.rng = random.Random(spec.seed)  # the closed loop's users share one stream of draws
        self.t0 = 0.0
        self.users = 0
        self.lags_ms: list[float] = []
        self.stopped = Stopped("", 0.0)
        self.env: Environment | None = None
        self.schedule: ScheduleLoop | None = None  # a workload's conversations, when load.workload is set
        self.prefix = ""  # a distributed worker's pair-id prefix ("w1-"): ids stay unique across processes

    def start(self) -> None:
        """The time origin: set by run(), or by a distributed worker's first user."""
        if not self.t0:
            self.t0 = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def record(self, record: dict[str, Any]) -> None:
        """Keep a finished request's record and count it in locust's statistics."""
        if self.prefix:
            record = {**record, "pair": f"{self.prefix}{record.get('pair', '')}"}
        self.records.append(record)
        assert self.env is not None
        self.env.events.request.fire(  # type: ignore[no-untyped-call]
            request_type="generate_stream",
            name=record["arm"],
            response_time=record["latency_ms"],
            response_length=record["output_tokens"],
            exception=record["error"] or None,
            context={},
        )

    def measured(self) -> tuple[list[float], list[float]]:
        """Latencies of the successful requests started after the warm-up, per arm."""
        arms: dict[str, list[float]] = {"baseline": [], "candidate": []}
        for r in list(self.records):
            if not r["error"] and r["t_start_s"] >= self.spec.warmup_s and r["arm"] in arms:
                arms[r["arm"]].append(float(r["latency_ms"]))
        return arms["baseline"], arms["candidate"]

    def enough(self) -> bool:
        """Every arm has min_requests successful requests started after the warm-up."""
        ok: dict[str, int] = dict.fromkeys(self.spec.arms, 0)
        for r in self.records:
            if not r["error"] and r["t_start_s"] >= self.spec.warmup_s:
                ok[r["arm"]] += 1
        return all(n >= self.spec.min_requests for n in ok.values())


class PairsUser(User):
    """A closed-loop user: sends a pair, waits for both responses, sends the next."""

    abstract = True  # bound to one run by user_class()
    wait_time = constant(0)
    load: ClassVar[Load]

    def on_start(self) -> None:
        self.load.start()
        self.user_id = self.load.users
        self.load.users += 1
        spec = self.load.spec
        host, port = spec.url.rsplit(":", 1)
        # The standard library's client, made cooperative by gevent's monkey-patching: its
        # readline() on a chunked body returns each server-sent event as soon as it arrives.
        self.connection = http.client.HTTPConnection(host, int(port), timeout=spec.timeout_s)

    def on_stop(self) -> None:
        self.connection.close()

    @task
    def pair(self) -> None:
        prompt, max_new, arms = self.load.spec.draw(self.load.rng)
        self.pairs = getattr(self, "pairs", 0) + 1
        pair = f"{self.user_id}:{self.pairs}"
        for arm, model in arms:
            self.load.record(send(self.connection, arm, model, prompt, max_new, self.load.t0, self.user_id, pair))


class ArrivalsUser(User):
    """The one user of an open loop: its task is the scheduler."""

    abstract = True
    wait_time = constant(0)
    load: ClassVar[Load]
    loop: ClassVar[Loop]

    @task
    def schedule(self) -> None:
        self.load.start()
        self.loop.run(self.load.t0)
        while True:  # a finite schedule ran out: the stopping rule still ends the load
            gevent.sleep(3600)


def user_class(load: Load) -> tuple[type[User], int, Loop | None]:
    """The locust user that paces this load as its mode says, how many of it, the open loop if any."""
    spec = load.spec
    if spec.workload is not None:  # a workload's conversations (gates/loadgen/schedule.py)
        conversations = read_conversations(Path(spec.workload))
        if spec.mode == LoadMode.closed:
            users, times = spec.users, None
        elif spec.rate is None:  # a trace's own times
            users, times = None, None
        else:
            arrivals = LOAD_MODES[spec.mode].pacing(spec)
            assert isinstance(arrivals, Arrivals)
            users, times = None, arrivals.times
        sched = ScheduleLoop(spec, conversations, load.record, users, times)
        load.schedule = sched
        return type("ArrivalsUser", (ArrivalsUser,), {"abstract": False, "load": load, "loop": sched}), 1, sched
    pacing = LOAD_MODES[load.spec.mode].pacing(load.spec)
    if isinstance(pacing, Users):
        bound = type("PairsUser", (PairsUser,), {"abstract": False, "load": load})
        return bound, pacing.count, None
    assert isinstance(pacing, Arrivals)
    loop = OpenLoop(load.spec, pacing.times, load.record)
    return type("ArrivalsUser", (ArrivalsUser,), {"abstract": False, "load": load, "loop": loop}), 1, loop


def watch_loop(lags_ms: list[float]) -> None:
    """How late a 20 ms sleep wakes up: a busy event loop delays every response we time."""
    while True:
        before = time.monotonic()
        gevent.sleep(0.02)
        lags_ms.append((time.monotonic() - before - 0.02) * 1000)


def fixed_stop(load: Load, runner: Runner) -> None:
    """duration_s first; then on until every arm has min_requests or the deadline passes."""
    spec = load.spec
    while True:
        gevent.sleep(0.2)
        elapsed = load.elapsed()
        if elapsed >= spec.duration_s and load.enough():
            reason = "duration" if elapsed < spec.duration_s + 0.5 else "min_requests"
            break
        if elapsed >= spec.deadline_s:
            reason = "max_duration"
            break
        if load.schedule is not None and load.schedule.finished:
            reason = "workload_end"  # a trace replayed to its last line
            break
    load.stopped = Stopped(reason, round(load.elapsed(), 3))
    runner.quit()


def adaptive_stop(load: Load, runner: Runner, adaptive: dict[str, Any]) -> None:
    """Looks every look_interval_s from first_look_s; settled -> stop; at max_duration_s the last look."""
    spec = load.spec
    plan = Plan(**{**adaptive["plan"], "tail_limits": tuple(map(tuple, adaptive["plan"]["tail_limits"]))})
    looks: list[Look] = []
    next_look = float(adaptive["first_look_s"])
    span = max(spec.deadline_s - spec.warmup_s, 1e-9)
    while True:
        gevent.sleep(0.2)
        elapsed = load.elapsed()
        last = elapsed >= spec.deadline_s
        if not last and elapsed < next_look:
            continue
        next_look = max(next_look + float(adaptive["look_interval_s"]), elapsed)
        b, c = load.measured()
        if min(len(b), len(c)) < plan.min_samples and not last:
            continue
        look = Look(len(b), len(c), 1.0 if last else min((elapsed - spec.warmup_s) / span, 1.0))
        if not looks or look.info > looks[-1].info or last:
            looks.append(look)
        decision = settle(b, c, looks, plan) if min(len(b), len(c)) >= 2 else None
        if last or (decision is not None and decision.status != CONTINUE):
            break
    load.stopped = Stopped(
        reason="max_duration" if last else "settled",
        duration_s=round(load.elapsed(), 3),
        decision=decision.status if decision else "no_data",
        detail=decision.reason if decision else "too few requests",
        looks=tuple(looks),
    )
    runner.quit()


def run(load: Load) -> tuple[Environment, Loop | None, float, float]:
    """Start the users and the stopping rule; once the load has stopped, return locust's
    environment, the open loop if any, and the wall and CPU seconds the generator spent."""
    spec = load.spec
    cls, users, loop = user_class(load)
    env = load.env = Environment(user_classes=[cls])
    runner = env.create_local_runner()
    proc = psutil.Process()
    cpu0 = proc.cpu_times()
    load.t0 = time.monotonic()
    watcher = gevent.spawn(watch_loop, load.lags_ms)
    runner.start(users, spawn_rate=spec.spawn_rate)
    if spec.adaptive:
        gevent.spawn(adaptive_stop, load, runner, spec.adaptive)
    else:
        gevent.spawn(fixed_stop, load, runner)
    runner.greenlet.join()
    if loop is not None:  # arrivals have stopped; the requests in flight finish (or time out) first
        loop.drain(spec.timeout_s + 1.0)
    watcher.kill()
    wall = load.elapsed()
    cpu1 = proc.cpu_times()
    return env, loop, wall, (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)


def write_records(path: Path, records: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=RECORD_FIELDS)
        writer.writeheader()
        writer.writerows(records)


def summarize(load: Load, env: Environment, loop: Loop | None, wall: float, cpu_s: float) -> GeneratorSummary:
    stats = env.stats.total
    return GeneratorSummary(
        wall_s=wall,
        generator_cpu_s=cpu_s,
        generator_cpu_util=cpu_s / wall if wall > 0 else None,
        loop_lag_ms_p50=_pct(load.lags_ms, 50),
        loop_lag_ms_p95=_pct(load.lags_ms, 95),
        loop_lag_samples=len(load.lags_ms),
        users=load.spec.users,
        locust_requests=stats.num_requests,
        locust_failures=stats.num_failures,
        records=len(load.records),
        stopped=load.stopped,
        mode=load.spec.mode,
        arrivals=loop.summary() if loop is not None else None,
    )


class MasterLoad(Load):
    """The distributed master's state: no records of its own, the workers' statistics instead."""

    def enough(self) -> bool:
        assert self.env is not None
        for arm in self.spec.arms:
            entry = self.env.stats.entries.get((arm, "generate_stream"))
            if entry is None or entry.num_requests - entry.num_failures < self.spec.min_requests:
                return False
        return True


def run_master(spec_path: Path, out_dir: Path) -> int:
    """Locust's master over ``spec.processes`` worker processes (gates/loadgen/distributed.py)."""
    load = MasterLoad(LoadSpec.read(spec_path))
    spec, n = load.spec, load.spec.processes
    cls, _, _ = user_class(load)
    env = load.env = Environment(user_classes=[cls])
    port = distributed.free_port()
    runner = env.create_master_runner("127.0.0.1", port)
    procs = distributed.start_workers(spec_path, out_dir, n, port, PARENT_ENV)
    try:
        deadline = time.monotonic() + 120
        while runner.worker_count < n:
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError(
                    f"{runner.worker_count} of {n} locust workers connected (see {out_dir}/locust-w*.log)"
                )
            gevent.sleep(0.1)
        load.t0 = time.monotonic()
        users = spec.users if spec.mode == LoadMode.closed else n  # open: one scheduler per worker
        runner.start(users, spawn_rate=max(spec.spawn_rate, float(users)))
        gevent.spawn(fixed_stop, load, runner)
        runner.greenlet.join()
        for p in procs:
            p.wait(timeout=spec.timeout_s + 30)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    distributed.merge_records(out_dir, n)
    distributed.merge_summaries(out_dir, n, load.stopped, spec.users, spec.mode, spec.rate).write(
        out_dir / "summary.json"
    )
    return 0


def run_distributed_worker(spec_path: Path, out_dir: Path, index: int, port: int) -> int:
    """One locust worker: its share of the users (open loop: rate / processes, its own seed)."""
    spec = LoadSpec.read(spec_path)
    rate = spec.rate / spec.processes if spec.rate is not None else None
    load = Load(dataclasses.replace(spec, seed=spec.seed + 7919 * (index + 1), rate=rate))
    load.prefix = f"w{index}-"
    cls, _, loop = user_class(load)
    env = load.env = Environment(user_classes=[cls])
    runner = env.create_worker_runner("127.0.0.1", port)
    proc = psutil.Process()
    cpu0 = proc.cpu_times()
    started = time.monotonic()
    watcher = gevent.spawn(watch_loop, load.lags_ms)
    runner.greenlet.join()
    if loop is not None:
        loop.drain(spec.timeout_s + 1.0)
    watcher.kill()
    cpu1 = proc.cpu_times()
    wall = time.monotonic() - started
    write_records(out_dir / f"requests-w{index}.csv", load.records)
    cpu_s = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    summarize(load, env, loop, wall, cpu_s).write(out_dir / f"summary-w{index}.json")
    return 0


def main(argv: list[str]) -> int:
    if os.environ.get(PARENT_ENV):
        die_with_parent(int(os.environ[PARENT_ENV]))
    if len(argv) == 5 and argv[2] == "--worker":
        return run_distributed_worker(Path(argv[0]), Path(argv[1]), int(argv[3]), int(argv[4]))
    load = Load(LoadSpec.read(Path(argv[0])))
    out_dir = Path(argv[1])
    if load.spec.processes > 1:
        return run_master(Path(argv[0]), out_dir)
    env, loop, wall, cpu_s = run(load)
    write_records(out_dir / "requests.csv", load.records)
    summarize(load, env, loop, wall, cpu_s).write(out_dir / "summary.json")
    return 0


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
