"""The chapter's runs (§5–§8), as the book runs them, through the one training loop.

* §5–§6 the XOR models (:func:`xor_run`): logistic regression, the 2×4 MLP, the ModuleList
  model and MyNoisyModule, each seeded as the book seeds it.
* Project one (§7): fuel efficiency — Auto MPG regression, SGD, 200 epochs.
* Project two (§8): MNIST digits — an MLP, Adam, 20 epochs, either through the book's
  pipeline (``torchvision`` dataset, ``ToTensor``, ``DataLoader``) or the fast path
  (:class:`~torchmech.train.ShuffledBatches` over device-resident tensors), which yields the
  same batches in the same order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from torchmech.backends import Backend, resolve
from torchmech.data.auto_mpg import mpg_features
from torchmech.data.mnist import data_root, load_mnist, to_float_images
from torchmech.data.xor import XorData, make_xor
from torchmech.models import ModuleListModel, MyNoisyModule, logistic_regression, mlp, mnist_mlp, mpg_regressor
from torchmech.train import History, ShuffledBatches, binary_correct, multiclass_correct, train

EpochCallback = Callable[[int, History], None]


# --- §5–§6 XOR --------------------------------------------------------------------
#: The chapter's XOR models: name → (builder, SGD learning rate as in the book).
XOR_MODELS: dict[str, tuple[Callable[[], nn.Module], float]] = {
    "logistic": (logistic_regression, 0.001),
    "mlp": (lambda: mlp((2, 4, 4, 1)), 0.015),
    "modulelist": (ModuleListModel, 0.015),
    "noisy": (MyNoisyModule, 0.015),
}


def xor_run(
    model: str = "logistic",
    *,
    epochs: int = 200,
    seed: int = 1,
    device: str | torch.device | None = "cpu",
    data: XorData | None = None,
    on_epoch_end: Callable[[int, History], None] | None = None,
    backend: Backend | str | None = None,
) -> tuple[nn.Module, History]:
    """One of the chapter's XOR trainings, as the printed code runs it.

    ``torch.manual_seed(seed)`` before building the model and again before the loop (the
    book's logistic and noisy runs do exactly this; its MLP and ModuleList runs were not
    reseeded, so their printed numbers depend on the cells that ran before them); batch 2,
    ``DataLoader(shuffle=True)``, BCE, SGD at the book's learning rate; validation on the
    whole validation half as one batch. ``backend`` (:mod:`torchmech.backends`) overrides ``device``.
    """
    if model not in XOR_MODELS:
        raise ValueError(f"unknown XOR model {model!r}: choose from {', '.join(XOR_MODELS)}")
    build, lr = XOR_MODELS[model]
    data = data or make_xor()
    loader = DataLoader(TensorDataset(data.x_train, data.y_train), batch_size=2, shuffle=True)
    torch.manual_seed(seed)
    net = build()
    optimizer = torch.optim.SGD(net.parameters(), lr=lr)
    torch.manual_seed(seed)
    history = train(net, nn.BCELoss(), optimizer, loader, epochs, [(data.x_valid, data.y_valid)],
                    correct=binary_correct, device=device, on_epoch_end=on_epoch_end, backend=backend)
    return net, history


def xor_notebook_run(epochs: int = 200, device: str | torch.device | None = "cpu",
                     backend: Backend | str | None = None) -> dict[str, tuple[nn.Module, History]]:
    """The book notebook's XOR cells in their order, where two runs are not reseeded.

    ``torch.manual_seed(1)``; one ``DataLoader(shuffle=True)`` for all runs; the logistic model,
    reseeded before its loop; then the 2×4 MLP and the ModuleList model, each built and trained
    right after the previous run, without reseeding (their initial weights and shuffles continue
    the generator). So their printed accuracies are deterministic on the CPU, but only in this
    order (figures 13.3–13.5 are these runs). The logistic run is exactly ``xor_run("logistic")``.
    Returns ``name → (model, history)`` for ``"logistic"``, ``"mlp"`` and ``"modulelist"``.
    """
    data = make_xor()
    valid = [(data.x_valid, data.y_valid)]
    torch.manual_seed(1)
    loader = DataLoader(TensorDataset(data.x_train, data.y_train), batch_size=2, shuffle=True)
    runs: dict[str, tuple[nn.Module, History]] = {}
    for i, name in enumerate(("logistic", "mlp", "modulelist")):
        build, lr = XOR_MODELS[name]
        net = build()
        if i == 0:
            torch.manual_seed(1)  # the notebook reseeds before the logistic run's loop only
        runs[name] = net, train(net, nn.BCELoss(), torch.optim.SGD(net.parameters(), lr=lr), loader, epochs,
                                valid, correct=binary_correct, device=device, backend=backend)
    return runs


def _evaluate(model: nn.Module, be: Backend, x: torch.Tensor) -> torch.Tensor:
    """The trained model's output on ``x`` as the backend computes it, in the backend's dtype."""
    with be.autocast_context():
        return model(be.cast(x)).to(be.dtype)


# --- §7 Auto MPG ----------------------------------------------------------------------------
@dataclass
class MpgResult:
    """``history.train_loss`` per epoch (the book prints every 20th), the test metrics, and the
    number of batches per epoch (the divisor of the epoch's mean loss)."""

    model: nn.Module
    history: History
    test_mse: float
    test_mae: float
    batches: int


def mpg_run(epochs: int = 200, seed: int = 1, device: str | torch.device | None = "cpu",
            on_epoch_end: EpochCallback | None = None, backend: Backend | str | None = None) -> MpgResult:
    """Train §7's regressor as the book does: seed, loader, model; reseed; SGD lr 0.001, batch 8."""
    be = resolve(backend, device)
    d = mpg_features()
    torch.manual_seed(seed)
    loader = DataLoader(TensorDataset(d.x_train, d.y_train), batch_size=8, shuffle=True)
    model = mpg_regressor()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.001)
    torch.manual_seed(seed)
    history = train(model, nn.MSELoss(), optimizer, loader, epochs, on_epoch_end=on_epoch_end, backend=be)
    with torch.no_grad(), be.active():
        pred = _evaluate(model, be, d.x_test)[:, 0]
        y = be.cast(d.y_test)
        mse, mae = nn.MSELoss()(pred, y).item(), nn.L1Loss()(pred, y).item()
    return MpgResult(model, history, mse, mae, len(loader))


