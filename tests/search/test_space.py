"""The search space: bad spaces refused (exit 2) naming file, key and line; candidates validated."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gates.config.parse import parse_pipeline
from gates.errors import ConfigError, ExitCode
from gates.search.space import config_field, expand

REPO = Path(__file__).resolve().parents[2]

BASE = """name: spc
model:
  source: builtin:tiny-llama
engine:
  backend: onnxruntime-genai
golden:
  suites: [golden_prompts/demo.jsonl]
gates:
  top1_agreement_min: 0.9
search:
  objective: {objective}
  axes:
{axes}
"""


def space(axes: str, objective: str = "cost_at_slo", tmp: Path = Path("/tmp/p.yaml")):  # type: ignore[no-untyped-def]
    return expand(parse_pipeline(BASE.format(axes=axes, objective=objective), tmp))


def test_every_combination_is_a_validated_candidate() -> None:
    s = space("    engine.precision: [int8, int4]\n    engine.block_size: [32, 128]\n    engine.accuracy_level: [1, 4]")
    assert len(s.candidates) == 8
    assert [c.values for c in s.candidates][:2] == [
        {"engine.precision": "int8", "engine.block_size": 32, "engine.accuracy_level": 1},
        {"engine.precision": "int8", "engine.block_size": 32, "engine.accuracy_level": 4},
    ]
    c = s.candidates[-1]
    cfg = c.pipeline.config
    assert (cfg.engine.precision, cfg.engine.block_size, cfg.engine.accuracy_level) == ("int4", 128, 4)
    assert cfg.search is None and "search:" not in c.yaml  # a candidate is a plain pipeline
    assert cfg.gates.top1_agreement_min == 0.9  # the rest of the user's config, as written
    assert len({x.name for x in s.candidates}) == 8 and all(x.name.startswith("spc-") for x in s.candidates)
    assert c.pipeline.root == Path("/tmp")  # relative paths still resolve against the user's project


def test_candidate_names_are_stable() -> None:
    a = space("    engine.precision: [int8, int4]")
    b = space("    engine.precision: [int8, int4]")
    assert [c.name for c in a.candidates] == [c.name for c in b.candidates]


# (axes, message fragment, line of the key named): each refused before anything is built
BAD = [
    ("    engine.precison: [int8]", "is not a key of the pipeline config", 13, "search.axes.engine.precison"),
    ("    search.objective: [p95_latency]", "is not a key", 13, "search.axes.search.objective"),
    ("    engine.block_size: [32, 48]", "the schema refuses 48", 13, "search.axes.engine.block_size[1]"),
    ("    engine.precision: [int8, fp4]", "the schema refuses 'fp4'", 13, "search.axes.engine.precision[1]"),
    ("    engine.precision: []", "this axis lists no values", 13, "search.axes.engine.precision"),
    ("    engine.precision: [int8, int8]", "a value twice", 13, "search.axes.engine.precision"),
    ("    model.source.x: [a]", "is not a key", 13, "search.axes.model.source.x"),
    ("    load.users: [0]", "the schema refuses 0", 13, "search.axes.load.users[0]"),
    ("    {}", "the search space is empty", 12, "search.axes"),
]


@pytest.mark.parametrize(("axes", "fragment", "line", "key"), BAD)
def test_bad_spaces_name_file_key_and_line(axes: str, fragment: str, line: int, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        space(axes)
    assert fragment in str(err.value)
    assert str(err.value).startswith(f"/tmp/p.yaml:{line}:")
    assert f"At key: {key}\n" in str(err.value)
    assert err.value.line == line and err.value.exit_code == ExitCode.BAD_INPUT


def test_a_pipeline_without_search_is_refused() -> None:
    text = BASE.split("search:")[0]
    with pytest.raises(ConfigError, match="no search: section"):
        expand(parse_pipeline(text, Path("/tmp/p.yaml")))


def test_too_many_candidates_are_refused() -> None:
    text = BASE.format(axes="    load.users: [1, 2, 3]", objective="cost_at_slo").replace(
        "  axes:", "  max_candidates: 2\n  axes:"
    )
    with pytest.raises(ConfigError, match=r"3 combinations exceed search\.max_candidates"):
        expand(parse_pipeline(text, Path("/tmp/p.yaml")))


def test_bad_search_settings_are_refused_by_the_config_parser() -> None:
    with pytest.raises(ConfigError, match=r"search\.objective"):
        space("    engine.precision: [int8]", objective="fastest")
    text = BASE.format(axes="    engine.precision: [int8]", objective="cost_at_slo").replace(
        "  axes:", "  rungs: [0.5, 0.25, 1.0]\n  axes:"
    )
    with pytest.raises(ConfigError, match=r"search\.rungs must increase"):
        parse_pipeline(text, Path("/tmp/p.yaml"))


KEYS = ["engine.precision", "engine.block_size", "load.users", "gates.score.pass", "optimize.quantize.kv_cache"]


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz._", min_size=1, max_size=30))
@settings(max_examples=200, deadline=None)
def test_any_unknown_key_is_refused_and_known_ones_accepted(key: str) -> None:
    field = config_field(key)
    if key in KEYS:
        assert field is not None
    if field is None:
        with pytest.raises(ConfigError, match="is not a key of the pipeline config"):
            space(f"    '{key}': [1]")


@given(st.sampled_from([16, 32, 64, 128, 256]), st.integers(min_value=-300, max_value=300))
@settings(max_examples=60, deadline=None)
def test_block_sizes_the_schema_refuses_are_refused_by_value(good: int, other: int) -> None:
    if other == good:
        return
    if other in (16, 32, 64, 128, 256):
        assert len(space(f"    engine.block_size: [{good}, {other}]").candidates) == 2
    else:
        with pytest.raises(ConfigError, match=r"engine.block_size\[1\]"):
            space(f"    engine.block_size: [{good}, {other}]")


def test_the_cli_refuses_a_bad_space_with_exit_2_before_building(tmp_path: Path) -> None:
    cfg = tmp_path / "p.yaml"
    cfg.write_text(BASE.format(axes="    engine.block_size: [32, 48]", objective="cost_at_slo"))
    proc = subprocess.run(
        [sys.executable, "-m", "gates.cli", "search", str(cfg), "--artifacts", str(tmp_path / "a")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{cfg}:13: invalid search space" in proc.stderr and "search.axes.engine.block_size[1]" in proc.stderr
    assert not (tmp_path / "a").exists()  # nothing built, no store created


def test_gates_validate_checks_the_search_space_too(tmp_path: Path) -> None:
    shutil.copytree(REPO / "golden_prompts", tmp_path / "golden_prompts")
    cfg = tmp_path / "p.yaml"
    cfg.write_text(BASE.format(axes="    engine.block_size: [32, 128]", objective="cost_at_slo"))
    ok = subprocess.run(
        [sys.executable, "-m", "gates.cli", "validate", str(cfg)], capture_output=True, text=True, timeout=300
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "search: 2 candidates" in ok.stdout
    cfg.write_text(BASE.format(axes="    engine.blocksize: [32, 128]", objective="cost_at_slo"))
    bad = subprocess.run(
        [sys.executable, "-m", "gates.cli", "validate", str(cfg)], capture_output=True, text=True, timeout=300
    )
    assert bad.returncode == 2 and f"{cfg}:13: invalid search space" in bad.stderr


EXCLUDING = """    engine.backend: [onnxruntime-genai, openvino]
    engine.precision: [int8, int4]
    engine.accuracy_level: [1, 4]
  exclude:
{exclude}"""


def test_excluded_combinations_are_not_candidates() -> None:
    s = space(EXCLUDING.format(exclude="    - {engine.backend: openvino, engine.accuracy_level: 1}"))
    values = [c.values for c in s.candidates]
    assert len(values) == 6 and {"engine.backend": "openvino", "engine.precision": "int8",
                                 "engine.accuracy_level": 4} in values  # fmt: skip
    assert not any(v["engine.backend"] == "openvino" and v["engine.accuracy_level"] == 1 for v in values)
    full = space(EXCLUDING.format(exclude="    []"))
    kept = {c.name for c in full.candidates} & {c.name for c in s.candidates}
    assert len(kept) == 6  # the same names as in the whole space: a search resumed with an exclude finds them


@pytest.mark.parametrize(
    ("exclude", "fragment", "line", "key"),
    [
        ("    - {engine.backend: openvino, engine.block_size: 32}", "is not an axis of this search", 17,
         "search.exclude[0].engine.block_size"),
        ("    - {engine.backend: tensorrt-llm}", "is not one of the values", 17, "search.exclude[0].engine.backend"),
        ("    - {}", "names no axis", 17, "search.exclude[0]"),
        ("    - {engine.precision: int8}\n    - {engine.precision: int4}", "leaves out every combination", 16,
         "search.exclude"),
    ],
)  # fmt: skip
def test_bad_excludes_name_file_key_and_line(exclude: str, fragment: str, line: int, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        space(EXCLUDING.format(exclude=exclude))
    assert fragment in str(err.value) and str(err.value).startswith(f"/tmp/p.yaml:{line}:")
    assert f"At key: {key}\n" in str(err.value) and err.value.exit_code == ExitCode.BAD_INPUT
