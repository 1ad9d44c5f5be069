"""§2 Tensors that hold parameters: its exercises, their sample inputs and observers."""

from __future__ import annotations

import math
from typing import Any

import torch

from torchmech.learn.exercises.core import (
    Exercise,
    Sample,
    _fresh,
    _normal_law,
    _parameters,
    _raised,
)
from torchmech.learn.grader import call, seeded


def fans_samples() -> tuple[Sample, ...]:
    shapes = [(5, 3), (3, 5), (1, 1), (8, 3, 5, 5), (4, 2, 3), (2, 7, 1, 3, 2), (16, 1, 3), (10, 784)]
    return tuple(Sample(_fresh(s), ("shape",), seed=i) for i, s in enumerate(shapes))


def glorot_samples() -> tuple[Sample, ...]:
    cases = [(3, 5, 1.0), (784, 32, 1.0), (4, 16, 0.5), (1, 1, 2.0), (10, 3, math.sqrt(2.0)), (2, 4, 1.0), (6, 2)]
    return tuple(Sample(_fresh(*c), ("fan_in", "fan_out", "gain"), seed=i) for i, c in enumerate(cases))


def unit_samples() -> tuple[Sample, ...]:
    return (Sample(tuple, (), seed=1), Sample(tuple, (), seed=2))


def parameter_module(piece: Any, sample: Sample) -> dict[str, Any]:
    with seeded(sample.seed):
        try:
            model = piece()
            draws = [[p.detach().clone() for p in piece().parameters()] for _ in range(300)]
        except Exception as err:
            return _raised(err)
        obs: dict[str, Any] = {"registered parameters (name: shape)": _parameters(model),
                               "every parameter requires grad": all(p.requires_grad for p in model.parameters())}
        if len(draws[0]) == 2 and [tuple(p.shape) for p in draws[0]] == [(2, 3), (1, 2)]:
            obs["w1 follows Xavier-normal, N(0, 2/(3 + 2)) (300 draws, α = 1e-4)"] = _normal_law(
                torch.cat([d[0].flatten() for d in draws]), math.sqrt(2 / 5))
            obs["w2 follows Xavier-normal, N(0, 2/(2 + 1)) (300 draws, α = 1e-4)"] = _normal_law(
                torch.cat([d[1].flatten() for d in draws]), math.sqrt(2 / 3))
        obs["initial values (seeded)"] = {n: p.detach().clone() for n, p in model.named_parameters()}
        obs["buffers"] = sorted(n for n, _ in model.named_buffers())
    return obs


EXERCISES: tuple[Exercise, ...] = (
    Exercise("fans", "s2", "def fans(shape):",
             "Return the tuple (fan_in, fan_out) of Python ints for a weight of this shape (rank ≥ 2) in "
             "PyTorch's convention (out_features, in_features, *kernel).",
             (), fans_samples, call,
             ("§2: Glorot's scale depends on how many inputs and outputs a unit has.",
              "the receptive field is the product of the kernel dimensions shape[2:]; both fans are multiplied "
              "by it.",
              "receptive = math.prod(shape[2:]); return shape[1] * receptive, shape[0] * receptive"),
             spans=("rank ≥ 3",)),
    Exercise("glorot_bound", "s2", "def glorot_bound(fan_in, fan_out, gain=1.0):",
             "Return the half-width a of Glorot's uniform law U(−a, a), as a Python float.", (),
             glorot_samples, call,
             ("§2: Xavier keeps the variance of activations equal across layers.",
              "U(−a, a) has variance a²/3, and Glorot wants the variance 2/(fan_in + fan_out), times gain².",
              "return gain * math.sqrt(6.0 / (fan_in + fan_out))"),
             spans=("defaults and other values",)),
    Exercise("glorot_std", "s2", "def glorot_std(fan_in, fan_out, gain=1.0):",
             "Return the standard deviation of Glorot's normal law, as a Python float.", (),
             glorot_samples, call,
             ("§2: the normal version has the same variance as the uniform one.",
              "its variance is 2/(fan_in + fan_out), times gain².",
              "return gain * math.sqrt(2.0 / (fan_in + fan_out))"),
             spans=("defaults and other values",)),
    Exercise("ParameterModule", "s2", "class ParameterModule(nn.Module):",
             "The chapter's MyModule with two tensors w1 (2×3) and w2 (1×2), initialised by "
             "nn.init.xavier_normal_ in that order, that the module registers as parameters named w1 and w2 "
             "(the book's torch.empty(..., requires_grad=True) does not: the trap). No other parameters.",
             ("s2.mymodule.fixed",), unit_samples, parameter_module,
             ("§2: a module only sees tensors it registered; a plain attribute is invisible to parameters().",
              "wrap each tensor in nn.Parameter(...) before assigning it to self.",
              "self.w1 = nn.Parameter(torch.empty(2, 3)); nn.init.xavier_normal_(self.w1)"),
             spans=("several seeds",)),
)
