"""The ``prometheus`` metric provider against a real Prometheus (Debian's package) scraping a real
tritonserver: the window's counts per model are Triton's own, an unreachable Prometheus is an
infrastructure error (NODATA, never a PASS), and without per-request latencies the step holds."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from gates.config.analysis import AnalysisSection, PrometheusSection, ProviderKind
from gates.config.schema import GatesSection
from gates.errors import InfraError
from gates.ledger import CanaryState
from gates.promotion.analysis.judge import WindowStatus, judge_step
from gates.promotion.analysis.providers import PROVIDERS
from gates.promotion.analysis.providers.prometheus import histogram_samples, scalar
from gates.promotion.recheck import stream_once
from gates.testing.prometheus import local_prometheus, prometheus_available
from gates.triton.repository import write_model
from gates.triton.server import TritonServer


def test_histogram_buckets_become_per_request_values() -> None:
    result = [
        {"metric": {"le": "10"}, "value": [0, "2"]},
        {"metric": {"le": "40"}, "value": [0, "5"]},
        {"metric": {"le": "+Inf"}, "value": [0, "5"]},
    ]
    assert histogram_samples(result) == (5.0, 5.0, 20.0, 20.0, 20.0)


def _success(metrics: str, model: str) -> float:
    m = re.search(rf'nv_inference_request_success{{model="{model}",version="1"}} (\d+)', metrics)
    return float(m.group(1)) if m else 0.0


@pytest.mark.integration
@pytest.mark.skipif(prometheus_available() is not None, reason=str(prometheus_available()))
def test_prometheus_window_counts_are_tritons_own(tmp_path: Path, tiny_model: Path, no_leaked_servers: None) -> None:
    repo = tmp_path / "models"
    write_model(repo, "stable", tiny_model)
    write_model(repo, "canary", tiny_model)
    state = CanaryState("demo", "kserve", None, "stable", "canary", 10, time.time())
    with TritonServer(repo, tmp_path / "triton") as server:
        server.load_model("stable")
        server.load_model("canary")
        with local_prometheus([f"127.0.0.1:{server.metrics_port}"], tmp_path / "prom") as url:
            promql = 'sum(nv_inference_request_success{model="canary"})'
            deadline = time.monotonic() + 60
            while scalar(url, promql, time.time()) is None:  # scraped at least once
                assert time.monotonic() < deadline, "Prometheus never scraped Triton"
                time.sleep(0.3)
            time.sleep(1.0)
            before = server.metrics()
            start = time.time()
            for model, n in (("stable", 6), ("canary", 4)):
                for _ in range(n):
                    assert stream_once(server.url, model, "Four score", 2)[1] == ""
            time.sleep(2.0)  # at least two scrapes after the last request
            end = time.time()
            after = server.metrics()
            cfg = AnalysisSection(provider=ProviderKind.PROMETHEUS, prometheus=PrometheusSection(url=url))
            window = PROVIDERS["prometheus"].window(state, cfg, start, end)
            for model, arm in (("stable", window.stable), ("canary", window.canary)):
                assert arm.requests == _success(after, model) - _success(before, model)
                assert arm.server_failures == 0 and arm.errors == 0
            assert (window.stable.requests, window.canary.requests) == (6, 4)
            # counts alone judge no latency shift: no data, the step holds (never a PASS)
            j = judge_step([window], GatesSection(), AnalysisSection(min_requests=2, drift_prompts=0))
            assert j.status == WindowStatus.NODATA
    dead = AnalysisSection(provider=ProviderKind.PROMETHEUS, prometheus=PrometheusSection(url=url))
    with pytest.raises(InfraError, match="did not answer"):
        PROVIDERS["prometheus"].window(state, dead, start, end)
