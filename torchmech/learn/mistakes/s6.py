"""§6 nn.Module subclasses and custom layers: the catalogue's wrong pieces of this section's exercises."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from torchmech.learn.mistakes.core import Mistake, ref


def _predicting(decide: Callable[[torch.Tensor], torch.Tensor]) -> type:
    """The ModuleList model with ``predict`` written as a learner writes it, deciding by ``decide(output)``."""
    base = ref("ModuleListModel")

    class Predicting(base):
        def predict(self, x):
            as_numpy = not isinstance(x, torch.Tensor)
            with torch.no_grad():
                pred = decide(self(torch.as_tensor(x, dtype=torch.float32)))
            return pred.numpy() if as_numpy else pred
    return Predicting


def _plain_list() -> type:
    class PlainList(nn.Module):  # a Python list: the layers are not registered
        def __init__(self) -> None:
            super().__init__()
            self.module_list = [nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 1), nn.Sigmoid()]

        def forward(self, x):
            for f in self.module_list:
                x = f(x)
            return x

        def predict(self, x):
            return (self(torch.as_tensor(x, dtype=torch.float32))[:, 0] >= 0.5).float()
    return PlainList


def _noisy_variant(kind: str) -> type:
    base = ref("NoisyLinear")

    class Wrong(base):
        def forward(self, x, training=None):
            if kind == "book_default":  # the book's forward(x, training=False): ignores train()/eval()
                training = bool(training)
            if training is None:
                training = self.training
            if kind == "cpu_noise" and training:  # torch.normal(0, σ, x.shape): on the CPU whatever x is on
                return torch.add(torch.matmul(x + torch.normal(0.0, self.noise_stddev, x.shape).to(x.dtype), self.w),
                                 self.b)
            if kind == "output_noise" and training:  # noise on the output, not the input
                return torch.add(torch.matmul(x, self.w), self.b) + self.noise(x[..., : self.output_size])
            return super().forward(x, training)
    return Wrong


def _noise_per_feature() -> type:
    base = ref("NoisyLinear")

    class OneRowOfNoise(base):
        def noise(self, x):  # shape (1, in): the same noise for every row of the batch
            return torch.normal(0.0, self.noise_stddev, (1, x.shape[-1]), dtype=x.dtype, device=x.device)
    return OneRowOfNoise


def _no_sigmoid() -> type:
    base = ref("ModuleListModel")

    class NoSigmoid(base):
        def __init__(self) -> None:
            super().__init__()
            self.module_list = nn.ModuleList(list(self.module_list)[:-1])  # Linear(4, 1) last: no Sigmoid
    return NoSigmoid


def _noisy_more(kind: str) -> type:
    base = ref("NoisyLinear")

    class Wrong(base):
        def __init__(self, input_size, output_size, noise_stddev=0.1):
            if kind != "transposed":
                super().__init__(input_size, output_size, noise_stddev)
                return
            nn.Module.__init__(self)  # w as (out, in), like nn.Linear.weight, used as x·wᵀ
            self.input_size, self.output_size, self.noise_stddev = input_size, output_size, float(noise_stddev)
            self.w = nn.Parameter(torch.empty(output_size, input_size))
            self.b = nn.Parameter(torch.empty(output_size))
            self.reset_parameters()

        def reset_parameters(self) -> None:
            nn.init.xavier_uniform_(self.w)
            if kind == "bias_like_linear":  # nn.Linear's bias init, not zeros
                bound = 1 / math.sqrt(self.input_size)
                nn.init.uniform_(self.b, -bound, bound)
            else:
                nn.init.zeros_(self.b)

        def noise(self, x):
            if kind == "variance":  # σ² passed where torch.normal takes the std σ
                return torch.normal(0.0, self.noise_stddev ** 2, x.shape, dtype=x.dtype, device=x.device)
            if kind == "float32":  # dtype=x.dtype left out: float32 noise whatever x's dtype
                return torch.normal(0.0, self.noise_stddev, x.shape, device=x.device)
            return super().noise(x)

        def forward(self, x, training=None):
            if kind == "transposed":
                if training is None:
                    training = self.training
                x_new = torch.add(x, self.noise(x)) if training else x
                return torch.add(torch.matmul(x_new, self.w.T), self.b)
            if kind == "always":  # the noise added whatever training says
                return torch.add(torch.matmul(torch.add(x, self.noise(x)), self.w), self.b)
            return super().forward(x, training)
    return Wrong


MISTAKES: tuple[Mistake, ...] = (
    Mistake("predict_strict", "ModuleListModel", "predict with > 0.5: an output of exactly 0.5 becomes class 0",
            lambda: _predicting(lambda out: (out[:, 0] > 0.5).float())),  # > instead of >=
    Mistake("plain_list", "ModuleListModel", "a Python list instead of nn.ModuleList: the layers are not registered",
            _plain_list),
    Mistake("noise_on_cpu", "NoisyLinear", "the noise drawn on the CPU whatever the input's device (the book's "
            "torch.normal(0, σ, x.shape))", lambda: _noisy_variant("cpu_noise")),
    Mistake("noise_on_output", "NoisyLinear", "the noise added to the output, not the input",
            lambda: _noisy_variant("output_noise")),
    Mistake("noise_ignores_mode", "NoisyLinear", "the book's default training=False: train() and eval() ignored",
            lambda: _noisy_variant("book_default")),
    Mistake("noise_shared_by_the_batch", "NoisyLinear", "noise of shape (1, input_size): the same noise for every "
            "row of the batch", _noise_per_feature),
    Mistake("predict_booleans", "ModuleListModel", "predict returns booleans, not 0/1 floats",
            lambda: _predicting(lambda out: out[:, 0] >= 0.5)),
    Mistake("module_list_no_sigmoid", "ModuleListModel", "the final Sigmoid left out of the ModuleList",
            _no_sigmoid),
    Mistake("predict_column", "ModuleListModel", "predict without [:, 0]: shape (N, 1), not (N,)",
            lambda: _predicting(lambda out: (out >= 0.5).float())),
    Mistake("noisy_w_transposed", "NoisyLinear", "w of shape (output_size, input_size), as nn.Linear.weight, used "
            "as x·wᵀ", lambda: _noisy_more("transposed")),
    Mistake("noise_variance_as_std", "NoisyLinear", "σ² passed to torch.normal, which takes the std σ",
            lambda: _noisy_more("variance")),
    Mistake("bias_like_linear", "NoisyLinear", "b initialised as nn.Linear's bias, U(−1/√in, 1/√in), not zeros",
            lambda: _noisy_more("bias_like_linear")),
    Mistake("noise_float32", "NoisyLinear", "dtype=x.dtype left out of torch.normal: float32 noise for a "
            "float64 input", lambda: _noisy_more("float32")),
    Mistake("noise_always_on", "NoisyLinear", "the noise added whatever training says (eval too)",
            lambda: _noisy_more("always")),
)
