"""§4 torch.nn: the catalogue's wrong pieces of this section's exercises, and their rows."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from torchmech.learn.mistakes.core import Mistake


def _l1_squares() -> Callable:
    return lambda weight, strength=0.01: strength * weight.pow(2).sum()


def _bce_without_sigmoid() -> Callable:
    return lambda z, y: (z - y) / z.numel()  # as if the logits were already probabilities


def _bce_double_sigmoid() -> Callable:
    return lambda z, y: (torch.sigmoid(torch.sigmoid(z)) - y) / z.numel()  # sigmoid before BCEWithLogitsLoss


def _softmax_wrong_dim() -> Callable:
    def cross_entropy_logit_grad(logits, target):
        onehot = nn.functional.one_hot(target, logits.shape[1]).to(logits.dtype)
        return (torch.softmax(logits, dim=0) - onehot) / logits.shape[0]
    return cross_entropy_logit_grad


def _mse_sum() -> Callable:
    return lambda pred, y: 2 * (pred - y)  # the sum's gradient, not the mean's


def _sequential_no_last_relu() -> Callable:
    return lambda: nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 32))


def _over_rows(kind: str) -> Callable:
    if kind == "bce":
        return lambda z, y: (torch.sigmoid(z) - y) / z.shape[0]
    return lambda pred, y: 2 * (pred - y) / pred.shape[0]


def _l1_mean() -> Callable:
    return lambda weight, strength=0.01: strength * weight.abs().mean()


def _l1_item() -> Callable:
    return lambda weight, strength=0.01: (strength * weight.abs().sum()).item()


def _bce_without_mean() -> Callable:
    return lambda z, y: torch.sigmoid(z) - y


def _bce_times_sigmoid_derivative() -> Callable:
    def bce_logit_grad(z, y):
        p = torch.sigmoid(z)
        return (p - y) * p * (1 - p) / z.numel()  # σ'(z) multiplied in, though BCE's 1/(p(1 − p)) cancels it
    return bce_logit_grad


def _ce_variant(kind: str) -> Callable:
    def cross_entropy_logit_grad(logits, target):
        onehot = nn.functional.one_hot(target, logits.shape[1]).to(logits.dtype)
        if kind == "log_softmax":
            return (torch.log_softmax(logits, dim=1) - onehot) / logits.shape[0]
        return torch.softmax(logits, dim=1) - onehot  # the mean's 1/N forgotten
    return cross_entropy_logit_grad


def _mse_without_2() -> Callable:
    return lambda pred, y: (pred - y) / pred.numel()


def _mse_sign_flipped() -> Callable:
    return lambda pred, y: 2 * (y - pred) / pred.numel()


def _sequential_widths_swapped() -> Callable:
    return lambda: nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU())


MISTAKES: tuple[Mistake, ...] = (
    Mistake("l1_squares", "l1_penalty", "Σ W² (the L2 penalty) instead of Σ|W|", _l1_squares),
    Mistake("bce_without_sigmoid", "bce_logit_grad", "(z − y)/N: the sigmoid forgotten", _bce_without_sigmoid),
    Mistake("bce_double_sigmoid", "bce_logit_grad", "sigmoid applied before BCEWithLogitsLoss (twice in all)",
            _bce_double_sigmoid),
    Mistake("softmax_wrong_dim", "cross_entropy_logit_grad", "softmax over the samples (dim 0), not the classes",
            _softmax_wrong_dim),
    Mistake("mse_sum", "mse_grad", "the gradient of the sum, not of the mean (no /N)", _mse_sum),
    Mistake("sequential_no_last_relu", "chapter_sequential", "the last ReLU left out", _sequential_no_last_relu),
    Mistake("bce_over_rows", "bce_logit_grad", "divided by z.shape[0] (the rows), not by the number of elements",
            lambda: _over_rows("bce")),
    Mistake("mse_over_rows", "mse_grad", "divided by pred.shape[0] (the rows), not by the number of elements",
            lambda: _over_rows("mse")),
    Mistake("l1_mean", "l1_penalty", "λ · mean |W| instead of λ · Σ|W|", _l1_mean),
    Mistake("l1_item", "l1_penalty", ".item(): a Python float, which autograd cannot differentiate", _l1_item),
    Mistake("bce_without_mean", "bce_logit_grad", "σ(z) − y: the mean's 1/N forgotten", _bce_without_mean),
    Mistake("bce_times_sigmoid_derivative", "bce_logit_grad", "σ'(z) = σ(1 − σ) multiplied in, though BCE's "
            "derivative cancels it", _bce_times_sigmoid_derivative),
    Mistake("ce_without_mean", "cross_entropy_logit_grad", "softmax − onehot: the mean's 1/N forgotten",
            lambda: _ce_variant("no_mean")),
    Mistake("ce_log_softmax", "cross_entropy_logit_grad", "log_softmax − onehot instead of softmax − onehot",
            lambda: _ce_variant("log_softmax")),
    Mistake("mse_without_2", "mse_grad", "the 2 of the square's derivative forgotten", _mse_without_2),
    Mistake("mse_sign_flipped", "mse_grad", "2·(y − ŷ)/N: the derivative of (y − ŷ)² w.r.t. ŷ without its minus "
            "sign", _mse_sign_flipped),
    Mistake("sequential_widths_swapped", "chapter_sequential", "Linear(4, 32) then Linear(32, 16): the widths in "
            "the wrong order", _sequential_widths_swapped),
)
