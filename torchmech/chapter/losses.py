r"""§4 Losses and penalties, each with the gradient autograd must reproduce written beside it.

All losses are mean-reduced over their :math:`N` elements (PyTorch's default), so:

* ``BCELoss(σ(z), y)`` w.r.t. the logit :math:`z`: :math:`(\sigma(z) - y)/N`
* ``CrossEntropyLoss(z, k)`` w.r.t. the logits: :math:`(\mathrm{softmax}(z) - \mathrm{onehot}(k))/N`
  (:math:`N` samples)
* ``MSELoss(ŷ, y)`` w.r.t. :math:`ŷ`: :math:`2(ŷ - y)/N`
* L1 penalty :math:`\lambda \sum |W|`: :math:`\lambda\,\mathrm{sign}(W)`
* L2 via ``weight_decay=wd``: SGD adds :math:`wd \cdot W` to the gradient, the gradient of
  :math:`(wd/2)\lVert W\rVert^2`.
"""

from __future__ import annotations

import torch
from torch import nn


def l1_penalty(weight: torch.Tensor, strength: float = 0.01) -> torch.Tensor:
    r"""The chapter's L1 penalty :math:`\lambda \sum |W|` (``l1_weight * W.abs().sum()``)."""
    if not strength >= 0:
        raise ValueError(f"L1 strength must be >= 0, got {strength}")
    return strength * weight.abs().sum()


def l1_penalty_grad(weight: torch.Tensor, strength: float = 0.01) -> torch.Tensor:
    r""":math:`\lambda\,\mathrm{sign}(W)` (0 where :math:`W = 0`, PyTorch's subgradient choice)."""
    return strength * weight.detach().sign()


def l2_penalty(weight: torch.Tensor, weight_decay: float) -> torch.Tensor:
    r""":math:`(wd/2)\lVert W\rVert^2`, the loss term equivalent to SGD's ``weight_decay=wd``."""
    if not weight_decay >= 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    return 0.5 * weight_decay * weight.pow(2).sum()


def bce_logit_grad(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r""":math:`\partial\,\mathrm{BCE}(\sigma(z), y) / \partial z = (\sigma(z) - y)/N`."""
    _same_shape(z, y)
    return (torch.sigmoid(z) - y) / z.numel()


def cross_entropy_logit_grad(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    r""":math:`\partial\,\mathrm{CE}(z, k) / \partial z = (\mathrm{softmax}(z) - \mathrm{onehot}(k))/N`.

    For logits of shape (N, C) and class indices of shape (N,).
    """
    if logits.dim() != 2 or target.shape != logits.shape[:1]:
        raise ValueError(
            f"expected logits (N, C) and class indices (N,), got {tuple(logits.shape)} and {tuple(target.shape)}"
        )
    onehot = nn.functional.one_hot(target, logits.shape[1]).to(logits.dtype)
    return (torch.softmax(logits, dim=1) - onehot) / logits.shape[0]


def mse_grad(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r""":math:`\partial\,\mathrm{MSE}(\hat y, y) / \partial \hat y = 2(\hat y - y)/N`."""
    _same_shape(pred, y)
    return 2 * (pred - y) / pred.numel()


def _same_shape(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape != b.shape:
        raise ValueError(f"prediction and target shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
