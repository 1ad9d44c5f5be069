"""The chapter's runs (§5–§8), as the book runs them, through the one training loop: the book's procedures.

* §5–§6 the XOR models (:func:`xor_run`): logistic regression, the 2×4 MLP, the ModuleList
  model and MyNoisyModule, each seeded as the book seeds it.
* Project one (§7): fuel efficiency — Auto MPG regression, SGD, 200 epochs.
* Project two (§8): MNIST digits — an MLP, Adam, 20 epochs, either through the book's
  pipeline (``torchvision`` dataset, ``ToTensor``, ``DataLoader``) or the fast path
  (:class:`~torchmech.chapter.train.ShuffledBatches` over device-resident tensors), which yields the
  same batches in the same order.

Every run takes the chapter's pieces it uses (``train``, ``make_xor``, ``ModuleListModel``,
``NoisyLinear``, ``mpg_features``, ``mpg_regressor``, ``mnist_mlp``, ``ShuffledBatches``,
``MultiLayerPerceptron``) from ``impl=``: an :class:`~torchmech.chapter.implementation.Implementation` or any object
with attributes of those names (``None``: the reference, torchmech itself). So a learner's ``train``
or ``NoisyLinear`` meets §5–§9's claims; :class:`torchmech.spec.runs.Runs` computes each run once per process
and keeps a learner's results apart from the reference's.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from torchmech.chapter.capacity import train_ensemble
from torchmech.chapter.data.mnist import data_root, load_mnist, to_float_images
from torchmech.chapter.data.xor import XorData
from torchmech.chapter.implementation import Implementation, pieces_of
from torchmech.chapter.models import MyNoisyModule, mlp
from torchmech.chapter.recipes import RECIPES, XOR_MODELS, Recipe
from torchmech.chapter.train import FirstBatches, History, ShuffledBatches, binary_correct, multiclass_correct
from torchmech.runtime.backends import Backend, resolve

EpochCallback = Callable[[int, History], None]


# --- the implementation under test ------------------------------------------------------------
def accepts(fn: Callable[..., Any], name: str) -> bool:
    """Whether ``fn`` takes a keyword ``name`` (by name or through ``**kwargs``)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any((p.name == name and p.kind is not p.POSITIONAL_ONLY) or p.kind is p.VAR_KEYWORD for p in params)


def _train(impl: Implementation | None, *args: Any, backend: Backend | str | None, **kwargs: Any) -> History:
    """``impl.train(*args, backend=backend, **kwargs)``. A ``train`` without ``backend=`` (the exercise's
    signature: ``device=`` only) trains on the backend's device, on plain backends only (it casts nothing)."""
    train = pieces_of(impl).train
    if accepts(train, "backend"):
        return train(*args, backend=backend, **kwargs)
    be = resolve(backend, kwargs.pop("device", "cpu"))
    if not be.is_plain:
        raise ValueError(f"this train() takes no backend=: it runs on plain backends only, not {be.name!r}")
    return train(*args, device=be.device, **kwargs)


# --- §5–§6 XOR --------------------------------------------------------------------
def xor_model(model: str, impl: Implementation | None = None) -> tuple[Callable[[], nn.Module], Recipe]:
    """The builder (with ``impl``'s pieces: its ``ModuleListModel``, ``MyNoisyModule`` on its
    ``NoisyLinear``) and the recipe of the XOR model ``model`` (:data:`~torchmech.chapter.recipes.XOR_MODELS`)."""
    if model not in XOR_MODELS:
        raise ValueError(f"unknown XOR model {model!r}: choose from {', '.join(XOR_MODELS)}")
    recipe = RECIPES[model]
    return lambda: recipe.build(impl), recipe


def xor_run(
    model: str = "logistic",
    *,
    epochs: int = 200,
    seed: int = 1,
    device: str | torch.device | None = "cpu",
    data: XorData | None = None,
    on_epoch_end: Callable[[int, History], None] | None = None,
    backend: Backend | str | None = None,
    impl: Implementation | None = None,
) -> tuple[nn.Module, History]:
    """One of the chapter's XOR trainings, as the printed code runs it.

    ``torch.manual_seed(seed)`` before building the model and again before the loop (the
    book's logistic and noisy runs do exactly this; its MLP and ModuleList runs were not
    reseeded, so their printed numbers depend on the cells that ran before them); batch 2,
    ``DataLoader(shuffle=True)``, BCE, SGD at the book's learning rate; validation on the
    whole validation half as one batch. ``backend`` (:mod:`torchmech.runtime.backends`) overrides ``device``.
    ``impl``: where ``train``, ``make_xor`` (unless ``data`` is given) and the ModuleList and noisy models'
    ``ModuleListModel`` and ``NoisyLinear`` come from (``None``: the reference).
    """
    build, recipe = xor_model(model, impl)
    data = data or pieces_of(impl).make_xor()
    loader = DataLoader(TensorDataset(data.x_train, data.y_train), batch_size=recipe.batch_size, shuffle=True)
    torch.manual_seed(seed)
    net = build()
    optimizer = recipe.make_optimizer(net.parameters())
    torch.manual_seed(seed)
    history = _train(impl, net, recipe.loss(), optimizer, loader, epochs, [(data.x_valid, data.y_valid)],
                     correct=binary_correct, device=device, on_epoch_end=on_epoch_end, backend=backend)
    return net, history


