"""A rung's gate run stopped between its load and its quality measurement when its cost already
settles the candidate's fate.

The end of a rung stops a candidate that is certainly dearer than one settled non-inferior
(gates/search/halving.py). That test reads the cost alone, and the cost is known once the load
has run: made there (:func:`~gates.search.halving.dearer_than`, against the candidates already
measured at the same rung, at that rung's boundary), it spares the drift and quality stages of a
candidate that cannot be the answer — on a CPU the slowest candidates are also the slowest to
measure. The run is then INCONCLUSIVE ("stopped by gates search"), its report has the load and
the cost, and ``search-stop.json`` in its directory says why, so a resumed search reads the same
decision back.

The cost is computed from the load result as the report computes it (``gates.cost``: price over
each arm's output throughput); for the other objectives (``load.sweep`` capacity, p95 latency,
model size) or without ``gates.cost`` the check does nothing and the run goes on.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from gates.config.search import Objective
from gates.context import RunContext
from gates.errors import GatesError
from gates.judge.cost import compare
from gates.loadgen.stats import read_records
from gates.record import BuildResult, LoadResult
from gates.search.measure import STOP_FILE, RungResult, cost_figures

Check = Callable[[RungResult], str | None]  # this run's cost so far -> why it stops (None: go on)


class SearchStopped(GatesError):
    """The search stopped this gate run before its quality measurement (not a failure of the run)."""


def load_rung(ctx: RunContext, objective: Objective, margin: float) -> RungResult | None:
    """This run's cost as :func:`~gates.search.measure.read_rung` will read it from the report, from
    the load alone (its quality not measured: ``stopped`` is set); None where it cannot be."""
    load, cost = ctx.get(LoadResult), ctx.config.gates.cost
    if objective != Objective.COST_AT_SLO or load is None or load.capacity is not None or cost is None:
        return None
    b_cap, c_cap = load.capacity_tokens_per_s("baseline"), load.capacity_tokens_per_s("candidate")
    if not (b_cap and c_cap):
        return None
    figures = compare(cost.usd_per_hour, b_cap, c_cap)
    cand, base = figures.candidate_usd_per_mtok, figures.baseline_usd_per_mtok
    rows = read_records(load.records_path) if load.records_path.is_file() else []
    log_ratio, se, own = cost_figures(cand, base, objective, rows)
    build = ctx.get(BuildResult)
    return RungResult(
        run_dir=str(ctx.run_dir),
        verdict="",
        reason="",
        cost=log_ratio,
        cost_se=se,
        drop=float("inf"),
        margin=margin,
        quality_pass=False,
        candidate_value=cand,
        baseline_value=base,
        digest=build.candidate.build_digest if build else None,
        report=None,
        own_se=own,
        baseline_digest=build.baseline.build_digest if build else None,
        stopped="(not yet)",
    )


class CostCheck:
    """The stage, after the load: ``check`` says why the run stops here, or None."""

    name = "search_check"

    def __init__(self, objective: Objective, margin: float, check: Check) -> None:
        self.objective, self.margin, self.check = objective, margin, check

    def run(self, ctx: RunContext) -> None:
        partial = load_rung(ctx, self.objective, self.margin)
        why = self.check(partial) if partial is not None else None
        if why is None:
            return
        assert partial is not None
        seen = {  # what the decision read, to check against the report's figures (the same load)
            "reason": why,
            "candidate_value": partial.candidate_value,
            "baseline_value": partial.baseline_value,
            "log_ratio": partial.cost,
            "log_ratio_se": partial.cost_se,
            "own_se": partial.own_se,
        }
        (ctx.run_dir / STOP_FILE).write_text(json.dumps(seen, indent=2))
        ctx.progress(f"stopped by gates search before the quality measurement: {why}")
        raise SearchStopped(f"stopped by gates search before the quality measurement: {why}")
