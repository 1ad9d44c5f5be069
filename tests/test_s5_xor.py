"""§5 XOR and model capacity: the data, the one training loop, and what capacity buys —
as probabilities over many seeds, not one lucky run."""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from torchmech.capacity import EnsembleResult, batch_orders, train_ensemble, xor_run
from torchmech.data.xor import make_xor
from torchmech.models import mlp
from torchmech.train import History, binary_correct, train

pytestmark = pytest.mark.s5

SEEDS = range(1000, 1256)  # 256 initialisation seeds for every capacity claim below


# --- the data ---------------------------------------------------------------------------------
def test_xor_data_golden() -> None:
    """Book: np.random.seed(1), 200 points on [−1, 1]²; first row (−0.16595599, 0.44064899);
    53 class-1 labels in the 100 training and in the 100 validation points."""
    d = make_xor()
    assert [f"{v:.8f}" for v in d.x[0]] == ["-0.16595599", "0.44064899"]  # as printed, 8 decimals
    # exact: the tensors are the NumPy draw rounded once to float32, nothing else
    torch.testing.assert_close(d.x_train, torch.tensor(d.x[:100], dtype=torch.float32), rtol=0, atol=0)
    assert d.x_train.shape == d.x_valid.shape == (100, 2)
    assert d.x_train.dtype == d.y_train.dtype == torch.float32
    assert d.y_train.sum().item() == 53 and d.y_valid.sum().item() == 53


@given(n=st.integers(1, 200).map(lambda k: 2 * k), seed=st.integers(0, 2**32 - 1))
def test_xor_label_is_one_unless_x0_x1_negative(n: int, seed: int) -> None:
    """For any size and seed: points lie in [−1, 1]², label 1 unless x0·x1 < 0, halves of n/2."""
    d = make_xor(n, seed)
    assert len(d.x_train) == len(d.x_valid) == n // 2
    assert np.all(np.abs(d.x) <= 1)
    np.testing.assert_array_equal(d.y, (d.x[:, 0] * d.x[:, 1] >= 0).astype(np.float64))


@pytest.mark.parametrize("n", [0, -2, 3, 2.0, True])
def test_xor_needs_a_positive_even_n(n) -> None:
    """n must be a positive even integer (half train, half validation): ValueError otherwise."""
    with pytest.raises(ValueError, match="positive even integer"):
        make_xor(n)


# --- the one training loop --------------------------------------------------------------------
def test_logistic_regression_golden(device: str) -> None:
    """Book: logistic regression, SGD lr 0.001, 200 epochs → train acc 0.64, valid acc 0.71
    (seed 1, CPU). On other devices the law: a linear boundary stays far from solving XOR."""
    _, h = xor_run("logistic", device=device)
    if device == "cpu":
        assert (round(h.train_acc[-1], 2), round(h.valid_acc[-1], 2)) == (0.64, 0.71)
    else:
        assert h.valid_acc[-1] <= 0.8 and h.train_acc[-1] <= 0.8


def test_history_holds_plain_floats_per_epoch() -> None:
    """train() returns four per-epoch histories of plain floats (no tensors kept alive)."""
    _, h = xor_run("logistic", epochs=3)
    for series in (h.train_loss, h.valid_loss, h.train_acc, h.valid_acc):
        assert len(series) == 3 and all(type(v) is float for v in series)


