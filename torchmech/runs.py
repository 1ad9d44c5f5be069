"""The chapter's runs (§5–§8), as the book runs them, through the one training loop.

* §5–§6 the XOR models (:func:`xor_run`): logistic regression, the 2×4 MLP, the ModuleList
  model and MyNoisyModule, each seeded as the book seeds it.
* Project one (§7): fuel efficiency — Auto MPG regression, SGD, 200 epochs.
* Project two (§8): MNIST digits — an MLP, Adam, 20 epochs, either through the book's
  pipeline (``torchvision`` dataset, ``ToTensor``, ``DataLoader``) or the fast path
  (:class:`~torchmech.train.ShuffledBatches` over device-resident tensors), which yields the
  same batches in the same order.

Every run takes the chapter's pieces it uses (``train``, ``make_xor``, ``ModuleListModel``,
``NoisyLinear``, ``mpg_features``, ``mpg_regressor``, ``mnist_mlp``, ``ShuffledBatches``,
``MultiLayerPerceptron``) from ``impl=``: an :class:`~torchmech.claims.Implementation` or any object
with attributes of those names (``None``: the reference, torchmech itself). So a learner's ``train``
or ``NoisyLinear`` meets §5–§9's claims; :meth:`Runs.get` keeps its results apart from the reference's.
"""

from __future__ import annotations

import inspect
import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from torchmech.backends import Backend, resolve
from torchmech.data.mnist import data_root, load_mnist, to_float_images
from torchmech.data.xor import XorData
from torchmech.models import MyNoisyModule, mlp
from torchmech.recipes import RECIPES, XOR_MODELS, Recipe
from torchmech.train import History, ShuffledBatches, binary_correct, multiclass_correct

if TYPE_CHECKING:
    from torchmech.implementation import Implementation

EpochCallback = Callable[[int, History], None]


# --- the implementation under test ------------------------------------------------------------
def _pieces(impl: Implementation | None) -> Implementation:
    """Where a run takes its pieces: ``impl``, or (``None``) the reference (imported here: claims imports runs)."""
    if impl is not None:
        return impl
    from torchmech.implementation import REFERENCE

    return REFERENCE


def _accepts(fn: Callable[..., Any], name: str) -> bool:
    """Whether ``fn`` takes a keyword ``name`` (by name or through ``**kwargs``)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any((p.name == name and p.kind is not p.POSITIONAL_ONLY) or p.kind is p.VAR_KEYWORD for p in params)


def _train(impl: Implementation | None, *args: Any, backend: Backend | str | None, **kwargs: Any) -> History:
    """``impl.train(*args, backend=backend, **kwargs)``. A ``train`` without ``backend=`` (the exercise's
    signature: ``device=`` only) trains on the backend's device, on plain backends only (it casts nothing)."""
    train = _pieces(impl).train
    if _accepts(train, "backend"):
        return train(*args, backend=backend, **kwargs)
    be = resolve(backend, kwargs.pop("device", "cpu"))
    if not be.is_plain:
        raise ValueError(f"this train() takes no backend=: it runs on plain backends only, not {be.name!r}")
    return train(*args, device=be.device, **kwargs)


# --- §5–§6 XOR --------------------------------------------------------------------
def xor_model(model: str, impl: Implementation | None = None) -> tuple[Callable[[], nn.Module], Recipe]:
    """The builder (with ``impl``'s pieces: its ``ModuleListModel``, ``MyNoisyModule`` on its
    ``NoisyLinear``) and the recipe of the XOR model ``model`` (:data:`~torchmech.recipes.XOR_MODELS`)."""
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
    whole validation half as one batch. ``backend`` (:mod:`torchmech.backends`) overrides ``device``.
    ``impl``: where ``train``, ``make_xor`` (unless ``data`` is given) and the ModuleList and noisy models'
    ``ModuleListModel`` and ``NoisyLinear`` come from (``None``: the reference).
    """
    build, recipe = xor_model(model, impl)
    data = data or _pieces(impl).make_xor()
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
    data = _pieces(impl).make_xor()
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
    pieces = _pieces(impl)
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
        return _pieces(impl).ShuffledBatches(x, labels.to(device), batch_size=RECIPES["mnist"].batch_size)
    from torchvision import datasets, transforms

    load_mnist(root, train=True)  # checks the files first, naming any that is missing
    dataset = datasets.MNIST(str(data_root(root)), train=True, transform=transforms.ToTensor(), download=False)
    return DataLoader(dataset, batch_size=RECIPES["mnist"].batch_size, shuffle=True)


class FirstBatches:
    """The first ``n`` batches of each pass over ``batches``: an epoch cut short (its length is the
    loss divisor). The rest of the pass is not drawn, so a trimmed run's later epochs see other batches
    than the full run's."""

    def __init__(self, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], n: int) -> None:
        if n <= 0:
            raise ValueError(f"max_batches must be > 0, got {n}")
        self.batches, self.n = batches, n

    def __len__(self) -> int:
        return min(self.n, len(self.batches))  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return itertools.islice(iter(self.batches), self.n)


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


