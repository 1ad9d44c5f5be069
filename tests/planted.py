"""Planted backends: faults (and one harmless perturbation) a backend checker must tell apart.

Each is a :class:`~torchmech.runtime.backends.Backend` on the CPU in float32 whose ``prepare`` adds its fault to the
model it is given, so every run of the chapter (conformance, diverge, the ladder) meets it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from torchmech.runtime.backends import Backend


def _linears(model: nn.Module) -> list[nn.Linear]:
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def _replace_value(out: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """``value`` forward, ``out``'s gradient backward (the fault is in the number, not in autograd)."""
    return out + (value - out).detach()


@dataclass(frozen=True)
class OneMatmulOff(Backend):
    """The CPU in float32, except that the second Linear's output is 0.1 % off."""

    def prepare(self, model: nn.Module) -> nn.Module:
        model = super().prepare(model)
        _linears(model)[1].register_forward_hook(lambda module, args, out: out * (1 + 1e-3))
        return model


@dataclass(frozen=True)
class GradientOff(Backend):
    """The CPU in float32, except that the gradient of the parameter ``param`` is ``factor`` × too large."""

    param: str = "1.bias"
    factor: float = 1.01

    def prepare(self, model: nn.Module) -> nn.Module:
        model = super().prepare(model)
        dict(model.named_parameters())[self.param].register_hook(lambda g: g * self.factor)
        return model


@dataclass(frozen=True)
class UlpNoise(Backend):
    """Harmless: every Linear's output moved by one unit in the last place, up or down at random (from its
    own generator: the run's random draws are untouched). Another float32 kernel could do as much."""

    def prepare(self, model: nn.Module) -> nn.Module:
        model = super().prepare(model)
        generator = torch.Generator().manual_seed(0)

        def hook(module: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor:
            up = torch.rand(out.shape, generator=generator) < 0.5
            away = torch.where(up, math.inf, -math.inf).to(out.dtype)
            return _replace_value(out, torch.nextafter(out.detach(), away))

        for linear in _linears(model):
            linear.register_forward_hook(hook)
        return model


def tf32(x: torch.Tensor) -> torch.Tensor:
    """``x`` (float32) rounded to TF32's 10 mantissa bits, to nearest (13 low bits of 23 dropped)."""
    bits = x.detach().contiguous().view(torch.int32)
    return torch.bitwise_and(bits + 0x1000, -0x2000).view(torch.float32)


@dataclass(frozen=True)
class EmulatedTF32(Backend):
    """Where ``tf32`` is on, every Linear multiplies TF32-rounded inputs and weights (as a GPU's TF32 matmul
    does), its accumulation in float32; with ``tf32`` off it is the CPU's float32 exactly."""

    def prepare(self, model: nn.Module) -> nn.Module:
        model = super().prepare(model)
        if self.tf32:
            def hook(module: nn.Linear, args: tuple, out: torch.Tensor) -> torch.Tensor:
                return _replace_value(out, F.linear(tf32(args[0]), tf32(module.weight), module.bias))

            for linear in _linears(model):
                linear.register_forward_hook(hook)
        return model


PLANTED = OneMatmulOff("planted", "the second Linear's output × 1.001")


@dataclass(frozen=True)
class LossInHalf(Backend):
    """The CPU in float32, except that the loss is computed in float16 (its prediction and target rounded to
    half precision, the loss handed back in float32): a fault in the loss and nowhere else."""

    def loss(self, loss_fn, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return loss_fn(pred.to(self.dtype).half(), y.half() if y.is_floating_point() else y).float()


@dataclass(frozen=True)
class Explodes(Backend):
    """The CPU in float32 whose training blows up: from the step ``after`` on, the loss's gradient is 1e38 ×
    too large (its value unchanged), so the weights overflow to ±inf and NaN within a step or two, as a loss in
    float16 drove XOR's weights to NaN after ≈ 15,000 steps."""

    after: int = 5
    taken: list[int] = field(default_factory=lambda: [0], compare=False)  # the run in progress's steps so far

    def loss(self, loss_fn, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = super().loss(loss_fn, pred, y)
        if pred.requires_grad:
            self.taken[0] += 1
            if self.taken[0] > self.after:
                loss.register_hook(lambda g: g * 1e38)
        return loss

    def prepare(self, model: nn.Module) -> nn.Module:
        self.taken[0] = 0  # a new run counts from its first step
        return super().prepare(model)


def _slower(out: torch.Tensor, factor: float = 0.9) -> torch.Tensor:
    """``out`` forward (bit for bit: ``out − out.detach()`` is 0), ``factor`` × its gradient backward."""
    return out.detach() + factor * (out - out.detach())


@dataclass(frozen=True)
class SlowSGD(Backend):
    """The CPU in float32, except that every gradient is 0.9 × too small: SGD steps 0.9 × as far (Adam's step does
    not change). The model's output (``prepare``: a forward hook on the model) and every function the backend runs
    (``function``: the batched ensembles' forward of ``conformance --seeds``) pass their gradient on × 0.9, so the
    one-seed runs and the batched seeds both meet it."""

    def prepare(self, model: nn.Module) -> nn.Module:
        model = super().prepare(model)
        model.register_forward_hook(lambda module, args, out: _slower(out))
        return model

    def function(self, fn: Callable) -> Callable:
        inner = super().function(fn)
        return lambda *args, **kwargs: _slower(inner(*args, **kwargs))


@dataclass(frozen=True)
class LrOff(Backend):
    """The CPU in float32 with a fused optimizer whose learning rate is ``factor`` × the recipe's on one parameter
    (``param``): each update of it goes ``factor`` × as far. Planted as the weights the next forward pass meets
    (the optimizer itself is the recipe's): the fault is in what the step wrote, nowhere in the arithmetic."""

    param: str = "2.weight"
    factor: float = 1.1

    def prepare(self, model: nn.Module) -> nn.Module:
        model = super().prepare(model)
        weight = dict(model.named_parameters())[self.param]
        last: list[torch.Tensor] = []

        def stretch(module: nn.Module, args: tuple) -> None:
            with torch.no_grad():
                if last:
                    weight.add_((weight - last[0]) * (self.factor - 1))
                last[:] = [weight.detach().clone()]

        model.register_forward_pre_hook(stretch)
        return model



@dataclass(frozen=True)
class SlowAdam(Backend):
    """The CPU in float32, except that every batched function it runs (``function``: the forward of
    ``conformance --seeds``, whose first argument is the stacked ``(weight, bias)`` layers) sees each parameter at
    ``start + factor · (p − start)``, ``start`` its value at the first call: the weights move ``factor`` × as far as
    the optimizer steps them (bit for bit the same forward at the start). Under Adam this is Adam at ``factor`` × its
    learning rate (its gradients arrive × ``factor``, which Adam's step ignores): what slows Adam is a shorter step,
    not a smaller gradient (:class:`SlowSGD`'s × 0.9 leaves Adam's step as it is, up to ε)."""

    factor: float = 0.9

    def function(self, fn: Callable) -> Callable:
        inner = super().function(fn)
        start: list[tuple[torch.Tensor, torch.Tensor]] = []

        def damped(layers: list[tuple[torch.Tensor, torch.Tensor]], *args: object) -> torch.Tensor:
            if not start:
                start.extend((w.detach().clone(), b.detach().clone()) for w, b in layers)
            moved = [(w0 + self.factor * (w - w0), b0 + self.factor * (b - b0))
                     for (w, b), (w0, b0) in zip(layers, start, strict=True)]
            return inner(moved, *args)

        return damped
