"""Runs the stages in order with one context; fails closed.

Measurement stages (optimize … drift) either all succeed, or the run becomes INCONCLUSIVE with
the error as its reason (exit 3): a crashed server or a timeout is never read as a result.
Bad input (exit 2) is detected by the preflight stage before any model work. The report is
written in every case where there is something to report, so nothing measured is lost.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path

from gates.artifacts import ArtifactStore, changed_since
from gates.config.parse import PipelineFile
from gates.context import RunContext
from gates.errors import BadInputError, CapabilityError, ExitCode, GatesError, InfraError
from gates.judge.verdict import FAIL, INCONCLUSIVE, PASS, Verdict
from gates.record import ReportResult
from gates.stages import MEASURE_STAGES, Stage
from gates.stages.deploy import DeployStage
from gates.stages.judge import JudgeStage
from gates.stages.publish import PublishStage
from gates.stages.report import ReportStage
from gates.triton.warm import warm_start

VERDICT_EXIT = {PASS: ExitCode.PASS, FAIL: ExitCode.FAIL, INCONCLUSIVE: ExitCode.INFRA}


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    run_id: str
    verdict: str
    reason: str
    exit_code: ExitCode
    run_dir: Path
    report_md: Path | None
    report_json: Path | None
    # the candidate's build digest (the content of what was served): what promotion checks against
    candidate_digest: str | None = None


def new_run_id(name: str) -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{name}-{uuid.uuid4().hex[:6]}"


def run_pipeline(
    pipeline: PipelineFile,
    artifacts_root: Path,
    output_dir: Path | None = None,
    progress: Callable[[str], None] = print,
    env: dict[str, str] | None = None,
    stages: tuple[Stage, ...] = MEASURE_STAGES,
) -> RunOutcome:
    run_id = new_run_id(pipeline.config.name)
    run_dir = output_dir or artifacts_root / "runs" / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    ctx = RunContext(
        pipeline=pipeline,
        store=ArtifactStore(artifacts_root),
        run_dir=run_dir,
        run_id=run_id,
        progress=progress,
        env=dict(env or {}),
    )
    error: GatesError | None = None
    # Servers stop in the background once measurement is over: the judge and the report do not
    # need them, and a tritonserver's graceful stop takes seconds (its Python stubs unload). The
    # run returns only after they are stopped.
    releaser = threading.Thread(target=_release, args=(ctx,), name="gates-release")
    try:
        try:
            if warm_start_wanted(stages):
                ctx.warm = warm_start(pipeline.config, ctx.store, run_dir / "triton")
                if ctx.warm is not None:  # stopped on every exit path, like the deploy stage's server
                    ctx.resources.callback(ctx.warm.close)
            for stage in stages:
                _timed(ctx, stage)
        except (BadInputError, CapabilityError) as exc:
            if ctx.record.preflight is None:
                raise  # refused before any model work: nothing to judge or report
            error = exc  # found later (a checkpoint, a refused architecture): reported, then exit 2/3
        except GatesError as exc:
            error = exc
        except Exception as exc:  # a bug must not look like a verdict
            (run_dir / "traceback.txt").write_text(traceback.format_exc())
            error = GatesError(
                f"internal error in gates: {type(exc).__name__}: {exc} (traceback in {run_dir}/traceback.txt)"
            )
        finally:
            releaser.start()
        if error is None:
            try:
                _still_what_was_measured(ctx)
            except GatesError as exc:
                error = exc
            except OSError as exc:  # a file removed while it was hashed
                error = InfraError(f"the measured artifacts could not be re-read: {exc}")
        return _conclude(ctx, error)
    finally:
        releaser.join()


def _release(ctx: RunContext) -> None:
    try:
        ctx.resources.close()
    except Exception as exc:  # stopping is best effort (TritonServer.stop escalates to SIGKILL itself)
        ctx.progress(f"warning: releasing the run's servers failed: {type(exc).__name__}: {exc}")


def _conclude(ctx: RunContext, error: GatesError | None) -> RunOutcome:
    """Judge (or take the error as the reason), report, publish, write run.json."""
    progress, run_dir, run_id, pipeline = ctx.progress, ctx.run_dir, ctx.run_id, ctx.pipeline
    if error is None:
        _timed(ctx, JudgeStage())
        verdict = ctx.need(Verdict)
    else:
        progress(f"error: {error}")
        verdict = Verdict(
            INCONCLUSIVE, f"inconclusive: the run did not complete: {str(error).splitlines()[0][:300]}", ()
        )
        ctx.put(verdict)
        ctx.record.error = str(error)
    build = ctx.record.build
    digest = (build.candidate.build_digest or None) if build is not None else None  # no build: nothing to promote
    # serve.triton names an existing Triton: nothing ties the models that answered to the built
    # artifacts, so the verdict is recorded without the digest, and promotion refuses it
    bound = ctx.record.deploy is None or ctx.record.deploy.server is not None
    if not bound:
        progress(
            "verdict unbound: an existing Triton served the arms; the built digest is not recorded (not promotable)"
        )
        digest = None
    exit_code = VERDICT_EXIT[verdict.verdict]
    if isinstance(error, BadInputError):
        exit_code = error.exit_code
    report: ReportResult | None = None
    try:  # the verdict is decided: a report that cannot be written must not lose it (run.json, the ledger)
        _timed(ctx, ReportStage())
        report = ctx.need(ReportResult)
    except Exception as exc:
        detail = str(exc) if isinstance(exc, GatesError) else str(exc)[:300]  # ours name the file and key
        progress(f"error: the report could not be written: {type(exc).__name__}: {detail}")
        exit_code = ExitCode.INFRA
    try:
        if report is not None:
            _timed(ctx, PublishStage())
    except Exception as exc:  # the report is on disk; say what failed, do not claim success, keep run.json
        progress(f"publish failed: {exc if isinstance(exc, GatesError) else f'{type(exc).__name__}: {exc}'}")
        progress(f"(re-post the report later with: gates publish {run_dir})")
        exit_code = ExitCode.INFRA
    (run_dir / "run.json").write_text(
        json.dumps(
            {
                "run_id": run_id,
                "pipeline": pipeline.config.name,
                "config": str(pipeline.path),
                "verdict": verdict.verdict,
                "reason": verdict.reason,
                "exit_code": int(exit_code),
                "bound": bound,  # false: judged models gates did not serve (serve.triton: an existing server)
                "durations_s": ctx.durations_s,
                "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
            indent=2,
        )
    )
    md, js = (report.markdown, report.json) if report is not None else (None, None)
    return RunOutcome(run_id, verdict.verdict, verdict.reason, exit_code, run_dir, md, js, digest)


def warm_start_wanted(stages: tuple[Stage, ...]) -> bool:
    """Only a run that deploys starts Triton early (the default stages do)."""
    return any(isinstance(s, DeployStage) for s in stages)


def _still_what_was_measured(ctx: RunContext) -> None:
    """The digests the verdict will name must still be what was served: a model artifact or an
    engine build deleted or changed during the run makes it INCONCLUSIVE, never a PASS recorded
    for files that are gone."""
    opt = ctx.record.optimize
    for ref in (opt.baseline, opt.candidate) if opt is not None else ():
        problem = changed_since(ref.path, ref.digest)
        if problem is not None:
            raise InfraError(f"the {ref.role} artifact changed while it was measured: {problem}")
    build = ctx.record.build
    for arm, served in (("baseline", build.baseline), ("candidate", build.candidate)) if build is not None else ():
        if served.serve_path == served.model.path:
            continue  # served as it is: checked above, against the same bytes
        problem = changed_since(served.serve_path, served.build_digest)
        if problem is not None:
            raise InfraError(f"the {arm} engine build changed while it was measured: {problem}")


def _timed(ctx: RunContext, stage: Stage) -> None:
    ctx.progress(f"[{stage.name}] …")
    started = ctx.clock()
    try:
        stage.run(ctx)
    finally:
        ctx.durations_s[stage.name] = round(ctx.clock() - started, 3)
    ctx.progress(f"[{stage.name}] done in {ctx.durations_s[stage.name]:.1f}s{_note(ctx, stage.name)}")


def _note(ctx: RunContext, name: str) -> str:
    note = getattr(getattr(ctx.record, name, None), "note", "")
    return f" — {note}" if note else ""
