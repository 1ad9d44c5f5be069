"""The one training loop of the package (§5–§8 all train through :func:`train`).

Per epoch, as the book's notebooks compute it:

* loss = mean of the per-batch losses over the number of batches (``len(loader)``);
* accuracy = correct predictions / number of samples, counted on the training batches'
  own forward passes (before the optimizer step) and on the validation set;
* validation runs in ``eval()`` mode under ``torch.no_grad()``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Sized
from dataclasses import dataclass, field

import torch
from torch import nn

from torchmech.runtime.backends import Backend, resolve

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Correct = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


#: The decision threshold of the chapter's one-output probability models (§5–§6): class 1 where p ≥ 0.5.
THRESHOLD = 0.5


def binary_decision(prob: torch.Tensor) -> torch.Tensor:
    """Class 1 (``True``) where a probability is at least :data:`THRESHOLD`, else class 0 (``False``).

    The one threshold of the package: accuracy in training, ``predict``, the ensembles and the
    figures all decide through it, as the book's ``pred >= 0.5``.

    Example::

        >>> binary_decision(torch.tensor([0.2, 0.5, 0.9]))
        tensor([False,  True,  True])
    """
    return prob >= THRESHOLD


def binary_correct(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Number of right answers of a probability output thresholded at 0.5 (XOR, §5)."""
    return (binary_decision(pred).to(y.dtype) == y).sum()