def xor_notebook_run(epochs: int = 200, device: str | torch.device | None = "cpu",
                     backend: Backend | str | None = None, *,
                     impl: Implementation | None = None) -> dict[str, tuple[nn.Module, History]]:
    """The book notebook's XOR cells in their order, where two runs are not reseeded.

    ``torch.manual_seed(1)``; one ``DataLoader(shuffle=True)`` for all runs; the logistic model,
    reseeded before its loop; then the 2×4 MLP and the ModuleList model, each built and trained
    right after the previous run, without reseeding (their initial weights and shuffles continue
    the generator). So their printed accuracies are deterministic on the CPU, but only in this
    order (figures 13.3–13.5 are these runs). The logistic run is exactly ``xor_run("logistic")``.
    Returns ``name → (model, history)`` for ``"logistic"``, ``"mlp"`` and ``"modulelist"``.
    ``impl``: where ``train``, ``make_xor`` and ``ModuleListModel`` come from (``None``: the reference).
    """
    data = pieces_of(impl).make_xor()
    valid = [(data.x_valid, data.y_valid)]
    torch.manual_seed(1)
    loader = DataLoader(TensorDataset(data.x_train, data.y_train), batch_size=RECIPES["logistic"].batch_size,
                        shuffle=True)
    runs: dict[str, tuple[nn.Module, History]] = {}
    for i, name in enumerate(("logistic", "mlp", "modulelist")):
        build, recipe = xor_model(name, impl)
        net = build()
        if i == 0:
            torch.manual_seed(1)  # the notebook reseeds before the logistic run's loop only
        runs[name] = net, _train(impl, net, recipe.loss(), recipe.make_optimizer(net.parameters()), loader, epochs,
                                 valid, correct=binary_correct, device=device, backend=backend)
    return runs


def _evaluate(model: nn.Module, be: Backend, x: torch.Tensor) -> torch.Tensor:
    """The trained model's output on ``x`` as the backend computes it, in the backend's dtype."""
    with be.autocast_context():
        return model(be.cast(x)).to(be.dtype)


# --- §7 Auto MPG ----------------------------------------------------------------------------
@dataclass
class MpgResult:
    """``history.train_loss`` per epoch (the book prints every 20th), the test metrics, the number of
    batches per epoch (the divisor of the epoch's mean loss), and the test cars' predicted and true MPG
    (what the metrics and §7's figure are computed from)."""

    model: nn.Module
    history: History
    test_mse: float
    test_mae: float
    batches: int
    test_pred: list[float] = field(default_factory=list)
    test_true: list[float] = field(default_factory=list)


def mpg_run(epochs: int = 200, seed: int = 1, device: str | torch.device | None = "cpu",
            on_epoch_end: EpochCallback | None = None, backend: Backend | str | None = None, *,
            impl: Implementation | None = None) -> MpgResult:
    """Train §7's regressor as the book does: seed, loader, model; reseed; SGD lr 0.001, batch 8.

    ``impl``: where ``mpg_features``, ``mpg_regressor`` and ``train`` come from (``None``: the reference).
    """
    be = resolve(backend, device)
    pieces = pieces_of(impl)
    d = pieces.mpg_features()
    recipe = RECIPES["mpg"]
    torch.manual_seed(seed)
    loader = DataLoader(TensorDataset(d.x_train, d.y_train), batch_size=recipe.batch_size, shuffle=True)
    model = recipe.build(impl)
    optimizer = recipe.make_optimizer(model.parameters())
    torch.manual_seed(seed)
    history = _train(impl, model, recipe.loss(), optimizer, loader, epochs, on_epoch_end=on_epoch_end, backend=be)
    with torch.no_grad(), be.active():
        pred = _evaluate(model, be, d.x_test)[:, 0]
        y = be.cast(d.y_test)
        mse, mae = nn.MSELoss()(pred, y).item(), nn.L1Loss()(pred, y).item()
    return MpgResult(model, history, mse, mae, len(loader), pred.tolist(), y.tolist())


