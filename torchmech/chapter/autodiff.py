r"""§3 Gradients by automatic differentiation.

* The chapter's example, :math:`z = wx + b`, :math:`L = \sum (y - z)^2`, with its analytic
  gradients beside it: :math:`\partial L/\partial w = 2\sum x(wx + b - y)` and
  :math:`\partial L/\partial b = 2\sum (wx + b - y)`.
* The chain rule on nested functions :math:`y = f(g(h(x)))`: forward accumulation
  (``torch.func.jvp``) and reverse accumulation (``torch.autograd.grad``, what
  ``backward()`` runs) give the same derivative.
* The gradient with respect to the *input*: adversarial examples (FGSM) and saliency.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

Fn = Callable[[torch.Tensor], torch.Tensor]


def _check_xy(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.device != y.device:
        raise ValueError(f"x and y must share one device, got {x.device} and {y.device}")


def linear_loss(w: torch.Tensor, b: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""The chapter's squared loss :math:`L = \sum (y - (wx + b))^2`, built as in the book.

    Args:
        w, b: scalar (0-d) parameters, usually with ``requires_grad=True``.
        x, y: inputs and targets of one shape.

    Raises:
        ValueError: ``x`` and ``y`` differ in shape or device, or ``w``/``b`` are not scalars.
    """
    _check_xy(x, y)
    if w.dim() != 0 or b.dim() != 0:
        raise ValueError(f"w and b must be scalars, got shapes {tuple(w.shape)} and {tuple(b.shape)}")
    z = torch.add(torch.mul(w, x), b)
    return (y - z).pow(2).sum()


def linear_loss_grad(
    w: torch.Tensor, b: torch.Tensor, x: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Analytic :math:`(\partial L/\partial w, \partial L/\partial b) = (2\sum x r, 2\sum r)`.

    Here :math:`r = wx + b - y` is the residual.
    """
    _check_xy(x, y)
    r = w.detach() * x + b.detach() - y
    return 2 * (x * r).sum(), 2 * r.sum()


@dataclass(frozen=True)
class ChainCase:
    r"""A nested function :math:`y = f(g(h(x)))` with its derivative written out by hand.

    Attributes:
        name: the composition in words, e.g. ``"sin(exp(x^2))"``.
        fn: the elementwise function, built from torch operations.
        derivative: :math:`dy/dx` in closed form (by the chain rule, on paper).
        low, high: the domain the inputs are drawn from.
        kinks: points where ``fn`` is not differentiable; inputs are kept away from them.
    """

    name: str
    fn: Fn
    derivative: Fn
    low: float
    high: float
    kinks: tuple[float, ...] = ()


CHAIN_CASES: tuple[ChainCase, ...] = (
    ChainCase(
        "sin(exp(x^2))",
        lambda x: torch.sin(torch.exp(x**2)),
        lambda x: torch.cos(torch.exp(x**2)) * torch.exp(x**2) * 2 * x,
        -1.5, 1.5,
    ),
    ChainCase(
        "log(1 + tanh(x)^2)",
        lambda x: torch.log(1 + torch.tanh(x) ** 2),
        lambda x: 2 * torch.tanh(x) * (1 - torch.tanh(x) ** 2) / (1 + torch.tanh(x) ** 2),
        -3.0, 3.0,
    ),
    ChainCase(
        "sqrt(1 + sin(x)^2)",
        lambda x: torch.sqrt(1 + torch.sin(x) ** 2),
        lambda x: torch.sin(x) * torch.cos(x) / torch.sqrt(1 + torch.sin(x) ** 2),
        -4.0, 4.0,
    ),
    ChainCase(
        "sigmoid(3 cos(x))",
        lambda x: torch.sigmoid(3 * torch.cos(x)),
        lambda x: torch.sigmoid(3 * torch.cos(x)) * (1 - torch.sigmoid(3 * torch.cos(x))) * -3 * torch.sin(x),
        -4.0, 4.0,
    ),
    ChainCase(
        "relu(exp(x) - 1)",
        lambda x: torch.relu(torch.exp(x) - 1),
        lambda x: torch.where(x > 0, torch.exp(x), torch.zeros_like(x)),
        -2.0, 2.0,
        kinks=(0.0,),
    ),
    ChainCase(
        "exp(-|x^3 - 1|)",
        lambda x: torch.exp(-torch.abs(x**3 - 1)),
        lambda x: -torch.exp(-torch.abs(x**3 - 1)) * torch.sign(x**3 - 1) * 3 * x**2,
        -2.0, 2.0,
        kinks=(1.0,),
    ),
    ChainCase(
        "softplus(x * sin(x))",
        lambda x: nn.functional.softplus(x * torch.sin(x)),
        lambda x: torch.sigmoid(x * torch.sin(x)) * (torch.sin(x) + x * torch.cos(x)),
        -5.0, 5.0,
    ),
)


def reverse_mode(fn: Fn, x: torch.Tensor) -> torch.Tensor:
    """Elementwise derivative of ``fn`` at ``x`` by reverse accumulation (backpropagation)."""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(fn(x).sum(), x)
    return grad


def forward_mode(fn: Fn, x: torch.Tensor) -> torch.Tensor:
    """Elementwise derivative of ``fn`` at ``x`` by forward accumulation (a Jacobian-vector product)."""
    _, tangent = torch.func.jvp(fn, (x.detach(),), (torch.ones_like(x),))
    return tangent


def fgsm(
    model: Fn,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    epsilon: float,
    clamp: tuple[float, float] | None = None,
) -> torch.Tensor:
    r"""One fast-gradient-sign step (Goodfellow et al., 2015): :math:`x + \epsilon\,\mathrm{sign}(\nabla_x L)`.

    The side box of §3: the loss's gradient with respect to the *input* points where a
    small change hurts the prediction most. ``clamp=(0, 1)`` keeps pixels valid. The model's
    parameters and ``.grad`` are left untouched.

    Raises:
        ValueError: ``epsilon`` is negative or not finite, or ``x`` is not floating point.
    """
    if not (epsilon >= 0 and epsilon < float("inf")):
        raise ValueError(f"epsilon must be a finite number >= 0, got {epsilon}")
    if not x.is_floating_point():
        raise ValueError(f"x must be floating point to take a gradient, got {x.dtype}")
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(loss_fn(model(x), y), x)
    x_adv = (x + epsilon * grad.sign()).detach()
    return x_adv if clamp is None else x_adv.clamp(*clamp)


def saliency(model: Fn, x: torch.Tensor) -> torch.Tensor:
    r"""Saliency map :math:`|\partial \hat y / \partial x|` for each sample: which inputs move the output.

    ``model`` must give one output per sample (shape ``(N,)`` or ``(N, 1)``); for a
    multi-class model pick the class first, e.g. ``lambda x: net(x)[:, k]``.
    """
    x = x.detach().requires_grad_(True)
    out = model(x)
    if out.shape[0] != x.shape[0] or out[0].numel() != 1:
        raise ValueError(f"saliency needs one output per sample, got output shape {tuple(out.shape)}")
    (grad,) = torch.autograd.grad(out.sum(), x)
    return grad.abs()