# --- §8 MNIST --------------------------------------------------------------------------------
@dataclass
class MnistResult:
    """``history.train_acc`` per epoch (the book's printed line), and the test accuracy."""

    model: nn.Module
    history: History
    test_acc: float


def mnist_train_batches(root: str | Path | None, fast: bool, device: torch.device) -> ShuffledBatches | DataLoader:
    """The training batches of §8: the book's ``DataLoader`` over ``MNIST(transform=ToTensor())``,
    or the same batches sliced from one device-resident tensor. Call after seeding."""
    if fast:
        images, labels = load_mnist(root, train=True)
        x = to_float_images(images).to(device)  # exactly ToTensor's uint8 → [0, 1]
        return ShuffledBatches(x, labels.to(device), batch_size=64)
    from torchvision import datasets, transforms

    load_mnist(root, train=True)  # checks the files first, naming any that is missing
    dataset = datasets.MNIST(str(data_root(root)), train=True, transform=transforms.ToTensor(), download=False)
    return DataLoader(dataset, batch_size=64, shuffle=True)


def mnist_run(root: str | Path | None = None, epochs: int = 20, seed: int = 1,
              device: str | torch.device | None = "cpu", fast: bool = True,
              on_epoch_end: EpochCallback | None = None, backend: Backend | str | None = None) -> MnistResult:
    """Train §8's MLP as the book does: seed, loader, model; reseed; Adam lr 0.001, batch 64,
    CrossEntropyLoss; then the test accuracy of ``model(test.data / 255.)``."""
    be = resolve(backend, device)
    dev = torch.device(be.device)
    torch.manual_seed(seed)
    batches = mnist_train_batches(root, fast, dev)
    model = mnist_mlp()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    torch.manual_seed(seed)
    history = train(model, nn.CrossEntropyLoss(), optimizer, batches, epochs, correct=multiclass_correct,
                    on_epoch_end=on_epoch_end, backend=be)
    images, labels = load_mnist(root, train=False)
    with torch.no_grad(), be.active():
        pred = _evaluate(model, be, to_float_images(images))  # = the book's test.data / 255. once flattened
    test_acc = (torch.argmax(pred, dim=1) == labels.to(dev)).float().mean().item()
    return MnistResult(model, history, test_acc)


# --- named runs, computed once per process ---------------------------------------------------------
class Runs:
    """The chapter's expensive computations by name, each computed at most once per process.

    A claim asks ``runs.get("mnist", device="cpu", epochs=20)``; the first ask trains, every later
    ask with the same arguments (a pytest session's §8 tests, the chapter report, the CLI) reads the
    same result. The same call with the same seeds gives the same numbers, so training twice would
    check nothing more. Runs that write files (Lightning's logs and checkpoints) write them under
    :attr:`workdir` (a temporary folder unless :meth:`use_workdir` named one first).

    Example::

        >>> runs = Runs()
        >>> first = runs.get("xor", model="logistic", epochs=2)
        >>> runs.get("xor", model="logistic", epochs=2) is first
        True
    """

    def __init__(self) -> None:
        self._cache: dict[tuple, object] = {}
        self._workdir: Path | None = None

    @property
    def workdir(self) -> Path:
        if self._workdir is None:
            import atexit
            import shutil
            import tempfile

            self._workdir = Path(tempfile.mkdtemp(prefix="torchmech-runs-"))
            atexit.register(shutil.rmtree, self._workdir, ignore_errors=True)
        return self._workdir

    def use_workdir(self, path: Path) -> None:
        """Write the runs' files (Lightning's logs) under ``path``, if no run has written any yet."""
        if self._workdir is None:
            self._workdir = Path(path)

    def get(self, name: str, **kwargs: object) -> object:
        """The result of the run ``name`` (a key of :data:`RUN_FUNCTIONS`) with these arguments (``device=``
        stands for that device's plain backend: ``backend=``)."""
        if name not in RUN_FUNCTIONS:
            raise ValueError(f"unknown run {name!r}: choose from {', '.join(RUN_FUNCTIONS)}")
        if "device" in kwargs and "backend" not in kwargs:  # a device names its plain backend: one cache entry
            kwargs["backend"] = resolve(None, kwargs.pop("device"))  # type: ignore[arg-type]
        key = (name, tuple(sorted((k, str(v)) for k, v in kwargs.items())))
        if key not in self._cache:
            self._cache[key] = RUN_FUNCTIONS[name](self, **kwargs)
        return self._cache[key]


