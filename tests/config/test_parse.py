from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gates.config import load_pipeline, parse_pipeline
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


# -- issue 17: bounded, strictly typed, never an internal error -----------------------------------
LAUGHS = "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 10) if p else ', '.join(['lol'] * 10)}]\n"
    for p, c in zip(["", "a", "b", "c", "d", "e", "f", "g"], "abcdefgh", strict=True)
)


def test_alias_expansion_is_bounded(write_pipeline: Callable[..., Path]) -> None:
    import time

    started = time.monotonic()
    msg = _error(write_pipeline, MINIMAL + LAUGHS)
    assert "expands to more than" in msg and "pipelines/p.yaml:" in msg
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x: &x {users: 2}\nload:\n  <<: *x\n", "merge keys"),
        ("deep: " + "[" * 3000 + "]" * 3000 + "\n", "nested deeper"),
        ("deep: " + "[" * 40 + "]" * 40 + "\n", "nested deeper"),
        ("q: !!python/object:os.system x\n", "invalid YAML value"),
        ("q: !!int notanumber\n", "invalid YAML value"),
        ("? [a, b]\n: 1\n", "keys must be strings"),
    ],
)
def test_hostile_yaml_is_bad_input(write_pipeline: Callable[..., Path], text: str, expected: str) -> None:
    msg = _error(write_pipeline, MINIMAL + text)
    assert expected in msg and "pipelines/p.yaml" in msg


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ("gates:\n  error_rate_max: yes\n", "gates.error_rate_max"),  # YAML's yes is a bool, not 100%
        ("load:\n  warmup_s: .inf\n", "load.warmup_s"),
        ("load:\n  duration_s: .nan\n", "load.duration_s"),
        ("load:\n  users: '4'\n", "load.users"),
        ("load:\n  users: 4.5\n", "load.users"),
    ],
)
def test_numbers_and_booleans_are_strict(write_pipeline: Callable[..., Path], extra: str, key: str) -> None:
    msg = _error(write_pipeline, MINIMAL + extra)
    assert f"At key: {key}" in msg and "pipelines/p.yaml:7:" in msg


def test_integers_still_fill_float_fields_and_lists_fill_pairs(write_pipeline: Callable[..., Path]) -> None:
    pf = load_pipeline(
        write_pipeline(
            MINIMAL + "gates:\n  error_rate_max: 0\noptimize:\n  quantize:\n    format: fp8\n"
            "    calibration: c.jsonl\n    quant_cfg:\n      '*weight_quantizer': {num_bits: [4, 3]}\n"
        )
    )
    assert pf.config.gates.error_rate_max == 0.0
    assert pf.config.optimize.quantize is not None
    assert pf.config.optimize.quantize.quant_cfg["*weight_quantizer"].num_bits == (4, 3)


def test_name_with_a_trailing_newline_is_refused(write_pipeline: Callable[..., Path]) -> None:
    msg = _error(write_pipeline, MINIMAL.replace("name: ok", 'name: "ok\\n"'))
    assert "At key: name" in msg


def test_overlong_and_nul_text_is_refused(write_pipeline: Callable[..., Path]) -> None:
    assert "at most 4096" in _error(write_pipeline, MINIMAL.replace("builtin:tiny-llama", "a" * 5000))
    assert "NUL" in _error(write_pipeline, MINIMAL.replace("builtin:tiny-llama", '"a\\0b"'))


def test_nul_in_path_and_endless_file_are_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read pipeline config"):
        load_pipeline(Path("pipelines/a\0b.yaml"))
    with pytest.raises(ConfigError, match="larger than"):
        load_pipeline(Path("/dev/zero"))


def test_a_secret_in_a_malformed_url_is_not_echoed(write_pipeline: Callable[..., Path]) -> None:
    msg = _error(write_pipeline, MINIMAL + "serve:\n  triton: https://bot:ghp_SECRET123@triton.internal/v2\n")
    assert "serve.triton" in msg and "ghp_SECRET123" not in msg and "***@triton.internal" in msg