class _Probe(nn.Module):
    """A linear model that records, per call, whether grad mode and train mode were on."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 1)
        self.calls: list[tuple[bool, bool]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append((torch.is_grad_enabled(), self.training))
        return torch.sigmoid(self.lin(x))


def test_epoch_loss_is_the_mean_over_batches_and_accuracy_over_samples() -> None:
    """Epoch loss = Σ batch losses / len(loader) (uneven last batch included); accuracy = right
    answers / samples; validation runs under no_grad in eval mode."""
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0], [0.5, 0.5]])
    y = torch.tensor([1.0, 1.0, 0.0, 0.0, 1.0])
    model = _Probe()
    loader = DataLoader(TensorDataset(x, y), batch_size=2)  # batches of 2, 2, 1
    with torch.no_grad():
        batch_losses = [nn.BCELoss()(model(xb)[:, 0], yb).item() for xb, yb in loader]
        right = binary_correct(model(x)[:, 0], y).item()
    model.calls.clear()
    h = train(model, nn.BCELoss(), torch.optim.SGD(model.parameters(), lr=0.0), loader, 1,
              valid_batches=loader, correct=binary_correct)
    assert h.train_loss[0] == pytest.approx(sum(batch_losses) / 3, rel=1e-12)
    assert h.valid_loss[0] == pytest.approx(sum(batch_losses) / 3, rel=1e-12)
    assert h.train_acc[0] == h.valid_acc[0] == right / 5
    assert model.calls == [(True, True)] * 3 + [(False, False)] * 3


def test_printed_books_xor_divisor_is_an_erratum() -> None:
    """Erratum (p.422): the printed book divides the XOR epoch loss by n_train (100), the
    notebook by n_train/batch_size = len(loader) (50). Only the latter is the mean batch loss:
    the printed value is half of it."""
    d = make_xor()
    loader = DataLoader(TensorDataset(d.x_train, d.y_train), batch_size=2, shuffle=True)
    sums: list[float] = []
    model = mlp((2, 1))
    loss_fn = nn.BCELoss()

    def summed_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = loss_fn(pred, target)
        sums.append(loss.item())
        return loss

    h = train(model, summed_loss, torch.optim.SGD(model.parameters(), lr=0.001), loader, 1)
    right, printed = sum(sums) / len(loader), sum(sums) / len(d.x_train)
    assert h.train_loss[0] == pytest.approx(right, rel=1e-12)
    assert printed == pytest.approx(right / 2, rel=1e-12) and printed != pytest.approx(right)


def test_train_without_validation_for_regression_with_a_callback(device: str) -> None:
    """No validation set → empty valid lists; correct=None (regression) → no accuracy; the
    callback sees every epoch; the model ends on the device it trained on."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 3, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5]) + 0.3
    model = mlp((3, 1), output=None)
    seen: list[int] = []
    h = train(model, nn.MSELoss(), torch.optim.SGD(model.parameters(), lr=0.1),
              DataLoader(TensorDataset(x, y), batch_size=8), 30, device=device,
              on_epoch_end=lambda epoch, hist: seen.append(epoch))
    assert seen == list(range(30))
    assert h.valid_loss == h.train_acc == h.valid_acc == []
    assert h.train_loss[-1] < 0.01 * h.train_loss[0]
    assert next(model.parameters()).device.type == device


def test_train_names_bad_arguments() -> None:
    """Zero epochs or a loader without batches: ValueError naming it."""
    model = mlp((2, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="num_epochs"):
        train(model, nn.BCELoss(), opt, [(torch.zeros(1, 2), torch.zeros(1))], 0)
    with pytest.raises(ValueError, match="length"):
        train(model, nn.BCELoss(), opt, [], 1)


# --- capacity over many seeds -----------------------------------------------------------------
@functools.cache
def ensemble(hidden: tuple[int, ...], device: str) -> EnsembleResult:
    return train_ensemble(lambda: mlp((2, *hidden, 1)), make_xor(), SEEDS, device=device)


class _EpochOrders:
    """A loader whose every pass yields one member's batches in the ensemble's order."""

    def __init__(self, data, orders, member: int, epochs: int) -> None:
        self.batches = [[(data.x_train[o], data.y_train[o]) for o in next(orders)[member].view(-1, 2)]
                        for _ in range(epochs)]
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.batches[0])

    def __iter__(self):
        self.epoch += 1
        return iter(self.batches[self.epoch - 1])


