"""§5 XOR and the one training loop: its exercises, their sample inputs and observers."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from torchmech.chapter.train import binary_correct, multiclass_correct
from torchmech.learn.exercises.core import (
    Exercise,
    Sample,
    _fresh,
    _gen,
    _mpg,
    _raised,
    _xor,
)
from torchmech.learn.grader import call, rng_states, seeded


def xor_samples() -> tuple[Sample, ...]:
    cases = [(), (40, 3), (2, 0), (10, 7), (1000, 2)]  # (): make_xor() with its defaults, n=200, seed=1
    return tuple(Sample(_fresh(*c), ("n", "seed"), seed=i) for i, c in enumerate(cases))


class Probe(nn.Module):
    """A small model that records, per forward call, whether it ran in train mode and with grad on."""

    def __init__(self, d: int, k: int, out: nn.Module | None) -> None:
        super().__init__()
        self.lin = nn.Linear(d, k)
        self.out = out
        self.calls: list[str] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(("train" if self.training else "eval") + (" + grad" if torch.is_grad_enabled() else ""))
        z = self.lin(x)
        return self.out(z) if self.out is not None else z


def _loader(x: torch.Tensor, y: torch.Tensor, batch: int, shuffle: bool) -> Any:
    from torch.utils.data import DataLoader, TensorDataset

    return DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=shuffle)


def train_samples() -> tuple[Sample, ...]:
    def setup(i: int, d: int, k: int, n: int, batch: int, epochs: int, kind: str, shuffle: bool, valid: str,
              opt: str) -> Sample:
        g = _gen(i)
        x = torch.randn(n, d, generator=g)
        if kind == "binary":
            y, loss, correct, out = (torch.rand(n, generator=g) > 0.5).float(), nn.BCELoss(), binary_correct, \
                nn.Sigmoid()
        elif kind == "multiclass":
            y, loss, correct, out = torch.randint(0, k, (n,), generator=g), nn.CrossEntropyLoss(), \
                multiclass_correct, None
        else:
            y, loss, correct, out = torch.randn(n, generator=g), nn.MSELoss(), None, None
        xv, yv = x[: max(1, n // 2)] + 0.1, y[: max(1, n // 2)]

        def make() -> tuple:
            torch.manual_seed(10 + i)
            model = Probe(d, k, out)
            optimizer = (torch.optim.SGD(model.parameters(), lr=0.3) if opt == "sgd"
                         else torch.optim.Adam(model.parameters(), lr=0.05))
            batches = _loader(x, y, batch, shuffle)
            valid_batches = None if valid == "none" else [(xv, yv)] if valid == "one" else _loader(xv, yv, 2, False)
            return (model, loss, optimizer, batches, epochs) + (() if valid_batches is None else (valid_batches,))
        n_batches = -(-n // batch)
        return Sample(make, ("model", "loss_fn", "optimizer", "train_batches", "num_epochs", "valid_batches"),
                      seed=i, extra={"correct": correct},  # given as correct=… where not None
                      sizes={"(the number of batches / the number of samples)": n_batches / n,
                             "the number of batches": n_batches, "the number of samples": n})
    return (setup(0, 2, 1, 5, 2, 3, "binary", False, "loader", "sgd"),
            setup(1, 3, 4, 13, 4, 2, "multiclass", True, "none", "sgd"),
            setup(2, 4, 1, 9, 9, 2, "regression", False, "one", "adam"),
            setup(3, 2, 1, 6, 1, 2, "binary", True, "loader", "sgd"),
            setup(4, 3, 4, 21, 8, 3, "multiclass", False, "one", "adam"))


def train(piece: Any, sample: Sample) -> dict[str, Any]:
    args = sample.make()  # valid_batches left out where there are none
    model, correct = args[0], sample.extra["correct"]
    epoch_ends: list[tuple[int, int]] = []
    with seeded(sample.seed):
        try:
            history = piece(*args, **({} if correct is None else {"correct": correct}),
                            on_epoch_end=lambda e, h: epoch_ends.append((e, len(h.train_loss))))
        except Exception as err:
            return _raised(err)
        calls = list(model.calls)
        obs: dict[str, Any] = {
            "the model's mode at each forward call (train/eval, + grad when gradients are on)": calls,
            "returned": history,
            "on_epoch_end calls (epoch, epochs in the history)": epoch_ends,
            "the weights after training": {n: p.detach().clone() for n, p in model.named_parameters()},
        }
        obs.update(rng_states())
    return obs


def diagnose_train(expected: dict, got: dict) -> str:
    key = "the model's mode at each forward call (train/eval, + grad when gradients are on)"
    e, g = expected.get(key), got.get(key)
    if not isinstance(e, list) or not isinstance(g, list) or e == g:
        return ""
    if len(e) != len(g):
        return f"{len(g)} forward calls where {len(e)} are expected (one per batch, training and validation)"
    wrong = [(i, a, b) for i, (a, b) in enumerate(zip(e, g, strict=True)) if a != b]
    i, a, b = wrong[0]
    if a == "train + grad" and b.startswith("eval") and any(c.startswith("eval") for c in e[:i]):
        return ("after the first validation the model stays in eval mode: training steps after it run in eval "
                "mode (model.train() belongs at the start of every epoch)")
    if a == "eval" and b == "train":
        return "validation runs in train mode (model.eval() missing)"
    if a == "eval" and b.endswith("+ grad"):
        return "validation runs with gradients on (torch.no_grad() missing)"
    if a == "train + grad" and b == "train":
        return "training steps run without gradients"
    return f"forward call {i + 1}: {b!r} where {a!r} is expected"


EXERCISES: tuple[Exercise, ...] = (
    Exercise("make_xor", "s5", "def make_xor(n=200, seed=1):",
             "The book's XOR data for an even n: np.random.seed(seed); x = np.random.uniform(−1, 1, (n, 2)); label "
             "1.0 unless x0·x1 < 0 (float64); the first n/2 rows train, the rest validate. Return "
             "torchmech.data.xor.XorData(x, y, x_train, y_train, x_valid, y_valid): x, y as NumPy, the halves as "
             "float32 tensors.",
             ("s5.data.first_row", "s5.data.class1"), xor_samples, call,
             ("§5: XOR is the classic problem a linear boundary cannot solve.",
              "the label is 1 where x0·x1 ≥ 0; the split is at n/2, the train half first.",
              "np.random.seed(seed); x = np.random.uniform(low=-1, high=1, size=(n, 2))"),
             runs=lambda: (_xor("logistic", 2),), spans=("several seeds", "defaults and other values")),
    Exercise("train", "s5", "def train(model, loss_fn, optimizer, train_batches, num_epochs, valid_batches=None, *, "
             "correct=None, device='cpu', on_epoch_end=None):",
             "The one training loop; return torchmech.train.History (plain floats per epoch). Every epoch: "
             "model.train(), then for each batch forward, loss, backward, step, zero the gradients; one-output "
             "models are indexed [:, 0] when y is 1-d; the epoch loss is the mean of the batch losses "
             "(Σ / len(train_batches)); accuracy, when correct is given, is Σ correct(pred, y) (a count) over the "
             "samples; then, when valid_batches is given, validation in model.eval() mode under torch.no_grad() "
             "(its loss and accuracy the same way); then on_epoch_end(epoch, history) when given.", (),
             train_samples, train, ("§5: the training loop: forward, loss, backward, step, zero the "
                                        "gradients; then validate.",
                                        "loss_hist[epoch] = Σ batch losses / len(loader); acc = Σ correct / Σ "
                                        "samples; train mode for training, eval mode for validation.",
                                        "loss.backward(); optimizer.step(); optimizer.zero_grad()"),
             diagnose_train,
             runs=lambda: (_xor("logistic", 3), _mpg(2)),
             spans=("a single row", "a smaller last batch", "≥ 3 epochs", "several seeds",
                    "defaults and other values")),
)