@pytest.mark.parametrize(
    ("load", "expected"),
    [
        ("adaptive: true", "load.adaptive needs load.max_duration_s"),
        (
            "adaptive: true\n  max_duration_s: 60\n  min_duration_s: 1\n  warmup_s: 2",
            "load.min_duration_s must lie after",
        ),
        ("adaptive: true\n  max_duration_s: 60\n  min_duration_s: 90", "load.min_duration_s must lie after"),
        ("min_duration_s: 10", "load.min_duration_s applies only with load.adaptive"),
        ("adaptive: true\n  max_duration_s: 60\n  pass_error: 0.7", "pass_error"),
    ],
)
def test_adaptive_load_is_validated(write_pipeline: Callable[..., Path], load: str, expected: str) -> None:
    msg = _error(write_pipeline, MINIMAL + f"load:\n  {load}\n")
    assert expected in msg and "load" in msg


def test_adaptive_load_defaults_keep_the_fixed_duration(write_pipeline: Callable[..., Path]) -> None:
    cfg = load_pipeline(write_pipeline(MINIMAL)).config.load
    assert cfg.adaptive is False and cfg.min_duration_s is None
    on = load_pipeline(write_pipeline(MINIMAL + "load:\n  adaptive: true\n  duration_s: 10\n  max_duration_s: 60\n"))
    assert on.config.load.first_look_s == 10.0


def test_an_empty_explicit_int_is_a_config_error(tmp_path: Path) -> None:
    # found by tests/config/test_parse_fuzz.py: PyYAML's int constructor indexes the empty string
    with pytest.raises(ConfigError, match=r"p.yaml:1: invalid YAML value"):
        parse_pipeline("- !!int\n", tmp_path / "p.yaml")


def test_a_huge_rejected_value_is_reported_in_bounded_time(tmp_path: Path) -> None:
    """A backtracking regex over the rejected value took 66 s for 40 kB and ~11 h for a 1 MB config.
    Bounded by the subprocess's timeout (a hang), not timed."""
    path = tmp_path / "p.yaml"
    value = "x" * 300_000 + " https://bot:ghp_SECRET@h/ " + "a:" * 300_000
    path.write_text(MINIMAL + f"serve:\n  triton: '{value}'\n")
    code = (
        "import sys\nfrom gates.config import load_pipeline\nfrom gates.errors import ConfigError\n"
        f"try:\n    load_pipeline({str(path)!r})\nexcept ConfigError as e:\n    print(str(e)[:2000])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "serve.triton" in proc.stdout and "ghp_SECRET" not in proc.stdout, proc.stderr


OLD_MASK = re.compile(r"(?i)([a-z][a-z0-9+.-]*://)[^/@\s]*@")


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="ab1+.-:/@ \tZ", max_size=60))
def test_credential_masking_masks_what_the_url_pattern_matches(text: str) -> None:
    """The linear masker hides exactly what the former regex hid, on every short text."""
    from gates.config.parse import mask_url_credentials

    assert mask_url_credentials(text) == OLD_MASK.sub(r"\1***@", text)


def test_serving_and_operating_point_keys_parse_and_bad_values_name_file_key_and_line(
    write_pipeline: Callable[..., Path],
) -> None:
    from gates.config.engine import Batching
    from gates.loadmodes import OperatingPoint

    pf = load_pipeline(write_pipeline(MINIMAL + "serve:\n  batching: off\n  max_batch: 8\n  kv_cache_gb: 1.5\n"))
    assert pf.config.serve.batching is Batching.OFF and pf.config.serve.max_batch == 8
    assert pf.config.load.operating_points == [OperatingPoint.latency, OperatingPoint.throughput]
    assert load_pipeline(write_pipeline(MINIMAL)).config.serve.batching is Batching.ENGINE
    for text, key, line in [
        ("serve:\n  batching: sometimes\n", "serve.batching", 7),
        ("serve:\n  max_batch: -1\n", "serve.max_batch", 7),
        ("serve:\n  kv_cache_gb: 0\n", "serve.kv_cache_gb", 7),
        ("load:\n  operating_points: [latency, latency]\n", "lists a point twice", 6),
        ("load:\n  operating_points: [fastest]\n", "load.operating_points", 7),
        ("gates:\n  output_tokens_ratio_band: 1.5\n", "gates.output_tokens_ratio_band", 7),
    ]:
        msg = _error(write_pipeline, MINIMAL + text)
        assert f"pipelines/p.yaml:{line}:" in msg and key in msg, (text, msg)
