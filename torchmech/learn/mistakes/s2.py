"""§2 Tensors that hold parameters: the catalogue's wrong pieces of this section's exercises, and their rows."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from torchmech.learn.mistakes.core import Mistake, ref


def _fans_swapped() -> Callable:
    def fans(shape):
        fan_in, fan_out = ref("fans")(shape)
        return fan_out, fan_in
    return fans


def _bound_is_std() -> Callable:
    return lambda fan_in, fan_out, gain=1.0: gain * math.sqrt(2.0 / (fan_in + fan_out))


def _std_without_gain() -> Callable:
    return lambda fan_in, fan_out, gain=1.0: math.sqrt(2.0 / (fan_in + fan_out))


def _raw_tensors() -> type:
    class RawTensors(nn.Module):  # the book's trap: plain attributes, not parameters
        def __init__(self) -> None:
            super().__init__()
            self.w1 = nn.init.xavier_normal_(torch.empty(2, 3, requires_grad=True))
            self.w2 = nn.init.xavier_normal_(torch.empty(1, 2, requires_grad=True))
    return RawTensors


def _fans_no_receptive() -> Callable:
    return lambda shape: (shape[1], shape[0])  # a Linear's fans for every weight: the kernel forgotten


def _bound_without_gain() -> Callable:
    return lambda fan_in, fan_out, gain=1.0: math.sqrt(6.0 / (fan_in + fan_out))


def _bound_product() -> Callable:
    return lambda fan_in, fan_out, gain=1.0: gain * math.sqrt(6.0 / (fan_in * fan_out))


def _std_is_bound() -> Callable:
    return lambda fan_in, fan_out, gain=1.0: gain * math.sqrt(6.0 / (fan_in + fan_out))


def _parameters_uniform() -> type:
    base = ref("ParameterModule")

    class Uniform(base):
        def reset_parameters(self) -> None:  # xavier_uniform_ where xavier_normal_ is asked
            nn.init.xavier_uniform_(self.w1)
            nn.init.xavier_uniform_(self.w2)
    return Uniform


def _parameters_transposed() -> type:
    class Transposed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w1 = nn.Parameter(nn.init.xavier_normal_(torch.empty(3, 2)))  # (3, 2), not (2, 3)
            self.w2 = nn.Parameter(nn.init.xavier_normal_(torch.empty(2, 1)))  # (2, 1), not (1, 2)
    return Transposed


MISTAKES: tuple[Mistake, ...] = (
    Mistake("fans_swapped", "fans", "fan_in and fan_out swapped (PyTorch's weight is (out, in))", _fans_swapped),
    Mistake("bound_is_std", "glorot_bound", "the normal law's σ used as the uniform law's bound", _bound_is_std),
    Mistake("std_without_gain", "glorot_std", "the gain forgotten", _std_without_gain),
    Mistake("tensors_not_parameters", "ParameterModule", "tensors kept as plain attributes (§2's trap): not "
            "registered as parameters", _raw_tensors),
    Mistake("fans_no_receptive_field", "fans", "the receptive field (the kernel's size) forgotten: (shape[1], "
            "shape[0]) for every weight", _fans_no_receptive),
    Mistake("bound_without_gain", "glorot_bound", "the gain forgotten", _bound_without_gain),
    Mistake("bound_product", "glorot_bound", "sqrt(6 / (fan_in · fan_out)): the fans multiplied, not added",
            _bound_product),
    Mistake("std_is_bound", "glorot_std", "the uniform law's bound √(6/(fan_in + fan_out)) used as the normal "
            "law's σ", _std_is_bound),
    Mistake("parameters_uniform", "ParameterModule", "nn.init.xavier_uniform_ instead of xavier_normal_",
            _parameters_uniform),
    Mistake("parameters_transposed", "ParameterModule", "w1 of shape (3, 2) and w2 of shape (2, 1): the shapes "
            "transposed", _parameters_transposed),
)
