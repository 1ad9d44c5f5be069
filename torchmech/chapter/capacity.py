r"""§5 Model capacity as a claim about probabilities: many seeds of one architecture trained at once.

One XOR model per seed is the chapter's experiment; its outcome depends on the seed (4-unit
ReLU layers can die). :func:`train_ensemble` trains ``K`` copies — each initialised exactly
as the book's model built after ``torch.manual_seed(seed)``, each with its own shuffle —
as one batched computation: layer :math:`l` of all members is a stacked weight
:math:`W_l \in \mathbb{R}^{K \times n_{in} \times n_{out}}` applied with ``torch.baddbmm``,
and the members' losses are summed, so each member's gradient is its own. Plain SGD is
elementwise, so one update of the stacked tensors steps every member as if alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from torchmech.chapter.data.xor import XorData
from torchmech.chapter.layers import NoisyLinear
from torchmech.chapter.models import n_parameters
from torchmech.chapter.recipes import RECIPES
from torchmech.chapter.train import binary_decision
from torchmech.runtime.backends import Backend, resolve

Layers = list[tuple[torch.Tensor, torch.Tensor]]  # (weight (in, out), bias (out,)) per layer


def _noisy_linear(m: nn.Module) -> bool:
    """``m`` is torchmech's :class:`~torchmech.chapter.layers.NoisyLinear` or laid out like it (a learner's: tensors
    ``w`` of shape ``(in, out)`` and ``b``, not an ``nn.Linear``)."""
    if isinstance(m, NoisyLinear):
        return True
    return not isinstance(m, nn.Linear) and all(isinstance(getattr(m, a, None), torch.Tensor) for a in ("w", "b"))


def chain_layers(model: nn.Module) -> tuple[Layers, float]:
    """Weights ``(in, out)`` and biases of a ``[Linear|NoisyLinear, ReLU]* Linear, Sigmoid`` chain,
    and the first layer's input-noise σ (0 without a ``NoisyLinear``).

    A ``NoisyLinear`` is torchmech's or any layer laid out like it (a learner's): its ``w``, ``b`` and
    ``noise_stddev`` are read; its ``forward`` is not run (the ensemble draws the input noise itself).

    Raises:
        ValueError: the model is not such a chain.
    """
    layers: Layers = []
    kinds: list[str] = []
    noise = 0.0
    for m in model.modules():
        if isinstance(m, nn.Linear):
            layers.append((m.weight.detach().T, m.bias.detach()))
            kinds.append("linear")
        elif _noisy_linear(m):
            if layers:
                raise ValueError("only the first layer may be a NoisyLinear")
            if not isinstance(getattr(m, "noise_stddev", None), int | float):
                raise ValueError(f"{type(m).__name__} keeps no noise_stddev: the ensemble reads its σ there")
            layers.append((m.w.detach(), m.b.detach()))
            noise = float(m.noise_stddev)
            kinds.append("linear")
        elif isinstance(m, nn.ReLU | nn.Sigmoid):
            kinds.append(type(m).__name__)
    expected = ["linear", "ReLU"] * (len(layers) - 1) + ["linear", "Sigmoid"]
    if not layers or kinds != expected:
        raise ValueError(f"expected a chain Linear, ReLU, …, Linear, Sigmoid; got {kinds}")
    return layers, noise


@dataclass(frozen=True)
class EnsembleResult:
    """What :func:`train_ensemble` measured, one entry per seed.

    Attributes:
        seeds: the members' initialisation seeds.
        n_params: parameters of one member.
        train_acc, valid_acc: (K,) accuracies of the trained members on the two halves.
        grad_norms: (K, L) Frobenius norm of each layer's weight gradient, averaged over
            the first epoch (how much signal reaches each layer early in training).
        weights: the trained (weight (K, in, out), bias (K, 1, out)) of every layer.
    """

    seeds: tuple[int, ...]
    n_params: int
    train_acc: torch.Tensor
    valid_acc: torch.Tensor
    grad_norms: torch.Tensor
    weights: Layers

    def success_rate(self, threshold: float = 0.9) -> float:
        """Fraction of members whose validation accuracy exceeds ``threshold``."""
        return (self.valid_acc > threshold).float().mean().item()


def stacked(members: Sequence[Layers], be: Backend) -> Layers:
    """The members' layers stacked on ``be``'s device and dtype, as leaves to train: weights (K, in, out), biases
    (K, 1, out) — what :func:`torch.baddbmm` takes, one member per batch entry."""
    return [(be.cast(torch.stack([m[i][0] for m in members])).requires_grad_(),
             be.cast(torch.stack([m[i][1] for m in members]).unsqueeze(1)).requires_grad_())
            for i in range(len(members[0]))]


def batch_orders(k: int, n: int, seed: int, device: torch.device | str = "cpu") -> Iterator[torch.Tensor]:
    """An endless stream of per-epoch orders: each a (k, n) tensor, row ``i`` a permutation for member ``i``."""
    g = torch.Generator().manual_seed(seed)
    while True:
        yield torch.rand(k, n, generator=g).argsort(dim=1).to(device)


def _forward(layers: Sequence[tuple[torch.Tensor, torch.Tensor]], x: torch.Tensor) -> torch.Tensor:
    for i, (w, b) in enumerate(layers):
        x = torch.baddbmm(b, x, w)
        x = torch.relu(x) if i < len(layers) - 1 else torch.sigmoid(x)
    return x[..., 0]


def _accuracy(layers: Layers, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        pred = _forward(layers, x.expand(layers[0][0].shape[0], -1, -1))
    return (binary_decision(pred).to(y.dtype) == y).float().mean(dim=1).cpu()


def train_ensemble(
    build: Callable[[], nn.Module],
    data: XorData,
    seeds: int | Sequence[int] = 256,
    *,
    epochs: int = RECIPES["mlp"].epochs,
    batch_size: int = RECIPES["mlp"].batch_size,
    lr: float = RECIPES["mlp"].lr,
    order_seed: int = 0,
    device: str | torch.device | None = "cpu",
    backend: Backend | str | None = None,
) -> EnsembleResult:
    """Train one copy of ``build()`` per seed, all at once, with SGD and BCE as in §5.

    Args:
        build: makes one model, e.g. ``lambda: mlp((2, 4, 4, 1))`` or ``MyNoisyModule``;
            member ``i`` is ``build()`` called right after ``torch.manual_seed(seeds[i])``.
        data: the XOR split.
        seeds: the seeds, or how many (``range(K)``).
        epochs, batch_size, lr: as in the book (200, 2, 0.015: the 2×4 MLP's recipe, ``RECIPES["mlp"]``).
        order_seed: seeds the members' shuffles (:func:`batch_orders`).
        device: where to train.
        backend: how (:mod:`torchmech.runtime.backends`); overrides ``device``. Its dtype holds the stacked
            weights, its autocast wraps the forward pass, its compile compiles it.

    Every member's accuracy is measured after training on both halves. A ``NoisyLinear``
    first layer adds its noise to the inputs in training only.
    """
    seeds = tuple(range(seeds)) if isinstance(seeds, int) else tuple(seeds)
    if not seeds:
        raise ValueError("need at least one seed")
    n = len(data.x_train)
    if n % batch_size:
        raise ValueError(f"batch_size {batch_size} must divide the {n} training samples")
    be = resolve(backend, device)
    members = []
    for s in seeds:
        torch.manual_seed(s)
        members.append(build())
    per_member = [chain_layers(m) for m in members]
    noise = per_member[0][1]
    layers = stacked([layers_ for layers_, _ in per_member], be)
    k, steps = len(seeds), n // batch_size
    x, y = be.cast(data.x_train), be.cast(data.y_train)
    orders = batch_orders(k, n, order_seed, be.device)
    forward = be.function(_forward)
    with be.active():
        grad_sum = _sgd(layers, forward, x, y, orders, noise, be, epochs, steps, batch_size, lr)
    trained = [(w.detach(), b.detach()) for w, b in layers]
    return EnsembleResult(
        seeds=seeds,
        n_params=n_parameters(members[0]),
        train_acc=_accuracy(trained, x, y),
        valid_acc=_accuracy(trained, be.cast(data.x_valid), be.cast(data.y_valid)),
        grad_norms=(grad_sum / steps).float().cpu(),
        weights=[(w.float().cpu(), b.float().cpu()) for w, b in trained],
    )


def _sgd(layers: Layers, forward: Callable, x: torch.Tensor, y: torch.Tensor, orders: Iterator[torch.Tensor],
         noise: float, be: Backend, epochs: int, steps: int, batch_size: int, lr: float) -> torch.Tensor:
    """The ensemble's SGD epochs (members' losses summed); returns the first epoch's summed gradient norms.

    SGD written out: for a few tiny tensors torch.optim.SGD's step costs more than its arithmetic
    (measured: the 2x4 ensemble's 200 epochs 7.8 s → 5.2 s); the same update, bit for bit.
    """
    k = layers[0][0].shape[0]
    params = [p for wb in layers for p in wb]
    grad_sum = torch.zeros(k, len(layers), device=be.device, dtype=be.dtype)
    for epoch in range(epochs):
        order = next(orders)
        xs = x[order].view(k, steps, batch_size, -1)
        ys = y[order].view(k, steps, batch_size)
        for i in range(steps):
            xb = xs[:, i]
            if noise:
                # drawn in float32 whatever the backend's dtype: the arbiter sees the same noise
                xb = xb + noise * torch.randn(xb.shape, device=xb.device).to(xb.dtype)
            with be.autocast_context():
                pred = forward(layers, xb)
            loss = F.binary_cross_entropy(pred.to(be.dtype), ys[:, i], reduction="none").mean(dim=1).sum()
            loss.backward()
            if epoch == 0:
                grad_sum += torch.stack([w.grad.flatten(1).norm(dim=1) for w, _ in layers], dim=1)
            with torch.no_grad():
                for p in params:
                    p.add_(p.grad, alpha=-lr)
                    p.grad = None
    return grad_sum
