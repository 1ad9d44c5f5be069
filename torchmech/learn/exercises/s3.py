"""§3 Gradients by automatic differentiation: its exercises, their sample inputs and observers."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from torchmech.learn.exercises.core import (
    Exercise,
    Sample,
    _gen,
    _raised,
)
from torchmech.learn.grader import call, rng_states, seeded


def linear_loss_grad_samples() -> tuple[Sample, ...]:
    out = []
    for i, (n, dtype) in enumerate([(5, torch.float32), (1, torch.float32), (7, torch.float64), (64, torch.float32),
                                    (2, torch.float64)]):
        g = _gen(i)
        w, b = (torch.randn((), generator=g, dtype=dtype) for _ in range(2))
        x, y = torch.randn(n, generator=g, dtype=dtype), torch.randn(n, generator=g, dtype=dtype)

        def make(w=w, b=b, x=x, y=y) -> tuple:
            return w.clone().requires_grad_(), b.clone().requires_grad_(), x.clone(), y.clone()
        out.append(Sample(make, ("w", "b", "x", "y"), seed=i, sizes={"the number of samples": n}))
    return tuple(out)


def call_keeping_grads(piece: Any, sample: Sample) -> dict[str, Any]:
    """:func:`~torchmech.learn.grader.call`, and the ``.grad`` the call left on each input that requires grad."""
    args = sample.make()
    obs = call(lambda *_: piece(*args), sample)
    for name, arg in zip(sample.names, args, strict=False):
        if isinstance(arg, torch.Tensor) and arg.requires_grad:
            obs[f"`{name}.grad` after the call (by hand: untouched)"] = None if arg.grad is None else arg.grad.clone()
    return obs


def fgsm_samples() -> tuple[Sample, ...]:
    cases = [(2, 1, 0.1, None), (3, 7, 0.05, (0.0, 1.0)), (5, 32, 0.3, (0.0, 1.0)), (2, 8, 0.2, (-0.5, 0.5)),
             (4, 5, 0.1, None)]
    out = []
    for i, (d, n, eps, clamp) in enumerate(cases):
        g = _gen(i)
        torch.manual_seed(100 + i)
        multiclass = i == 4
        model = nn.Sequential(nn.Linear(d, 3), nn.LogSoftmax(1)) if multiclass else \
            nn.Sequential(nn.Linear(d, 1), nn.Sigmoid())
        x = torch.rand(n, d, generator=g)
        if multiclass:
            y = torch.randint(0, 3, (n,), generator=g)
            loss = nn.NLLLoss()
        else:
            y = (torch.rand(n, generator=g) > 0.5).float()
            loss = _bce_on_first_column
        state = model.state_dict()

        def make(model=model, state=state, x=x, y=y, loss=loss, eps=eps, clamp=clamp) -> tuple:
            model.load_state_dict(state)
            model.zero_grad(set_to_none=True)
            return (model, loss, x.clone(), y.clone(), eps) + (() if clamp is None else (clamp,))  # None: left out
        out.append(Sample(make, ("model", "loss_fn", "x", "y", "epsilon", "clamp"), seed=i))
    return tuple(out)


def _bce_on_first_column(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return nn.functional.binary_cross_entropy(p[:, 0], t)


def fgsm(piece: Any, sample: Sample) -> dict[str, Any]:
    args = sample.make()
    model, x = args[0], args[2]
    with seeded(sample.seed):
        try:
            out = piece(*args)
        except Exception as err:
            return _raised(err)
        clamp = args[5] if len(args) > 5 else None
        inside = (clamp is None or not isinstance(out, torch.Tensor)
                  or bool(((out >= clamp[0]) & (out <= clamp[1])).all()))
        obs: dict[str, Any] = {
            "every value of the result within clamp": inside,
            "returned": out.detach() if isinstance(out, torch.Tensor) else out,
            "the returned tensor requires grad": bool(getattr(out, "requires_grad", False)),
            "your input `x` after the call": x.detach().clone(),
            "your input `x` requires grad after the call": x.requires_grad,
            "the model's parameters have no .grad after the call": all(p.grad is None for p in model.parameters()),
        }
        obs.update(rng_states())
    return obs


EXERCISES: tuple[Exercise, ...] = (
    Exercise("linear_loss_grad", "s3", "def linear_loss_grad(w, b, x, y):",
             "Return (dL/dw, dL/db) as tensors for L = Σ(y − (w·x + b))², worked out by hand (not with autograd: "
             "w.grad and b.grad stay None). w and b are 0-d tensors that require grad; x, y are 1-d of any length.",
             ("s3.analytic.dL_dw", "s3.analytic.dL_db"), linear_loss_grad_samples, call_keeping_grads,
             ("§3: the chain rule gives the gradient of a squared error by hand.",
              "with the residual r = w·x + b − y, each squared term differentiates to 2·r times the inner "
              "derivative (x for w, 1 for b).",
              "r = w.detach() * x + b.detach() - y; return 2 * (x * r).sum(), 2 * r.sum()"),
             spans=("0-d", "a single row", "several dtypes")),
    Exercise("fgsm", "s3", "def fgsm(model, loss_fn, x, y, epsilon, clamp=None):",
             "One fast-gradient-sign step: x + ε·sign(∂L/∂x), the gradient with respect to the INPUT (the side "
             "box of §3), L = loss_fn(model(x), y); when clamp = (lo, hi) is given, clamp the stepped result to "
             "[lo, hi]. Return a new tensor that does not require grad; leave x unchanged (not even "
             "x.requires_grad) and the model's parameters without .grad.",
             (), fgsm_samples, fgsm,
             ("§3's side box: the gradient w.r.t. the input shows how to change the input to raise the loss.",
              "take the gradient of the loss w.r.t. a detached copy of x that requires grad, step by ε times its "
              "sign, then clamp.",
              "x = x.detach().requires_grad_(True); (g,) = torch.autograd.grad(loss_fn(model(x), y), x)"),
             spans=("a single row", "defaults and other values")),
)
