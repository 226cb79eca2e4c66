"""Typed calls to the gates text model.

The model is decoupled (streaming), so synchronous calls go through ``tritonclient.grpc``'s
bidirectional stream and wait for the final response; the load generator streams over HTTP
(``generate_stream``), see ``gates.loadgen.worker``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gates.errors import InfraError


@dataclasses.dataclass(frozen=True)
class Generation:
    text: str
    token_ids: tuple[int, ...]
    top_ids: NDArray[Any]  # [T, k]
    top_logprobs: NDArray[Any]  # [T, k]
    selected_logprobs: NDArray[Any]  # [T, m] for the LOGPROB_IDS asked for
    prompt_tokens: int


def build_inputs(
    prompt: str,
    max_new_tokens: int,
    top_k: int = 0,
    forced_ids: NDArray[Any] | None = None,
    logprob_ids: NDArray[Any] | None = None,
    temperature: float = 0.0,
    seed: int = 0,
    prompt_ids: NDArray[Any] | None = None,
    prefill: bool = False,
) -> list[Any]:
    """The request's tensors; TEMPERATURE and SEED only when sampling, PROMPT_IDS and PREFILL only
    when asked, so a greedy request is exactly what it was before they existed."""
    import tritonclient.grpc as grpcclient

    def tensor(name: str, array: NDArray[Any], dtype: str) -> Any:
        t = grpcclient.InferInput(name, list(array.shape), dtype)
        t.set_data_from_numpy(array)
        return t

    inputs = [
        tensor("PROMPT", np.array([prompt.encode("utf-8")], dtype=np.object_), "BYTES"),
        tensor("MAX_NEW_TOKENS", np.array([max_new_tokens], dtype=np.int32), "INT32"),
        tensor("TOP_K", np.array([top_k], dtype=np.int32), "INT32"),
    ]
    if forced_ids is not None:
        inputs.append(tensor("FORCED_IDS", np.asarray(forced_ids, dtype=np.int64).reshape(-1), "INT64"))
    if logprob_ids is not None:
        inputs.append(tensor("LOGPROB_IDS", np.asarray(logprob_ids, dtype=np.int64), "INT64"))
    if temperature > 0:
        inputs.append(tensor("TEMPERATURE", np.array([temperature], dtype=np.float32), "FP32"))
        inputs.append(tensor("SEED", np.array([seed], dtype=np.int64), "INT64"))
    if prompt_ids is not None:
        inputs.append(tensor("PROMPT_IDS", np.asarray(prompt_ids, dtype=np.int64).reshape(-1), "INT64"))
    if prefill:
        inputs.append(tensor("PREFILL", np.array([True], dtype=np.bool_), "BOOL"))
    return inputs


OUTPUTS = ("TEXT", "TOKEN_IDS", "TOP_IDS", "TOP_LOGPROBS", "SELECTED_LOGPROBS", "PROMPT_TOKENS")


def parse_result(result: Any) -> Generation:
    text = result.as_numpy("TEXT").reshape(-1)[0]
    return Generation(
        text=text.decode("utf-8", errors="replace") if isinstance(text, bytes) else str(text),
        token_ids=tuple(int(t) for t in result.as_numpy("TOKEN_IDS").reshape(-1)),
        top_ids=result.as_numpy("TOP_IDS"),
        top_logprobs=result.as_numpy("TOP_LOGPROBS"),
        selected_logprobs=result.as_numpy("SELECTED_LOGPROBS"),
        prompt_tokens=int(result.as_numpy("PROMPT_TOKENS").reshape(-1)[0]),
    )


class TextModelClient:
    """Synchronous client for one Triton gRPC endpoint (drift, checks), one stream per call."""

    def __init__(self, url: str, timeout_s: float = 120.0):
        import tritonclient.grpc as grpcclient

        self.url = url
        self.timeout_s = timeout_s
        self._client = grpcclient.InferenceServerClient(url=url)

    def close(self) -> None:
        self._client.close()

    def generate(
        self,
        model: str,
        prompt: str,
        max_new_tokens: int,
        top_k: int = 0,
        forced_ids: NDArray[Any] | None = None,
        logprob_ids: NDArray[Any] | None = None,
        temperature: float = 0.0,
        seed: int = 0,
        prompt_ids: NDArray[Any] | None = None,
        prefill: bool = False,
    ) -> Generation:
        """One answer; greedy unless ``temperature > 0`` (then drawn with ``seed``). ``prompt_ids``:
        the prompt as token ids (``prompt`` is then ignored); ``prefill``: score ``forced_ids`` in
        one pass (the engine's prefill kernels) instead of token by token."""
        import queue

        import tritonclient.grpc as grpcclient

        answers: queue.Queue[tuple[Any, Any]] = queue.Queue()
        outputs = [grpcclient.InferRequestedOutput(n) for n in OUTPUTS]
        try:
            self._client.start_stream(callback=lambda result, error: answers.put((result, error)))
            try:
                self._client.async_stream_infer(
                    model,
                    build_inputs(
                        prompt, max_new_tokens, top_k, forced_ids, logprob_ids, temperature, seed, prompt_ids, prefill
                    ),
                    outputs=outputs,
                )
                result, error = answers.get(timeout=self.timeout_s)
            finally:
                self._client.stop_stream()
        except queue.Empty:
            raise InfraError(
                f"Triton model {model!r} at {self.url} sent no answer within {self.timeout_s:.0f}s"
            ) from None
        except Exception as exc:  # grpc raises its own types; all of them mean the call failed
            raise InfraError(f"Triton request to model {model!r} at {self.url} failed: {exc}") from exc
        if error is not None:
            raise InfraError(f"Triton request to model {model!r} at {self.url} failed: {error}")
        return parse_result(result)