# --- §8 MNIST --------------------------------------------------------------------------------
@dataclass
class MnistResult:
    """``history.train_acc`` per epoch (the book's printed line), and the test accuracy."""

    model: nn.Module
    history: History
    test_acc: float


def mnist_train_batches(root: str | Path | None, fast: bool, device: torch.device, *,
                        impl: Implementation | None = None) -> ShuffledBatches | DataLoader:
    """The training batches of §8: the book's ``DataLoader`` over ``MNIST(transform=ToTensor())``,
    or the same batches sliced from one device-resident tensor by ``impl``'s ``ShuffledBatches``
    (``None``: the reference's). Call after seeding."""
    if fast:
        images, labels = load_mnist(root, train=True)
        x = to_float_images(images).to(device)  # exactly ToTensor's uint8 → [0, 1]
        return pieces_of(impl).ShuffledBatches(x, labels.to(device), batch_size=RECIPES["mnist"].batch_size)
    from torchvision import datasets, transforms

    load_mnist(root, train=True)  # checks the files first, naming any that is missing
    dataset = datasets.MNIST(str(data_root(root)), train=True, transform=transforms.ToTensor(), download=False)
    return DataLoader(dataset, batch_size=RECIPES["mnist"].batch_size, shuffle=True)


def mnist_run(root: str | Path | None = None, epochs: int = 20, seed: int = 1,
              device: str | torch.device | None = "cpu", fast: bool = True,
              on_epoch_end: EpochCallback | None = None, backend: Backend | str | None = None, *,
              max_batches: int | None = None, impl: Implementation | None = None) -> MnistResult:
    """Train §8's MLP as the book does: seed, loader, model; reseed; Adam lr 0.001, batch 64,
    CrossEntropyLoss; then the test accuracy of ``model(test.data / 255.)``.

    ``max_batches``: stop each epoch after that many batches (a short run; ``None``: all 938).
    ``impl``: where ``mnist_mlp``, ``ShuffledBatches`` (``fast``) and ``train`` come from (``None``: the
    reference).
    """
    be = resolve(backend, device)
    dev = torch.device(be.device)
    torch.manual_seed(seed)
    batches = mnist_train_batches(root, fast, dev, impl=impl)
    if max_batches is not None:
        batches = FirstBatches(batches, max_batches)
    recipe = RECIPES["mnist"]
    model = recipe.build(impl)
    optimizer = recipe.make_optimizer(model.parameters())
    torch.manual_seed(seed)
    history = _train(impl, model, recipe.loss(), optimizer, batches, epochs, correct=multiclass_correct,
                     on_epoch_end=on_epoch_end, backend=be)
    images, labels = load_mnist(root, train=False)
    with torch.no_grad(), be.active():
        pred = _evaluate(model, be, to_float_images(images))  # = the book's test.data / 255. once flattened
    test_acc = (torch.argmax(pred, dim=1) == labels.to(dev)).float().mean().item()
    return MnistResult(model, history, test_acc)




# --- §5–§6 the ensembles ------------------------------------------------------------------------
#: The initialisation seeds of every §5–§6 ensemble (256).
ENSEMBLE_SEEDS = range(1000, 1256)


def ensemble_run(arch: str, device: str = "cpu", backend: Backend | str | None = None,
                 seeds: int | Sequence[int] = ENSEMBLE_SEEDS, epochs: int = RECIPES["mlp"].epochs,
                 impl: Implementation | None = None) -> object:
    """The 256-seed ensemble of ``arch``: ``"noisy"`` (MyNoisyModule), ``"noisy0"`` (the same without
    noise, σ = 0) or hidden widths joined by ``x``: ``""`` (logistic regression), ``"4x4"`` (§5's MLP),
    ``"8"``, ``"4x4x4"``…

    ``seeds``, ``epochs``: a shorter run (default :data:`ENSEMBLE_SEEDS`, the book's 200 epochs). ``impl``:
    where ``make_xor`` and MyNoisyModule's ``NoisyLinear`` come from (``None``: the reference). The ensemble
    trains in its own batched SGD (:func:`~torchmech.chapter.capacity.train_ensemble`): of a ``NoisyLinear`` it
    takes the initial ``w``, ``b`` and ``noise_stddev``, not the forward; no ``train`` runs."""
    pieces = pieces_of(impl)
    if arch in ("noisy", "noisy0"):
        layer = pieces.NoisyLinear
        build = (lambda: MyNoisyModule(layer=layer)) if arch == "noisy" else lambda: MyNoisyModule(0.0, layer=layer)
    else:
        hidden = tuple(int(w) for w in arch.split("x")) if arch else ()
        build = lambda: mlp((2, *hidden, 1))  # noqa: E731
    return train_ensemble(build, pieces.make_xor(), seeds, epochs=epochs, device=device, backend=backend)
