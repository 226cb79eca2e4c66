"""Adding an engine or a gate is one module and one registry entry (README "Extending gates").

Each test writes a trivial plugin into a temporary package, registers it with one entry, and
shows the machinery using it; nothing in gates/ is edited.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from gates.config.parse import parse_pipeline
from gates.config.schema import GatesSection
from gates.engines import ENGINES, engine_for
from gates.errors import ConfigError
from gates.judge.decide import GATE_SETS, verdict_of
from gates.judge.verdict import Decision
from tests.judge.test_policy import _ev

ENGINE = """
from gates.engines.base import ConfigProblem, KernelSupport


class EchoEngine:
    name = "echo"
    kernels = KernelSupport("none: a test engine")
    options = frozenset({"precision"})

    def check_config(self, pipeline):
        if pipeline.quant_format != "none":
            return [ConfigProblem(("optimize", "quantize", "format"), "echo runs no quantized format")]
        return []

    def check_available(self):
        return None
"""

GATE = """
from gates.judge.verdict import GateResult, Status


class EnoughRequests:
    def gates(self, evidence, capacity, cfg):
        ok = evidence.candidate_requests >= 1000
        return (GateResult("enough_requests", Status.PASS if ok else Status.FAIL, evidence.candidate_requests,
                           ">= 1000", "a test gate"),)
"""


@pytest.fixture()
def plugins(tmp_path: Path) -> Iterator[Path]:
    pkg = tmp_path / "team_plugins"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "echo_engine.py").write_text(textwrap.dedent(ENGINE))
    (pkg / "enough.py").write_text(textwrap.dedent(GATE))
    sys.path.insert(0, str(tmp_path))
    yield pkg
    sys.path.remove(str(tmp_path))
    for name in [m for m in sys.modules if m.startswith("team_plugins")]:
        del sys.modules[name]


def _pipeline(tmp_path: Path, engine: str, extra: str = "") -> str:
    head = "name: p\nmodel: {source: builtin:tiny-llama}\n"
    return f"{head}engine:\n  backend: {engine}\n{extra}golden: {{suites: [g]}}\n"


def test_an_engine_is_a_module_and_one_entry(plugins: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"p.yaml:4: engine.backend 'echo' is not a registered engine"):
        engine_for(parse_pipeline(_pipeline(tmp_path, "echo"), tmp_path / "p.yaml"))
    ENGINES.register("echo", "team_plugins.echo_engine:EchoEngine")  # the one entry
    try:
        assert engine_for(parse_pipeline(_pipeline(tmp_path, "echo", "  precision: int8\n"), tmp_path / "p.yaml"))
        assert "echo" in ENGINES and ENGINES["echo"].name == "echo"
        quantized = _pipeline(tmp_path, "echo").replace(
            "engine:", "optimize:\n  quantize: {format: int8_wo, calibration: c.jsonl}\nengine:"
        )
        with pytest.raises(ConfigError, match=r"at key optimize.quantize.format: echo runs no quantized format"):
            engine_for(parse_pipeline(quantized, tmp_path / "p.yaml"))
        # an option the chosen engine does not declare is refused, naming who reads it
        with pytest.raises(ConfigError, match=r"p.yaml:5: at key engine.block_size: .*onnxruntime-genai"):
            engine_for(parse_pipeline(_pipeline(tmp_path, "echo", "  block_size: 64\n"), tmp_path / "p.yaml"))
    finally:
        ENGINES.unregister("echo")


def test_a_gate_is_a_module_and_one_entry(plugins: Path) -> None:
    cfg = GatesSection()
    assert verdict_of(_ev(), [], None, cfg).verdict == Decision.PASS
    GATE_SETS.register("enough_requests", "team_plugins.enough:EnoughRequests")  # the one entry
    try:
        v = verdict_of(_ev(n=400), [], None, cfg)
        assert v.verdict == Decision.FAIL and "enough_requests" in v.reason
        assert verdict_of(_ev(n=1000), [], None, cfg).verdict == Decision.PASS
    finally:
        GATE_SETS.unregister("enough_requests")


def test_a_registry_entry_that_names_nothing_is_a_clear_error() -> None:
    ENGINES.register("ghost", "team_plugins_absent.nowhere:Ghost")
    try:
        with pytest.raises(ConfigError.__mro__[1], match=r"engine 'ghost': cannot load"):
            ENGINES["ghost"]
    finally:
        ENGINES.unregister("ghost")
