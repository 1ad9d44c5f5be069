"""How the chapter trains each of its models, written once: the runs, the benchmarks and the ensembles read
these recipes (builder, loss, optimizer and its settings, batch size, epochs, seed).

Example::

    >>> r = RECIPES["mpg"]
    >>> r.optimizer, r.lr, r.batch_size, r.epochs
    ('SGD', 0.001, 8, 200)
    >>> r.build()
    Sequential(
      (0): Linear(in_features=9, out_features=8, bias=True)
      (1): ReLU()
      (2): Linear(in_features=8, out_features=4, bias=True)
      (3): ReLU()
      (4): Linear(in_features=4, out_features=1, bias=True)
    )
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from torchmech.chapter.implementation import pieces_of
from torchmech.chapter.models import MyNoisyModule, logistic_regression, mlp

#: What a recipe builds, by name: ``builder(impl)`` → a fresh model with ``impl``'s pieces (``None``: the
#: reference's): its ``ModuleListModel``, ``MyNoisyModule`` on its ``NoisyLinear``, its ``mpg_regressor``…
BUILDERS: dict[str, Callable[[Any], nn.Module]] = {
    "logistic": lambda impl: logistic_regression(),
    "mlp": lambda impl: mlp((2, 4, 4, 1)),
    "modulelist": lambda impl: pieces_of(impl).ModuleListModel(),
    "noisy": lambda impl: MyNoisyModule(layer=pieces_of(impl).NoisyLinear),
    "mpg": lambda impl: pieces_of(impl).mpg_regressor(),
    "mnist": lambda impl: pieces_of(impl).mnist_mlp(),
}

#: The implementation's pieces each builder takes (what a learner's piece changes in the run).
PIECES: dict[str, tuple[str, ...]] = {"modulelist": ("ModuleListModel",), "noisy": ("NoisyLinear",),
                                      "mpg": ("mpg_regressor",), "mnist": ("mnist_mlp",)}


@dataclass(frozen=True)
class Recipe:
    """One of the chapter's trainings, as the book sets it up.

    Attributes:
        section: where the chapter trains it.
        model: what is built (a key of :data:`BUILDERS`).
        loss: the loss's class (``nn.BCELoss``…), called with no arguments.
        optimizer: ``"SGD"`` or ``"Adam"`` (``torch.optim``'s), at learning rate ``lr``.
        batch_size, epochs, seed: the book's (seeded before the model is built and again before the loop).
        input_shape: one sample's shape (the benchmarks' random batches).
        target: ``"binary"`` (0/1 floats), ``"regression"`` (floats) or ``"class"`` (ten class indices).
    """

    section: str
    model: str
    loss: Callable[[], nn.Module]
    optimizer: str
    lr: float
    batch_size: int
    epochs: int
    input_shape: tuple[int, ...]
    target: str
    seed: int = 1

    def build(self, impl: Any = None) -> nn.Module:
        return BUILDERS[self.model](impl)

    @property
    def pieces(self) -> tuple[str, ...]:
        """The implementation's pieces :meth:`build` takes (``ModuleListModel``, ``NoisyLinear``…)."""
        return PIECES.get(self.model, ())

    def make_optimizer(self, params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
        """``torch.optim``'s optimizer at the recipe's learning rate, as the book builds it.

        Adam takes ``foreach=True``: on the CPU (where torch's default is its for-loop) the foreach ops fall back
        to the very same per-tensor operations in the same order, so every parameter comes out bit for bit the
        same, with less Python per step (§8's fast epoch); on CUDA it is torch's default already.
        """
        extra = {"foreach": True} if self.optimizer == "Adam" else {}
        return getattr(torch.optim, self.optimizer)(params, lr=self.lr, **extra)


#: name → recipe: §5–§6's XOR models, §7's MPG regressor, §8's MNIST classifier.
RECIPES: dict[str, Recipe] = {
    "logistic": Recipe("s5", "logistic", nn.BCELoss, "SGD", 0.001, 2, 200, (2,), "binary"),
    "mlp": Recipe("s5", "mlp", nn.BCELoss, "SGD", 0.015, 2, 200, (2,), "binary"),
    "modulelist": Recipe("s6", "modulelist", nn.BCELoss, "SGD", 0.015, 2, 200, (2,), "binary"),
    "noisy": Recipe("s6", "noisy", nn.BCELoss, "SGD", 0.015, 2, 200, (2,), "binary"),
    "mpg": Recipe("s7", "mpg", nn.MSELoss, "SGD", 0.001, 8, 200, (9,), "regression"),
    "mnist": Recipe("s8", "mnist", nn.CrossEntropyLoss, "Adam", 0.001, 64, 20, (1, 28, 28), "class"),
}

#: The XOR recipes (``torchmech xor --model``).
XOR_MODELS: tuple[str, ...] = ("logistic", "mlp", "modulelist", "noisy")
