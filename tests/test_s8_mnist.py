"""§8 Project two: MNIST digits — the data layer, the fast path, the book's numbers, and the
side box of §3 made real (FGSM and saliency on the trained model)."""

from __future__ import annotations

import gzip
import hashlib
import itertools
import struct
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tests.registry import check, check_exercise, claim_cases, exercise_cases
from torchmech.chapter.autodiff import fgsm, saliency
from torchmech.chapter.data.mnist import (
    DirectorySource,
    MnistDataError,
    fetch_mnist,
    load_mnist,
    missing_files,
)
from torchmech.chapter.implementation import Implementation
from torchmech.chapter.models import mnist_mlp
from torchmech.chapter.runs import mnist_run, mnist_train_batches
from torchmech.report.plots import saliency_grid
from torchmech.spec.claims import claim

if TYPE_CHECKING:
    from torchmech.spec.core import Context

pytestmark = pytest.mark.s8


@pytest.mark.parametrize("claim", claim_cases("s8"))
def test_claim(claim, spec) -> None:
    """Each claim of this section in the registry (torchmech/spec/claims.py) holds: the book's value,
    or the band, bound or law its rule names with its reason."""
    check(claim, spec)


@pytest.mark.parametrize("exercise", exercise_cases("s8"))
def test_exercise(exercise, workspace) -> None:
    """The exercise graded as `torchmech learn check s8` grades it (on the reference: its check catches
    every catalogued mistake, each named as itself)."""
    check_exercise(exercise, workspace)


# --- the data layer, against a local fake source --------------------------------------------------
def _write_fake_idx(folder: Path, n: int = 12) -> dict[str, str]:
    """A tiny IDX set in MNIST's format; returns its MD5 table."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    files = {
        "train-images-idx3-ubyte": struct.pack(">IIII", 2051, n, 28, 28)
        + rng.integers(0, 256, n * 784, np.uint8).tobytes(),
        "train-labels-idx1-ubyte": struct.pack(">II", 2049, n) + rng.integers(0, 10, n, np.uint8).tobytes(),
    }
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return {name: hashlib.md5(content).hexdigest() for name, content in files.items()}


class _Refusing:
    name = "a source that must not be asked"

    def fetch(self, names, dest):
        raise AssertionError("asked a source although every file was verified")


class _Interrupted:
    """Writes half of the first file, then fails, as a dropped connection would."""

    name = "an interrupted download"

    def __init__(self, source: Path) -> None:
        self.source = source

    def fetch(self, names, dest):
        content = (self.source / names[0]).read_bytes()
        (dest / names[0]).write_bytes(content[: len(content) // 2])
        raise ConnectionResetError("connection reset")


def test_fetch_from_a_source_verifies_and_is_idempotent(tmp_path: Path) -> None:
    """fetch_mnist copies from a source, checks each MD5, and the second call asks no source;
    torchvision's MNIST reads the result."""
    table = _write_fake_idx(tmp_path / "src")
    raw = fetch_mnist(tmp_path / "root", sources=[DirectorySource(tmp_path / "src")], checksums=table)
    assert sorted(p.name for p in raw.iterdir()) == sorted(table)
    assert fetch_mnist(tmp_path / "root", sources=[_Refusing()], checksums=table) == raw
    assert missing_files(tmp_path / "root", table) == []


def test_gz_files_already_in_raw_are_adopted(tmp_path: Path) -> None:
    """*.gz files in raw/ (torchvision's layout, or a copy from another machine) are decompressed
    and checked; no source is asked."""
    table = _write_fake_idx(tmp_path / "src")
    raw = tmp_path / "root" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in table:
        (raw / f"{name}.gz").write_bytes(gzip.compress((tmp_path / "src" / name).read_bytes()))
    fetch_mnist(tmp_path / "root", sources=[_Refusing()], checksums=table)
    assert missing_files(tmp_path / "root", table) == []


