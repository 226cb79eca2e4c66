"""The shared sampler, and the PyTorch runner sampling with it: seeded, reproducible, greedy untouched."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gates.engines.runner import Sampler
from gates.engines.torch_runner import TorchRunner


def test_sampler_draws_from_the_tempered_softmax() -> None:
    logits = np.log(np.array([0.5, 0.3, 0.2]))
    draws = [Sampler(1.0, seed)(logits) for seed in range(3000)]
    freq = np.bincount(draws, minlength=3) / len(draws)
    np.testing.assert_allclose(freq, [0.5, 0.3, 0.2], atol=0.03)
    # temperature 0.5 squares the probabilities (then normalizes): .25/.09/.04 over .38
    hot = np.bincount([Sampler(0.5, seed)(logits) for seed in range(3000)], minlength=3) / 3000
    np.testing.assert_allclose(hot, np.array([0.25, 0.09, 0.04]) / 0.38, atol=0.03)
    # a very low temperature is greedy
    assert {Sampler(1e-4, seed)(logits) for seed in range(50)} == {0}


def test_sampler_is_reproducible_and_shares_its_numbers_across_close_models() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(12, 50))
    first, again = Sampler(0.8, 7), Sampler(0.8, 7)
    assert [first(x) for x in logits] == [again(x) for x in logits]
    other = Sampler(0.8, 8)
    assert [Sampler(0.8, 7)(x) for x in logits] != [other(x) for x in logits]
    # common random numbers: a slightly perturbed model draws the same tokens with the same seed
    near = logits + rng.normal(scale=1e-4, size=logits.shape)
    a, b = Sampler(0.8, 3), Sampler(0.8, 3)
    assert [a(x) for x in logits] == [b(x) for x in near]
    with pytest.raises(ValueError, match="temperature > 0"):
        Sampler(0.0, 1)


def test_torch_runner_samples_reproducibly_and_keeps_greedy(tiny_model: Path) -> None:
    runner = TorchRunner(tiny_model, 1)
    ids = runner.encode("Four score and seven years ago")
    greedy, greedy_lp = runner.generate(ids, 10)
    assert list(runner.stream(ids, 10)) == greedy
    tokens, lp = runner.generate(ids, 10, temperature=1.0, seed=5)
    assert runner.generate(ids, 10, temperature=1.0, seed=5)[0] == tokens
    assert list(runner.stream(ids, 10, temperature=1.0, seed=5)) == tokens
    assert lp.shape == (len(tokens), greedy_lp.shape[1])
    # the log-probabilities are the model's (temperature 1) on the sampled context
    np.testing.assert_allclose(lp, runner.score(ids, tokens), atol=1e-4)
    others = {tuple(runner.generate(ids, 10, temperature=1.0, seed=s)[0]) for s in range(6, 12)}
    assert len(others | {tuple(tokens)}) > 1  # different seeds draw differently
    assert runner.generate(ids, 10)[0] == greedy  # sampling left greedy decoding as it was