# --- named runs, computed once per process ---------------------------------------------------------
def run_pieces(name: str, **kwargs: Any) -> tuple[str, ...]:
    """The pieces of the implementation under test that the run ``name`` with these arguments uses."""
    if name == "xor":
        return ("train", "make_xor", *_MODEL_PIECES.get(str(kwargs.get("model", "logistic")), ()))
    if name == "xor_notebook":
        return "train", "make_xor", "ModuleListModel"
    if name == "ensemble":
        return ("make_xor", "NoisyLinear") if kwargs.get("arch") in ("noisy", "noisy0") else ("make_xor",)
    if name == "mpg":
        return "train", "mpg_features", "mpg_regressor"
    if name == "mnist":
        return ("train", "mnist_mlp", "ShuffledBatches") if kwargs.get("fast", True) else ("train", "mnist_mlp")
    if name == "lightning":
        return ("MultiLayerPerceptron",)
    return ()  # ignite: its own model and loop


#: The pieces of each XOR model beyond ``train`` and ``make_xor``.
_MODEL_PIECES = {"modulelist": ("ModuleListModel",), "noisy": ("NoisyLinear",)}


class _Same:
    """A part of a cache key equal only to the very same object (a piece: a function or class, hashable
    or not). It holds the object, so its id cannot be reused while the entry lives."""

    __slots__ = ("obj",)

    def __init__(self, obj: object) -> None:
        self.obj = obj

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Same) and other.obj is self.obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __repr__(self) -> str:
        return getattr(self.obj, "__qualname__", type(self.obj).__name__)


def _own_pieces(name: str, impl: Implementation | None, kwargs: dict[str, Any]) -> tuple[tuple[str, _Same], ...]:
    """The pieces of ``impl`` that the run uses and that are not the reference's: what keys its own cache entry."""
    if impl is None:
        return ()
    reference = _pieces(None)
    own = []
    for piece in run_pieces(name, **kwargs):
        mine = getattr(impl, piece)
        if mine is not getattr(reference, piece):
            own.append((piece, _Same(mine)))
    return tuple(own)


