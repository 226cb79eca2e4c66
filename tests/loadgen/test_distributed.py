"""locust's distributed mode on the real tritonserver: a master and two worker processes carry one
paired load, closed and open loop; records merged, pair ids unique, both arms in every pair."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gates.loadgen.run import run_worker
from gates.loadgen.spec import LoadSpec
from gates.loadgen.stats import read_records
from gates.triton.repository import write_model
from gates.triton.server import TritonServer


def _incomplete_pairs(records: list[dict[str, object]]) -> int:
    """Pairs without both arms; a pair id never holds two requests of one arm (ids unique across workers)."""
    by_pair: dict[str, list[str]] = {}
    for r in records:
        by_pair.setdefault(str(r["pair"]), []).append(str(r["arm"]))
    assert all(len(arms) == len(set(arms)) for arms in by_pair.values())
    return sum(set(arms) != {"baseline", "candidate"} for arms in by_pair.values())


@pytest.mark.integration
def test_two_locust_workers_carry_one_paired_load(tmp_path: Path, tiny_model: Path, no_leaked_servers: None) -> None:
    repo = tmp_path / "models"
    write_model(repo, "b", tiny_model)
    write_model(repo, "c", tiny_model)
    base = dict(
        arms={"baseline": "b", "candidate": "c"},
        prompts=("Four score and seven years",),
        prompt_weights=(1.0,),
        users=4,
        spawn_rate=4.0,
        duration_s=5.0,
        max_new_tokens=2,
        max_new_tokens_max=2,
        timeout_s=10.0,
        processes=2,
    )
    with TritonServer(repo, tmp_path / "triton") as server:
        for name in ("b", "c"):
            server.load_model(name)
        closed = read_records(run_worker(LoadSpec(url=server.url, **base), tmp_path / "closed", server.check_alive))  # type: ignore[arg-type]
        spec = LoadSpec(url=server.url, **{**base, "mode": "open", "rate": 6.0, "arrivals": "constant"})  # type: ignore[arg-type]
        opened = read_records(run_worker(spec, tmp_path / "open", server.check_alive))
    for records, out in ((closed, "closed"), (opened, "open")):
        summary = json.loads((tmp_path / out / "summary.json").read_text())
        assert summary["processes"] == 2 and summary["records"] == len(records)
        assert {str(r["pair"])[:3] for r in records} == {"w0-", "w1-"}  # both workers sent requests
        assert all(r["ok"] for r in records)
        # every pair went to both arms, but for the one a closed-loop user was sending when the load
        # stopped (locust stops its users mid-task, as a single process does)
        assert _incomplete_pairs(records) <= (4 if out == "closed" else 0)
    # open loop: each worker at 3/s, constant arrivals: 6/s per arm in all (±1 per worker at the edges)
    starts = [r for r in opened if r["arm"] == "baseline" and float(r["t_start_s"]) < 5.0]  # type: ignore[arg-type]
    assert abs(len(starts) - 30) <= 3, len(starts)
