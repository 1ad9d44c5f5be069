"""§8 MNIST: the catalogue's wrong pieces of this section's exercises, and their rows."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from torchmech.learn.mistakes.core import Mistake, ref


def _softmax_classifier() -> Callable:
    return lambda: nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(),
                                 nn.Linear(16, 10), nn.Softmax(dim=1))


def _one_draw_batches() -> type:
    base = ref("ShuffledBatches")

    class OneDraw(base):
        def order(self):  # forgets the iterator's base-seed draw
            seed = int(torch.empty((), dtype=torch.int64).random_().item())
            return torch.randperm(len(self.x), generator=torch.Generator().manual_seed(seed))
    return OneDraw


def _order_once() -> type:
    base = ref("ShuffledBatches")

    class OrderOnce(base):
        def __init__(self, x, y, batch_size, shuffle=True):
            super().__init__(x, y, batch_size, shuffle)
            self._perm = super().order()

        def order(self):  # drawn once, in __init__: the same order every epoch
            return self._perm
    return OrderOnce


def _log_softmax_classifier() -> Callable:
    return lambda: nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(),
                                 nn.Linear(16, 10), nn.LogSoftmax(dim=1))


def _no_flatten() -> Callable:
    return lambda: nn.Sequential(nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 10))


def _batches_variant(kind: str) -> type:
    base = ref("ShuffledBatches")

    class Wrong(base):
        def __len__(self) -> int:
            if kind in ("drop_last", "len_floor"):
                return len(self.x) // self.batch_size  # the last, smaller batch not counted
            return super().__len__()

        def order(self):
            if kind == "global_randperm":  # one draw from the global generator, not the DataLoader's two
                return torch.randperm(len(self.x))
            return super().order()

        def __iter__(self):
            for bx, by in super().__iter__():
                if kind == "drop_last" and len(by) < self.batch_size:
                    return  # the last, smaller batch dropped
                yield (by, bx) if kind == "y_first" else (bx, by)
    return Wrong


MISTAKES: tuple[Mistake, ...] = (
    Mistake("softmax_before_cross_entropy", "mnist_mlp", "a Softmax layer before CrossEntropyLoss (softmax twice)",
            _softmax_classifier),
    Mistake("one_draw_per_epoch", "ShuffledBatches", "the DataLoader iterator's base-seed draw forgotten",
            _one_draw_batches),
    Mistake("order_drawn_once", "ShuffledBatches", "the order drawn once in __init__: the same order every epoch",
            _order_once),
    Mistake("log_softmax_before_cross_entropy", "mnist_mlp", "a LogSoftmax at the end (CrossEntropyLoss applies "
            "log-softmax itself)", _log_softmax_classifier),
    Mistake("no_flatten", "mnist_mlp", "nn.Flatten left out: Linear(784, 32) meets (N, 1, 28, 28) images",
            _no_flatten),
    Mistake("drop_last_batch", "ShuffledBatches", "the last, smaller batch dropped (DataLoader's drop_last=True)",
            lambda: _batches_variant("drop_last")),
    Mistake("len_floor", "ShuffledBatches", "__len__ = n // batch_size: the last, smaller batch not counted",
            lambda: _batches_variant("len_floor")),
    Mistake("global_randperm", "ShuffledBatches", "torch.randperm(n) from the global generator: one draw, not the "
            "DataLoader's two", lambda: _batches_variant("global_randperm")),
    Mistake("y_before_x", "ShuffledBatches", "batches yielded as (y, x), not (x, y)",
            lambda: _batches_variant("y_first")),
)