def test_a_corrupt_copy_is_refused_with_the_files_name(tmp_path: Path) -> None:
    """A source whose file fails its MD5 leaves nothing behind; the error names the file and the
    command that fixes it."""
    table = _write_fake_idx(tmp_path / "src")
    bad = tmp_path / "src" / "train-labels-idx1-ubyte"
    bad.write_bytes(bad.read_bytes()[:-1] + b"\x00")
    with pytest.raises(MnistDataError, match=r"train-labels-idx1-ubyte.*torchmech data fetch"):
        fetch_mnist(tmp_path / "root", sources=[DirectorySource(tmp_path / "src")], checksums=table)
    raw = tmp_path / "root" / "MNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == ["train-images-idx3-ubyte"]


def test_an_interrupted_fetch_never_leaves_half_a_file(tmp_path: Path) -> None:
    """A download that breaks off leaves no partial file; the next source completes the set."""
    table = _write_fake_idx(tmp_path / "src")
    with pytest.raises(MnistDataError):
        fetch_mnist(tmp_path / "root", sources=[_Interrupted(tmp_path / "src")], checksums=table)
    raw = tmp_path / "root" / "MNIST" / "raw"
    assert list(raw.iterdir()) == []
    fetch_mnist(tmp_path / "root", sources=[_Interrupted(tmp_path / "src"), DirectorySource(tmp_path / "src")],
                checksums=table)
    assert missing_files(tmp_path / "root", table) == []


def test_loading_without_the_files_says_how_to_fetch(tmp_path: Path) -> None:
    """Missing MNIST files: the error names them and the command, never a bare traceback."""
    with pytest.raises(MnistDataError, match=r"t10k-images-idx3-ubyte.*torchmech data fetch"):
        load_mnist(tmp_path, train=False)


# --- the real data ----------------------------------------------------------------------------------
def test_fast_path_batches_are_the_dataloaders_batches(mnist_root: Path, implementation: Implementation) -> None:
    """ShuffledBatches replays DataLoader(shuffle=True)'s two RNG draws per epoch: over two epochs
    of a 1,000-sample set, and the first 40 batches of the book's ToTensor pipeline, the batches
    are identical — pixels ToTensor-scaled to [0, 1] included."""
    x, y = torch.rand(1000, 3), torch.arange(1000)
    torch.manual_seed(5)
    book = [b for _ in range(2) for b in DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True)]
    torch.manual_seed(5)
    fast = [b for _ in range(2) for b in implementation.ShuffledBatches(x, y, 64)]
    assert len(book) == len(fast) == 32
    for (bx, by), (fx, fy) in zip(book, fast, strict=True):
        assert torch.equal(bx, fx) and torch.equal(by, fy)
    batches = {}
    for fast_path in (False, True):
        torch.manual_seed(1)
        it = iter(mnist_train_batches(mnist_root, fast_path, torch.device("cpu")))
        batches[fast_path] = [next(it) for _ in range(40)]
    for (bx, by), (fx, fy) in zip(batches[False], batches[True], strict=True):
        assert torch.equal(bx, fx) and torch.equal(by, fy)
    assert 0.0 <= batches[True][0][0].min() and batches[True][0][0].max() <= 1.0


def test_fast_path_first_epoch_equals_the_book_pipeline(mnist_root: Path) -> None:
    """One epoch through the book's pipeline and through the fast path: the same accuracy, the same
    loss and bit-identical weights."""
    book = mnist_run(mnist_root, epochs=1, fast=False)
    fast = mnist_run(mnist_root, epochs=1, fast=True)
    printed = claim("s8.mnist.train_acc.epoch0").number  # the book's first epoch, to its 4 printed digits
    assert book.history.train_acc == fast.history.train_acc == [pytest.approx(printed, abs=5e-5)]
    assert book.history.train_loss == fast.history.train_loss
    for p, q in zip(book.model.parameters(), fast.model.parameters(), strict=True):
        assert torch.equal(p, q)


EPSILONS = [0.0, 0.02, 0.05, 0.1, 0.2]


