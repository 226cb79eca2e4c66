"""Request classes: the labels each request carries (input-length bucket, turn, group) and the
``where`` filters that scope a gate to a class (``gates.metrics[].where: {turn: ">1"}``).

Labels travel in ``requests.csv``'s ``labels`` column as ``key=value;key=value``. A condition is a
value (equality) or an operator and a value: ``>1``, ``>=2``, ``<512``, ``<=512``, ``==short``,
``!=0``; the ordering operators compare numbers and need a numeric label.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_COND = re.compile(r"^\s*(>=|<=|==|!=|>|<)?\s*(.+?)\s*$")
ORDERED = (">", ">=", "<", "<=")


def encode(labels: Mapping[str, str]) -> str:
    return ";".join(f"{k}={v}" for k, v in sorted(labels.items()))


def decode(text: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in text.split(";") if "=" in part) if text else {}


def _num(s: str) -> float | None:
    try:
        return float(s)
    except ValueError:
        return None


def parse(condition: str) -> tuple[str, str]:
    """(operator, value) of a condition; ValueError saying what is wrong."""
    m = _COND.match(condition)
    if m is None or not m.group(2):
        raise ValueError(f"empty condition {condition!r}")
    op, value = m.group(1) or "==", m.group(2)
    if op in ORDERED and _num(value) is None:
        raise ValueError(f"{op} compares numbers, not {value!r}")
    return op, value


def holds(value: str | None, condition: str) -> bool:
    """Whether a label's value meets the condition (a missing label meets none)."""
    if value is None:
        return False
    op, want = parse(condition)
    if op in ORDERED:
        x, y = _num(value), _num(want)
        if x is None or y is None:
            return False
        return {">": x > y, ">=": x >= y, "<": x < y, "<=": x <= y}[op]
    return (value == want) if op == "==" else (value != want)


def matches(labels: Mapping[str, str], where: Mapping[str, str]) -> bool:
    return all(holds(labels.get(k), c) for k, c in where.items())


def describe(where: Mapping[str, str]) -> str:
    """``turn>1,group==0``: a scoped gate's series key and name."""
    parts = []
    for k, c in sorted(where.items()):
        op, value = parse(c)
        parts.append(f"{k}{op}{value}")
    return ",".join(parts)