#: The process's runs, shared by pytest and ``torchmech chapter``.
SHARED = Runs()

#: The initialisation seeds of every §5–§6 ensemble (256).
ENSEMBLE_SEEDS = range(1000, 1256)


def _ensemble(runs: Runs, arch: str, device: str = "cpu", backend: Backend | str | None = None) -> object:
    """The 256-seed ensemble of ``arch``: ``"noisy"`` (MyNoisyModule), ``"noisy0"`` (the same without
    noise, σ = 0) or hidden widths joined by ``x``: ``""`` (logistic regression), ``"4x4"`` (§5's MLP),
    ``"8"``, ``"4x4x4"``…"""
    from torchmech.capacity import train_ensemble

    if arch in ("noisy", "noisy0"):
        build = MyNoisyModule if arch == "noisy" else lambda: MyNoisyModule(0.0)
    else:
        hidden = tuple(int(w) for w in arch.split("x")) if arch else ()
        build = lambda: mlp((2, *hidden, 1))  # noqa: E731
    return train_ensemble(build, make_xor(), ENSEMBLE_SEEDS, device=device, backend=backend)


def _plain_device(backend: Backend | str | None, device: str, run: str) -> str:
    """The device of a run that trains in its own loop (Lightning, Ignite): only plain backends."""
    if backend is None:
        return device
    be = resolve(backend)
    if be.compile or be.autocast or be.dtype != torch.float32 or be.deterministic or be.tf32:
        raise ValueError(f"{run} trains in its own loop: it runs on plain backends only, not {be.name!r}")
    return be.device


def _lightning(runs: Runs, epochs: int = 10, device: str = "cpu", quick: bool = False,
               data: str | None = None, backend: Backend | str | None = None) -> object:
    """§9's run: ``epochs`` epochs on one device, tested with the best checkpoint; ``quick``: one
    short epoch. ``epochs`` beyond 10 resume the 10-epoch run from its best checkpoint, as the book
    resumes to 15 (its ``resume_from_checkpoint`` was the best checkpoint's path)."""
    from torchmech.lit import fit

    device = _plain_device(backend, device, "Lightning")
    accelerator = "gpu" if device.startswith("cuda") else device
    trim = {"limit_train_batches": 100, "limit_val_batches": 20, "limit_test_batches": 20} if quick else {}
    logdir = runs.workdir / f"lightning-{device}{'-quick' if quick else ''}"
    resume = None
    if epochs > 10 and not quick:
        resume = runs.get("lightning", epochs=10, quick=quick, data=data, backend=backend).best_checkpoint
    return fit(1 if quick else epochs, logdir=logdir, data_path=data, accelerator=accelerator, devices=1,
               progress=False, resume=resume, **trim)


def _ignite(runs: Runs, epochs: int = 5, device: str = "cpu", quick: bool = False, data: str | None = None,
            backend: Backend | str | None = None) -> object:
    """§9's pointer: the same classifier on PyTorch-Ignite, 5 epochs as the bonus notebook (``quick``: 1
    epoch of 100 batches)."""
    from torchmech.ignite_bonus import ignite_fit

    device = _plain_device(backend, device, "Ignite")
    logdir = runs.workdir / f"ignite-{device}{'-quick' if quick else ''}"
    return ignite_fit(1 if quick else epochs, logdir=logdir, data_path=data, device=device,
                      max_batches=100 if quick else None)


#: name → function(runs, **kwargs): every run a claim may ask for.
RUN_FUNCTIONS: dict[str, Callable[..., object]] = {
    "xor": lambda runs, **kw: xor_run(**kw),
    "xor_notebook": lambda runs, **kw: xor_notebook_run(**kw),
    "ensemble": _ensemble,
    "mpg": lambda runs, **kw: mpg_run(**kw),
    "mnist": lambda runs, data=None, **kw: mnist_run(data, **kw),
    "lightning": _lightning,
    "ignite": _ignite,
}
