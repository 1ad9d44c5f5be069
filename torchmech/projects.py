"""§7–§8 The chapter's two projects, run as the book runs them, through the one training loop.

* Project one (§7): fuel efficiency — Auto MPG regression, SGD, 200 epochs.
* Project two (§8): MNIST digits — an MLP, Adam, 20 epochs, either through the book's
  pipeline (``torchvision`` dataset, ``ToTensor``, ``DataLoader``) or the fast path
  (:class:`~torchmech.train.ShuffledBatches` over device-resident tensors), which yields the
  same batches in the same order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from torchmech.data.auto_mpg import mpg_features
from torchmech.data.mnist import data_root, load_mnist
from torchmech.devices import resolve_device
from torchmech.models import mnist_mlp, mpg_regressor
from torchmech.train import History, ShuffledBatches, multiclass_correct, train

EpochCallback = Callable[[int, History], None]


@dataclass
class MpgResult:
    """``history.train_loss`` per epoch (the book prints every 20th), and the test metrics."""

    model: nn.Module
    history: History
    test_mse: float
    test_mae: float


def mpg_run(epochs: int = 200, seed: int = 1, device: str | torch.device | None = "cpu",
            on_epoch_end: EpochCallback | None = None) -> MpgResult:
    """Train §7's regressor as the book does: seed, loader, model; reseed; SGD lr 0.001, batch 8."""
    dev = resolve_device(device)
    d = mpg_features()
    torch.manual_seed(seed)
    loader = DataLoader(TensorDataset(d.x_train, d.y_train), batch_size=8, shuffle=True)
    model = mpg_regressor()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.001)
    torch.manual_seed(seed)
    history = train(model, nn.MSELoss(), optimizer, loader, epochs, device=dev, on_epoch_end=on_epoch_end)
    with torch.no_grad():
        pred = model(d.x_test.to(dev))[:, 0]
        y = d.y_test.to(dev)
        mse, mae = nn.MSELoss()(pred, y).item(), nn.L1Loss()(pred, y).item()
    return MpgResult(model, history, mse, mae)


@dataclass
class MnistResult:
    """``history.train_acc`` per epoch (the book's printed line), and the test accuracy."""

    model: nn.Module
    history: History
    test_acc: float


def mnist_train_batches(root: str | Path | None, fast: bool, device: torch.device) -> ShuffledBatches | DataLoader:
    """The training batches of §8: the book's ``DataLoader`` over ``MNIST(transform=ToTensor())``,
    or the same batches sliced from one device-resident tensor. Call after seeding."""
    if fast:
        images, labels = load_mnist(root, train=True)
        x = images.unsqueeze(1).float().div(255).to(device)  # exactly ToTensor's uint8 → [0, 1]
        return ShuffledBatches(x, labels.to(device), batch_size=64)
    from torchvision import datasets, transforms

    load_mnist(root, train=True)  # checks the files first, naming any that is missing
    dataset = datasets.MNIST(str(data_root(root)), train=True, transform=transforms.ToTensor(), download=False)
    return DataLoader(dataset, batch_size=64, shuffle=True)


def mnist_run(root: str | Path | None = None, epochs: int = 20, seed: int = 1,
              device: str | torch.device | None = "cpu", fast: bool = True,
              on_epoch_end: EpochCallback | None = None) -> MnistResult:
    """Train §8's MLP as the book does: seed, loader, model; reseed; Adam lr 0.001, batch 64,
    CrossEntropyLoss; then the test accuracy of ``model(test.data / 255.)``."""
    dev = resolve_device(device)
    torch.manual_seed(seed)
    batches = mnist_train_batches(root, fast, dev)
    model = mnist_mlp()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    torch.manual_seed(seed)
    history = train(model, nn.CrossEntropyLoss(), optimizer, batches, epochs, correct=multiclass_correct,
                    device=dev, on_epoch_end=on_epoch_end)
    images, labels = load_mnist(root, train=False)
    with torch.no_grad():
        pred = model(images.to(dev) / 255.0)
    test_acc = (torch.argmax(pred, dim=1) == labels.to(dev)).float().mean().item()
    return MnistResult(model, history, test_acc)
