"""The TensorRT-LLM ensemble layout is rendered and checked here; serving it needs a GPU runner."""

from __future__ import annotations

import re
from pathlib import Path

from gates.triton.trtllm_repository import TrtllmRepoSpec, render, write


def test_four_models_wired_as_an_ensemble(tmp_path: Path) -> None:
    spec = TrtllmRepoSpec(
        engine_dir=Path("/engines/llama-fp8/sm90"), tokenizer_dir=Path('/models/tok"x'), max_batch_size=16
    )
    configs = render(spec)
    assert set(configs) == {"preprocessing", "tensorrt_llm", "postprocessing", "ensemble"}
    engine = configs["tensorrt_llm"]
    assert 'backend: "tensorrtllm"' in engine and "decoupled: true" in engine
    assert 'key: "gpt_model_path" value: { string_value: "/engines/llama-fp8/sm90" }' in engine
    assert 'string_value: "/models/tok\\"x"' in configs["preprocessing"]
    ensemble = configs["ensemble"]
    assert 'platform: "ensemble"' in ensemble
    steps = re.findall(r'model_name: "(\w+)"', ensemble)
    assert steps == ["preprocessing", "tensorrt_llm", "postprocessing"]
    # every intermediate tensor produced by one step is consumed by the next
    produced = set(re.findall(r'output_map \{ key: "\w+" value: "(_\w+)" \}', ensemble))
    consumed = set(re.findall(r'input_map \{ key: "\w+" value: "(_\w+)" \}', ensemble))
    assert produced == consumed
    for text in configs.values():
        assert "max_batch_size: 16" in text
        assert text.count("{") == text.count("}") and text.count("[") == text.count("]")


def test_write_uses_container_templates_when_present(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    (templates / "preprocessing" / "1").mkdir(parents=True)
    (templates / "preprocessing" / "1" / "model.py").write_text("# from the container\n")
    repo = write(tmp_path / "repo", TrtllmRepoSpec(Path("/e"), Path("/t")), templates)
    assert (repo / "ensemble" / "config.pbtxt").is_file()
    assert (repo / "preprocessing" / "1" / "model.py").read_text() == "# from the container\n"
    assert not (repo / "postprocessing" / "1" / "model.py").exists()
