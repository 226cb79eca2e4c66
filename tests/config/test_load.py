from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gates.config import load_pipeline
from gates.errors import ConfigError, ExitCode

REPO = Path(__file__).resolve().parents[2]

MINIMAL = """
name: ok
model:
  source: builtin:tiny-llama
golden:
  suites: [golden_prompts/demo.jsonl]
"""


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "pipelines").glob("*.yaml")))
def test_every_shipped_pipeline_loads(name: str) -> None:
    pf = load_pipeline(REPO / "pipelines" / name)
    assert pf.root == REPO
    for suite in pf.config.golden.suites:
        assert pf.resolve(suite).is_file()


def test_minimal_pipeline_gets_defaults(write_pipeline: Callable[..., Path]) -> None:
    pf = load_pipeline(write_pipeline(MINIMAL))
    assert pf.config.quant_format == "none"
    assert pf.config.engine.backend == "torch"
    assert pf.config.serve.triton == "local"
    assert pf.config.gates.error_rate_max == 0.001


def _error(write_pipeline: Callable[..., Path], text: str) -> str:
    path = write_pipeline(text)
    with pytest.raises(ConfigError) as info:
        load_pipeline(path)
    assert info.value.exit_code == ExitCode.BAD_INPUT
    return str(info.value).replace(str(path), "pipelines/p.yaml")


def test_unknown_key_names_file_key_and_line(
    write_pipeline: Callable[..., Path], golden: Callable[[str, str], None]
) -> None:
    msg = _error(write_pipeline, MINIMAL + "optimize:\n  quantize:\n    format: int8_sq\n    calibratoin: x.jsonl\n")
    assert "pipelines/p.yaml:9:" in msg
    assert "optimize.quantize.calibratoin" in msg
    golden("config_unknown_key.txt", msg + "\n")


def test_wrong_type(write_pipeline: Callable[..., Path], golden: Callable[[str, str], None]) -> None:
    msg = _error(write_pipeline, MINIMAL + "load:\n  users: many\n")
    assert "pipelines/p.yaml:7:" in msg and "load.users" in msg and "'many'" in msg
    golden("config_wrong_type.txt", msg + "\n")


def test_unknown_quant_format(write_pipeline: Callable[..., Path], golden: Callable[[str, str], None]) -> None:
    msg = _error(write_pipeline, MINIMAL + "optimize:\n  quantize:\n    format: int3\n    calibration: c.jsonl\n")
    assert "pipelines/p.yaml:8:" in msg and "optimize.quantize.format" in msg and "int8_sq" in msg
    golden("config_unknown_format.txt", msg + "\n")


def test_missing_required_key_points_at_parent(write_pipeline: Callable[..., Path]) -> None:
    msg = _error(write_pipeline, "name: x\nmodel:\n  source: builtin:tiny-llama\n")
    assert "golden" in msg and "required key is missing" in msg


def test_duplicate_key_is_an_error(write_pipeline: Callable[..., Path]) -> None:
    msg = _error(write_pipeline, MINIMAL + "name: again\n")
    assert "duplicate key 'name'" in msg and "pipelines/p.yaml:6:" in msg and "first at line 1" in msg


def test_yaml_syntax_error_has_line(write_pipeline: Callable[..., Path]) -> None:
    msg = _error(write_pipeline, "name: x\nmodel: [unclosed\n")
    assert "pipelines/p.yaml:" in msg and "invalid YAML" in msg


def test_quantize_without_calibration(write_pipeline: Callable[..., Path]) -> None:
    msg = _error(write_pipeline, MINIMAL + "optimize:\n  quantize:\n    format: int8_sq\n")
    assert "optimize.quantize" in msg and "calibration" in msg


def test_list_items_are_located(write_pipeline: Callable[..., Path]) -> None:
    msg = _error(
        write_pipeline, MINIMAL.replace("[golden_prompts/demo.jsonl]", "\n    - golden_prompts/demo.jsonl\n    - 3")
    )
    assert "golden.suites[1]" in msg and "pipelines/p.yaml:7:" in msg


def test_unreadable_file() -> None:
    with pytest.raises(ConfigError, match="cannot read pipeline config"):
        load_pipeline(Path("/nonexistent/p.yaml"))


def test_remote_triton_url_validated(write_pipeline: Callable[..., Path]) -> None:
    msg = _error(write_pipeline, MINIMAL + "serve:\n  triton: ftp://x\n")
    assert "serve.triton" in msg
    pf = load_pipeline(write_pipeline(MINIMAL + "serve:\n  triton: http://triton:8000\n"))
    assert pf.config.serve.triton == "http://triton:8000"
