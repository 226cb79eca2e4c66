"""The typed model of report.json: the contract with every consumer, and the source of its JSON Schema.

``gates/report/assemble.py`` builds report.json as a plain dict; this model says what that dict
may hold, key by key. The report stage checks the JSON it is about to write against the model
(:func:`report_json`), so a producer that adds, drops or retypes a key fails the run closed,
naming the key, instead of changing the contract silently. ``report.schema.json`` beside this
module is generated from the model (``python -m gates.report.schema``) and shipped in the wheel.

Adding a key (e.g. ``baseline.served_by``) takes one line in the class of its section below
(``served_by: str | None``), then: bump the ``Literal`` of ``Report.schema_version``, run
``python -m gates.report.schema`` and record the hash it prints in ``SCHEMA_HISTORY``.

Conventions: every object lists exactly its keys (``extra="forbid"``) unless it says it is open;
every key is always written (``null`` when it has no value) unless it has a default here; a
measured number is :data:`Measured`, ``null`` where it was not finite (NaN or infinity).
"""

from __future__ import annotations

import json
from typing import Any, Literal, get_args

from pydantic import ConfigDict, ValidationError

from gates.errors import InfraError
from gates.report.model_base import Measured, Status, _Object, _Open
from gates.report.model_load import Capacity, Cost, Load


# -- what was compared ---------------------------------------------------------------------------
class Quantization(_Open):
    """What was done to the candidate's weights and by whom: the engine's own quantization when it
    quantized at build (e.g. onnxruntime-genai's builder, with its options: ``block_size``,
    ``accuracy_level``, ...), else Model Optimizer's."""

    format: str
    """The quantization format ("none": no quantization)."""
    by: str | None
    """What quantized: "nvidia-modelopt", "onnxruntime-genai builder", ...; null when nothing did."""
    path: str | None
    """"real" or "simulated" (fake-quant on float kernels); null before preflight finished."""
    kv_cache: str


class Kernels(_Object):
    baseline: str
    candidate: str


class Engine(_Object):
    backend: str
    latency_representative: bool | None
    """False: the candidate's latency is not the shipped engine's (see latency_note)."""
    latency_note: str | None
    kernels: Kernels | None


class Baseline(_Object):
    digest: str | None
    """The model artifact's digest (what the engine built from)."""
    path: str | None
    build_digest: str | None
    """sha256 over every file Triton's model loads: the identity of what was served."""
    build_path: str | None


class RecipeStep(_Open):
    """One optimization step of the candidate; ``measured`` holds what the step measured, if anything."""

    kind: str
    digest: str
    reused: bool
    build_wall_s: Measured


class Candidate(_Object):
    digest: str | None
    """The model artifact's digest (what the engine built from)."""
    path: str | None
    build_digest: str | None
    """sha256 over every file Triton's model loads: the candidate's identity (the ledger records it
    and promotion checks the deployed canary against it)."""
    build_path: str | None
    reused: bool | None
    """Every optimization step was a cache hit."""
    recipe: str | None
    steps: list[RecipeStep]


# -- drift and quality -------------------------------------------------------------------------
class TagDrift(_Object):
    prompts: float
    exact_match_rate: Measured
    top1_agreement: Measured
    mean_kl: Measured


class PromptDrift(_Object):
    id: str
    suite: str
    line: int
    tags: list[str]
    weight: float
    prompt: str
    baseline_text: str
    candidate_text: str
    exact_match: bool
    edit_distance: int
    first_divergence: int | None
    positions: int
    top1_agreement: Measured
    mean_kl: Measured
    max_kl: Measured
    baseline_task_pass: bool | None
    candidate_task_pass: bool | None
    temperature: float | None
    baseline_samples: list[bool]
    candidate_samples: list[bool]
    mean_kl_full: Measured
    """Over the whole vocabulary, when both models returned it (golden.full_kl); null otherwise."""
    candidate_tokens: int = 0
    """Tokens of the candidate's greedy answer (the baseline's are ``positions``)."""


class PromptSummary(_Object):
    id: str
    mean_kl: Measured
    top1_agreement: Measured
    exact_match: bool


class BatchedAgreement(_Object):
    prompts: int
    exact_match_rate: Measured
    token_agreement: Measured
    """Tokens before the first divergence, over all one-at-a-time tokens."""
    failed: int


