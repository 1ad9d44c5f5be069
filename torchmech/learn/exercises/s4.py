"""§4 torch.nn: Sequential, losses, optimizers: its exercises, their sample inputs and observers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from torchmech.learn.exercises.core import (
    Exercise,
    Sample,
    _builder_samples,
    _fresh,
    _gen,
    _raised,
    builder,
)
from torchmech.learn.grader import call


def _sizes(t: torch.Tensor) -> dict[str, float]:
    cols = t.shape[1] if t.dim() >= 2 else 1
    rows = t.shape[0] if t.dim() else 1
    return {"the number of rows": rows, "the number of columns": cols, "the number of elements": t.numel(),
            "the number of elements per row (numel / shape[0])": t.numel() // rows}


def l1_samples() -> tuple[Sample, ...]:
    cases = [((2, 2), 0.2, torch.float32), ((1,), None, torch.float32), ((5, 3), 0.01, torch.float64),
             ((3, 4, 2), 1e-3, torch.float32), ((16, 4), 0.5, torch.float64), ((), 0.3, torch.float64)]
    out = []
    for i, (shape, strength, dtype) in enumerate(cases):
        w = torch.randn(shape, generator=_gen(i), dtype=dtype)
        if i == 0:
            w[0, 0] = 0.0

        def make(w=w, strength=strength) -> tuple:
            p = nn.Parameter(w.clone())
            return (p,) if strength is None else (p, strength)
        out.append(Sample(make, ("weight", "strength"), seed=i))
    return tuple(out)


def l1(piece: Any, sample: Sample) -> dict[str, Any]:
    args = sample.make()
    try:
        out = piece(*args)
    except Exception as err:
        return _raised(err)
    obs: dict[str, Any] = {"returned": out.detach() if isinstance(out, torch.Tensor) else out}
    if isinstance(out, torch.Tensor) and out.requires_grad:
        (grad,) = torch.autograd.grad(out.sum(), args[0], allow_unused=True)
        obs["its gradient with respect to weight"] = grad
    else:
        obs["its gradient with respect to weight"] = "none: the result is not differentiable"
    return obs


def _pairs(shapes: list, target: Callable[[torch.Generator, tuple, torch.dtype], torch.Tensor],
           names: tuple[str, str]) -> tuple[Sample, ...]:
    out = []
    for i, (shape, dtype) in enumerate(shapes):
        g = _gen(i)
        z = 2 * torch.randn(shape, generator=g, dtype=dtype)
        out.append(Sample(_fresh(z, target(g, shape, dtype)), names, seed=i, sizes=_sizes(z)))
    return tuple(out)


_GRAD_SHAPES = [((6,), torch.float32), ((1,), torch.float64), ((7, 1), torch.float32), ((4, 3), torch.float32),
                ((33, 5), torch.float64), ((2, 3, 2), torch.float32)]


def bce_samples() -> tuple[Sample, ...]:
    return _pairs(_GRAD_SHAPES, lambda g, s, d: (torch.rand(s, generator=g) > 0.5).to(d), ("z", "y"))


def mse_samples() -> tuple[Sample, ...]:
    return _pairs(_GRAD_SHAPES, lambda g, s, d: torch.randn(s, generator=g, dtype=d), ("pred", "y"))


def cross_entropy_samples() -> tuple[Sample, ...]:
    out = []
    for i, (n, c, dtype) in enumerate([(4, 5, torch.float32), (1, 2, torch.float32), (7, 10, torch.float64),
                                       (64, 3, torch.float32), (9, 4, torch.float64)]):
        g = _gen(i)
        z = 2 * torch.randn(n, c, generator=g, dtype=dtype)
        k = torch.randint(0, c, (n,), generator=g)
        out.append(Sample(_fresh(z, k), ("logits", "target"), seed=i,
                          sizes={"the number of samples": n, "the number of classes": c,
                                 "the number of elements": n * c}))
    return tuple(out)


def sequential_samples() -> tuple[Sample, ...]:
    return _builder_samples((1, 4), (7, 4), (64, 4))


EXERCISES: tuple[Exercise, ...] = (
    Exercise("l1_penalty", "s4", "def l1_penalty(weight, strength=0.01):",
             "The chapter's L1 penalty λ·Σ|W| as a 0-d tensor that autograd can differentiate with respect to "
             "weight (a tensor of any shape).", (), l1_samples, l1,
             ("§4: L1 regularisation adds the weights' absolute sum to the loss.",
              "the strength times the sum of the absolute values of every element.",
              "return strength * weight.abs().sum()"),
             spans=("0-d", "rank ≥ 3", "several dtypes", "defaults and other values")),
    Exercise("bce_logit_grad", "s4", "def bce_logit_grad(z, y):",
             "∂ BCELoss(σ(z), y) / ∂z by hand, for z and y of the same shape (any shape of rank ≥ 1: (N,), (N, 1), "
             "(N, C), …); BCELoss takes the mean over ALL the elements.", (), bce_samples, call,
             ("§4: BCE on a sigmoid has the simplest gradient in the chapter.",
              "σ(z) − y, divided by the number of terms the mean is taken over.",
              "return (torch.sigmoid(z) - y) / z.numel()"),
             spans=("rank ≥ 3", "a single row", "several dtypes")),
    Exercise("cross_entropy_logit_grad", "s4", "def cross_entropy_logit_grad(logits, target):",
             "∂ CrossEntropyLoss(z, k) / ∂z by hand, for logits (N, C) and class indices (N,) (mean over the N "
             "samples).", (), cross_entropy_samples, call,
             ("§4: cross-entropy applies log-softmax to the logits itself.",
              "softmax of each row minus the one-hot target, divided by the number of samples.",
              "return (torch.softmax(logits, dim=1) - onehot) / logits.shape[0]"),
             spans=("a single row", "several dtypes")),
    Exercise("mse_grad", "s4", "def mse_grad(pred, y):",
             "∂ MSELoss(ŷ, y) / ∂ŷ by hand, for ŷ and y of the same shape (any shape of rank ≥ 1: (N,), (N, 1), "
             "(N, C), …); MSELoss takes the mean over ALL the elements.", (), mse_samples, call,
             ("§4: the mean squared error's gradient is the residual.",
              "2·(ŷ − y), divided by the number of terms the mean is taken over.",
              "return 2 * (pred - y) / pred.numel()"),
             spans=("rank ≥ 3", "a single row", "several dtypes")),
    Exercise("chapter_sequential", "s4", "def chapter_sequential():",
             "The chapter's nn.Sequential: Linear(4, 16), ReLU, Linear(16, 32), ReLU (layers built in that order, "
             "PyTorch's default initialisation).",
             ("s4.sequential.repr", "s4.sequential.parameters"), sequential_samples, builder,
             ("§4: nn.Sequential chains layers in order.", "4 → 16 → 32 with a ReLU after each Linear.",
              "return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 32), nn.ReLU())"),
             spans=("a single row", "several seeds")),
)
