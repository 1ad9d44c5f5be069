"""§8 Project two: MNIST digits: its exercises, their sample inputs and observers."""

from __future__ import annotations

from typing import Any

import torch

from torchmech.learn.exercises.core import (
    Exercise,
    Sample,
    _builder_samples,
    _fresh,
    _gen,
    _raised,
    builder,
)
from torchmech.learn.grader import rng_states, seeded


def mnist_mlp_samples() -> tuple[Sample, ...]:
    return _builder_samples((1, 1, 28, 28), (7, 1, 28, 28), (64, 1, 28, 28))


def batches_samples() -> tuple[Sample, ...]:
    cases = [(100, 16), (1, 1), (7, 3), (64, 64), (10, 32), (50, 7)]
    out = []
    for i, (n, batch) in enumerate(cases):
        x = torch.rand(n, 3, generator=_gen(i))
        out.append(Sample(_fresh(x, torch.arange(n), batch), ("x", "y", "batch_size"), seed=i,
                          extra={"epochs": 3}))
    return tuple(out)


def shuffled_batches(piece: Any, sample: Sample) -> dict[str, Any]:
    x, y, batch = sample.make()
    with seeded(sample.seed):
        try:
            batches = piece(x, y, batch)
            epochs = [[(bx.clone(), by.clone()) for bx, by in batches] for _ in range(sample.extra["epochs"])]
            length = len(batches)
        except Exception as err:
            return _raised(err)
        obs: dict[str, Any] = {
            "len(batches)": length,
            "the labels of each batch, epoch by epoch": [[by for _, by in ep] for ep in epochs],
            "each batch's x rows belong to its labels": all(_rows_of(x, bx, by) for ep in epochs for bx, by in ep),
        }
        obs.update(rng_states())
    return obs


def _rows_of(x: torch.Tensor, bx: Any, by: Any) -> bool:
    """``bx`` are the rows of ``x`` that the labels ``by`` (here the sample indices) name."""
    try:
        return bool(torch.equal(bx, x[by.long()]))
    except Exception:
        return False


def diagnose_batches(expected: dict, got: dict) -> str:
    key = "the labels of each batch, epoch by epoch"
    e, g = expected.get(key), got.get(key)
    if not isinstance(g, list) or not isinstance(e, list) or len(g) < 2:
        return ""
    order = lambda ep: torch.cat(ep).tolist() if ep else []  # noqa: E731
    if all(order(ep) == order(g[0]) for ep in g) and not all(order(ep) == order(e[0]) for ep in e):
        return "the same order in every epoch: draw a new order on every pass (in __iter__), not once"
    if len(g) == len(e) and order(g[0]) != order(e[0]) and sorted(order(g[0])) == sorted(order(e[0])):
        return "another shuffle than the DataLoader's: replay its two draws (base seed, then the sampler's seed)"
    return ""


EXERCISES: tuple[Exercise, ...] = (
    Exercise("mnist_mlp", "s8", "def mnist_mlp():",
             "§8's classifier as one nn.Sequential: Flatten, Linear(784, 32), ReLU, Linear(32, 16), ReLU, "
             "Linear(16, 10); it returns logits (no Softmax: CrossEntropyLoss applies log-softmax itself).",
             (), mnist_mlp_samples, builder,
             ("§8: CrossEntropyLoss takes logits.", "784 → 32 → 16 → 10 after Flatten.",
              "nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), "
              "nn.Linear(16, 10))"),
             spans=("rank ≥ 3", "a single row", "several seeds")),
    Exercise("ShuffledBatches", "s8", "class ShuffledBatches:",
             "ShuffledBatches(x, y, batch_size): a sized iterable (__len__ = the number of batches, the last one "
             "may be smaller) whose every pass (__iter__) yields exactly DataLoader(TensorDataset(x, y), "
             "batch_size, shuffle=True)'s batches, by replaying its two draws from torch's global generator per "
             "pass.", (), batches_samples, shuffled_batches,
             ("§8's fast path: the same batches without per-sample work.",
              "per pass: draw one int64 (the iterator's base seed), then one more as the seed of a "
              "torch.Generator; randperm(n, generator=…) is the order.",
              "seed = int(torch.empty((), dtype=torch.int64).random_().item())"),
             diagnose_batches, spans=("a single row", "a smaller last batch", "≥ 3 epochs", "several seeds")),
)
