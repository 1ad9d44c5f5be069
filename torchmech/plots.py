"""Figures of the chapter (13.2–13.6), drawn headless with matplotlib's object API and saved as PNG."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from torchmech.data.xor import XorData
from torchmech.models import predict_classes
from torchmech.train import History, binary_decision


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    fig.savefig(tmp, format="png", dpi=80, bbox_inches="tight")
    tmp.replace(path)
    return path


def xor_scatter(data: XorData, path: Path) -> Path:
    """Figure 13.2: the 200 XOR points, class 0 as circles and class 1 as triangles."""
    x, y = data.x, data.y
    fig = Figure(figsize=(6, 6))
    ax = fig.subplots()
    ax.plot(x[y == 0, 0], x[y == 0, 1], "o", alpha=0.75, markersize=10)
    ax.plot(x[y == 1, 0], x[y == 1, 1], "<", alpha=0.75, markersize=10)
    ax.set_xlabel(r"$x_1$", size=15)
    ax.set_ylabel(r"$x_2$", size=15)
    return _save(fig, path)


def learning_curves(history: History, path: Path) -> Path:
    """Figures 13.3/13.4: loss and accuracy per epoch, training and validation."""
    fig = Figure(figsize=(16, 4))
    ax1, ax2 = fig.subplots(1, 2)
    for ax, train, valid, what in ((ax1, history.train_loss, history.valid_loss, "Loss"),
                                   (ax2, history.train_acc, history.valid_acc, "Accuracy")):
        ax.plot(train, lw=4)
        if valid:
            ax.plot(valid, lw=4)
        ax.legend(["Train " + what.lower(), "Validation " + what.lower()][: 1 + bool(valid)], fontsize=15)
        ax.set_xlabel("Epochs", size=15)
        ax.set_ylabel(what, size=15)
    return _save(fig, path)


class _Classifier:
    """The ``predict`` mlxtend asks of a classifier, for models that lack one."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def predict(self, x: np.ndarray) -> np.ndarray:
        return predict_classes(self.model, x)


def decision_regions(model: nn.Module, data: XorData, path: Path) -> Path:
    """Figures 13.5/13.6: the model's decision regions over the validation points.

    Uses mlxtend's ``plot_decision_regions`` as the book does when mlxtend is installed
    (labels as ``np.int64``: the book's ``astype(np.integer)`` fails on NumPy ≥ 1.24),
    else draws the same regions with a contour of the model's predictions.
    """
    model = model.to("cpu").eval()
    x, y = data.x_valid.numpy(), data.y_valid.numpy().astype(np.int64)
    fig = Figure(figsize=(6, 6))
    ax = fig.subplots()
    try:
        from mlxtend.plotting import plot_decision_regions
    except ImportError:
        g1, g2 = np.meshgrid(np.linspace(-1.1, 1.1, 200), np.linspace(-1.1, 1.1, 200))
        grid = torch.tensor(np.c_[g1.ravel(), g2.ravel()], dtype=torch.float32)
        with torch.no_grad():
            z = binary_decision(model(grid)[:, 0]).float().numpy().reshape(g1.shape)
        ax.contourf(g1, g2, z, alpha=0.3, levels=[-0.5, 0.5, 1.5])
        ax.plot(x[y == 0, 0], x[y == 0, 1], "s", alpha=0.8)
        ax.plot(x[y == 1, 0], x[y == 1, 1], "^", alpha=0.8)
    else:
        clf = model if hasattr(model, "predict") else _Classifier(model)
        plot_decision_regions(X=x, y=y, clf=clf, ax=ax)
    ax.set_xlabel(r"$x_1$", size=15)
    ax.set_ylabel(r"$x_2$", size=15)
    return _save(fig, path)


def xor_figures(model: nn.Module, history: History, data: XorData, out_dir: Path, name: str) -> list[Path]:
    """All XOR figures of one run: scatter, learning curves, decision regions (PNG paths)."""
    out = Path(out_dir)
    return [
        xor_scatter(data, out / "xor_data.png"),
        learning_curves(history, out / f"xor_{name}_curves.png"),
        decision_regions(model, data, out / f"xor_{name}_regions.png"),
    ]


def saliency_grid(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, path: Path) -> Path:
    """The side box of §3 on MNIST: each digit above its saliency |∂ logit_true / ∂ pixel|.

    Args:
        images: (N, 1, 28, 28) or (N, 28, 28) in [0, 1]; labels: (N,) true classes.
    """
    from torchmech.autodiff import saliency

    device = next(model.parameters()).device
    x, y = images.to(device), labels.to(device)
    maps = saliency(lambda inp: model(inp).gather(1, y[:, None]), x).reshape(len(x), 28, 28).cpu()
    fig = Figure(figsize=(1.6 * len(x), 3.4))
    axes = fig.subplots(2, len(x), squeeze=False)
    for i in range(len(x)):
        axes[0, i].imshow(images[i].reshape(28, 28).cpu().numpy(), cmap="gray_r")
        axes[0, i].set_title(str(int(labels[i])))
        axes[1, i].imshow(maps[i].numpy(), cmap="hot")
        for ax in axes[:, i]:
            ax.set_axis_off()
    return _save(fig, path)


def accuracy_curve(ours: list[float], book: list[float], path: Path) -> Path:
    """MNIST's training accuracy per epoch, this run against the book's printed values."""
    fig = Figure(figsize=(8, 4))
    ax = fig.subplots()
    ax.plot(range(len(book)), book, "o--", label="book (printed)")
    ax.plot(range(len(ours)), ours, "s-", label="this run")
    ax.set_xlabel("Epoch", size=13)
    ax.set_ylabel("Training accuracy", size=13)
    ax.legend()
    return _save(fig, path)


def digit_grid(images: torch.Tensor, labels: torch.Tensor, preds: torch.Tensor, path: Path) -> Path:
    """Test digits with the model's prediction above each (red where it is wrong)."""
    n = len(images)
    fig = Figure(figsize=(1.5 * n / 2, 3.4))
    axes = fig.subplots(2, (n + 1) // 2, squeeze=False).ravel()
    for ax, img, label, pred in zip(axes, images, labels, preds, strict=False):
        ax.imshow(img.reshape(28, 28).cpu().numpy(), cmap="gray_r")
        ax.set_title(f"{int(pred)}", color="black" if int(pred) == int(label) else "red")
    for ax in axes:
        ax.set_axis_off()
    return _save(fig, path)
