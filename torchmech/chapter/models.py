"""Model builders of the chapter (§4–§8): one function or class per model the book defines."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from torchmech.chapter.layers import NoisyLinear
from torchmech.chapter.train import binary_decision


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


def mlp(sizes: Sequence[int], output: type[nn.Module] | None = nn.Sigmoid) -> nn.Sequential:
    """``Linear → ReLU → … → Linear`` through ``sizes``, then ``output()`` (none if ``None``).

    ``mlp((2, 1))`` is §5's logistic regression, ``mlp((2, 4, 4, 1))`` its two-hidden-layer
    XOR model. Layers are created in order, so after ``torch.manual_seed(s)`` the weights
    equal the book's ``nn.Sequential`` written out by hand.
    """
    if len(sizes) < 2 or any(int(s) <= 0 for s in sizes):
        raise ValueError(f"sizes needs at least an input and an output size, all positive, got {tuple(sizes)}")
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    if output is not None:
        layers.append(output())
    return nn.Sequential(*layers)


def mpg_regressor() -> nn.Sequential:
    """§7's regression net: ``Linear(9, 8) → ReLU → Linear(8, 4) → ReLU → Linear(4, 1)``."""
    return mlp((9, 8, 4, 1), output=None)


def mnist_mlp() -> nn.Sequential:
    """§8's classifier: ``Flatten → Linear(784, 32) → ReLU → Linear(32, 16) → ReLU → Linear(16, 10)``.

    No Softmax: ``CrossEntropyLoss`` applies log-softmax to the logits itself.
    """
    return nn.Sequential(nn.Flatten(), *mlp((784, 32, 16, 10), output=None))


def logistic_regression(in_features: int = 2) -> nn.Sequential:
    """§5's logistic regression: ``Linear(in_features, 1) → Sigmoid`` (a linear decision boundary)."""
    return mlp((in_features, 1))


def n_parameters(model: nn.Module) -> int:
    """Number of scalar parameters of ``model``: the sum of ``numel()`` over ``model.parameters()``.

    Example::

        >>> n_parameters(nn.Linear(2, 4)), n_parameters(mlp((2, 4, 4, 1)))
        (12, 37)
    """
    return sum(p.numel() for p in model.parameters())


def predict_classes(model: nn.Module, x: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """A one-output probability model's class, 0/1 floats at threshold 0.5
    (:func:`~torchmech.chapter.train.binary_decision`).

    NumPy in, NumPy out (as mlxtend calls ``predict``); tensor in, tensor out on the model's device.
    """
    device = next(model.parameters()).device
    as_numpy = not isinstance(x, torch.Tensor)
    xt = torch.as_tensor(np.asarray(x) if as_numpy else x, dtype=torch.float32, device=device)
    with torch.no_grad():
        pred = binary_decision(model(xt)[:, 0]).float()
    return pred.cpu().numpy() if as_numpy else pred


class ModuleListModel(nn.Module):
    """The book's §6 ``MyModule``: the XOR MLP kept in an ``nn.ModuleList`` and run by a loop.

    ``Linear(2, 4) → ReLU → Linear(4, 4) → ReLU → Linear(4, 1) → Sigmoid``, registered as
    ``module_list``; with the same weights it computes exactly what ``mlp((2, 4, 4, 1))`` does.
    """

    def __init__(self) -> None:
        super().__init__()
        self.module_list = nn.ModuleList(
            [nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 1), nn.Sigmoid()]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for f in self.module_list:
            x = f(x)
        return x

    def predict(self, x: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Class 0/1 as floats at threshold 0.5; accepts NumPy arrays (as mlxtend passes) and tensors."""
        return predict_classes(self, x)


class MyNoisyModule(nn.Module):
    """§6's model with the custom layer: ``NoisyLinear(2, 4, 0.07) → ReLU → Linear(4, 4) → ReLU →
    Linear(4, 1) → Sigmoid``. The noise is on in ``train()`` mode and off in ``eval()`` mode
    (or as ``forward``'s ``training`` says).

    Args:
        noise_stddev: the first layer's σ.
        layer: the class of the first layer, called as ``layer(2, 4, noise_stddev)`` (default
            torchmech's :class:`~torchmech.chapter.layers.NoisyLinear`; a learner's ``NoisyLinear`` in the runs
            of an implementation under test).
    """

    def __init__(self, noise_stddev: float = 0.07, *,
                 layer: Callable[[int, int, float], nn.Module] = NoisyLinear) -> None:
        super().__init__()
        self.l1 = layer(2, 4, noise_stddev)
        self.a1 = nn.ReLU()
        self.l2 = nn.Linear(4, 4)
        self.a2 = nn.ReLU()
        self.l3 = nn.Linear(4, 1)
        self.a3 = nn.Sigmoid()

    def forward(self, x: torch.Tensor, training: bool | None = None) -> torch.Tensor:
        x = self.a1(self.l1(x, training))
        x = self.a2(self.l2(x))
        return self.a3(self.l3(x))

    def predict(self, x: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Class 0/1 as floats at threshold 0.5, without noise (``eval`` semantics)."""
        was_training = self.training
        self.eval()
        try:
            return predict_classes(self, x)
        finally:
            self.train(was_training)
