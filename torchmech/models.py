"""Model builders of the chapter (§4–§8): one function or class per model the book defines."""

from __future__ import annotations

from torch import nn


def chapter_sequential() -> nn.Sequential:
    """§4's first ``nn.Sequential``: ``Linear(4, 16) → ReLU → Linear(16, 32) → ReLU``.

    Example::

        >>> chapter_sequential()
        Sequential(
          (0): Linear(in_features=4, out_features=16, bias=True)
          (1): ReLU()
          (2): Linear(in_features=16, out_features=32, bias=True)
          (3): ReLU()
        )
    """
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 32), nn.ReLU())


def logistic_regression(in_features: int = 2) -> nn.Sequential:
    """§5's logistic regression: ``Linear(in_features, 1) → Sigmoid`` (a linear decision boundary)."""
    return nn.Sequential(nn.Linear(in_features, 1), nn.Sigmoid())
