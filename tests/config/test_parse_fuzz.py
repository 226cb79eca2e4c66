"""Fuzz: whatever a PR author (or an attacker) puts in a pipeline file, loading it gives a
config or a ConfigError (exit 2) naming the file, never an internal error or a hang."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gates.config.parse import parse_pipeline
from gates.errors import ConfigError, ExitCode

PATH = Path("pipelines/fuzz.yaml")
KEYS = [
    "name", "model", "source", "golden", "suites", "load", "users", "duration_s", "warmup_s", "gates",
    "error_rate_max", "optimize", "quantize", "format", "calibration", "quant_cfg", "num_bits", "engine",
    "backend", "serve", "triton", "promotion", "steps", "approvers", "metrics", "direction", "mix", "score",
    "pass", "<<", "slo", "cost", "usd_per_hour", "description", "recheck",
]  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["builtin:tiny-llama", "int8_sq", "torch", "local", "yes", "on", ".inf", "~", "a\0b", "x" * 5000]),
    st.text(max_size=30),
)
DATA = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=30,
)
SNIPPETS = ["&a ", "*a", "<<: *a", "!!python/object:os.system", "!!int", "!!binary", "? ", "[", "{", "- ", ": ", "\t"]


def _load(text: str) -> None:
    try:
        parse_pipeline(text, PATH)
    except ConfigError as exc:
        assert exc.exit_code == ExitCode.BAD_INPUT
        assert str(PATH) in str(exc)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DATA)
def test_any_yaml_document_is_a_config_or_bad_input(data: Any) -> None:
    _load(yaml.safe_dump(data, allow_unicode=True))


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DATA, st.lists(st.tuples(st.integers(min_value=0), st.sampled_from(SNIPPETS)), max_size=4))
def test_mangled_yaml_is_a_config_or_bad_input(data: Any, edits: list[tuple[int, str]]) -> None:
    text = yaml.safe_dump(data, allow_unicode=True)
    for at, snippet in edits:  # anchors, aliases, merge keys and tags where YAML does not expect them
        i = at % (len(text) + 1)
        text = text[:i] + snippet + text[i:]
    _load(text)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab:-[]{}&*!<>?|'\"\n #\t0.,")), max_size=200))
def test_any_text_is_a_config_or_bad_input(text: str) -> None:
    _load(text)


def test_a_valid_config_survives_the_fuzzer_s_paths() -> None:
    text = "name: ok\nmodel:\n  source: builtin:tiny-llama\ngolden:\n  suites: [g.jsonl]\n"
    assert parse_pipeline(text, PATH).config.name == "ok"
