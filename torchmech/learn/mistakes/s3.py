"""§3 Gradients: the catalogue's wrong pieces of this section's exercises, and their rows."""

from __future__ import annotations

from collections.abc import Callable

import torch

from torchmech.learn.mistakes.core import Mistake, ref


def _grad_without_2() -> Callable:
    def linear_loss_grad(w, b, x, y):
        r = w.detach() * x + b.detach() - y
        return (x * r).sum(), r.sum()
    return linear_loss_grad


def _db_with_x() -> Callable:
    def linear_loss_grad(w, b, x, y):
        r = w.detach() * x + b.detach() - y
        return 2 * (x * r).sum(), 2 * (x * r).sum()
    return linear_loss_grad


def _fgsm_descends() -> Callable:
    def fgsm(model, loss_fn, x, y, epsilon, clamp=None):
        return 2 * x - ref("fgsm")(model, loss_fn, x, y, epsilon, clamp)  # x − ε·sign(g)
    return fgsm


def _fgsm_raw_gradient() -> Callable:
    def fgsm(model, loss_fn, x, y, epsilon, clamp=None):
        x = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(loss_fn(model(x), y), x)
        return (x + epsilon * grad).detach()
    return fgsm


def _fgsm_clamp_first() -> Callable:
    def fgsm(model, loss_fn, x, y, epsilon, clamp=None):
        x = x.detach()
        if clamp is not None:
            x = x.clamp(*clamp)  # clamped before the step: the step leaves [lo, hi]
        x = x.requires_grad_(True)
        (grad,) = torch.autograd.grad(loss_fn(model(x), y), x)
        return (x + epsilon * grad.sign()).detach()
    return fgsm


def _grad_sign_flipped() -> Callable:
    def linear_loss_grad(w, b, x, y):
        r = y - (w.detach() * x + b.detach())  # y − ŷ: the inner derivative's minus sign lost
        return 2 * (x * r).sum(), 2 * r.sum()
    return linear_loss_grad


def _grad_mean() -> Callable:
    def linear_loss_grad(w, b, x, y):
        r = w.detach() * x + b.detach() - y
        return 2 * (x * r).mean(), 2 * r.mean()  # the gradient of the mean, not of the sum
    return linear_loss_grad


def _grad_by_autograd() -> Callable:
    def linear_loss_grad(w, b, x, y):
        ((y - (w * x + b)) ** 2).sum().backward()  # autograd, not by hand: w.grad and b.grad are filled in
        return w.grad, b.grad
    return linear_loss_grad


def _fgsm_backward() -> Callable:
    def fgsm(model, loss_fn, x, y, epsilon, clamp=None):
        x = x.detach().requires_grad_(True)
        loss_fn(model(x), y).backward()  # backward(): the model's parameters get a .grad too
        x_adv = (x + epsilon * x.grad.sign()).detach()
        return x_adv if clamp is None else x_adv.clamp(*clamp)
    return fgsm


def _fgsm_marks_input() -> Callable:
    def fgsm(model, loss_fn, x, y, epsilon, clamp=None):
        x.requires_grad_(True)  # on the caller's tensor, not a detached copy
        (grad,) = torch.autograd.grad(loss_fn(model(x), y), x)
        x_adv = (x + epsilon * grad.sign()).detach()
        return x_adv if clamp is None else x_adv.clamp(*clamp)
    return fgsm


MISTAKES: tuple[Mistake, ...] = (
    Mistake("grad_without_2", "linear_loss_grad", "the 2 of the square's derivative forgotten", _grad_without_2),
    Mistake("db_with_x", "linear_loss_grad", "dL/db copied from dL/dw, with the x", _db_with_x),
    Mistake("fgsm_descends", "fgsm", "x − ε·sign(g): a step down the loss, not up", _fgsm_descends),
    Mistake("fgsm_raw_gradient", "fgsm", "ε·g instead of ε·sign(g)", _fgsm_raw_gradient),
    Mistake("fgsm_clamp_before_step", "fgsm", "the input clamped before the step, not the stepped result",
            _fgsm_clamp_first),
    Mistake("grad_sign_flipped", "linear_loss_grad", "the residual taken as y − ŷ without the inner derivative's "
            "minus sign", _grad_sign_flipped),
    Mistake("grad_of_the_mean", "linear_loss_grad", "the gradient of the mean, not of the sum the loss is",
            _grad_mean),
    Mistake("grad_by_autograd", "linear_loss_grad", "loss.backward() and w.grad, b.grad: autograd, not by hand",
            _grad_by_autograd),
    Mistake("fgsm_backward", "fgsm", "loss.backward() instead of torch.autograd.grad: the model's parameters "
            "get a .grad", _fgsm_backward),
    Mistake("fgsm_marks_input", "fgsm", "x.requires_grad_(True) on the caller's x, not on a detached copy",
            _fgsm_marks_input),
)
