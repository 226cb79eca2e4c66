"""Canary analysis on live traffic: at every promotion step, windows in which stable and canary
serve side by side, judged by the PR gate's own statistics (docs/canary.md).

- ``records.py``: what one window holds per arm (per-request latencies, TTFT, errors);
- ``providers/``: where a window's figures come from, one module per provider behind one Protocol
  (``proxy``: the local HAProxy's per-request log; ``prometheus``: PromQL over Triton's metrics);
- ``judge.py``: the step's windows → PASS / FAIL / NODATA (group-sequential, gates/judge/adaptive.py);
- ``synthetic.py``: a paired open-loop load through the target where there is no live traffic;
- ``checker.py``: the state machine's checker: one window per call.
"""
