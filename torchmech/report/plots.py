"""Figures of the chapter (13.2–13.6) and of the report (one or more per section), drawn headless
with matplotlib's object API and saved as PNG."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch import nn

from torchmech.chapter.autodiff import saliency
from torchmech.chapter.data.xor import XorData
from torchmech.chapter.graph import GraphNode
from torchmech.chapter.models import predict_classes
from torchmech.chapter.train import History, binary_decision

#: The PNGs' resolution (dots per inch).
DPI = 80


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    fig.savefig(tmp, format="png", dpi=DPI, bbox_inches="tight")
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
        import matplotlib.pyplot as plt

        clf = model if hasattr(model, "predict") else _Classifier(model)
        # mlxtend sizes its prediction grid by pyplot's current figure (dpi × inches: 640 × 480 points for
        # the default one, which it leaves open); one point per 2 pixels of this PNG is as sharp, 5× cheaper
        grid = plt.figure(figsize=fig.get_size_inches(), dpi=DPI / 2)
        try:
            plot_decision_regions(X=x, y=y, clf=clf, ax=ax)
        finally:
            plt.close(grid)
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
    n, gap = len(images), 6
    cols = (n + 1) // 2
    tiles = images.reshape(n, 28, 28).float().cpu()
    if n < 2 * cols:
        tiles = torch.cat([tiles, torch.full((1, 28, 28), float("nan"))])
    rows = [_montage(tiles[:cols], gap), _montage(tiles[cols:], gap)]
    grid = np.concatenate([rows[0], np.full((2 * gap, rows[0].shape[1]), np.nan), rows[1]])
    fig = Figure(figsize=(1.5 * n / 2, 3.4))
    ax = fig.subplots()  # one image of all digits: 12 axes cost 10× more to draw
    ax.imshow(grid, cmap=matplotlib.colormaps["gray_r"].with_extremes(bad="white"), interpolation="nearest")
    for i, (label, pred) in enumerate(zip(labels, preds, strict=True)):
        r, c = divmod(i, cols)
        ax.text(c * (28 + gap) + 13.5, r * (28 + 2 * gap) - 1.5, f"{int(pred)}", ha="center", va="bottom", size=12,
                color="black" if int(pred) == int(label) else "red")
    ax.set_axis_off()
    return _save(fig, path)


# --- the report's figures, one or more per section (drawn from numbers the report computed) ----------
def grad_fn_graph(nodes: Sequence[GraphNode], path: Path, output: str = "z") -> Path:
    """§1: a ``grad_fn`` DAG (:func:`torchmech.chapter.graph.grad_fn_dag`) as boxes and arrows, the forward way.

    Operations stand on one row in the order they ran; each leaf (``AccumulateGrad``) sits beside
    the operation that reads it, above or below. An arrow goes from a node to each node that uses its
    output (``backward()`` walks them in reverse); the last node feeds ``output``.
    """
    depth: list[int] = []
    for node in nodes:
        depth.append(0 if node.is_leaf else 1 + max((depth[i] for i in node.inputs), default=0))
    consumers = {i: [j for j, n in enumerate(nodes) if i in n.inputs] for i in range(len(nodes))}
    pos: dict[int, tuple[float, float]] = {}
    for i, node in enumerate(nodes):
        if not node.is_leaf:
            pos[i] = (float(depth[i]), 0.0)
    side = 1.0
    for i, node in enumerate(nodes):
        if node.is_leaf:
            x = min((depth[j] for j in consumers[i]), default=1) - 0.5
            taken = [p for p in pos.values() if abs(p[0] - x) < 0.3]
            pos[i] = (x, side * (1.0 + len([p for p in taken if p[1] * side > 0])))
            side = -side
    root = len(nodes) - 1
    fig = Figure(figsize=(2.3 * (max(depth) + 1.5), 4.2))
    ax = fig.subplots()
    box = {"boxstyle": "round,pad=0.35", "linewidth": 1.2}
    texts = {}
    for i, node in enumerate(nodes):
        x, y = pos[i]
        text = f"{node.label}\n{node.name}" if node.label else node.name
        colour = "#dbeafe" if node.is_leaf else "#fde68a"
        texts[i] = ax.text(x, y, text, ha="center", va="center", size=10, family="monospace",
                           bbox={**box, "facecolor": colour, "edgecolor": "#444"}, zorder=3)
    ox, oy = pos[root][0] + 0.9, pos[root][1]
    texts[-1] = ax.text(ox, oy, output, ha="center", va="center", size=13, family="monospace",
                        bbox={"boxstyle": "circle,pad=0.2", "facecolor": "white", "edgecolor": "none"})
    arrow = {"arrowstyle": "-|>", "color": "#444", "lw": 1.4, "mutation_scale": 16, "shrinkA": 2, "shrinkB": 2}
    for i in range(len(nodes)):
        for j in [*consumers[i], *([-1] if i == root else [])]:
            # clipped at both boxes: the arrow runs from edge to edge, its head outside the target box
            ax.annotate("", xy=(ox, oy) if j == -1 else pos[j], xytext=pos[i], zorder=4, arrowprops={
                **arrow, "patchA": texts[i].get_bbox_patch(), "patchB": texts[j].get_bbox_patch()})
    xs = [p[0] for p in pos.values()] + [ox]
    ys = [p[1] for p in pos.values()]
    ax.set_xlim(min(xs) - 0.7, max(xs) + 0.4)
    ax.set_ylim(min(ys) - 0.8, max(ys) + 0.8)
    ax.set_axis_off()
    return _save(fig, path)


def glorot_histograms(uniform: torch.Tensor, normal: torch.Tensor, bound: float, std: float, path: Path) -> Path:
    """§2: histograms of ``xavier_uniform_`` and ``xavier_normal_`` samples over the Glorot densities
    U(−a, a) and N(0, σ²)."""
    fig = Figure(figsize=(12, 3.8))
    ax1, ax2 = fig.subplots(1, 2)
    u, n = uniform.flatten().cpu().numpy(), normal.flatten().cpu().numpy()
    ax1.hist(u, bins=60, density=True, histtype="stepfilled", color="#93c5fd",
             label=f"xavier_uniform_ ({u.size:,} samples)")
    ax1.plot([-bound, -bound, bound, bound], [0, 1 / (2 * bound), 1 / (2 * bound), 0], "k-", lw=2,
             label=f"U(−a, a), a = {bound:.4f}")
    grid = np.linspace(-4.5 * std, 4.5 * std, 300)
    ax2.hist(n, bins=80, density=True, histtype="stepfilled", color="#fca5a5",
             label=f"xavier_normal_ ({n.size:,} samples)")
    ax2.plot(grid, np.exp(-grid**2 / (2 * std**2)) / (std * np.sqrt(2 * np.pi)), "k-", lw=2,
             label=f"N(0, σ²), σ = {std:.4f}")
    for ax in (ax1, ax2):
        ax.set_xlabel("weight value")
        ax.set_ylabel("density")
        ax.legend(loc="lower center", fontsize=9)
    return _save(fig, path)


def gradient_sweep(x: Sequence[float], curves: dict[str, tuple[Sequence[float], Sequence[float]]],
                   point: float, path: Path) -> Path:
    """§3: autograd's gradient (dots) on the analytic one (a line) over a range of inputs ``x``; one panel
    per parameter (``curves[name] = (autograd, analytic)``), the book's input ``x = point`` marked."""
    fig = Figure(figsize=(12, 3.8))
    axes = fig.subplots(1, len(curves), squeeze=False)[0]
    for ax, (name, (auto, exact)) in zip(axes, curves.items(), strict=True):
        ax.plot(x, exact, "-", lw=4, color="#9ca3af", label="analytic (by hand)")
        ax.plot(x, auto, "o", ms=3.5, color="#1d4ed8", label="autograd (L.backward())")
        ax.axvline(point, color="#dc2626", ls=":", lw=1.2, label=f"the book's x = {point:g}")
        ax.set_xlabel("input x")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9)
    return _save(fig, path)


