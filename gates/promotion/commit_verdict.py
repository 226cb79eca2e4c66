"""A commit's verdict from all of its gate runs: the conjunction, per GPU architecture.

The workflow gates each pipeline once per entry of ``GATES_GPU_ARCHS`` (a matrix), so one commit
has several runs, finishing in any order. Taking the last one would let a PASS on one architecture
hide a FAIL on another. The rules, each failing closed:

- a FAIL on any architecture refuses the commit (a later PASS, there or elsewhere, does not undo it:
  re-running until a noisy gate passes is not a check);
- an INCONCLUSIVE run is infrastructure: a later run on the same architecture answers it, so on
  each architecture the latest run must be a PASS;
- every configured architecture must have such a PASS (none configured: every architecture that
  ran), and all of them must have judged the same candidate digest.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence

from gates.errors import BadInputError
from gates.judge.verdict import FAIL, PASS
from gates.ledger import LedgerRun
from gates.models.placement import cuda_capability

UNKNOWN_ARCH = "unknown"  # runs recorded before architectures were
ARCH_ENV = "GATES_GPU_ARCH"  # the matrix entry a run is on (gates.yml sets it from matrix.arch)
ARCHS_ENV = "GATES_GPU_ARCHS"  # the architectures every commit must pass on (the repository variable)


def run_arch(env: Mapping[str, str]) -> str:
    """The architecture a gate run is recorded under: ``$GATES_GPU_ARCH``, else what this machine is
    (``cpu``, or the CUDA compute capability, e.g. ``sm90``)."""
    named = env.get(ARCH_ENV, "").strip()
    if named:
        return named
    capability = cuda_capability()
    return "cpu" if capability is None else f"sm{capability[0]}{capability[1]}"


def configured_architectures(env: Mapping[str, str]) -> tuple[str, ...]:
    """``$GATES_GPU_ARCHS``: a JSON list (as the workflow's variable is) or comma-separated names."""
    raw = env.get(ARCHS_ENV, "").strip()
    if not raw:
        return ()
    if raw.startswith("["):
        try:
            names = json.loads(raw)
        except ValueError as exc:
            raise BadInputError(f"{ARCHS_ENV} is not a JSON list: {exc}") from None
    else:
        names = [n.strip() for n in raw.split(",")]
    if not isinstance(names, list) or not all(isinstance(n, str) and n.strip() for n in names):
        raise BadInputError(f'{ARCHS_ENV} must list architecture names, e.g. ["h100", "l40s"]; got {raw[:80]!r}')
    return tuple(n.strip() for n in names)


@dataclasses.dataclass(frozen=True)
class CommitVerdict:
    passed: bool
    why: str  # what refused it, or what passed
    digest: str | None = None
    report: str | None = None


def commit_verdict(runs: Sequence[LedgerRun], architectures: Sequence[str] = ()) -> CommitVerdict:
    """The verdict of one commit from its ``runs`` (any order); ``architectures``: those configured."""
    if not runs:
        return CommitVerdict(False, "no gate run")
    ordered = sorted(runs, key=lambda r: (r.at, r.id))
    failed = [r for r in ordered if r.verdict == FAIL]
    if failed:
        where = ", ".join(sorted({r.arch or UNKNOWN_ARCH for r in failed}))
        return CommitVerdict(False, f"a gate run is FAIL (on {where}); a FAIL is not undone by another run")
    latest: dict[str, LedgerRun] = {}
    for run in ordered:
        latest[run.arch or UNKNOWN_ARCH] = run
    wanted = list(dict.fromkeys(architectures)) or sorted(latest)
    missing = [a for a in wanted if a not in latest]
    if missing:
        return CommitVerdict(False, f"no gate run on {', '.join(missing)} (configured: {', '.join(wanted)})")
    not_passed = [f"{a}: {latest[a].verdict}" for a in wanted if latest[a].verdict != PASS]
    if not_passed:
        return CommitVerdict(False, f"the last gate run is not PASS on {'; '.join(not_passed)}")
    digests = {latest[a].digest for a in wanted}
    if None in digests or "" in digests:
        return CommitVerdict(False, "a passing run recorded no candidate digest")
    if len(digests) > 1:
        return CommitVerdict(False, "the architectures passed different candidate digests: which one is promoted?")
    last = max((latest[a] for a in wanted), key=lambda r: (r.at, r.id))
    return CommitVerdict(True, f"PASS on {', '.join(wanted)}", last.digest, last.report)
