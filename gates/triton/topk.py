"""Each row's k largest log-probabilities, for whole teacher-forced windows ([T, vocab]).

``np.argpartition`` over a 49,152-token vocabulary costs as much as a third of the engine's own
prefill on a 512-token window (its introselect touches every element several times). Here a
row's k-th largest block maximum bounds its k-th largest value from below (the k blocks with
the largest maxima hold k elements at least that large), so only the few elements at or above it
are sorted: one pass for the block maxima, one comparison pass, then a sort of a few hundred
values per row. Ties are broken by the lower token id, as the token-by-token path's stable sort.
"""

from __future__ import annotations

from typing import Any

import numpy as np

BLOCK = 256  # vocabulary entries per block: 192 blocks for SmolLM2's 49,152
CHUNK = 256  # rows at a time: a long window's index arrays stay small


def top_k_rows(logprobs: Any, k: int) -> tuple[Any, Any]:
    """``(ids, values)``, each [T, k], every row descending (ties: lower id first)."""
    rows_all = np.asarray(logprobs)
    ids, values = [], []
    for start in range(0, rows_all.shape[0], CHUNK):
        i, v = _chunk(rows_all[start : start + CHUNK], k)
        ids.append(i)
        values.append(v)
    if not ids:
        return np.zeros((0, k), dtype=np.int64), np.zeros((0, k), dtype=rows_all.dtype)
    return np.concatenate(ids), np.concatenate(values)


def _chunk(rows: Any, k: int) -> tuple[Any, Any]:
    n, vocab = rows.shape
    starts = np.arange(0, vocab, BLOCK)
    if starts.size <= k or np.isnan(rows).any():  # too few blocks to bound anything; NaN compares false
        return _sorted(rows, k)
    block_max = np.maximum.reduceat(rows, starts, axis=1)
    floor = np.partition(block_max, starts.size - k, axis=1)[:, starts.size - k]
    r, c = np.nonzero(rows >= floor[:, None])
    v = rows[r, c]
    order = np.lexsort((c, -v, r))  # by row, then value descending, then id
    r, c, v = r[order], c[order], v[order]
    first = np.searchsorted(r, np.arange(n))
    take = first[:, None] + np.arange(k)
    return c[take].astype(np.int64), v[take]


def _sorted(rows: Any, k: int) -> tuple[Any, Any]:
    """The plain way: a stable full sort per row (the reference the fast path must equal)."""
    order = np.argsort(-rows, axis=-1, kind="stable")[:, :k]
    return order.astype(np.int64), np.take_along_axis(rows, order, axis=-1)