class Runs:
    """The chapter's expensive computations by name, each computed at most once per process.

    A claim asks ``runs.get("mnist", device="cpu", epochs=20)``; the first ask trains, every later
    ask with the same arguments (a pytest session's §8 tests, the chapter report, the CLI) reads the
    same result. The same call with the same seeds gives the same numbers, so training twice would
    check nothing more. Runs that write files (Lightning's logs and checkpoints) write them under
    :attr:`workdir` (a temporary folder unless :meth:`use_workdir` named one first).

    ``runs.get(..., impl=ws)`` runs with the pieces of an implementation under test: where the run uses
    none of them (only the reference's pieces) it reads the reference's entry; otherwise it trains once
    for that implementation's own pieces (the same function or class objects), kept apart.

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

    def get(self, name: str, *, impl: Implementation | None = None, **kwargs: object) -> object:
        """The result of the run ``name`` (a key of :data:`RUN_FUNCTIONS`) with these arguments (``device=``
        stands for that device's plain backend: ``backend=``), with the pieces of ``impl`` (``None`` or
        :data:`~torchmech.claims.REFERENCE`: the reference; a run function without an ``impl`` parameter,
        Ignite's, uses no piece and is not given it)."""
        if name not in RUN_FUNCTIONS:
            raise ValueError(f"unknown run {name!r}: choose from {', '.join(RUN_FUNCTIONS)}")
        if "device" in kwargs and "backend" not in kwargs:  # a device names its plain backend: one cache entry
            kwargs["backend"] = resolve(None, kwargs.pop("device"))  # type: ignore[arg-type]
        key: tuple = (name, tuple(sorted((k, str(v)) for k, v in kwargs.items())))
        own = _own_pieces(name, impl, kwargs)
        if own:  # the reference's key stays as it was: one entry for every implementation that uses its pieces
            key = (*key, own)
        if key not in self._cache:
            run = RUN_FUNCTIONS[name]
            self._cache[key] = run(self, **kwargs, impl=impl) if _accepts(run, "impl") else run(self, **kwargs)
        return self._cache[key]


#: The process's runs, shared by pytest and ``torchmech chapter``.
SHARED = Runs()

#: The initialisation seeds of every §5–§6 ensemble (256).
ENSEMBLE_SEEDS = range(1000, 1256)


def _ensemble(runs: Runs, arch: str, device: str = "cpu", backend: Backend | str | None = None,
              seeds: int | Sequence[int] = ENSEMBLE_SEEDS, epochs: int = RECIPES["mlp"].epochs,
              impl: Implementation | None = None) -> object:
    """The 256-seed ensemble of ``arch``: ``"noisy"`` (MyNoisyModule), ``"noisy0"`` (the same without
    noise, σ = 0) or hidden widths joined by ``x``: ``""`` (logistic regression), ``"4x4"`` (§5's MLP),
    ``"8"``, ``"4x4x4"``…

    ``seeds``, ``epochs``: a shorter run (default :data:`ENSEMBLE_SEEDS`, the book's 200 epochs). ``impl``:
    where ``make_xor`` and MyNoisyModule's ``NoisyLinear`` come from (``None``: the reference). The ensemble
    trains in its own batched SGD (:func:`~torchmech.capacity.train_ensemble`): of a ``NoisyLinear`` it
    takes the initial ``w``, ``b`` and ``noise_stddev``, not the forward; no ``train`` runs."""
    from torchmech.capacity import train_ensemble

    pieces = _pieces(impl)
    if arch in ("noisy", "noisy0"):
        layer = pieces.NoisyLinear
        build = (lambda: MyNoisyModule(layer=layer)) if arch == "noisy" else lambda: MyNoisyModule(0.0, layer=layer)
    else:
        hidden = tuple(int(w) for w in arch.split("x")) if arch else ()
        build = lambda: mlp((2, *hidden, 1))  # noqa: E731
    return train_ensemble(build, pieces.make_xor(), seeds, epochs=epochs, device=device, backend=backend)


def _plain_device(backend: Backend | str | None, device: str, run: str) -> str:
    """The device of a run that trains in its own loop (Lightning, Ignite): only plain backends."""
    if backend is None:
        return device
    be = resolve(backend)
    if not be.is_plain:
        raise ValueError(f"{run} trains in its own loop: it runs on plain backends only, not {be.name!r}")
    return be.device


def _lightning(runs: Runs, epochs: int = 10, device: str = "cpu", quick: bool = False,
               data: str | None = None, backend: Backend | str | None = None,
               impl: Implementation | None = None) -> object:
    """§9's run: ``epochs`` epochs on one device, tested with the best checkpoint; ``quick``: one
    short epoch. ``epochs`` beyond 10 resume the 10-epoch run from its best checkpoint, as the book
    resumes to 15 (its ``resume_from_checkpoint`` was the best checkpoint's path). ``impl``: where
    ``MultiLayerPerceptron`` comes from (``None``: the reference); its logs go to a folder of their own."""
    from torchmech.lit import fit

    device = _plain_device(backend, device, "Lightning")
    accelerator = "gpu" if device.startswith("cuda") else device
    trim = {"limit_train_batches": 100, "limit_val_batches": 20, "limit_test_batches": 20} if quick else {}
    model_class = _pieces(impl).MultiLayerPerceptron
    own = "" if model_class is _pieces(None).MultiLayerPerceptron else "-" + _slug(getattr(impl, "name", "impl"))
    logdir = runs.workdir / f"lightning-{device}{'-quick' if quick else ''}{own}"
    resume = None
    if epochs > 10 and not quick:
        resume = runs.get("lightning", epochs=10, quick=quick, data=data, backend=backend, impl=impl).best_checkpoint
    return fit(1 if quick else epochs, logdir=logdir, data_path=data, accelerator=accelerator, devices=1,
               progress=False, resume=resume, model_class=model_class, **trim)


def _slug(name: str) -> str:
    """``name`` as a folder name's part (letters, digits, ``_``)."""
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")[-40:] or "impl"


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
