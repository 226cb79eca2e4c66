"""The TensorRT-LLM repository, rendered from tensorrtllm_backend's own templates and checked against them.

Serving it needs a GPU runner with TensorRT-LLM; rendering and its checks run everywhere."""

from __future__ import annotations

import re
from pathlib import Path
from string import Template

import pytest
from tritonclient.grpc import model_config_pb2

from gates.artifacts import EngineBuild, ModelRef, tree_digest
from gates.engines import ENGINES
from gates.triton.trtllm_repository import (
    MODELS,
    PLACEHOLDER,
    TEMPLATE_DIR,
    TrtllmRepoSpec,
    fill_template,
    parse_config,
    render,
    render_model,
    substitutions,
    template_text,
    write,
)

SPEC = TrtllmRepoSpec(
    engine_dir=Path("/engines/llama-fp8/sm90"), tokenizer_dir=Path('/models/tok"x'), max_batch_size=16
)


def test_templates_are_vendored_with_license_and_source() -> None:
    source = (TEMPLATE_DIR / "SOURCE").read_text()
    assert "c2e65b88d85255be30cf50440a91662abeb497dd" in source
    assert "Apache License" in (TEMPLATE_DIR / "LICENSE").read_text()
    for model in MODELS:
        assert template_text(model).startswith("# Copyright"), model
    for model in ("preprocessing", "postprocessing"):
        assert (TEMPLATE_DIR / model / "1" / "model.py").read_text().startswith("# Copyright")


@pytest.mark.parametrize("model", MODELS)
def test_every_placeholder_is_filled_or_its_parameter_left_to_the_backend(model: str) -> None:
    # placeholders in comments (a deprecated parameter, commented out upstream) are not in the config
    template = "\n".join(line for line in template_text(model).splitlines() if not line.lstrip().startswith("#"))
    placeholders = set(PLACEHOLDER.findall(template))
    given = set(substitutions(SPEC)[model]) | {"max_queue_size", "max_queue_delay_microseconds"}
    config = render_model(model, SPEC)
    from google.protobuf import text_format

    rendered = text_format.MessageToString(config)
    assert "${" not in rendered
    # what is not given is exactly the template's optional parameters, removed (unset) rather than left "${…}"
    template_params = dict(re.findall(r'key: "(\w+)"\s*value: \{\s*string_value: "\$\{(\w+)\}"', template))
    unset = {var for var in placeholders - given}
    assert unset <= set(template_params.values()), unset - set(template_params.values())
    for key, var in template_params.items():
        assert (key in config.parameters) == (var in given), key
    # and the given values are where the template put their placeholders
    if model == "tensorrt_llm":
        assert config.backend == "tensorrtllm" and config.model_transaction_policy.decoupled
        assert config.parameters["gpt_model_path"].string_value == "/engines/llama-fp8/sm90"
        assert config.parameters["gpt_model_type"].string_value == "inflight_fused_batching"
    if model in ("preprocessing", "postprocessing"):
        assert config.parameters["tokenizer_dir"].string_value == '/models/tok"x'  # escaped, read back intact
    assert config.max_batch_size == 16


def test_fill_template_is_the_backend_tool() -> None:
    text = 'a: ${x}\nb: "${y}"\nc: ${max_queue_size}\n'
    assert fill_template(text, {"x": "1"}) == Template(text).safe_substitute(x="1", max_queue_size="0")
    with pytest.raises(ValueError, match="do not exist"):
        fill_template(text, {"z": "1"})  # the tool asserts every key is in the file


def test_rendered_configs_parse_and_the_ensemble_is_wired() -> None:
    configs = {name: parse_config(text) for name, text in render(SPEC, prefix="candidate").items()}
    assert set(configs) == {
        "candidate",
        "candidate_preprocessing",
        "candidate_tensorrt_llm",
        "candidate_postprocessing",
    }
    ensemble = configs["candidate"]
    assert ensemble.platform == "ensemble"
    steps = list(ensemble.ensemble_scheduling.step)
    assert [s.model_name for s in steps] == [
        "candidate_preprocessing",
        "candidate_tensorrt_llm",
        "candidate_postprocessing",
    ]
    available = {i.name for i in ensemble.input}
    for step in steps:
        target = configs[step.model_name]
        inputs, outputs = {i.name for i in target.input}, {o.name for o in target.output}
        for key, value in step.input_map.items():
            assert key in inputs, (step.model_name, key)
            assert value in available, (step.model_name, value)  # produced upstream or given by the client
        for key, value in step.output_map.items():
            assert key in outputs, (step.model_name, key)
            available.add(value)
    assert {o.name for o in ensemble.output} <= available
    assert {"text_input", "max_tokens", "stream"} <= {i.name for i in ensemble.input}
    assert "text_output" in {o.name for o in ensemble.output}


def test_write_lays_out_the_repository(tmp_path: Path) -> None:
    ensemble = write(tmp_path / "repo", SPEC, prefix="baseline")
    assert ensemble == tmp_path / "repo" / "baseline"
    for name in ("baseline", "baseline_preprocessing", "baseline_tensorrt_llm", "baseline_postprocessing"):
        assert parse_config((tmp_path / "repo" / name / "config.pbtxt").read_text()).name == name
    assert (tmp_path / "repo" / "baseline_preprocessing" / "1" / "model.py").is_file()
    assert (tmp_path / "repo" / "baseline_postprocessing" / "1" / "model.py").is_file()


def test_engine_serves_gates_model_and_renders_the_backend_repository(tiny_model: Path, tmp_path: Path) -> None:
    art = tmp_path / "engine-art"
    (art / "engine").mkdir(parents=True)
    (art / "engine.json").write_text('{"backend": "tensorrt-llm", "command": ["trtllm-build", "--max_batch_size=32"]}')
    ref = ModelRef("candidate", tiny_model, tree_digest(tiny_model), "fp8", "real")
    build = EngineBuild("tensorrt-llm", ref, art, "d" * 64, False, True, "TensorRT-LLM engine for sm90", device="cuda")
    served = ENGINES["tensorrt-llm"].write_serving(tmp_path / "repo", "candidate", build, 1)
    # what the gate loads: gates' Python model over the engine artifact, on the GPU
    assert served == tmp_path / "repo" / "candidate"
    ours = parse_config((served / "config.pbtxt").read_text())
    assert ours.backend == "python" and ours.parameters["artifact_path"].string_value == str(art)
    assert [g.kind for g in ours.instance_group] == [model_config_pb2.ModelInstanceGroup.KIND_GPU]
    # beside it, never loaded by the gate: the same engine for Triton's tensorrtllm backend
    config = parse_config((tmp_path / "candidate-tensorrtllm" / "candidate_tensorrt_llm" / "config.pbtxt").read_text())
    assert config.parameters["gpt_model_path"].string_value == str(art / "engine") and config.max_batch_size == 32
    assert not (tmp_path / "repo" / "candidate_tensorrt_llm").exists()
