"""Time to accuracy: the seconds of training a backend needs to reach the chapter's quality.

MLPerf's one number that joins speed and correctness (time to a target quality), for the chapter's two
projects. Per backend, the model is trained as the book trains it (the same seeds, batches, optimizer and
epochs: the runs of :mod:`torchmech.spec.runs`), the quality measured after every epoch off the clock, and
the training seconds summed until the first epoch that reaches the target (:data:`TARGETS`):

* §8 MNIST: the test accuracy (``model(test.data / 255.)``) reaches the lower edge of the chapter's
  test-accuracy band (the registry's ``s8.mnist.test_acc``: the book's value minus the band's width);
* §7 MPG: the epoch's training loss, printed to the book's four decimals, is at or below the book's
  loss at its last printed epoch (the registry's ``s7.mpg.loss.epoch180``).

Seconds are steady state: every epoch is timed with the device drained, and the first epoch (which under
``compile`` compiles the model) counts as the median of the others; its excess is reported apart as
``first_extra_s`` (compile time under ``compile``, first-call overheads elsewhere).

Example::

    >>> TARGETS["mpg"].reached(6.21554), TARGETS["mpg"].reached(6.2157)
    (True, False)
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from torchmech.chapter.data.mnist import load_mnist, to_float_images
from torchmech.chapter.recipes import RECIPES
from torchmech.chapter.runs import mnist_train_batches
from torchmech.chapter.train import multiclass_correct, train
from torchmech.runtime.backends import REFERENCE_BACKEND, Backend, usable
from torchmech.runtime.console import text_table
from torchmech.runtime.devices import noisy, spread, spread_label, synchronize
from torchmech.spec.claims import MPG_LOSSES, claim


@dataclass(frozen=True)
class Target:
    """The quality a model must reach: ``metric`` ≥ ``value`` (``higher``) or ≤ it, from the claim ``source``."""

    model: str
    metric: str
    value: float
    higher: bool
    source: str
    digits: int | None = None  # compare the metric as printed to this many decimals (the book's)

    def reached(self, x: float) -> bool:
        shown = round(x, self.digits) if self.digits is not None else x
        return shown >= self.value if self.higher else shown <= self.value

    def describe(self) -> str:
        return f"{self.metric} {'≥' if self.higher else '≤'} {self.value:g} ({self.source})"


def _mnist_target() -> Target:
    test_acc = claim("s8.mnist.test_acc")
    return Target("mnist", "test accuracy", round(test_acc.number - test_acc.rule.cpu.width, 6), True, test_acc.id)


def _mpg_target() -> Target:
    last = claim(f"s7.mpg.loss.epoch{max(MPG_LOSSES)}")
    return Target("mpg", "training loss", last.number, False, last.id, digits=len(last.book.split(".")[1]))


#: The targets, read off the registry: the book's numbers live there.
TARGETS: dict[str, Target] = {"mnist": _mnist_target(), "mpg": _mpg_target()}


@dataclass(frozen=True)
class Trace:
    """One training on one backend: each epoch's seconds (device drained) and quality, in order."""

    backend: str
    model: str
    epoch_s: tuple[float, ...]
    quality: tuple[float, ...]


@dataclass(frozen=True)
class ToAccuracy:
    """A backend × model's time to its target.

    Attributes:
        epochs: epochs until the target was first reached (``None``: not within the book's epochs).
        seconds: steady-state training seconds through that epoch (``None`` when not reached).
        first_extra_s: the first epoch's seconds beyond the steady state (compiling, under compile).
        epoch_s: the steady-state (median) seconds of one epoch; ``epoch_iqr_s`` their IQR (``noisy`` above
            :data:`~torchmech.runtime.devices.NOISY_SPREAD` of the median).
        final: the quality after the last epoch.
        ratio: ``seconds`` over the ``cpu`` backend's (``None`` when either did not reach it).
        error: the one line the training raised (a backend that blows up or does not compile), else ``None``.
    """

    backend: str
    model: str
    target: str
    epochs: int | None
    seconds: float | None
    first_extra_s: float
    epoch_s: float
    final: float
    trained_epochs: int
    ratio: float | None = None
    error: str | None = None
    epoch_iqr_s: float = 0.0

    @property
    def noisy(self) -> bool:
        """The steady epochs' spread is over :data:`~torchmech.runtime.devices.NOISY_SPREAD` of their median."""
        return noisy(self.epoch_s, self.epoch_iqr_s)


def to_accuracy(trace: Trace, target: Target) -> ToAccuracy:
    """The time to ``target`` read off ``trace``: epochs until the first that reaches it, and the
    steady-state seconds through it (the first epoch counted as the median of the others)."""
    times = list(trace.epoch_s)
    steady, iqr = spread(times[1:] if len(times) > 1 else times)
    first_extra = max(times[0] - steady, 0.0)
    counted = [min(times[0], steady), *times[1:]]
    reached = next((i for i, q in enumerate(trace.quality) if target.reached(q)), None)
    seconds = None if reached is None else sum(counted[: reached + 1])
    return ToAccuracy(trace.backend, trace.model, target.describe(), None if reached is None else reached + 1,
                      seconds, first_extra, steady, trace.quality[-1], len(times), epoch_iqr_s=iqr)


