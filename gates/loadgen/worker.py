"""The locust process: ``python -m gates.loadgen.worker SPEC.json OUT_DIR``.

It runs in its own process because locust needs gevent's monkey-patching, which must happen
before anything else is imported and would otherwise leak into the gates process (subprocess
handling, torch). Each simulated user sends baseline and candidate requests alternately, in a
random order per pair, so both arms see the same time window, the same prompts and the same
contention. Every request becomes one row of ``requests.csv``; ``summary.json`` records what the
generator itself used (CPU), for the self-check.
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

RUN_STARTED = time.monotonic()


def main(argv: list[str]) -> int:
    import gevent
    import psutil
    import tritonclient.http as httpclient
    from locust import User, constant, task
    from locust.env import Environment

    from gates.loadgen.spec import RECORD_FIELDS, LoadSpec
    from gates.triton.client import build_inputs

    spec = LoadSpec.read(Path(argv[0]))
    out_dir = Path(argv[1])
    records: list[dict[str, Any]] = []
    rng = random.Random(spec.seed)
    state = {"t0": 0.0, "next_user": 0}

    class ArmsUser(User):
        wait_time = constant(0)

        def on_start(self) -> None:
            self.user_id = state["next_user"]
            state["next_user"] += 1
            self.client = httpclient.InferenceServerClient(
                url=spec.url, connection_timeout=spec.timeout_s, network_timeout=spec.timeout_s
            )
            self.outputs = [httpclient.InferRequestedOutput("TOKEN_IDS")]

        def on_stop(self) -> None:
            self.client.close()

        @task
        def pair(self) -> None:
            prompt = spec.prompts[rng.randrange(len(spec.prompts))]
            arms = list(spec.arms.items())
            rng.shuffle(arms)
            for arm, model in arms:
                self._one(arm, model, prompt)

        def _one(self, arm: str, model: str, prompt: str) -> None:
            start = time.monotonic()
            error, tokens = "", 0
            try:
                result = self.client.infer(model, build_inputs(prompt, spec.max_new_tokens), outputs=self.outputs)
                tokens = int(result.as_numpy("TOKEN_IDS").size)
            except Exception as exc:  # every failure is data: it counts in the error rate
                error = f"{type(exc).__name__}: {exc}"[:300]
            elapsed = time.monotonic() - start
            records.append(
                {
                    "arm": arm,
                    "user": self.user_id,
                    "t_start_s": round(start - state["t0"], 6),
                    "latency_ms": round(elapsed * 1000, 3),
                    "ok": int(not error),
                    "output_tokens": tokens,
                    "error": error,
                }
            )
            self.environment.events.request.fire(
                request_type="infer",
                name=arm,
                response_time=elapsed * 1000,
                response_length=tokens,
                exception=error or None,
                context={},
            )

    env = Environment(user_classes=[ArmsUser])
    runner = env.create_local_runner()
    proc = psutil.Process()
    cpu0 = proc.cpu_times()
    state["t0"] = time.monotonic()
    runner.start(spec.users, spawn_rate=spec.spawn_rate)
    gevent.spawn_later(spec.duration_s, runner.quit)
    runner.greenlet.join()
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
                "users": spec.users,
                "locust_requests": stats.num_requests,
                "locust_failures": stats.num_failures,
                "records": len(records),
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