class Drift(_Object):
    prompts: int
    positions: int
    exact_match_rate: Measured
    top1_agreement: Measured
    mean_kl: Measured
    """A lower bound of the full-vocabulary KL: the baseline's top_k tokens plus one bucket for the rest."""
    max_kl: Measured
    mean_edit_distance: Measured
    baseline_task_pass_rate: Measured
    candidate_task_pass_rate: Measured
    by_tag: dict[str, TagDrift]
    top_k: int
    mean_kl_full: Measured
    """Over the whole vocabulary, when measured (golden.full_kl); null otherwise."""
    kl_note: str
    worst: list[PromptDrift]
    per_prompt: list[PromptSummary]
    rows: str
    batched: dict[str, BatchedAgreement] | None = None
    """Per arm: its greedy answers asked all at once (sharing the engine's batches) against one at a time."""


class Gate(_Object):
    name: str
    status: Status
    observed: Measured
    threshold: str
    reason: str
    interval: tuple[Measured, Measured] | None
    p_value: Measured
    blocking: bool
    """False: shown and scored, but it cannot decide the verdict (advisory)."""


class Interval(_Object):
    estimate: Measured
    low: Measured
    high: Measured


class QualityEntry(_Object):
    name: str
    kind: str
    n: int
    baseline: Interval | None
    candidate: Interval | None
    difference: Interval
    p_value: Measured
    detectable_effect: Measured
    status: Status
    threshold: str
    reason: str
    temperature: list[float] = []
    """Sampled items only: the distinct temperatures (absent: every item greedy)."""
    repeats: list[int] = []


class Links(_Object):
    workflow_run: str = ""
    html_report: str = ""


class Machine(_Object):
    """Where the run measured (gates/machine.py): latency, capacity and cost per token are this
    hardware's, and runs on another kind of machine are not expected to agree (schema 10)."""

    cpu: str | None
    logical_cpus: int
    """The CPUs this process could run on (a container's or runner's limit)."""
    isa: list[str]
    """The low-precision instructions the CPU has (avx512_vnni, amx_int8, ...)."""
    memory_bytes: int | None
    gpus: list[str] | None
    """NVIDIA GPUs by name ([]: none; null: nvidia-smi failed)."""
    system: str
    fingerprint: str
    """Twelve hex digits: the same for runs on the same kind of machine (CPU, CPU count, ISA, GPUs)."""


class Serve(_Object):
    batching: Literal["engine", "off"]
    max_batch: int
    """serve.max_batch as configured (0: the engine's default)."""
    kv_cache_gb: Measured
    engine_max_batch: dict[str, int | None]
    """Per arm: the sequences its engine may run in one step, as the served model reported it."""


# -- the drift corpus (golden.drift_corpus) -------------------------------------------------------
class CorpusHistogramBin(_Object):
    low: float
    high: Measured
    """Upper edge (exclusive); null: unbounded."""
    positions: int
    cumulative: Measured
    """Share of positions with KL below ``high``."""


class CorpusPathCheck(_Object):
    """A sample of windows read in one pass (prefill) and token by token (decode) by each arm."""

    windows: int
    positions: int
    top1_differ: dict[str, int]
    kl_paths: dict[str, Measured]
    """Per arm: mean KL(prefill ‖ decode) over the baseline's top-k + rest."""
    kl_prefill: Measured
    kl_decode: Measured
    same_top1_prefill: Measured
    same_top1_decode: Measured


class CorpusWorstWindow(_Object):
    index: int
    source: str
    line: int
    start: int
    tokens: int
    kl_mean: Measured
    kl_max: Measured
    same_top1: Measured
    text: str


class Corpus(_Object):
    """Token-level drift on the corpus: every figure measures the prefill path (each window read in
    one teacher-forced pass by both arms); ``path_check`` states the decode path on a sample."""

    files: list[str]
    context: int
    path: Literal["prefill"]
    documents: int
    windows: int
    tokens: int
    """Scored positions per arm."""
    top_k: int
    level: float
    """Two-sided level of every interval (cluster bootstrap over documents)."""
    interval_method: str
    kl_mean: Interval
    """A lower bound of the full-vocabulary KL (the baseline's top_k tokens + one bucket for the rest)."""
    kl_mean_se: Measured
    """Delete-one-document jackknife."""
    kl_percentiles: dict[str, Interval]
    kl_max: Measured
    tail_mass: dict[str, Measured]
    """The baseline's probability mass outside its top_k: what the KL bound leaves out (mean, p99, max)."""
    dp_mean: Interval
    dp_rms: Measured
    dp_p1: Measured
    dp_p99: Measured
    dp_negative: Measured
    dp_positive: Measured
    dp_sign_p: Measured
    """Exact sign test over documents' mean Δp, two-sided (noise is symmetric, damage is not)."""
    same_top1: Interval
    ppl_baseline: Interval
    ppl_candidate: Interval
    ppl_ratio: Interval
    accept_low: Measured
    accept_high: Measured
    """Σ min(p, q) per position, mean: the candidate's expected acceptance as a draft for the baseline."""
    histogram: list[CorpusHistogramBin]
    seconds: dict[str, float]
    """Per arm: summed wall time of its scoring requests."""
    tokens_per_s: dict[str, Measured]
    path_check: CorpusPathCheck | None
    worst: list[CorpusWorstWindow]
    rows: str | None