def test_an_ensemble_member_trains_exactly_like_a_single_model() -> None:
    """The batched ensemble is many single trainings at once: member j, started from the seed's
    weights and fed its own shuffle, ends where train() takes the same model on the same batches."""
    d, seeds, member, epochs = make_xor(), (7, 8, 9), 1, 5
    result = train_ensemble(lambda: mlp((2, 4, 4, 1)), d, seeds, epochs=epochs, order_seed=3)
    torch.manual_seed(seeds[member])
    model = mlp((2, 4, 4, 1))
    loader = _EpochOrders(d, batch_orders(len(seeds), len(d.x_train), 3), member, epochs)
    train(model, nn.BCELoss(), torch.optim.SGD(model.parameters(), lr=0.015), loader, epochs)
    linears = [m for m in model if isinstance(m, nn.Linear)]
    for (w, b), lin in zip(result.weights, linears, strict=True):
        # batched (bmm) and single (addmm) kernels round differently; 250 steps keep it ~1e-6
        torch.testing.assert_close(w[member], lin.weight.detach().T, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(b[member, 0], lin.bias.detach(), rtol=1e-4, atol=1e-5)


def test_logistic_regression_cannot_solve_xor_but_mlps_can(device: str) -> None:
    """Capacity (§5): over 256 seeds, the best logistic model stays ≤ 0.8 validation accuracy
    and ≥ 0.1 below the median 2×4 MLP; 2×4 MLPs often pass 0.9 and 2×16 MLPs nearly always.

    Measured on the CPU, seeds 1000–1255 (another run, seeds 2000–2255 and other shuffles):
    logistic best 0.72 (0.72), median 0.71; 2×4 median 0.91 (0.92), > 0.9 for 50 % (54 %),
    > 0.8 for 72 % (72 %); 2×16 > 0.9 for 100 % (100 %), 10th percentile 0.96.
    So the issue's "clear majority of 2×4 MLPs above 0.9" does not hold at the book's
    200 epochs and lr 0.015 — about half do, as 4-unit ReLU layers die or stall — while
    a clear majority passes 0.8. Thresholds sit ≥ 4 standard errors (3 %) below the measures.
    """
    logistic, small, wide = ensemble((), device), ensemble((4, 4), device), ensemble((16, 16), device)
    assert logistic.valid_acc.max().item() <= 0.8
    assert small.valid_acc.median().item() - logistic.valid_acc.max().item() >= 0.1
    assert small.success_rate(0.9) >= 0.35
    assert small.success_rate(0.8) >= 0.6
    assert wide.success_rate(0.9) >= 0.95


def test_depth_exercise_parameters_success_and_vanishing_gradients(device: str) -> None:
    """The chapter's exercise: 1, 2, 3, 4 hidden layers of 4 units (17, 37, 57, 77 parameters).

    The text's claims, checked over 256 seeds each:
    - "deeper nets are prone to vanishing gradients": holds. The median weight-gradient norm
      of the first layer over the first epoch shrinks ≈ 3× per added layer (measured
      1.1e-1, 3.4e-2, 1.0e-2, 3.2e-3) while the last layer's stays ≈ 0.1–0.2; the share of
      members whose first layer gets no gradient at all (dead ReLUs) grows 0 → 0.8 % → 3.5 % → 7 %.
    - "deeper reaches comparable capacity with fewer parameters than wider": not on XOR.
      One hidden layer of 8 (33 parameters) passes 0.9 for 91 % of seeds, two of 4 (37) for
      50 %; and depth stops paying: success 41 %, 50 %, 44 %, 29 % for depths 1–4 (a second
      run with other seeds and shuffles: 43 %, 54 %, 46 %, 36 %).
    """
    depths = {d: ensemble((4,) * d, device) for d in (1, 2, 3, 4)}
    assert [r.n_params for r in depths.values()] == [17, 37, 57, 77]
    first = [r.grad_norms[:, 0].median().item() for r in depths.values()]
    last = [r.grad_norms[:, -1].median().item() for r in depths.values()]
    assert all(deeper < shallower / 2 for shallower, deeper in itertools.pairwise(first))
    assert all(0.05 < g < 0.5 for g in last)
    dead = [(r.grad_norms[:, 0] < 1e-6).float().mean().item() for r in depths.values()]
    assert dead[3] > dead[0] and dead[3] >= 0.03
    one_by_8 = ensemble((8,), device)
    assert one_by_8.n_params < depths[2].n_params
    assert one_by_8.success_rate(0.9) >= depths[2].success_rate(0.9) + 0.2
    assert depths[4].success_rate(0.9) < depths[2].success_rate(0.9)


def test_mlp_in_notebook_order_is_documented_not_asserted() -> None:
    """Book (errata): the 2×4 MLP reaches about 0.90 / 0.85, not the text's 100 % / 95 %; the
    notebook does not reseed before it, so its printed 0.89 / 0.85 depends on the cells that
    ran before (here, the logistic run). Asserted: the notebook's order gives a result inside
    the measured spread of the 2×4 ensemble, and below the text's 100 % train accuracy."""
    d = make_xor()
    torch.manual_seed(1)
    loader = DataLoader(TensorDataset(d.x_train, d.y_train), batch_size=2, shuffle=True)
    logistic = mlp((2, 1))
    torch.manual_seed(1)
    train(logistic, nn.BCELoss(), torch.optim.SGD(logistic.parameters(), lr=0.001), loader, 200)
    model = mlp((2, 4, 4, 1))  # not reseeded: continues the generator where the logistic run left it
    h = train(model, nn.BCELoss(), torch.optim.SGD(model.parameters(), lr=0.015), loader, 200,
              [(d.x_valid, d.y_valid)], correct=binary_correct)
    spread = ensemble((4, 4), "cpu").valid_acc
    assert spread.min().item() <= h.valid_acc[-1] <= spread.max().item()
    assert h.train_acc[-1] < 1.0


def test_history_type_is_exported() -> None:
    """History is the loop's return type, importable for type hints in later sections."""
    assert isinstance(xor_run("logistic", epochs=1)[1], History)