def multiclass_correct(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Number of right answers of class scores (N, C) against class indices (MNIST, §8)."""
    return (torch.argmax(logits, dim=1) == y).sum()


@dataclass
class History:
    """Per-epoch results of :func:`train`, as plain floats (``valid_*`` empty without a validation set;
    ``*_acc`` empty for regression)."""

    train_loss: list[float] = field(default_factory=list)
    valid_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    valid_acc: list[float] = field(default_factory=list)


def forward(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``model(x)``, indexed ``[:, 0]`` when the model has one output and ``y`` is 1-d (the book's binary and
    regression models): what the loss and the accuracy are computed on."""
    pred = model(x)
    # The book's binary and regression models end in one unit and index [:, 0].
    if pred.dim() == 2 and pred.shape[1] == 1 and y.dim() == 1:
        pred = pred[:, 0]
    return pred


class NonFinite(RuntimeError):
    """A run whose numbers stopped being finite: the step where it was seen and what raised then, in one line,
    e.g. ``weights non-finite by step 14,907 (epoch 299); BCELoss raised RuntimeError: all elements of input
    should be between 0 and 1``. A backend checker shows it as the run's verdict."""


def _name(fn: Callable) -> str:
    return getattr(fn, "__name__", None) or type(fn).__name__


def _non_finite(model: nn.Module, losses: list[torch.Tensor], done: int, epoch: int, loss_fn: LossFn,
                err: BaseException | None) -> NonFinite | None:
    """What went non-finite in this epoch (``losses``: its steps' losses so far; ``done``: the run's steps
    before it), or ``None`` where the loss and the weights are finite (``err``, if any, is another fault)."""
    bad_loss = next((i for i, loss in enumerate(losses) if not bool(torch.isfinite(loss).all())), None)
    bad_weights = not all(bool(torch.isfinite(p).all()) for p in model.parameters())
    if bad_loss is None and not bad_weights:
        return None
    if bad_loss is not None:
        what = f"loss non-finite from step {done + bad_loss + 1:,}"
    else:  # the loss stayed finite: the step that raised met the weights the last update broke
        what = f"weights non-finite by step {done + len(losses) + 1:,}"
    raised = f"; {_name(loss_fn)} raised {type(err).__name__}: {str(err).strip().splitlines()[0]}" if err else ""
    return NonFinite(f"{what} (epoch {epoch + 1}){raised}")


def _epoch(
    model: nn.Module,
    loss_fn: LossFn,
    batches: Batches,
    backend: Backend,
    correct: Correct | None,
    optimizer: torch.optim.Optimizer | None,
    done: int = 0,
    epoch: int = 0,
) -> tuple[float, float | None]:
    """One pass over ``batches``; steps ``optimizer`` when given. Returns (mean loss, accuracy).

    A pass whose loss or weights stop being finite raises :class:`NonFinite` naming the step (``done``: the
    run's steps before this pass), whether the loss function then raised or the mean came out NaN."""
    if not isinstance(batches, Sized) or len(batches) == 0:
        raise ValueError("a loader must have a length (the number of batches) greater than 0")
    # Summed in float64, as the book's ``loss.item()`` Python floats are (MPS has no float64).
    device = torch.device(backend.device)
    acc_dtype = torch.float32 if device.type == "mps" else torch.float64
    loss_sum = torch.zeros((), device=device, dtype=acc_dtype)
    right = torch.zeros((), device=device, dtype=torch.int64)
    samples = 0
    losses: list[torch.Tensor] = []  # kept on the device (no sync per step), read only when something broke
    try:
        for x, y in batches:
            x, y = backend.cast(x), backend.cast(y)
            with backend.autocast_context():
                pred = forward(model, x, y)
            loss = backend.loss(loss_fn, pred, y)
            if optimizer is not None:
                loss.backward()
                optimizer.step()
                optimizer.zero_grad()
            losses.append(loss.detach())
            loss_sum += losses[-1]
            if correct is not None:
                right += correct(pred.detach(), y)
            samples += len(y)
    except Exception as err:
        broke = _non_finite(model, losses, done, epoch, loss_fn, err)
        if broke is None:
            raise
        raise broke from err
    mean = loss_sum.item() / len(batches)
    if not math.isfinite(mean) and (broke := _non_finite(model, losses, done, epoch, loss_fn, None)) is not None:
        raise broke
    accuracy = right.item() / samples if correct is not None else None
    return mean, accuracy


def train(
    model: nn.Module,
    loss_fn: LossFn,
    optimizer: torch.optim.Optimizer,
    train_batches: Batches,
    num_epochs: int,
    valid_batches: Batches | None = None,
    *,
    correct: Correct | None = None,
    device: str | torch.device | None = "cpu",
    on_epoch_end: Callable[[int, History], None] | None = None,
    backend: Backend | str | None = None,
) -> History:
    """Train ``model`` for ``num_epochs`` and return its :class:`History`.

    Args:
        model: any module; moved to ``device``.
        loss_fn: e.g. ``nn.BCELoss()``, ``nn.MSELoss()``, ``nn.CrossEntropyLoss()``.
        optimizer: built on ``model.parameters()``.
        train_batches: a sized iterable of ``(x, y)`` batches, e.g. a ``DataLoader``.
        num_epochs: epochs to run (> 0).
        valid_batches: optional; evaluated after every epoch under ``torch.no_grad()``.
        correct: counts right answers in a batch (:func:`binary_correct`,
            :func:`multiclass_correct`); ``None`` for regression (no accuracy).
        device: where to train (``"cpu"``, ``"cuda"``, ``"auto"``).
        on_epoch_end: called as ``on_epoch_end(epoch, history)`` (progress bars, prints).
        backend: how to run (:mod:`torchmech.runtime.backends`: ``"compile"``, ``"cpu-fp64"``, …); it sets the
            device (``device`` is then ignored). ``None``: eager on ``device``.
    """
    if num_epochs <= 0:
        raise ValueError(f"num_epochs must be > 0, got {num_epochs}")
    be = resolve(backend, device)
    step = be.prepare(model)  # model itself moves; ``step`` may be its compiled twin
    history = History()
    done = 0  # the run's optimizer steps so far (a NonFinite names the step)
    with be.active():
        for epoch in range(num_epochs):
            model.train()
            loss, acc = _epoch(step, loss_fn, train_batches, be, correct, optimizer, done, epoch)
            done += len(train_batches)  # type: ignore[arg-type]
            history.train_loss.append(loss)
            if acc is not None:
                history.train_acc.append(acc)
            if valid_batches is not None:
                model.eval()
                with torch.no_grad():
                    loss, acc = _epoch(step, loss_fn, valid_batches, be, correct, None, done, epoch)
                history.valid_loss.append(loss)
                if acc is not None:
                    history.valid_acc.append(acc)
            if on_epoch_end is not None:
                on_epoch_end(epoch, history)
    return history


class ShuffledBatches:
    """Batches sliced from device-resident tensors, in exactly the order that
    ``DataLoader(TensorDataset(x, y), batch_size, shuffle=True)`` yields them.

    Each pass replays the loader's two draws from torch's global generator: the iterator's
    base seed (one int64, drawn and discarded here), then ``RandomSampler``'s seed for a fresh
    ``torch.Generator``, whose ``randperm`` is the epoch's order. So the book's numbers come out
    without per-sample Python work (no PIL, no collate): the fast path of §8.

    Args:
        x, y: the whole data set, e.g. all 60,000 MNIST images as one float tensor on the GPU.
        batch_size: samples per batch; the last batch may be smaller.
        shuffle: ``False`` yields the samples in order (and draws nothing).
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool = True) -> None:
        if len(x) != len(y):
            raise ValueError(f"x and y hold different numbers of samples: {len(x)} and {len(y)}")
        if x.device != y.device:
            raise ValueError(f"x and y must share one device, got {x.device} and {y.device}")
        if batch_size <= 0:
            raise ValueError(f"batch_size must be > 0, got {batch_size}")
        self.x, self.y, self.batch_size, self.shuffle = x, y, batch_size, shuffle

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)

    def order(self) -> torch.Tensor | None:
        """This pass's permutation, drawn as the DataLoader draws it (``None`` without shuffling)."""
        if not self.shuffle:
            return None
        torch.empty((), dtype=torch.int64).random_()  # _BaseDataLoaderIter's base seed
        seed = int(torch.empty((), dtype=torch.int64).random_().item())  # RandomSampler's seed
        return torch.randperm(len(self.x), generator=torch.Generator().manual_seed(seed)).to(self.x.device)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        perm = self.order()
        if perm is None:
            yield from zip(self.x.split(self.batch_size), self.y.split(self.batch_size), strict=True)
            return
        # index_select copies whole rows: on the CPU about half the cost of x[idx] (advanced indexing)
        for idx in perm.split(self.batch_size):
            yield self.x.index_select(0, idx), self.y.index_select(0, idx)


class FirstBatches:
    """The first ``n`` batches of each pass over ``batches`` (a sized iterable), itself sized: an epoch cut
    short (its length, ``min(n, len(batches))``, is the loss divisor). The rest of the pass is not drawn, so a
    trimmed run's later epochs see other batches than the full run's.

    Example::

        >>> len(FirstBatches([(1, 1)] * 5, 3)), len(FirstBatches([(1, 1)] * 2, 3))
        (3, 2)
    """

    def __init__(self, batches: Batches, n: int) -> None:
        if n <= 0:
            raise ValueError(f"the number of batches must be > 0, got {n}")
        self.batches, self.n = batches, n

    def __len__(self) -> int:
        return min(self.n, len(self.batches))  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return itertools.islice(iter(self.batches), self.n)
