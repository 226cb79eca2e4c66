"""The served model's top-k for whole windows equals a full stable sort, ties and -inf included."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gates.triton.topk import top_k_rows


def reference(rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(-rows, axis=-1, kind="stable")[:, :k]  # ties: the lower id first
    return order, np.take_along_axis(rows, order, axis=-1)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(0, 300),
    vocab=st.integers(2, 6000),
    k=st.integers(1, 40),
    levels=st.sampled_from([3, 50, 0]),  # few distinct values (many ties) or continuous
    neg_inf=st.floats(0.0, 0.5),
    seed=st.integers(0, 2**32 - 1),
)
def test_top_k_rows_equals_a_full_stable_sort(
    rows: int, vocab: int, k: int, levels: int, neg_inf: float, seed: int
) -> None:
    k = min(k, vocab)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, vocab)).astype(np.float32)
    if levels:
        x = np.round(x * levels) / levels
    x[rng.random(x.shape) < neg_inf] = -np.inf
    ids, values = top_k_rows(x, k)
    want_ids, want_values = reference(x, k)
    assert ids.shape == (rows, k) and ids.dtype == np.int64
    np.testing.assert_array_equal(values, want_values)
    np.testing.assert_array_equal(ids, want_ids)


def test_a_window_of_real_vocabulary_size_and_a_nan_row() -> None:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((600, 49152)).astype(np.float32)  # more rows than one chunk
    x[3, 100] = np.nan  # NaN sorts first in a descending stable sort of -x: same as the reference
    ids, values = top_k_rows(x, 20)
    want_ids, want_values = reference(x, 20)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_array_equal(values, want_values)