def _setup(model: str, be: Backend, data: Path | None) -> tuple[Any, Callable[[torch.nn.Module], float] | None]:
    """The book's batches for ``model`` (call after seeding) and, for MNIST, the test accuracy of a model."""
    if model == "mpg":
        from torch.utils.data import DataLoader, TensorDataset

        from torchmech.chapter.data.auto_mpg import mpg_features

        d = mpg_features()
        return DataLoader(TensorDataset(d.x_train, d.y_train), batch_size=RECIPES["mpg"].batch_size,
                          shuffle=True), None

    batches = mnist_train_batches(data, True, torch.device(be.device))
    images, labels = load_mnist(data, train=False)
    x, y = be.cast(to_float_images(images)), labels.to(be.device)

    def test_accuracy(net: torch.nn.Module) -> float:
        net.eval()
        with torch.no_grad(), be.autocast_context():
            return (net(x).argmax(dim=1) == y).float().mean().item()

    return batches, test_accuracy


def trace(backend: str | Backend, model: str, data: Path | None = None, epochs: int | None = None) -> Trace:
    """Train ``model`` (``mnist`` or ``mpg``) as the book does on ``backend`` for ``epochs`` (the book's), timing
    each epoch and measuring its quality after it, off the clock."""

    be = usable(backend) if isinstance(backend, str) else backend
    recipe = RECIPES[model]
    if be.compile:
        torch._dynamo.reset()  # the first epoch compiles, whatever ran before
    torch.manual_seed(recipe.seed)
    batches, test_accuracy = _setup(model, be, data)
    net = recipe.build()
    optimizer = recipe.make_optimizer(net.parameters())
    torch.manual_seed(recipe.seed)
    times: list[float] = []
    quality: list[float] = []
    clock = [0.0]

    def epoch_end(epoch: int, history: Any) -> None:
        synchronize(be.device)
        times.append(time.perf_counter() - clock[0])
        quality.append(history.train_loss[-1] if test_accuracy is None else test_accuracy(net))
        synchronize(be.device)
        clock[0] = time.perf_counter()

    synchronize(be.device)
    clock[0] = time.perf_counter()
    train(net, recipe.loss(), optimizer, batches, epochs or recipe.epochs,
          correct=multiclass_correct if model == "mnist" else None, backend=be, on_epoch_end=epoch_end)
    return Trace(be.name, model, tuple(times), tuple(quality))


#: The models, in table order.
MODELS: tuple[str, ...] = ("mnist", "mpg")


def time_to_accuracy(backends: Sequence[str], models: Sequence[str] = MODELS, data: Path | None = None,
                     progress: Callable[[str], None] | None = None) -> list[ToAccuracy]:
    """Per backend (``cpu`` always, first: the ratios are to it) and model, the time to its target.

    Raises ``ValueError`` (one line) for an unknown or unavailable backend or an unknown model, before training."""
    names = list(dict.fromkeys([REFERENCE_BACKEND, *(usable(b).name for b in backends)]))
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise ValueError(f"unknown model(s) {', '.join(unknown)}: choose from {', '.join(MODELS)}")
    rows: list[ToAccuracy] = []
    for name in names:
        for model in (m for m in MODELS if m in models):
            try:
                rows.append(to_accuracy(trace(name, model, data), TARGETS[model]))
            except Exception as err:  # named in its row; the other backends are still timed
                if name == REFERENCE_BACKEND:
                    raise
                lines = str(err).strip().splitlines()
                rows.append(ToAccuracy(name, model, TARGETS[model].describe(), None, None, 0.0, math.nan, math.nan, 0,
                                       error=f"{type(err).__name__}: {lines[0] if lines else ''}"))
        if progress is not None:
            progress(name)
    cpu = {r.model: r.seconds for r in rows if r.backend == REFERENCE_BACKEND}
    return [r if r.seconds is None or not cpu.get(r.model) else
            ToAccuracy(**(asdict(r) | {"ratio": r.seconds / cpu[r.model]})) for r in rows]


def format_table(rows: Sequence[ToAccuracy], status: dict[str, str]) -> str:
    """One row per backend × model: epochs and seconds to the target, × cpu, the first epoch's extra
    (compiling), one epoch's seconds, the final quality and the backend's conformance status."""
    header = ("backend", "model", "target", "epochs", "seconds", "× cpu", "first extra s", "epoch s", "spread",
              "final", "conforms")
    body = [(r.backend, r.model, r.target, "—" if r.epochs is None else f"{r.epochs}/{r.trained_epochs}",
             (f"error ({r.error})" if r.error else "not reached") if r.seconds is None else f"{r.seconds:.2f}",
             "—" if r.ratio is None else f"{r.ratio:.2f}",
             f"{r.first_extra_s:.2f}", f"{r.epoch_s:.3f}", spread_label(r.epoch_s, r.epoch_iqr_s), f"{r.final:.4f}",
             status.get(r.backend, "not run")) for r in rows]
    return text_table(header, body, right={3, 4, 5, 6, 7, 8, 9})


def write(rows: Sequence[ToAccuracy], status: dict[str, str], out_dir: Path, environment: dict[str, str],
          conformance: Path | None, calibration: dict[str, Any] | None = None) -> Path:
    """``OUT/bench-to-accuracy.json``: the targets, every backend × model, each backend's conformance status
    (the key ``verdicts``), the environment and the calibration."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "bench-to-accuracy.json"
    path.write_text(json.dumps({"environment": environment, "targets": {m: asdict(t) for m, t in TARGETS.items()},
                                "conformance": str(conformance) if conformance else None, "verdicts": status,
                                "rows": [asdict(r) | {"noisy": r.noisy, "conforms": status.get(r.backend, "not run")}
                                         for r in rows],
                                "calibration": calibration},
                               indent=2))
    return path
