"""lm-evaluation-harness tasks against a served model: an ``lm_eval`` model class that calls Triton.

Only log-likelihood requests are served (multiple-choice tasks: ``output_type:
multiple_choice`` or ``loglikelihood``): the served model scores a continuation by teacher
forcing and returns its log-probabilities and its own greedy tokens on the same positions, which
is what ``LM.loglikelihood`` returns. Generation tasks and rolling log-likelihood are refused by
name, never approximated. Task YAMLs point at local data (``dataset_path: json`` with
``dataset_kwargs.data_files``): nothing is fetched from a hub.

``lm_eval`` is imported lazily: it is heavy, and only pipelines that configure tasks need it.
"""

from __future__ import annotations

import dataclasses
import glob as globmod
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from gates.errors import BadInputError, DataError
from gates.quality.datafile import check_data_file, read_data_file
from gates.quality.scoring import encode_pair
from gates.triton.client import TextModelClient

MAX_TASK_BYTES = 1_000_000  # a task YAML is a few hundred bytes


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    path: Path
    name: str


@dataclasses.dataclass(frozen=True)
class TaskSamples:
    task: str
    doc_ids: tuple[int, ...]
    correct: tuple[bool, ...]  # per document, the task's ``acc``


def task_spec(path: Path) -> TaskSpec:
    """The task's name from its YAML, checked before any model work."""
    try:
        doc = yaml.safe_load(read_data_file(path, MAX_TASK_BYTES).decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise DataError(f"{path}: cannot read the lm-eval task: {exc}") from None
    except RecursionError:  # PyYAML recurses once per nesting level
        raise DataError(f"{path}: cannot read the lm-eval task: nested too deeply") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("task"), str):
        raise DataError(f"{path}: an lm-eval task YAML needs a 'task' name")
    for data in _data_files(doc.get("dataset_kwargs")):  # lm-eval reads them: checked here, before model work
        # relative to the working directory (Hugging Face datasets' rule); a pattern: each match
        for match in sorted(globmod.glob(data)) if globmod.has_magic(data) else [data]:
            check_data_file(Path(match))
    kind = doc.get("output_type", "generate_until")
    if kind not in ("multiple_choice", "loglikelihood"):
        raise DataError(f"{path}: output_type {kind!r}: only multiple_choice and loglikelihood tasks are served")
    return TaskSpec(path, str(doc["task"]))


def _data_files(kwargs: Any) -> list[str]:
    """The local files of ``dataset_kwargs.data_files``: a path, a list, or splits to either."""
    files = kwargs.get("data_files") if isinstance(kwargs, dict) else None
    values = list(files.values()) if isinstance(files, dict) else [files]
    flat = [f for v in values for f in (v if isinstance(v, list) else [v])]
    return [f for f in flat if isinstance(f, str) and "://" not in f]


def lm_eval_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("lm_eval") is not None


def _served_lm_class() -> type:
    from lm_eval.api.model import LM

    class ServedLM(LM):  # type: ignore[misc]
        """lm-eval's view of one served arm."""

        def __init__(self, client: TextModelClient, model: str, tokenizer: Any) -> None:
            super().__init__()
            self.client, self.model, self.tokenizer = client, model, tokenizer

        def loglikelihood(self, requests: list[Any], disable_tqdm: bool = False) -> list[tuple[float, bool]]:
            out = []
            for req in requests:
                # lm-eval's own split (trailing context whitespace onto the continuation)
                context, cont = encode_pair(self.tokenizer, req.args[0], req.args[1])
                ids = np.asarray(cont, dtype=np.int64)
                gen = self.client.generate(
                    self.model, context, len(ids), top_k=1, forced_ids=ids, logprob_ids=ids.reshape(-1, 1)
                )
                greedy = bool((np.asarray(gen.top_ids)[:, 0] == ids).all())
                out.append((float(np.asarray(gen.selected_logprobs, dtype=np.float64).sum()), greedy))
            return out

        def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
            raise BadInputError("lm-eval rolling log-likelihood tasks are not served (use golden.perplexity)")

        def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
            raise BadInputError("lm-eval generation tasks are not served: use multiple_choice tasks")

    return ServedLM


def run_task(spec: TaskSpec, client: TextModelClient, model: str, tokenizer: Any) -> TaskSamples:
    """Every document of the task through the served ``model``; per-document accuracy."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=str(spec.path.parent), include_defaults=False)
    lm = _served_lm_class()(client, model, tokenizer)
    results = simple_evaluate(
        model=lm, tasks=[spec.name], task_manager=manager, log_samples=True, bootstrap_iters=0, random_seed=0
    )
    if results is None or spec.name not in results.get("samples", {}):
        raise DataError(f"{spec.path}: lm-eval returned no samples for task {spec.name!r}")
    samples = sorted(results["samples"][spec.name], key=lambda s: int(s["doc_id"]))
    if not samples or "acc" not in samples[0]:
        raise DataError(f"{spec.path}: task {spec.name!r} reports no per-sample 'acc' metric")
    return TaskSamples(
        spec.name, tuple(int(s["doc_id"]) for s in samples), tuple(bool(float(s["acc"]) > 0.5) for s in samples)
    )
