"""Charts: mermaid for the PR comment (GitHub renders xychart-beta), PNG (matplotlib) for the HTML report."""

from __future__ import annotations

import base64
import functools
import io
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ParamSpec, TypeVar

import numpy as np

P = ParamSpec("P")
R = TypeVar("R")


def _plain_text(fn: Callable[P, R]) -> Callable[P, R]:
    """Every text in the chart is drawn as typed: ``$…$`` in a prompt id is not mathtext (a
    ``$\\color{red}{x}$`` id made matplotlib raise, and report.html was lost) nor TeX."""

    @functools.wraps(fn)
    def plain(*args: P.args, **kwargs: P.kwargs) -> R:
        import matplotlib

        with matplotlib.rc_context({"text.parse_math": False, "text.usetex": False}):
            return fn(*args, **kwargs)

    return plain


def _label(text: str) -> str:
    """Mermaid labels come from user data (prompt ids): keep a safe alphabet only."""
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", text)[:24] or "_"


def _nums(values: Sequence[float | None]) -> str:
    return ", ".join(f"{v:.4g}" if v is not None and np.isfinite(v) else "0" for v in values)


def mermaid_latency(load: Mapping[str, Any]) -> str:
    b, c = load["baseline"]["latency_ms"], load["candidate"]["latency_ms"]
    keys = ["p50", "p95", "p99"]
    top = max([v for v in [*(b[k] for k in keys), *(c[k] for k in keys)] if v is not None] or [1.0])
    return "\n".join(
        [
            "```mermaid",
            "xychart-beta",
            '    title "Latency ms: bars baseline, line candidate"',
            '    x-axis ["p50", "p95", "p99"]',
            f'    y-axis "ms" 0 --> {top * 1.1:.4g}',
            f"    bar [{_nums([b[k] for k in keys])}]",
            f"    line [{_nums([c[k] for k in keys])}]",
            "```",
        ]
    )


def mermaid_drift(rows: Sequence[Mapping[str, Any]], limit: int = 20) -> str:
    shown = sorted(rows, key=lambda r: -(r.get("mean_kl") or 0.0))[:limit]
    if not shown:
        return ""
    ids = ", ".join(f'"{_label(str(r["id"]))}"' for r in shown)
    return "\n".join(
        [
            "```mermaid",
            "xychart-beta",
            f'    title "Mean KL per golden prompt (top {len(shown)})"',
            f"    x-axis [{ids}]",
            '    y-axis "KL"',
            f"    bar [{_nums([r.get('mean_kl') for r in shown])}]",
            "```",
        ]
    )


def _png(fig: Any) -> str:
    """The figure as a data URL; the figure is closed (matplotlib keeps open figures alive)."""
    import matplotlib.pyplot as plt

    try:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
        return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    finally:
        plt.close(fig)


@_plain_text
def png_latency_cdf(samples: Mapping[str, Sequence[float]]) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not any(len(v) for v in samples.values()):
        return None
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for arm, values in samples.items():
        x = np.sort(np.asarray(values, dtype=float))
        if x.size:
            ax.plot(x, np.arange(1, x.size + 1) / x.size, label=f"{arm} (n={x.size})")
    ax.axhline(0.95, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("request latency (ms)")
    ax.set_ylabel("fraction of requests ≤ x")
    ax.set_title("Latency CDF per arm (measured window)")
    ax.set_xscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    return _png(fig)


@_plain_text
def png_drift(rows: Sequence[Mapping[str, Any]]) -> str | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not rows:
        return None
    ids = [str(r["id"])[:20] for r in rows]
    kl = [r.get("mean_kl") or 0.0 for r in rows]
    top1 = [r.get("top1_agreement") or 0.0 for r in rows]
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(8, 5.2), sharex=True)
    a1.bar(ids, kl, color="#cf7b2e")
    a1.set_ylabel("mean KL")
    a1.set_title("Per-prompt drift, candidate vs baseline")
    a2.bar(ids, top1, color="#2e6fcf")
    a2.set_ylabel("top-1 agreement")
    a2.set_ylim(0, 1.05)
    a2.tick_params(axis="x", labelrotation=70)
    for ax in (a1, a2):
        ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def _capacity_series(capacity: Mapping[str, Any], arm: str, key: str) -> list[float | None]:
    return [(s[arm].get(key) or {}).get("p95") if key.endswith("_ms") else s[arm].get(key) for s in capacity["steps"]]


def mermaid_capacity(capacity: Mapping[str, Any]) -> str:
    """p95 latency at every sweep step, both arms, and the SLO's latency limit as a third line."""
    steps = capacity.get("steps") or []
    if not steps:
        return ""
    unit = "req/s per arm" if capacity.get("over") == "rate" else "users"
    xs = ", ".join(f'"{float(s["value"]):g}"' for s in steps)
    b, c = _capacity_series(capacity, "baseline", "latency_ms"), _capacity_series(capacity, "candidate", "latency_ms")
    limit = (capacity.get("slo") or {}).get("latency_ms")
    top = max([v for v in [*b, *c, limit] if isinstance(v, (int, float)) and np.isfinite(v)] or [1.0])
    lines = [
        "```mermaid",
        "xychart-beta",
        f'    title "p95 latency ms by load ({unit}): baseline, candidate{", SLO" if limit else ""}"',
        f'    x-axis "{unit}" [{xs}]',
        f'    y-axis "p95 ms" 0 --> {top * 1.1:.4g}',
        f"    line [{_nums(b)}]",
        f"    line [{_nums(c)}]",
    ]
    if limit:
        lines.append(f"    line [{_nums([limit] * len(steps))}]")
    return "\n".join([*lines, "```"])


@_plain_text
def png_capacity(capacity: Mapping[str, Any]) -> str | None:
    """p95 latency against achieved throughput per arm, with the SLO's latency limit."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = capacity.get("steps") or []
    if not steps:
        return None
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for arm, marker in (("baseline", "o"), ("candidate", "s")):
        x, y = (
            np.array([np.nan if v is None else v for v in _capacity_series(capacity, arm, key)], dtype=float)
            for key in ("rps", "latency_ms")
        )
        ax.plot(x, y, marker=marker, label=arm)
    limit = (capacity.get("slo") or {}).get("latency_ms")
    if limit:
        ax.axhline(limit, color="#b22", lw=1, ls="--", label=f"SLO p95 ≤ {limit:g} ms")
    ax.set_xlabel("throughput (successful requests/s per arm)")
    ax.set_ylabel("p95 latency (ms)")
    ax.set_title("Latency against throughput, sweep steps")
    ax.grid(alpha=0.3)
    ax.legend()
    return _png(fig)