def fgsm_curve(epsilons: Sequence[float], accuracy: Sequence[float], path: Path) -> Path:
    """§3's side box: test accuracy against the FGSM step size ε."""
    fig = Figure(figsize=(6.5, 3.8))
    ax = fig.subplots()
    ax.plot(epsilons, accuracy, "o-", lw=2, color="#b91c1c")
    for e, a in zip(epsilons, accuracy, strict=True):
        ax.annotate(f"{a:.3f}", (e, a), textcoords="offset points", xytext=(4, 6), size=8)
    ax.set_xlabel("ε (pixel values in [0, 1])")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def loss_gradients(panels: Sequence[tuple[str, Sequence[float], Sequence[float], Sequence[float]]],
                   path: Path) -> Path:
    """§4: each loss's gradient by autograd (markers) on its closed form (a line): ``(title, x, autograd,
    closed form)`` per panel."""
    fig = Figure(figsize=(4.2 * len(panels), 3.6))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (title, x, auto, exact) in zip(axes, panels, strict=True):
        ax.plot(x, exact, "-", lw=2.5, color="#9ca3af", label="closed form")
        ax.plot(x[::3], auto[::3], "o", ms=4, color="#1d4ed8", label="autograd")
        ax.set_title(title, size=10)
        ax.set_xlabel("input")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("∂ loss / ∂ input  (× N)")
    return _save(fig, path)


