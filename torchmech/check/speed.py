"""Speed per backend, beside its conformance status: one training step of each chapter model and an MNIST epoch
on the exact-order path, through the backend (``torchmech bench --backends``), compile time apart; the step the
mitigation ladder times. The width × batch sweep per device is :mod:`torchmech.check.bench`.

Speed is measured here and in ``benchmarks/``, never asserted in ``tests/``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from torchmech.chapter.recipes import RECIPES
from torchmech.chapter.runs import mnist_train_batches
from torchmech.chapter.train import FirstBatches, forward, multiclass_correct, train
from torchmech.check.bench import measure
from torchmech.runtime.backends import REFERENCE_BACKEND, Backend, named, usable
from torchmech.runtime.console import text_table
from torchmech.runtime.devices import noisy, spread, spread_label, synchronize

#: The models ``torchmech bench --backends`` times one training step of, at the chapter's batch sizes: bench
#: name → the chapter's recipe (:data:`~torchmech.chapter.recipes.RECIPES`: builder, loss, optimizer, batch size).
STEP_MODELS: dict[str, str] = {"xor_mlp": "mlp", "mpg": "mpg", "mnist": "mnist"}
#: An MNIST epoch on the exact-order fast path (:class:`~torchmech.chapter.train.ShuffledBatches`), as a "model".
EPOCH = "mnist_epoch"
#: Every name ``time_backends`` accepts, in table order.
BACKEND_MODELS: tuple[str, ...] = (*STEP_MODELS, EPOCH)


@dataclass(frozen=True)
class BackendTiming:
    """One backend × model: the first call, the steady state, and the speed relative to ``cpu``.

    Attributes:
        backend, model: the backend's name and the model's (a key of :data:`STEP_MODELS`, or :data:`EPOCH`).
        batch: samples per training step.
        steps: training steps per timed call (1 for a step; the batches of the epoch for :data:`EPOCH`).
        first_s: the first call: under ``compile``, compiling plus the first call; elsewhere, its warm-up.
        compile_s: under ``compile``, ``first_s`` minus the steady-state median, at least 0; ``None`` on a
            backend that does not compile (its first call's warm-up is no compile time).
        median_s, iqr_s: steady-state seconds per call (median and interquartile range).
        ratio: ``median_s`` over the ``cpu`` backend's for the same model (``cpu`` itself: exactly 1.0).
        fraction: of a whole epoch, for :data:`EPOCH` (``None`` for a step).
    """

    backend: str
    model: str
    batch: int
    steps: int
    first_s: float
    compile_s: float | None
    median_s: float
    iqr_s: float
    ratio: float | None = None
    fraction: float | None = None

    @property
    def noisy(self) -> bool:
        """Its repeats spread over :data:`~torchmech.runtime.devices.NOISY_SPREAD` of the median."""
        return noisy(self.median_s, self.iqr_s)

    @property
    def step_s(self) -> float:
        """Seconds per training step (for an epoch: per batch, the loop's overhead included)."""
        return self.median_s / self.steps


def _targets(target: str, batch: int) -> torch.Tensor:
    if target == "class":
        return torch.randint(0, 10, (batch,))
    if target == "binary":
        return torch.randint(0, 2, (batch,)).float()
    return torch.randn(batch)


def _stopwatch(fn: Callable[[], object], device: str) -> float:
    """Seconds of one call of ``fn``, the device drained before the clock is read."""

    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def time_step(backend: str | Backend, model: str, min_run_time: float = 0.2) -> BackendTiming:
    """Time one training step of a chapter model (a key of :data:`STEP_MODELS` or of
    :data:`~torchmech.chapter.recipes.RECIPES`) on a backend (ratio not set).

    The step is one iteration of :func:`torchmech.chapter.train.train`'s loop: the model ``prepare``-d by the
    backend (its compiled twin under ``compile``), the batch ``cast``, the forward pass under
    ``autocast_context()``, the loss in the backend's dtype, backward, the optimizer's step and
    ``zero_grad``, all inside ``active()``. The inputs are random (the time does not depend on the values)
    and device-resident, as on the fast path. Under ``compile``, dynamo's in-process cache is reset first,
    so the first call compiles (inductor's on-disk caches, when enabled, may still shorten it).
    """

    be = named(backend)
    recipe = RECIPES[STEP_MODELS.get(model, model)]
    if be.compile:
        torch._dynamo.reset()
    torch.manual_seed(0)
    module = recipe.build()
    net = be.prepare(module)
    opt = recipe.make_optimizer(module.parameters())
    loss_fn = recipe.loss()
    batch = recipe.batch_size
    x, y = be.cast(torch.randn(batch, *recipe.input_shape)), be.cast(_targets(recipe.target, batch))

    def step() -> torch.Tensor:
        xb, yb = be.cast(x), be.cast(y)
        with be.autocast_context():
            pred = forward(net, xb, yb)
        loss = loss_fn(pred.to(be.dtype), yb)
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss

    with be.active():
        first = _stopwatch(step, be.device)
        median, iqr = measure(step, be.device, min_run_time)
    return BackendTiming(be.name, model, batch, 1, first, max(first - median, 0.0) if be.compile else None, median,
                         iqr)


def time_epoch(backend: str | Backend, batches: object, full: int, repeats: int = 3) -> BackendTiming:
    """Time §8's MNIST training over ``batches`` (an epoch, or its first batches) with
    :func:`torchmech.chapter.train.train` on a backend: the first run (compiling under ``compile``) apart,
    then the median and IQR of ``repeats`` more. Each run seeds, builds the MLP and Adam as §8 does;
    the model's construction is outside the clock, ``train`` (prepare, cast, autocast, active) inside.
    ``full``: the batches of a whole epoch (for the fraction)."""

    be = named(backend)
    if be.compile:
        torch._dynamo.reset()

    def run() -> float:
        recipe = RECIPES["mnist"]
        torch.manual_seed(recipe.seed)
        model = recipe.build()
        optimizer = recipe.make_optimizer(model.parameters())
        torch.manual_seed(recipe.seed)
        return _stopwatch(lambda: train(model, recipe.loss(), optimizer, batches, 1,
                                        correct=multiclass_correct, backend=be), be.device)

    first = run()
    times = [run() for _ in range(max(repeats, 1))]
    median, iqr = spread(times)
    n = len(batches)  # type: ignore[arg-type]
    return BackendTiming(be.name, EPOCH, 64, n, first, max(first - median, 0.0) if be.compile else None, median, iqr,
                         fraction=n / full)


def time_backends(backends: Sequence[str], models: Sequence[str] = BACKEND_MODELS, min_run_time: float = 0.2,
                  epoch_batches: int | None = None, repeats: int = 3, data: Path | None = None,
                  progress: Callable[[str], None] | None = None) -> list[BackendTiming]:
    """Per backend and model, one training step timed (:func:`time_step`), and with :data:`EPOCH` in
    ``models`` an MNIST epoch on the exact-order path (:func:`time_epoch`; ``epoch_batches``: only its first
    batches, ``None``: all of it). ``cpu`` is always timed, first: the ratios are to it.

    Raises ``ValueError`` (one line) for an unknown or unavailable backend or an unknown model, before
    timing anything. ``progress(backend)`` after each backend.
    """
    names = list(dict.fromkeys([REFERENCE_BACKEND, *(usable(b).name for b in backends)]))
    unknown = [m for m in models if m not in BACKEND_MODELS]
    if unknown:
        raise ValueError(f"unknown model(s) {', '.join(unknown)}: choose from {', '.join(BACKEND_MODELS)}")
    models = [m for m in BACKEND_MODELS if m in models]
    epoch_data: dict[str, object] = {}
    records: list[BackendTiming] = []
    for name in names:
        be = usable(name)
        for model in models:
            if model != EPOCH:
                records.append(time_step(be, model, min_run_time))
                continue
            if be.device not in epoch_data:  # loaded once per device, outside the clock

                epoch_data[be.device] = mnist_train_batches(data, True, torch.device(be.device))
            whole = epoch_data[be.device]
            batches = whole if epoch_batches is None else FirstBatches(whole, epoch_batches)
            records.append(time_epoch(be, batches, len(whole), repeats))  # type: ignore[arg-type]
        if progress is not None:
            progress(name)
    reference = {r.model: r.median_s for r in records if r.backend == REFERENCE_BACKEND}
    return [replace(r, ratio=r.median_s / reference[r.model]) for r in records]


def read_conformance(path: Path | None) -> dict | None:
    """A ``conformance.json`` written by ``torchmech conformance`` (``None`` for no path).

    Raises ``ValueError`` (one line) when it cannot be read or is not a conformance matrix."""
    if path is None:
        return None
    try:
        data = json.loads(Path(path).read_text())
    except OSError as err:
        raise ValueError(f"cannot read the conformance file {path}: {err.strerror or err}") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not JSON ({err.msg}, line {err.lineno}): pass a conformance.json") from None
    if not isinstance(data, dict) or not isinstance(data.get("backends"), dict) or \
            not isinstance(data.get("failed"), list):
        raise ValueError(f"{path} is not a conformance.json (no 'backends' and 'failed'): "
                         "write one with `torchmech conformance --out DIR`")
    return data


def conformance_status(matrix: dict | None, backends: Iterable[str]) -> dict[str, str]:
    """Per backend, its status in the conformance matrix ``matrix`` (:func:`read_conformance`): ``holds (0 fail)``,
    ``N FAIL`` (its failing cells), ``not in matrix``, or ``not run`` without a matrix. A quick matrix
    says so: ``holds (0 fail, quick)``, ``N FAIL (quick)``."""
    out: dict[str, str] = {}
    for b in backends:
        if matrix is None:
            out[b] = "not run"
        elif b not in matrix["backends"]:
            out[b] = "not in matrix"
        else:
            n = sum(1 for f in matrix["failed"] if f.get("backend") == b)
            quick = ", quick" if matrix.get("quick") else ""
            out[b] = f"{n} FAIL" + (f" ({quick[2:]})" if quick else "") if n else f"holds (0 fail{quick})"
    return out


def _model_label(r: BackendTiming) -> str:
    if r.model != EPOCH:
        return f"{r.model} ({RECIPES[STEP_MODELS[r.model]].section})"
    return f"mnist epoch {r.steps}/{round(r.steps / r.fraction)}" if r.fraction else "mnist epoch"


def format_backend_table(records: Sequence[BackendTiming], status: dict[str, str]) -> str:
    """One row per backend × model: compile s (``–`` where nothing compiles), step ms, its spread (IQR over median,
    marked ``noisy`` above :data:`~torchmech.runtime.devices.NOISY_SPREAD`), × cpu, epoch s (epoch rows), and the
    backend's conformance status."""
    header = ("backend", "model", "batch", "compile s", "step ms", "spread", "× cpu", "epoch s", "conforms")
    rows = [(r.backend, _model_label(r), str(r.batch), "–" if r.compile_s is None else f"{r.compile_s:.2f}",
             f"{r.step_s * 1e3:.3f}", spread_label(r.median_s, r.iqr_s),
             "—" if r.ratio is None else f"{r.ratio:.2f}", f"{r.median_s:.2f}" if r.model == EPOCH else "",
             status.get(r.backend, "not run")) for r in records]
    return text_table(header, rows, right={2, 3, 4, 5, 6, 7})


def inductor_caches() -> str:
    """``on`` when inductor's caches (its FX graph cache on disk) may shorten a compile, so ``compile_s`` is a
    warm-cache figure; ``off`` under ``TORCHINDUCTOR_FORCE_DISABLE_CACHES=1`` (every compile is cold)."""
    import torch._inductor.config as inductor

    return "off" if inductor.force_disable_caches or not inductor.fx_graph_cache else "on"


def write_backend_results(records: Sequence[BackendTiming], status: dict[str, str], out_dir: Path,
                          environment: dict[str, str], quick: bool, conformance: Path | None,
                          calibration: dict[str, Any] | None = None) -> Path:
    """``OUT/bench-backends.json``: every backend × model (with ``step_s``), each backend's conformance status (the
    key ``verdicts``, as files already written have it), the environment and the calibration."""
    out_dir.mkdir(parents=True, exist_ok=True)
    data = {"environment": environment, "quick": quick, "inductor_caches": inductor_caches(),
            "conformance": str(conformance) if conformance else None, "verdicts": status,
            "records": [asdict(r) | {"step_s": r.step_s, "noisy": r.noisy, "conforms": status.get(r.backend, "not run")}
                        for r in records], "calibration": calibration}
    path = out_dir / "bench-backends.json"
    path.write_text(json.dumps(data, indent=2))
    return path
