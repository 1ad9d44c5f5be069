"""The mistake catalogue: classic wrong implementations of the exercises, each a small variant of the
reference, and the claims or checks of the specification that catch it.

It is the strongest proof that the specification can fail: :func:`catch` runs one mistake through
its exercise's claims and checks, and ``make test`` fails if any mistake survives. ``torchmech learn
check`` compares a learner's failures with the catalogue's and names the likely mistake.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from torchmech.claims import Implementation
from torchmech.exercises import exercise


@dataclass(frozen=True)
class Mistake:
    """One classic wrong implementation: ``make()`` builds the wrong piece for ``exercise``."""

    name: str
    exercise: str
    what: str
    make: Callable[[], Any]

    def implementation(self) -> Implementation:
        return Implementation(f"mistake {self.name}", {self.exercise: self.make()})


def _ref(name: str) -> Any:
    return getattr(Implementation(), name)


# --- the wrong pieces ---------------------------------------------------------------------------------
def _compute_z_precedence() -> Callable:
    return lambda a, b, c: torch.add(torch.sub(torch.mul(a, 2), b), c)  # 2a − b + c


def _fans_swapped() -> Callable:
    def fans(shape):
        fan_in, fan_out = _ref("fans")(shape)
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
        return 2 * x - _ref("fgsm")(model, loss_fn, x, y, epsilon, clamp)  # x − ε·sign(g)
    return fgsm


def _fgsm_raw_gradient() -> Callable:
    def fgsm(model, loss_fn, x, y, epsilon, clamp=None):
        x = x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(loss_fn(model(x), y), x)
        return (x + epsilon * grad).detach()
    return fgsm


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


def _xor_unseeded() -> Callable:
    def make_xor(n=200, seed=1):
        from torchmech.data.xor import XorData

        x = np.random.default_rng().uniform(-1, 1, (n, 2))  # no np.random.seed(seed)
        y = (x[:, 0] * x[:, 1] >= 0).astype(float)
        t = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
        return XorData(x, y, t(x[: n // 2]), t(y[: n // 2]), t(x[n // 2:]), t(y[n // 2:]))
    return make_xor


def _train_variant(*, zero_grad: bool = True, per_sample: bool = False, eval_mode: bool = True) -> Callable:
    """The one loop with one classic slip."""
    from torchmech.train import History

    def train(model, loss_fn, optimizer, train_batches, num_epochs, valid_batches=None, *, correct=None,
              device="cpu", on_epoch_end=None):
        history = History()
        for _ in range(num_epochs):
            model.train()
            loss_sum, right, n = 0.0, 0, 0
            for x, y in train_batches:
                pred = model(x)[:, 0] if y.dim() == 1 else model(x)
                loss = loss_fn(pred, y)
                loss.backward()
                optimizer.step()
                if zero_grad:
                    optimizer.zero_grad()
                loss_sum += loss.item()
                right += int(correct(pred.detach(), y)) if correct else 0
                n += len(y)
            history.train_loss.append(loss_sum / (n if per_sample else len(train_batches)))
            history.train_acc.append(right / n)
            if valid_batches is not None:
                if eval_mode:
                    model.eval()
                with torch.no_grad():
                    for x, _y in valid_batches:
                        model(x)
        return history
    return train


def _predict_strict() -> type:
    base = _ref("ModuleListModel")

    class StrictPredict(base):
        def predict(self, x):  # > instead of >=: 0.5 exactly becomes class 0
            with torch.no_grad():
                return (self(torch.as_tensor(x, dtype=torch.float32))[:, 0] > 0.5).float()
    return StrictPredict


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
    base = _ref("NoisyLinear")

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


def _buckets_left() -> Callable:
    return lambda years: torch.bucketize(years, torch.tensor([73, 76, 79], dtype=years.dtype), right=False)


def _features_own_statistics() -> Callable:
    def mpg_features(df=None, train_size=0.8, random_state=1):
        from sklearn.model_selection import train_test_split

        from torchmech.data.auto_mpg import NUMERIC, MpgData, bucketize_year, load_auto_mpg

        df = (load_auto_mpg() if df is None else df).dropna().reset_index(drop=True)
        df_train, df_test = train_test_split(df, train_size=train_size, random_state=random_state)
        tensors = []
        for part in (df_train.copy(), df_test.copy()):
            stats = part.describe().transpose()  # each split with its own statistics
            for col in NUMERIC:
                part[col] = (part[col] - stats.loc[col, "mean"]) / stats.loc[col, "std"]
            bucket = bucketize_year(torch.tensor(part["Model Year"].values))
            origin = nn.functional.one_hot(torch.tensor(part["Origin"].values) % 3, 3)
            x = torch.cat([torch.tensor(part[NUMERIC].values), bucket[:, None], origin], 1).float()
            tensors += [x, torch.tensor(part["MPG"].values).float()]
        return MpgData(*tensors, train_stats=df_train.describe().transpose())
    return mpg_features


def _origin_minus_one() -> Callable:
    def mpg_features(df=None, train_size=0.8, random_state=1):
        d = _ref("mpg_features")(df, train_size, random_state)
        shifted = [torch.cat([x[:, :6], x[:, 6:].roll(-1, dims=1)], 1) for x in (d.x_train, d.x_test)]
        return type(d)(shifted[0], d.y_train, shifted[1], d.y_test, d.train_stats)  # one_hot(origin − 1)
    return mpg_features


def _sigmoid_regressor() -> Callable:
    return lambda: nn.Sequential(nn.Linear(9, 8), nn.ReLU(), nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 1), nn.Sigmoid())


def _softmax_classifier() -> Callable:
    return lambda: nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(),
                                 nn.Linear(16, 10), nn.Softmax(dim=1))


def _one_draw_batches() -> type:
    base = _ref("ShuffledBatches")

    class OneDraw(base):
        def order(self):  # forgets the iterator's base-seed draw
            seed = int(torch.empty((), dtype=torch.int64).random_().item())
            return torch.randperm(len(self.x), generator=torch.Generator().manual_seed(seed))
    return OneDraw


def _lightning_1_5_hook() -> type:
    base = _ref("MultiLayerPerceptron")

    class BookHooks(base):
        on_train_epoch_end = None  # type: ignore[assignment]

        def training_epoch_end(self, outs) -> None:  # Lightning 1.5's hook, removed in 2.0
            self.log("train_acc", self.train_acc.compute())
    return BookHooks


MISTAKES: tuple[Mistake, ...] = (
    Mistake("compute_z_precedence", "compute_z", "2·a − b + c: the parentheses around a − b lost",
            _compute_z_precedence),
    Mistake("fans_swapped", "fans", "fan_in and fan_out swapped (PyTorch's weight is (out, in))", _fans_swapped),
    Mistake("bound_is_std", "glorot_bound", "the normal law's σ used as the uniform law's bound", _bound_is_std),
    Mistake("std_without_gain", "glorot_std", "the gain forgotten", _std_without_gain),
    Mistake("tensors_not_parameters", "ParameterModule", "tensors kept as plain attributes (§2's trap): not "
            "registered as parameters", _raw_tensors),
    Mistake("grad_without_2", "linear_loss_grad", "the 2 of the square's derivative forgotten", _grad_without_2),
    Mistake("db_with_x", "linear_loss_grad", "dL/db copied from dL/dw, with the x", _db_with_x),
    Mistake("fgsm_descends", "fgsm", "x − ε·sign(g): a step down the loss, not up", _fgsm_descends),
    Mistake("fgsm_raw_gradient", "fgsm", "ε·g instead of ε·sign(g)", _fgsm_raw_gradient),
    Mistake("l1_squares", "l1_penalty", "Σ W² (the L2 penalty) instead of Σ|W|", _l1_squares),
    Mistake("bce_without_sigmoid", "bce_logit_grad", "(z − y)/N: the sigmoid forgotten", _bce_without_sigmoid),
    Mistake("bce_double_sigmoid", "bce_logit_grad", "sigmoid applied before BCEWithLogitsLoss (twice in all)",
            _bce_double_sigmoid),
    Mistake("softmax_wrong_dim", "cross_entropy_logit_grad", "softmax over the samples (dim 0), not the classes",
            _softmax_wrong_dim),
    Mistake("mse_sum", "mse_grad", "the gradient of the sum, not of the mean (no /N)", _mse_sum),
    Mistake("sequential_no_last_relu", "chapter_sequential", "the last ReLU left out", _sequential_no_last_relu),
    Mistake("xor_unseeded", "make_xor", "np.random.seed(seed) left out: other data every call", _xor_unseeded),
    Mistake("zero_grad_missing", "train", "optimizer.zero_grad() missing: gradients pile up across steps",
            lambda: _train_variant(zero_grad=False)),
    Mistake("loss_over_samples", "train", "the epoch loss divided by the samples, not the batches (the printed "
            "book's erratum)", lambda: _train_variant(per_sample=True)),
    Mistake("validation_in_train_mode", "train", "validation without eval(), so NoisyLinear adds noise there",
            lambda: _train_variant(eval_mode=False)),
    Mistake("predict_strict", "ModuleListModel", "predict with > 0.5: an output of exactly 0.5 becomes class 0",
            _predict_strict),
    Mistake("plain_list", "ModuleListModel", "a Python list instead of nn.ModuleList: the layers are not registered",
            _plain_list),
    Mistake("noise_on_cpu", "NoisyLinear", "the noise drawn on the CPU whatever the input's device (the book's "
            "torch.normal(0, σ, x.shape))", lambda: _noisy_variant("cpu_noise")),
    Mistake("noise_on_output", "NoisyLinear", "the noise added to the output, not the input",
            lambda: _noisy_variant("output_noise")),
    Mistake("noise_ignores_mode", "NoisyLinear", "the book's default training=False: train() and eval() ignored",
            lambda: _noisy_variant("book_default")),
    Mistake("buckets_off_by_one", "bucketize_year", "right=False: the boundary years fall in the lower bucket",
            _buckets_left),
    Mistake("test_split_own_statistics", "mpg_features", "the test split standardised with its own statistics",
            _features_own_statistics),
    Mistake("origin_minus_one", "mpg_features", "one_hot(origin − 1) instead of one_hot(origin % 3)",
            _origin_minus_one),
    Mistake("sigmoid_regression", "mpg_regressor", "a Sigmoid after the regression output", _sigmoid_regressor),
    Mistake("softmax_before_cross_entropy", "mnist_mlp", "a Softmax layer before CrossEntropyLoss (softmax twice)",
            _softmax_classifier),
    Mistake("one_draw_per_epoch", "ShuffledBatches", "the DataLoader iterator's base-seed draw forgotten",
            _one_draw_batches),
    Mistake("lightning_1_5_hook", "MultiLayerPerceptron", "Lightning 1.5's training_epoch_end, removed in 2.0",
            _lightning_1_5_hook),
)


def mistake(name: str) -> Mistake:
    for m in MISTAKES:
        if m.name == name:
            return m
    raise KeyError(f"no mistake {name!r}")


@functools.cache
def catch(name: str) -> tuple[tuple[str, str], ...]:
    """(claim id or check name, the failure) for every claim and check that catches the mistake ``name``."""
    from torchmech.learn import failures

    m = mistake(name)
    return tuple(failures(exercise(m.exercise), m.implementation()))


def likely_mistake(exercise_name: str, found: list[tuple[str, str]]) -> str:
    """The catalogue's mistake a learner's failures look like: the same failures with the same first
    message, or the only mistake of that exercise failing the same claims and checks; else ``""``."""
    keys = [k for k, _ in found]
    same = [m for m in MISTAKES if m.exercise == exercise_name and [k for k, _ in catch(m.name)] == keys]
    exact = [m for m in same if catch(m.name) and catch(m.name)[0][1] == found[0][1]]
    pick = exact or (same if len(same) == 1 else [])
    return pick[0].what if pick else ""