def _success_bars(ax, labels: Sequence[str], rates: Sequence[float], n_params: Sequence[int]) -> None:
    bars = ax.bar(range(len(rates)), [100 * r for r in rates], color="#60a5fa")
    for bar, r, p in zip(bars, rates, n_params, strict=True):
        ax.annotate(f"{r:.0%}\n{p} par.", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", size=8)
    ax.set_xticks(range(len(labels)), labels, size=9)
    ax.set_ylabel("seeds with valid acc > 0.9 (%)")
    ax.set_ylim(0, 118)


def success_bars(labels: Sequence[str], rates: Sequence[float], n_params: Sequence[int], path: Path) -> Path:
    """The share of seeds above 0.9 validation accuracy per model (bars, parameters under the rate)."""
    fig = Figure(figsize=(6.5, 3.8))
    _success_bars(fig.subplots(), labels, rates, n_params)
    return _save(fig, path)


def capacity_bars(labels: Sequence[str], rates: Sequence[float], n_params: Sequence[int],
                  depths: Sequence[int], grad_quartiles: Sequence[tuple[float, float, float]], path: Path) -> Path:
    """§5: the share of seeds above 0.9 validation accuracy per architecture (bars), and the first
    layer's weight-gradient norm in the first epoch against depth (median, quartiles as a band)."""
    fig = Figure(figsize=(13, 4))
    ax1, ax2 = fig.subplots(1, 2, width_ratios=(1.6, 1))
    _success_bars(ax1, labels, rates, n_params)
    lo, med, hi = (np.array(v) for v in zip(*grad_quartiles, strict=True))
    ax2.fill_between(depths, lo, hi, color="#fca5a5", alpha=0.5, label="quartiles")
    ax2.semilogy(depths, med, "o-", color="#b91c1c", lw=2, label="median over seeds")
    ax2.set_xticks(list(depths))
    ax2.set_xlabel("hidden layers of 4 units")
    ax2.set_ylabel("first layer's |∇W| (epoch 1)")
    ax2.legend(fontsize=9)
    return _save(fig, path)


def mpg_figure(train_loss: Sequence[float], book: dict[int, float], y_true: Sequence[float],
               y_pred: Sequence[float], path: Path) -> Path:
    """§7: the training loss per epoch with the book's printed points, and predicted against true MPG."""
    fig = Figure(figsize=(12, 4))
    ax1, ax2 = fig.subplots(1, 2)
    ax1.semilogy(range(len(train_loss)), train_loss, lw=2, label="this run")
    ax1.semilogy(list(book), list(book.values()), "o", mfc="none", color="#dc2626", label="book (printed)")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("training loss (MSE, log scale)")
    ax1.legend()
    lo, hi = min(min(y_true), min(y_pred)) - 1, max(max(y_true), max(y_pred)) + 1
    ax2.plot([lo, hi], [lo, hi], "k:", lw=1)
    ax2.plot(y_true, y_pred, "o", alpha=0.7, color="#2563eb")
    ax2.set_xlabel("true MPG (test split)")
    ax2.set_ylabel("predicted MPG")
    ax2.set_aspect("equal")
    return _save(fig, path)


def _montage(tiles: torch.Tensor, gap: int = 3) -> np.ndarray:
    """(N, H, W) side by side, ``gap`` columns of NaN between (drawn blank)."""
    n, h, w = tiles.shape
    row = np.full((h, n * (w + gap) - gap), np.nan)
    for i, tile in enumerate(tiles):
        row[:, i * (w + gap): i * (w + gap) + w] = tile.numpy()
    return row


def saliency_pair(images: torch.Tensor, labels: Sequence[int], grads: torch.Tensor, dead: torch.Tensor,
                  rare: torch.Tensor, path: Path) -> Path:
    """§8: each digit above its raw saliency |∂ logit / ∂ x| and its gradient × input ∂ logit / ∂ x ⊙ x.

    Each row is one image of the N tiles (one colour scale per row: the digits compare).

    Args:
        images, grads: (N, 28, 28); grads are the true class logit's gradients.
        dead: (28, 28) bool, the pixels that are 0 in every training image (outlined in cyan).
        rare: (28, 28) bool, the pixels inked in only a few training images (outlined, dashed, in white).
    """
    n, gap = len(images), 3
    product = grads * images
    fig = Figure(figsize=(1.9 * n + 0.8, 6.6))
    axes = fig.subplots(3, 1)
    lim = float(product.abs().max()) or 1.0
    for ax, tiles, style in ((axes[0], images, {"cmap": "gray_r"}), (axes[1], grads.abs(), {"cmap": "hot"}),
                             (axes[2], product, {"cmap": "RdBu_r", "vmin": -lim, "vmax": lim})):
        cmap = matplotlib.colormaps[style.pop("cmap")].with_extremes(bad="white")
        ax.imshow(_montage(tiles, gap), cmap=cmap, interpolation="nearest", **style)
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
    for mask, colour, lw, ls in (((dead | rare), "white", 1.0, "dashed"), (dead, "#22d3ee", 1.3, "solid")):
        for i in range(n):  # tile by tile: no line along a tile's edge
            axes[1].contour(np.arange(28) + i * (28 + gap), np.arange(28), mask.float().numpy(), levels=[0.5],
                            colors=colour, linewidths=lw, linestyles=ls)
    for i, label in enumerate(labels):
        axes[0].text(i * (28 + gap) + 13.5, -2, str(int(label)), ha="center", va="bottom", size=11)
    for ax, text in zip(axes, ("digit", "|∂logit/∂x|", "∂logit/∂x ⊙ x"), strict=True):
        ax.set_ylabel(text, size=10)
    return _save(fig, path)


def plot_tensorboard_scalars(versions: dict[str, dict[str, list[tuple[int, int, float]]]], path: Path) -> Path:
    """§9: the scalars TensorBoard shows, per ``version_N``: losses against the training step,
    accuracies against the epoch, and ``test_acc`` (the best checkpoint's) as a star.

    Args:
        versions: ``{"version_0": {"train_loss": [(step, epoch, value), …], …}, …}``.
    """
    fig = Figure(figsize=(12, 4))
    ax1, ax2 = fig.subplots(1, 2)
    styles = ["-", "--", ":", "-."]
    for k, (name, tags) in enumerate(versions.items()):
        ls = styles[k % len(styles)]
        for tag, colour in (("train_loss", "#60a5fa"), ("valid_loss", "#f97316")):
            if tags.get(tag):
                steps, _, values = zip(*tags[tag], strict=True)
                ax1.plot(steps, values, ls, marker="o" if tag == "valid_loss" else ".", ms=4, color=colour,
                         label=f"{tag} ({name})")
        for tag, colour in (("train_acc", "#60a5fa"), ("valid_acc", "#f97316")):
            if tags.get(tag):
                _, epochs, values = zip(*tags[tag], strict=True)
                ax2.plot(epochs, values, ls, marker="o", ms=4, color=colour, label=f"{tag} ({name})")
        if tags.get("test_acc"):
            _, epoch, value = tags["test_acc"][-1]
            ax2.plot([epoch], [value], "*", ms=13, color="#16a34a", label=f"test_acc ({name}): {value:.4f}")
    ax1.set_xlabel("training step")
    ax1.set_ylabel("loss")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("accuracy")
    ax2.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in (ax1, ax2):
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return _save(fig, path)
