"""Where a window's figures come from: one module per provider behind one Protocol (Flagger's
metric providers), one registry entry each."""

from __future__ import annotations

from typing import Protocol

from gates.config.analysis import AnalysisSection
from gates.ledger import CanaryState
from gates.promotion.analysis.records import WindowData
from gates.registry import LazyRegistry


class MetricProvider(Protocol):
    def window(self, canary: CanaryState, cfg: AnalysisSection, start: float, end: float) -> WindowData:
        """Both arms of ``canary`` between ``start`` and ``end`` (epoch seconds). Raises InfraError
        when the source does not answer: the window is then NODATA, never a PASS."""


PROVIDERS: LazyRegistry[MetricProvider] = LazyRegistry(
    "metric provider",
    {
        "proxy": "gates.promotion.analysis.providers.proxy:ProxyProvider",
        "prometheus": "gates.promotion.analysis.providers.prometheus:PrometheusProvider",
    },
)

__all__ = ["PROVIDERS", "MetricProvider"]