# -- the report --------------------------------------------------------------------------------
class Report(_Object):
    """report.json, as gates writes it after every run that got past preflight."""

    model_config = ConfigDict(title="gates report.json")

    schema_version: Literal[10]
    """Bumped whenever this schema changes."""
    verdict: Literal["PASS", "FAIL", "INCONCLUSIVE"]
    reason: str
    pipeline: str
    config_path: str
    run_id: str
    error: str | None
    """Why the measurement stopped (the run is then INCONCLUSIVE); null when it completed."""
    model_source: str
    quantization: Quantization
    engine: Engine
    baseline: Baseline
    candidate: Candidate
    load: Load | None
    drift: Drift | None
    gates: list[Gate]
    durations_s: dict[str, float]
    links: Links
    tools: dict[str, str]
    cost: Cost | None
    capacity: Capacity | None
    quality: list[QualityEntry]
    confidence_level: float
    """Two-sided level of every quality interval shown."""
    quality_warnings: list[str]
    serve: Serve | None = None
    """How both arms were served: the serve section's batching settings and what each engine ran."""
    corpus: Corpus | None = None
    """Token-level drift on golden.drift_corpus (schema 5); null when no corpus is configured."""
    machine: Machine | None = None
    """The machine the run measured on (schema 10); null in a report that does not know it."""


SCHEMA_VERSION: int = get_args(Report.model_fields["schema_version"].annotation)[0]

# sha256 of report.schema.json at each schema_version: a changed schema without a new version fails
# tests/report/test_schema.py. Version 1 (gates before the schema existed) had no schema file.
SCHEMA_HISTORY: dict[int, str] = {
    2: "64f459bfbbf4e4945c1047d9d74d87befd7cc02c8203d434e7bd439aaedd264e",
    3: "a593654eaff6e417b2056c72c8e0ccdce36f509f51492c541b7ff4ae62f9a7c8",
    4: "5160ede53adbe82418665269fe1c28cf0efdd8661c0e71828b5b5e95c2724b54",
    5: "b883e5e2f4b824b5fb49bbf83a627cf551def8a3b8a16a54c1dec7a84acdd870",  # corpus and workloads
    6: "01d7b53539702ea67ceb9442292b22f8025bec52a91a8a81f8e9b72c0e5dce5d",  # goodput at SLO tiers per arm
    7: "5da0ee32d4f68a3d19b6228e543c12a561cbff0e32f93d54242093f36657bf73",  # capacity search: each arm its own rate
    8: "77f6c8b1c1c6fa0d84e6781f2c84805e88235b93affcb7cd5cfb7bfe388d0745",  # capacity search: arms' paired correlation
    9: "c247e8974a518fe9152f59e5f355ebc2ba34a6c46c23741eccf82ea1d7229bb7",  # capacity search: rates that arrived
    10: "8bc012222741ea650fa30ed92765d9fa5b574368c1c22f815a9c61d049787927",  # the machine measured on
}


def _where(loc: tuple[int | str, ...]) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc).lstrip(".") or "(top)"


def report_json(report: dict[str, Any]) -> str:
    """The text of report.json for ``report``, checked against the model; InfraError naming each bad key."""
    try:
        # NaN is not JSON: assemble writes it as null, so one here is a producer bypassing that
        text = json.dumps(report, indent=2, sort_keys=False, allow_nan=False)
    except ValueError as exc:
        raise InfraError(f"report.json: {exc}") from None
    try:
        Report.model_validate_json(text)
    except ValidationError as exc:
        problems = "; ".join(f"{_where(e['loc'])}: {e['msg']}" for e in exc.errors()[:10])
        raise InfraError(
            f"report.json does not match its schema (schema_version {SCHEMA_VERSION}, gates/report/model.py): "
            f"{problems} (a producer changed the report but not its model: add or change the key there)"
        ) from None
    return text