def test_fgsm_lowers_test_accuracy_as_epsilon_grows(mnist_root: Path, spec: Context, device: str,
                                                    tmp_path: Path) -> None:
    """§3's side box on the trained MNIST MLP: one FGSM step (pixels kept in [0, 1], the change
    within ε in L∞) lowers test accuracy monotonically in ε, below half already at ε = 0.05.
    Measured (CPU, the first 2,000 test digits): 0.959, 0.682, 0.154, 0.018, 0.006 for
    ε = 0, 0.02, 0.05, 0.1, 0.2 — a change of 0.05 per pixel, barely visible, breaks the model.
    A saliency map of a few digits is written as a PNG."""
    model = spec.mnist().model.eval()  # §8's 20-epoch run, shared with its claims
    images, labels = load_mnist(mnist_root, train=False)
    x, y = images[:2000].to(device) / 255.0, labels[:2000].to(device)
    loss = torch.nn.CrossEntropyLoss()
    accuracy = []
    for eps in EPSILONS:
        x_adv = fgsm(model, loss, x, y, eps, clamp=(0.0, 1.0))
        assert (x_adv - x).abs().max().item() <= eps + 1e-6
        assert x_adv.min().item() >= 0.0 and x_adv.max().item() <= 1.0
        with torch.no_grad():
            accuracy.append((model(x_adv).argmax(1) == y).float().mean().item())
    assert all(a > b for a, b in itertools.pairwise(accuracy)), accuracy
    assert accuracy[0] > 0.95 and accuracy[EPSILONS.index(0.05)] < 0.5
    png = saliency_grid(model, x[:6].cpu(), y[:6].cpu(), tmp_path / "saliency.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _hidden_signs(model: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """The signs of both hidden layers' pre-activations (which ReLUs are on), one row per input;
    asserts none sits exactly on a kink."""
    z1 = model[1](model[0](x))
    z2 = model[3](model[2](z1))
    z = torch.cat([z1, z2], dim=1)
    assert (z != 0).all()
    return z > 0


def test_saliency_is_the_central_difference_of_the_true_logit(tmp_path: Path, saved_figures: list) -> None:
    """Saliency is |∂ logit_true / ∂ pixel|: for §8's MLP (float64, seeded, untrained) and four
    random digits, ``saliency`` and the map ``saliency_grid`` draws under each digit equal
    |f(x + h e_p) − f(x − h e_p)| / 2h for every one of the 784 pixels p, f the true class's logit.

    Tolerance: the network is piecewise linear and no ReLU changes state between x − h e_p and
    x + h e_p (checked for every p), so the central difference is exact up to float64 rounding:
    logits of O(1) summed over ~800 terms lose ~1e-13, divided by 2h = 2e-4 that is ~1e-9 at
    most (measured: 3e-13). The gradients here lie between 2e-6 and 1.4e-2 (median 2e-3), so
    atol 1e-8 with rtol 1e-6 checks every pixel, far below what a wrong logit (off by 1e-2),
    a missing abs (half the signs are negative) or a misplaced pixel would give."""
    torch.manual_seed(0)
    model = mnist_mlp().double()
    x = torch.rand(4, 1, 28, 28, dtype=torch.float64)
    y = torch.tensor([3, 7, 0, 9])
    h = 1e-4
    steps = h * torch.eye(784, dtype=torch.float64).reshape(784, 1, 28, 28)
    central = []
    with torch.no_grad():
        for xi, yi in zip(x, y, strict=True):
            plus, minus = xi + steps, xi - steps
            on = _hidden_signs(model, xi[None])
            assert (_hidden_signs(model, plus) == on).all() and (_hidden_signs(model, minus) == on).all()
            central.append(((model(plus)[:, yi] - model(minus)[:, yi]) / (2 * h)).reshape(28, 28))
    expected = torch.stack(central).abs()
    assert expected.max() > 1e-3  # the law is checked on gradients well above the tolerance

    ours = saliency(lambda inp: model(inp).gather(1, y[:, None]), x)
    assert ours.shape == x.shape
    torch.testing.assert_close(ours.reshape(4, 28, 28), expected, rtol=1e-6, atol=1e-8)

    png = saliency_grid(model, x, y, tmp_path / "saliency.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (fig,) = saved_figures
    digits, maps = fig.axes[:4], fig.axes[4:]  # subplots(2, N): the digits' row above the maps' row
    for i in range(4):
        torch.testing.assert_close(torch.as_tensor(digits[i].images[0].get_array()), x[i, 0])
        torch.testing.assert_close(torch.as_tensor(maps[i].images[0].get_array()), expected[i],
                                   rtol=1e-6, atol=1e-8)


# --- the whole step captured as one CUDA graph (torchmech/chapter/captured.py) -----------------------------------
def _train_loop(x: torch.Tensor, y: torch.Tensor, batch_size: int, epochs: int) -> tuple[nn.Module, list, list]:
    """The one training loop over ShuffledBatches, seeded as §8 seeds it: what the captured step must equal."""
    from torchmech.chapter.recipes import RECIPES
    from torchmech.chapter.train import ShuffledBatches, multiclass_correct, train

    recipe = RECIPES["mnist"]
    torch.manual_seed(1)
    model = recipe.build().to(x.device)
    optimizer = recipe.make_optimizer(model.parameters())
    torch.manual_seed(1)
    h = train(model, recipe.loss(), optimizer, ShuffledBatches(x, y, batch_size), epochs,
              correct=multiclass_correct, device=x.device)
    return model, h.train_loss, h.train_acc


@pytest.mark.parametrize(("n", "batch_size", "steps_per_graph"),
                         [(1, 64, 1), (64, 64, 1), (301, 64, 1), (150, 7, 1), (301, 64, None), (150, 7, 4)])
def test_captured_step_is_the_training_loop(device: str, n: int, batch_size: int, steps_per_graph: int | None) -> None:
    """Three epochs with every step one replay of a captured graph (on CUDA; the same step run eagerly
    elsewhere) equal train() over ShuffledBatches from the same seeds: the same batches in the DataLoader's
    order, the last shorter batch included, a set smaller than one batch, and per epoch the mean batch loss
    and the training accuracy. On the CPU to the last bit; on CUDA, where Adam is fused and capturable (the
    same rule, rounded in another order), losses within 1e-4 relative, at most one answer in 100 apart (none
    below 100 samples) and weights within 1e-3. A graph that sums the stale gradients
    of the other batch size, or warm-up steps left in the weights, miss these by orders of magnitude. The same
    with several steps in one graph (4, and the whole epoch: ``None``), where each step's gradients are its own."""
    from torchmech.chapter.captured import CapturedEpochs

    dev = torch.device(device)
    torch.manual_seed(11)
    x, y = torch.rand(n, 1, 28, 28, device=dev), torch.randint(0, 10, (n,), device=dev)
    ref_model, ref_loss, ref_acc = _train_loop(x, y, batch_size, 3)
    torch.manual_seed(1)
    model = mnist_mlp().to(dev)
    runner = CapturedEpochs(model, x, y, batch_size, steps_per_graph=steps_per_graph)
    assert runner.capture == (dev.type == "cuda") and len(runner) == -(-n // batch_size)
    assert sum(len(run) for run in runner.runs) == len(runner)
    torch.manual_seed(1)
    losses, accs = zip(*(runner.epoch() for _ in range(3)), strict=True)
    if dev.type == "cpu":
        assert list(losses) == ref_loss and list(accs) == ref_acc
        assert all(torch.equal(p, q) for p, q in zip(model.parameters(), ref_model.parameters(), strict=True))
    else:
        assert list(losses) == pytest.approx(ref_loss, rel=1e-4)
        assert list(accs) == pytest.approx(ref_acc, abs=(n // 100 + 0.5) / n)
        for p, q in zip(model.parameters(), ref_model.parameters(), strict=True):
            torch.testing.assert_close(p, q, rtol=1e-3, atol=1e-3)


def test_captured_step_refuses_what_it_cannot_run() -> None:
    """A graph on the CPU, an empty set, x, y of different lengths, no epochs, no steps per graph: one-line
    errors naming the problem."""
    from torchmech.chapter.captured import CapturedEpochs, captured_mnist

    x, y = torch.rand(10, 1, 28, 28), torch.randint(0, 10, (10,))
    with pytest.raises(ValueError, match="needs a CUDA device"):
        CapturedEpochs(mnist_mlp(), x, y, capture=True)
    with pytest.raises(ValueError, match="empty"):
        CapturedEpochs(mnist_mlp(), x[:0], y[:0])
    with pytest.raises(ValueError, match="different numbers of samples"):
        CapturedEpochs(mnist_mlp(), x, y[:9])
    with pytest.raises(ValueError, match="epochs must be > 0"):
        captured_mnist(x, y, 0)
    with pytest.raises(ValueError, match="steps_per_graph must be > 0"):
        CapturedEpochs(mnist_mlp(), x, y, steps_per_graph=0)
