"""The mistake catalogue: classic wrong implementations of the exercises, each a small variant of the
reference, and the claims or checks of the specification that catch it.

It is the strongest proof that the specification can fail: :func:`catch` runs one mistake through
its exercise's claims and differential check, and ``make test`` fails if any mistake survives.
``torchmech learn check`` names a catalogued mistake only when the learner's piece *behaves exactly
like it* on every sample input of the exercise (:func:`named_mistakes`): a failure that merely fails
the same check gets no label, and the grader's own reading of the difference speaks instead.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from torchmech.exercises import behaves_like, exercise, failures, observations
from torchmech.implementation import Implementation


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

        x = np.random.uniform(-1, 1, (n, 2))  # no np.random.seed(seed): whatever state the generator is in
        y = (x[:, 0] * x[:, 1] >= 0).astype(float)
        t = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
        return XorData(x, y, t(x[: n // 2]), t(y[: n // 2]), t(x[n // 2:]), t(y[n // 2:]))
    return make_xor


def _train_variant(*, zero_grad: bool = True, per_sample: bool = False, eval_mode: bool = True,
                   train_once: bool = False, no_grad: bool = True, zero_grad_per_epoch: bool = False,
                   first_column: bool = True, valid_over_train: bool = False, epoch_offset: int = 0,
                   percent: bool = False, item: bool = True) -> Callable:
    """The one loop, written as a learner writes it, with one classic slip."""
    from torchmech.train import History

    def epoch(model, loss_fn, batches, correct, optimizer):
        loss_sum, right, n = 0.0, 0, 0
        if optimizer is not None and zero_grad_per_epoch:
            optimizer.zero_grad()  # once per epoch, not once per batch
        for x, y in batches:
            pred = model(x)
            if first_column and pred.dim() == 2 and pred.shape[1] == 1 and y.dim() == 1:
                pred = pred[:, 0]
            loss = loss_fn(pred, y)
            if optimizer is not None:
                loss.backward()
                optimizer.step()
                if zero_grad and not zero_grad_per_epoch:
                    optimizer.zero_grad()
            loss_sum += loss.item() if item else loss
            right += int(correct(pred.detach(), y)) if correct else 0
            n += len(y)
        return loss_sum / (n if per_sample else len(batches)), right, n

    def train(model, loss_fn, optimizer, train_batches, num_epochs, valid_batches=None, *, correct=None,
              device="cpu", on_epoch_end=None):
        history = History()
        model.train()
        scale = 100 if percent else 1
        for e in range(num_epochs):
            if not train_once:
                model.train()
            loss, right, n_train = epoch(model, loss_fn, train_batches, correct, optimizer)
            history.train_loss.append(loss)
            if correct is not None:
                history.train_acc.append(scale * right / n_train)
            if valid_batches is not None:
                if eval_mode:
                    model.eval()
                with torch.no_grad() if no_grad else contextlib.nullcontext():
                    loss, right, n = epoch(model, loss_fn, valid_batches, correct, None)
                history.valid_loss.append(loss)
                if correct is not None:
                    history.valid_acc.append(scale * right / (n_train if valid_over_train else n))
            if on_epoch_end is not None:
                on_epoch_end(e + epoch_offset, history)
        return history
    return train


def _predict_strict() -> type:
    base = _ref("ModuleListModel")

    class StrictPredict(base):
        def predict(self, x):  # > instead of >=: 0.5 exactly becomes class 0
            as_numpy = not isinstance(x, torch.Tensor)
            with torch.no_grad():
                pred = (self(torch.as_tensor(x, dtype=torch.float32))[:, 0] > 0.5).float()
            return pred.numpy() if as_numpy else pred
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


def _fgsm_clamp_first() -> Callable:
    def fgsm(model, loss_fn, x, y, epsilon, clamp=None):
        x = x.detach()
        if clamp is not None:
            x = x.clamp(*clamp)  # clamped before the step: the step leaves [lo, hi]
        x = x.requires_grad_(True)
        (grad,) = torch.autograd.grad(loss_fn(model(x), y), x)
        return (x + epsilon * grad.sign()).detach()
    return fgsm


def _over_rows(kind: str) -> Callable:
    if kind == "bce":
        return lambda z, y: (torch.sigmoid(z) - y) / z.shape[0]
    return lambda pred, y: 2 * (pred - y) / pred.shape[0]


def _noise_per_feature() -> type:
    base = _ref("NoisyLinear")

    class OneRowOfNoise(base):
        def noise(self, x):  # shape (1, in): the same noise for every row of the batch
            return torch.normal(0.0, self.noise_stddev, (1, x.shape[-1]), dtype=x.dtype, device=x.device)
    return OneRowOfNoise


def _order_once() -> type:
    base = _ref("ShuffledBatches")

    class OrderOnce(base):
        def __init__(self, x, y, batch_size, shuffle=True):
            super().__init__(x, y, batch_size, shuffle)
            self._perm = super().order()

        def order(self):  # drawn once, in __init__: the same order every epoch
            return self._perm
    return OrderOnce


def _log_softmax_classifier() -> Callable:
    return lambda: nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(),
                                 nn.Linear(16, 10), nn.LogSoftmax(dim=1))


def _xor_swapped() -> Callable:
    def make_xor(n=200, seed=1):
        d = _ref("make_xor")(n, seed)
        return type(d)(d.x, d.y, d.x_valid, d.y_valid, d.x_train, d.y_train)  # the halves swapped
    return make_xor


def _shared_metric() -> type:
    base = _ref("MultiLayerPerceptron")

    class SharedMetric(base):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.valid_acc = self.train_acc  # one Accuracy for two stages
    return SharedMetric


def _year_raw() -> Callable:
    def mpg_features(df=None, train_size=0.8, random_state=1):
        from sklearn.model_selection import train_test_split

        from torchmech.data.auto_mpg import load_auto_mpg

        base = (load_auto_mpg() if df is None else df).dropna().reset_index(drop=True)
        d = _ref("mpg_features")(df, train_size, random_state)
        tr, te = train_test_split(base, train_size=train_size, random_state=random_state)
        fix = lambda x, part: torch.cat([x[:, :5], torch.tensor(part["Model Year"].values,  # noqa: E731
                                                                dtype=torch.float32)[:, None], x[:, 6:]], 1)
        return type(d)(fix(d.x_train, tr), d.y_train, fix(d.x_test, te), d.y_test, d.train_stats)
    return mpg_features


def _predict_booleans() -> type:
    base = _ref("ModuleListModel")

    class BoolPredict(base):
        def predict(self, x):
            as_numpy = not isinstance(x, torch.Tensor)
            with torch.no_grad():
                pred = self(torch.as_tensor(x, dtype=torch.float32))[:, 0] >= 0.5  # booleans, not 0/1 floats
            return pred.numpy() if as_numpy else pred
    return BoolPredict


# --- more wrong pieces, exercise by exercise -------------------------------------------------------------
def _compute_z_in_place() -> Callable:
    return lambda a, b, c: torch.add(torch.mul(a.sub_(b), 2), c)  # sub_: a − b written into a


def _compute_z_float_two() -> Callable:
    return lambda a, b, c: torch.add(torch.mul(torch.sub(a, b), 2.0), c)  # 2.0: integer inputs give floats


def _fans_no_receptive() -> Callable:
    return lambda shape: (shape[1], shape[0])  # a Linear's fans for every weight: the kernel forgotten


def _bound_without_gain() -> Callable:
    return lambda fan_in, fan_out, gain=1.0: math.sqrt(6.0 / (fan_in + fan_out))


def _bound_product() -> Callable:
    return lambda fan_in, fan_out, gain=1.0: gain * math.sqrt(6.0 / (fan_in * fan_out))


def _std_is_bound() -> Callable:
    return lambda fan_in, fan_out, gain=1.0: gain * math.sqrt(6.0 / (fan_in + fan_out))


def _parameters_uniform() -> type:
    base = _ref("ParameterModule")

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


def _xor_variant(kind: str) -> Callable:
    def make_xor(n=200, seed=1):
        from torchmech.data.xor import XorData

        np.random.seed(seed)
        x = np.random.uniform(low=-1, high=1, size=(n, 2))
        y = (x[:, 0] * x[:, 1] >= 0).astype(int if kind == "int_labels" else float)  # int: 0/1 as int64
        half = 100 if kind == "split_at_100" else n // 2  # the book's x[:100], whatever n is
        dtype = torch.float64 if kind == "float64" else torch.float32  # float64: torch.tensor(x) keeps NumPy's
        t = lambda a: torch.tensor(a, dtype=dtype)  # noqa: E731
        return XorData(x, y, t(x[:half]), t(y[:half]), t(x[half:]), t(y[half:]))
    return make_xor


def _no_sigmoid() -> type:
    base = _ref("ModuleListModel")

    class NoSigmoid(base):
        def __init__(self) -> None:
            super().__init__()
            self.module_list = nn.ModuleList(list(self.module_list)[:-1])  # Linear(4, 1) last: no Sigmoid
    return NoSigmoid


def _predict_column() -> type:
    base = _ref("ModuleListModel")

    class ColumnPredict(base):
        def predict(self, x):
            as_numpy = not isinstance(x, torch.Tensor)
            with torch.no_grad():
                pred = (self(torch.as_tensor(x, dtype=torch.float32)) >= 0.5).float()  # (N, 1): [:, 0] forgotten
            return pred.numpy() if as_numpy else pred
    return ColumnPredict


def _noisy_more(kind: str) -> type:
    base = _ref("NoisyLinear")

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


def _buckets_shifted() -> Callable:
    return lambda years: torch.bucketize(years, torch.tensor([72, 75, 78], dtype=years.dtype), right=True)


def _features_variant(kind: str) -> Callable:
    def mpg_features(df=None, train_size=0.8, random_state=1):
        from sklearn.model_selection import train_test_split

        from torchmech.data.auto_mpg import NUMERIC, MpgData, bucketize_year, load_auto_mpg

        df = load_auto_mpg() if df is None else df
        if kind == "split_before_dropna":  # the split first, then dropna on each part
            df_train, df_test = train_test_split(df, train_size=train_size, random_state=random_state)
            df_train, df_test = df_train.dropna(), df_test.dropna()
        else:
            df = df.dropna().reset_index(drop=True)
            df_train, df_test = train_test_split(df, train_size=train_size, random_state=random_state)
        stats = df_train.describe().transpose()
        columns = ["MPG", *NUMERIC] if kind == "mpg_too" else NUMERIC  # the target standardised with the features
        tensors = []
        for part in (df_train.copy(), df_test.copy()):
            for col in columns:
                std = np.std(df_train[col]) if kind == "ddof0" else stats.loc[col, "std"]  # np.std: ddof 0
                part[col] = (part[col] - stats.loc[col, "mean"]) / std
            bucket = bucketize_year(torch.tensor(part["Model Year"].values))
            origin = nn.functional.one_hot(torch.tensor(part["Origin"].values) % 3, 3)
            x = torch.cat([torch.tensor(part[NUMERIC].values), bucket[:, None], origin], 1)
            tensors += [x if kind == "float64" else x.float(), torch.tensor(part["MPG"].values).float()]
        return MpgData(*tensors, train_stats=stats)
    return mpg_features


def _relu_regressor() -> Callable:
    return lambda: nn.Sequential(nn.Linear(9, 8), nn.ReLU(), nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 1), nn.ReLU())


def _no_flatten() -> Callable:
    return lambda: nn.Sequential(nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 10))


def _batches_variant(kind: str) -> type:
    base = _ref("ShuffledBatches")

    class Wrong(base):
        def __len__(self) -> int:
            if kind in ("drop_last", "len_floor"):
                return len(self.x) // self.batch_size  # the last, smaller batch not counted
            return super().__len__()

        def order(self):
            if kind == "global_randperm":  # one draw from the global generator, not the DataLoader's two
                return torch.randperm(len(self.x))
            return super().order()

        def __iter__(self):
            for bx, by in super().__iter__():
                if kind == "drop_last" and len(by) < self.batch_size:
                    return  # the last, smaller batch dropped
                yield (by, bx) if kind == "y_first" else (bx, by)
    return Wrong


def _lightning_variant(kind: str) -> type:
    base = _ref("MultiLayerPerceptron")

    class Wrong(base):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            if kind == "softmax":  # a Softmax after the last Linear, though cross_entropy takes logits
                self.model = nn.Sequential(*self.model, nn.Softmax(dim=1))

        def training_step(self, batch, batch_idx):
            loss = super().training_step(batch, batch_idx)
            if kind == "acc_per_step":  # the running accuracy logged at every step
                self.log("train_acc", self.train_acc.compute())
            return loss

        def test_step(self, batch, batch_idx):
            loss = super().test_step(batch, batch_idx)
            if kind == "test_acc_per_batch":  # the book's 1.5 test_step: the running accuracy, every batch
                self.log("test_acc", self.test_acc.compute())
            return loss

        def _log_epoch(self, metric, stage):
            if (kind, stage) in (("acc_per_step", "train"), ("test_acc_per_batch", "test")):
                metric.reset()
                return
            if kind == "val_acc" and stage == "valid":
                stage = "val"  # logged as val_acc, the name the checkpoint's monitor does not know
            super()._log_epoch(metric, stage)

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=0.01 if kind == "lr" else 0.001)
    return Wrong


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
    Mistake("bce_over_rows", "bce_logit_grad", "divided by z.shape[0] (the rows), not by the number of elements",
            lambda: _over_rows("bce")),
    Mistake("mse_over_rows", "mse_grad", "divided by pred.shape[0] (the rows), not by the number of elements",
            lambda: _over_rows("mse")),
    Mistake("noise_shared_by_the_batch", "NoisyLinear", "noise of shape (1, input_size): the same noise for every "
            "row of the batch", _noise_per_feature),
    Mistake("train_mode_once", "train", "model.train() once before the epoch loop: after the first validation the "
            "model stays in eval mode", lambda: _train_variant(train_once=True)),
    Mistake("validation_with_gradients", "train", "validation without torch.no_grad()",
            lambda: _train_variant(no_grad=False)),
    Mistake("order_drawn_once", "ShuffledBatches", "the order drawn once in __init__: the same order every epoch",
            _order_once),
    Mistake("log_softmax_before_cross_entropy", "mnist_mlp", "a LogSoftmax at the end (CrossEntropyLoss applies "
            "log-softmax itself)", _log_softmax_classifier),
    Mistake("xor_halves_swapped", "make_xor", "the train and validation halves swapped", _xor_swapped),
    Mistake("fgsm_clamp_before_step", "fgsm", "the input clamped before the step, not the stepped result",
            _fgsm_clamp_first),
    Mistake("one_accuracy_for_two_stages", "MultiLayerPerceptron", "valid_acc is train_acc: one metric object for "
            "two stages", _shared_metric),
    Mistake("model_year_raw", "mpg_features", "Model Year left raw (70–82) in the bucket column", _year_raw),
    Mistake("predict_booleans", "ModuleListModel", "predict returns booleans, not 0/1 floats", _predict_booleans),
    # compute_z … glorot
    Mistake("compute_z_in_place", "compute_z", "a.sub_(b): a − b written into the caller's a (an in-place op)",
            _compute_z_in_place),
    Mistake("compute_z_float_two", "compute_z", "torch.mul(…, 2.0): integer inputs come back as floats",
            _compute_z_float_two),
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
    # §3
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
    # §4
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
    # §5
    Mistake("xor_int_labels", "make_xor", "the labels y as NumPy ints (astype(int)), not float64",
            lambda: _xor_variant("int_labels")),
    Mistake("xor_float64_tensors", "make_xor", "torch.tensor(x[:half]) without dtype: float64 tensors, not float32",
            lambda: _xor_variant("float64")),
    Mistake("xor_split_at_100", "make_xor", "the book's x[:100] / x[100:]: the split at 100 rows, not n/2",
            lambda: _xor_variant("split_at_100")),
    Mistake("zero_grad_once_per_epoch", "train", "optimizer.zero_grad() once per epoch, before the batch loop: "
            "gradients pile up across the epoch's steps", lambda: _train_variant(zero_grad_per_epoch=True)),
    Mistake("first_column_not_taken", "train", "the one-output model's pred not indexed [:, 0]: (N, 1) against "
            "a 1-d y", lambda: _train_variant(first_column=False)),
    Mistake("valid_acc_over_train_samples", "train", "the validation count divided by the number of training "
            "samples (a copied line)", lambda: _train_variant(valid_over_train=True)),
    Mistake("epoch_end_counts_from_1", "train", "on_epoch_end(epoch + 1, history): epochs counted from 1",
            lambda: _train_variant(epoch_offset=1)),
    Mistake("accuracy_in_percent", "train", "the accuracy × 100, a percentage, not a fraction",
            lambda: _train_variant(percent=True)),
    Mistake("loss_without_item", "train", "loss_sum += loss without .item(): the history holds tensors, not floats",
            lambda: _train_variant(item=False)),
    # §6
    Mistake("module_list_no_sigmoid", "ModuleListModel", "the final Sigmoid left out of the ModuleList",
            _no_sigmoid),
    Mistake("predict_column", "ModuleListModel", "predict without [:, 0]: shape (N, 1), not (N,)", _predict_column),
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
    # §7
    Mistake("buckets_shifted", "bucketize_year", "the boundaries [72, 75, 78]: every bucket a year early",
            _buckets_shifted),
    Mistake("std_ddof_0", "mpg_features", "np.std (ddof 0) instead of describe()'s std (ddof 1)",
            lambda: _features_variant("ddof0")),
    Mistake("split_before_dropna", "mpg_features", "train_test_split before dropna: other rows in each split",
            lambda: _features_variant("split_before_dropna")),
    Mistake("mpg_standardised_too", "mpg_features", "MPG, the target, standardised with the features",
            lambda: _features_variant("mpg_too")),
    Mistake("features_float64", "mpg_features", "x left float64 (.float() forgotten)",
            lambda: _features_variant("float64")),
    Mistake("relu_regression", "mpg_regressor", "a ReLU after the regression output", _relu_regressor),
    # §8, §9
    Mistake("no_flatten", "mnist_mlp", "nn.Flatten left out: Linear(784, 32) meets (N, 1, 28, 28) images",
            _no_flatten),
    Mistake("drop_last_batch", "ShuffledBatches", "the last, smaller batch dropped (DataLoader's drop_last=True)",
            lambda: _batches_variant("drop_last")),
    Mistake("len_floor", "ShuffledBatches", "__len__ = n // batch_size: the last, smaller batch not counted",
            lambda: _batches_variant("len_floor")),
    Mistake("global_randperm", "ShuffledBatches", "torch.randperm(n) from the global generator: one draw, not the "
            "DataLoader's two", lambda: _batches_variant("global_randperm")),
    Mistake("y_before_x", "ShuffledBatches", "batches yielded as (y, x), not (x, y)",
            lambda: _batches_variant("y_first")),
    Mistake("train_acc_per_step", "MultiLayerPerceptron", "train_acc logged in training_step (the running "
            "accuracy, every step), not once per epoch", lambda: _lightning_variant("acc_per_step")),
    Mistake("test_acc_per_batch", "MultiLayerPerceptron", "test_step logs test_acc.compute() every batch (the "
            "book's 1.5 code): Lightning averages the running accuracies",
            lambda: _lightning_variant("test_acc_per_batch")),
    Mistake("adam_lr_0_01", "MultiLayerPerceptron", "Adam with lr=0.01, not 0.001", lambda: _lightning_variant("lr")),
    Mistake("val_acc_name", "MultiLayerPerceptron", "the validation accuracy logged as val_acc, not valid_acc",
            lambda: _lightning_variant("val_acc")),
    Mistake("lightning_softmax_output", "MultiLayerPerceptron", "a Softmax after the last Linear, before "
            "cross_entropy (softmax twice)", lambda: _lightning_variant("softmax")),
)


def mistake(name: str) -> Mistake:
    for m in MISTAKES:
        if m.name == name:
            return m
    raise KeyError(f"no mistake {name!r}")


@functools.cache
def catch(name: str) -> tuple[tuple[str, str], ...]:
    """(claim id or ``samples``, the failure) for every claim and check that catches the mistake ``name``."""
    m = mistake(name)
    return tuple(failures(exercise(m.exercise), m.implementation()))


@functools.cache
def _observed(name: str) -> tuple[dict, ...]:
    m = mistake(name)
    return tuple(observations(exercise(m.exercise), m.make()))


def named_mistakes(exercise_name: str, piece: Any) -> list[Mistake]:
    """The catalogued mistakes of the exercise that ``piece`` behaves exactly like, on every sample input
    (the same values, shapes, dtypes, modes and draws); usually none or one."""
    from torchmech.grader import compare_observations

    e = exercise(exercise_name)
    mine = observations(e, piece)
    return [m for m in MISTAKES if m.exercise == exercise_name
            and all(compare_observations(b, a) is None for a, b in zip(mine, _observed(m.name), strict=True))]


def likely_mistake(exercise_name: str, piece: Any) -> str:
    """What the catalogue calls the mistake ``piece`` makes, when it behaves exactly like one; else ``""``."""
    named = named_mistakes(exercise_name, piece)
    return named[0].what if len(named) == 1 else ""


__all__ = ["MISTAKES", "Mistake", "behaves_like", "catch", "likely_mistake", "mistake", "named_mistakes"]
