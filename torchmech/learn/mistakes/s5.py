"""§5 XOR and the training loop: the catalogue's wrong pieces of this section's exercises, and their rows."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import numpy as np
import torch

from torchmech.chapter.data.xor import XorData
from torchmech.chapter.train import History
from torchmech.learn.mistakes.core import Mistake, ref


def _xor_unseeded() -> Callable:
    def make_xor(n=200, seed=1):
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


def _xor_swapped() -> Callable:
    def make_xor(n=200, seed=1):
        d = ref("make_xor")(n, seed)
        return type(d)(d.x, d.y, d.x_valid, d.y_valid, d.x_train, d.y_train)  # the halves swapped
    return make_xor


def _xor_variant(kind: str) -> Callable:
    def make_xor(n=200, seed=1):
        np.random.seed(seed)
        x = np.random.uniform(low=-1, high=1, size=(n, 2))
        y = (x[:, 0] * x[:, 1] >= 0).astype(int if kind == "int_labels" else float)  # int: 0/1 as int64
        half = 100 if kind == "split_at_100" else n // 2  # the book's x[:100], whatever n is
        dtype = torch.float64 if kind == "float64" else torch.float32  # float64: torch.tensor(x) keeps NumPy's
        t = lambda a: torch.tensor(a, dtype=dtype)  # noqa: E731
        return XorData(x, y, t(x[:half]), t(y[:half]), t(x[half:]), t(y[half:]))
    return make_xor


MISTAKES: tuple[Mistake, ...] = (
    Mistake("xor_unseeded", "make_xor", "np.random.seed(seed) left out: other data every call", _xor_unseeded),
    Mistake("zero_grad_missing", "train", "optimizer.zero_grad() missing: gradients pile up across steps",
            lambda: _train_variant(zero_grad=False)),
    Mistake("loss_over_samples", "train", "the epoch loss divided by the samples, not the batches (the printed "
            "book's erratum)", lambda: _train_variant(per_sample=True)),
    Mistake("validation_in_train_mode", "train", "validation without eval(), so NoisyLinear adds noise there",
            lambda: _train_variant(eval_mode=False)),
    Mistake("train_mode_once", "train", "model.train() once before the epoch loop: after the first validation the "
            "model stays in eval mode", lambda: _train_variant(train_once=True)),
    Mistake("validation_with_gradients", "train", "validation without torch.no_grad()",
            lambda: _train_variant(no_grad=False)),
    Mistake("xor_halves_swapped", "make_xor", "the train and validation halves swapped", _xor_swapped),
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
)
