"""Benchmarks of the chapter's models on each device: FLOP counts, a timer that waits for the
device, a width × batch sweep of MLP training steps, the CPU/CUDA crossover, and the achieved
fraction of a GEMM peak measured in the same run.

Speed is measured here and in ``benchmarks/``, never asserted in ``tests/``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from torch import nn
from torch.utils import benchmark as tbench

from torchmech.chapter.models import mlp
from torchmech.chapter.recipes import RECIPES
from torchmech.chapter.runs import mnist_train_batches
from torchmech.chapter.train import FirstBatches, forward, multiclass_correct, train
from torchmech.runtime.backends import REFERENCE_BACKEND, Backend, named, usable
from torchmech.runtime.console import text_table
from torchmech.runtime.devices import available_devices, synchronize


def mlp_flops(sizes: Sequence[int], batch: int, backward: bool = True) -> int:
    """Floating-point operations of one MLP step on ``batch`` samples, counting the matmuls
    (a multiply-add is 2 FLOPs; biases, activations and the optimizer are ignored).

    Forward: ``2·B·Σ n_in·n_out``. Backward: the weight gradients cost the same again, and the
    input gradients of every layer but the first (nothing needs ∂L/∂x of the data) as well.
    """
    if batch <= 0 or len(sizes) < 2:
        raise ValueError(f"need batch > 0 and at least two sizes, got batch={batch}, sizes={tuple(sizes)}")
    layers = [a * b for a, b in itertools.pairwise(sizes)]
    forward = 2 * batch * sum(layers)
    if not backward:
        return forward
    return forward + 2 * batch * sum(layers) + 2 * batch * sum(layers[1:])


@dataclass(frozen=True)
class Timing:
    """One measured case: median and interquartile range of the seconds per call."""

    device: str
    width: int
    batch: int
    precision: str
    median_s: float
    iqr_s: float
    flops: int

    @property
    def tflops(self) -> float:
        return self.flops / self.median_s / 1e12


def measure(fn: Callable[[], object], device: str, min_run_time: float = 0.2) -> tuple[float, float]:
    """(median, IQR) seconds per call of ``fn`` with ``torch.utils.benchmark.Timer``, each call
    followed by a synchronisation of ``device`` so queued kernels are timed in full."""

    def call() -> None:
        fn()
        synchronize(device)

    call()  # warm-up: first launches, allocator, lazy init
    m = tbench.Timer(stmt="call()", globals={"call": call}).blocked_autorange(min_run_time=min_run_time)
    return m.median, m.iqr


#: The widest MLP timed on a CPU; wider ones are for accelerators.
FULL_CPU_LIMIT = 1024


def train_step(width: int, batch: int, device: str, precision: str = "fp32",
               depth: int = 3, cuda_graph: bool = False) -> Callable[[], torch.Tensor]:
    """A closure running one SGD step of a ``depth``-layer MLP of ``width`` units on ``batch`` samples.

    ``cuda_graph=True`` (CUDA only) captures the whole step — forward, backward, SGD — once as a
    CUDA graph and replays it: one launch instead of dozens, where small models spend their time.
    """
    torch.manual_seed(0)
    sizes = (width,) * (depth + 1)
    model = mlp(sizes, output=None).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    x, y = torch.randn(batch, width, device=device), torch.randn(batch, width, device=device)
    loss_fn = nn.MSELoss()
    autocast = precision == "bf16"

    def step() -> torch.Tensor:
        with torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16, enabled=autocast):
            loss = loss_fn(model(x).float(), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    if not cuda_graph:
        return step
    if torch.device(device).type != "cuda":
        raise ValueError(f"CUDA graphs need a CUDA device, got {device!r}")
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm up on a side stream, as torch.cuda.graph requires
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):  # autocast's cast cache must stay off while capturing
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=autocast, cache_enabled=False):
            static_loss = loss_fn(model(x).float(), y)
        static_loss.backward()
        opt.step()

    def replay() -> torch.Tensor:
        graph.replay()
        return static_loss

    return replay


def gemm_peak(device: str, precision: str = "fp32", n: int = 2048) -> float:
    """TFLOP/s of one n×n matmul in ``precision``, measured now: the yardstick for the MLPs.

    ``tf32`` turns TensorFloat-32 on for this matmul only (and restores the switch); ``bf16``
    multiplies bf16 matrices. On a GPU, ``n`` must be large (4096–8192) for the figure to be a peak.
    """
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    with _matmul_mode(precision):
        median, _ = measure(lambda: a @ b, device)
    return 2 * n**3 / median / 1e12


def _matmul_mode(precision: str) -> contextlib.AbstractContextManager:
    """The switches a case needs — ``cuda-tf32``'s for ``tf32`` (TF32 on), else ``cuda``'s (TF32 off) — set
    and restored by :meth:`~torchmech.runtime.backends.Backend.active`, the one place that toggles them."""
    return named("cuda-tf32" if precision == "tf32" else "cuda").active()


def sweep(widths: Iterable[int], batches: Iterable[int], devices: Iterable[str] | None = None,
          precisions: Iterable[str] = ("fp32",), depth: int = 3, min_run_time: float = 0.2,
          cuda_graphs: bool = False) -> list[Timing]:
    """Time one training step for every width × batch on every device and precision.

    TF32 and bf16 run on CUDA only (the CPU has neither mode); the TF32 switch is restored.
    ``cuda_graphs`` replays CUDA steps from a captured graph (precision label ``+graph``).
    """
    devices = available_devices() if devices is None else list(devices)
    records = []
    for device, precision in itertools.product(devices, precisions):
        if precision != "fp32" and torch.device(device).type != "cuda":
            continue
        graph = cuda_graphs and torch.device(device).type == "cuda"
        with _matmul_mode(precision):
            for width, batch in itertools.product(widths, batches):
                step = train_step(width, batch, device, precision, depth, cuda_graph=graph)
                median, iqr = measure(step, device, min_run_time)
                records.append(Timing(device, width, batch, precision + ("+graph" if graph else ""), median, iqr,
                                      mlp_flops((width,) * (depth + 1), batch)))
    return records


def crossover(records: Iterable[Timing], fast: str = "cuda", slow: str = "cpu") -> dict[int, int | None]:
    """Per width, the smallest batch at which ``fast`` beats ``slow`` (``None``: it never does,
    or one side was not measured). fp32 records only."""
    times: dict[tuple[str, int, int], float] = {
        (r.device.split(":")[0], r.width, r.batch): r.median_s for r in records if r.precision == "fp32"}
    result: dict[int, int | None] = {}
    for width in sorted({w for _, w, _ in times}):
        batches = sorted(b for d, w, b in times if w == width and d == slow and (fast, w, b) in times)
        result[width] = next((b for b in batches if times[fast, width, b] < times[slow, width, b]), None)
    return result


def format_table(records: Sequence[Timing], peaks: dict[tuple[str, str], float]) -> str:
    """CPU time, CUDA time, speedup and TFLOP/s per case; the share of the measured GEMM peak."""
    by_case: dict[tuple[int, int, str], dict[str, Timing]] = {}
    for r in records:
        by_case.setdefault((r.width, r.batch, r.precision), {})[r.device.split(":")[0]] = r
    rows = []
    for (width, batch, precision), cases in sorted(by_case.items()):
        cpu, cuda = cases.get("cpu"), cases.get("cuda")
        best = cuda or cpu
        peak = peaks.get((best.device.split(":")[0], precision.split("+")[0]))
        nan = float("nan")
        cpu_ms, cuda_ms = (cpu.median_s * 1e3 if cpu else nan), (cuda.median_s * 1e3 if cuda else nan)
        rows.append((str(width), str(batch), precision, f"{cpu_ms:.3f}", f"{cuda_ms:.3f}", f"{cpu_ms / cuda_ms:.2f}",
                     f"{best.tflops:.3f}", f"{best.tflops / peak if peak else nan:.1%}"))
    return text_table(("width", "batch", "prec", "cpu ms", "cuda ms", "speedup", "TFLOP/s", "of peak"), rows,
                      right={0, 1, 3, 4, 5, 6, 7})


def write_results(records: Sequence[Timing], peaks: dict[tuple[str, str], float], out_dir: Path,
                  environment: dict[str, str]) -> list[Path]:
    """``bench.json`` (every case, the peaks, the crossover, the environment) and ``bench.png``
    (achieved TFLOP/s against batch, one line per device and width)."""
    from matplotlib.figure import Figure

    out_dir.mkdir(parents=True, exist_ok=True)
    data = {"environment": environment, "records": [asdict(r) | {"tflops": r.tflops} for r in records],
            "gemm_peak_tflops": {f"{d}/{p}": v for (d, p), v in peaks.items()},
            "crossover_batch": {str(k): v for k, v in crossover(records).items()}}
    json_path = out_dir / "bench.json"
    json_path.write_text(json.dumps(data, indent=2))
    fig = Figure(figsize=(8, 5))
    ax = fig.subplots()
    for (device, precision, width), group in itertools.groupby(
            sorted(records, key=lambda r: (r.device, r.precision, r.width, r.batch)),
            key=lambda r: (r.device, r.precision, r.width)):
        group = list(group)
        ax.plot([r.batch for r in group], [r.tflops for r in group], marker="o",
                label=f"{device} {precision} w={width}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch")
    ax.set_ylabel("achieved TFLOP/s (one training step)")
    ax.legend(fontsize=7)
    png_path = out_dir / "bench.png"
    fig.savefig(png_path, dpi=80, bbox_inches="tight")
    return [json_path, png_path]


# --- speed per backend, beside the conformance status ---------------------------------------------------
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
        first_s: the first call: under ``compile``, compiling plus the first call.
        compile_s: ``first_s`` minus the steady-state median, at least 0 (eager: first-call overheads).
        median_s, iqr_s: steady-state seconds per call (median and interquartile range).
        ratio: ``median_s`` over the ``cpu`` backend's for the same model (``cpu`` itself: exactly 1.0).
        fraction: of a whole epoch, for :data:`EPOCH` (``None`` for a step).
    """

    backend: str
    model: str
    batch: int
    steps: int
    first_s: float
    compile_s: float
    median_s: float
    iqr_s: float
    ratio: float | None = None
    fraction: float | None = None

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
    import time

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
    return BackendTiming(be.name, model, batch, 1, first, max(first - median, 0.0), median, iqr)


def time_epoch(backend: str | Backend, batches: object, full: int, repeats: int = 3) -> BackendTiming:
    """Time §8's MNIST training over ``batches`` (an epoch, or its first batches) with
    :func:`torchmech.chapter.train.train` on a backend: the first run (compiling under ``compile``) apart,
    then the median and IQR of ``repeats`` more. Each run seeds, builds the MLP and Adam as §8 does;
    the model's construction is outside the clock, ``train`` (prepare, cast, autocast, active) inside.
    ``full``: the batches of a whole epoch (for the fraction)."""
    import statistics

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
    median = statistics.median(times)
    iqr = 0.0 if len(times) < 2 else float(torch.tensor(times).quantile(0.75) - torch.tensor(times).quantile(0.25))
    n = len(batches)  # type: ignore[arg-type]
    return BackendTiming(be.name, EPOCH, 64, n, first, max(first - median, 0.0), median, iqr, fraction=n / full)


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
    """One row per backend × model: compile s, step ms, × cpu, epoch s (epoch rows), and the backend's
    conformance status."""
    header = ("backend", "model", "batch", "compile s", "step ms", "× cpu", "epoch s", "conforms")
    rows = [(r.backend, _model_label(r), str(r.batch), f"{r.compile_s:.2f}", f"{r.step_s * 1e3:.3f}",
             "—" if r.ratio is None else f"{r.ratio:.2f}", f"{r.median_s:.2f}" if r.model == EPOCH else "",
             status.get(r.backend, "not run")) for r in records]
    return text_table(header, rows, right={2, 3, 4, 5, 6})


def inductor_caches() -> str:
    """``on`` when inductor's caches (its FX graph cache on disk) may shorten a compile, so ``compile_s`` is a
    warm-cache figure; ``off`` under ``TORCHINDUCTOR_FORCE_DISABLE_CACHES=1`` (every compile is cold)."""
    import torch._inductor.config as inductor

    return "off" if inductor.force_disable_caches or not inductor.fx_graph_cache else "on"


def write_backend_results(records: Sequence[BackendTiming], status: dict[str, str], out_dir: Path,
                          environment: dict[str, str], quick: bool, conformance: Path | None) -> Path:
    """``OUT/bench-backends.json``: every backend × model (with ``step_s``), each backend's conformance status (the
    key ``verdicts``, as files already written have it), the environment."""
    out_dir.mkdir(parents=True, exist_ok=True)
    data = {"environment": environment, "quick": quick, "inductor_caches": inductor_caches(),
            "conformance": str(conformance) if conformance else None, "verdicts": status,
            "records": [asdict(r) | {"step_s": r.step_s, "conforms": status.get(r.backend, "not run")}
                        for r in records]}
    path = out_dir / "bench-backends.json"
    path.write_text(json.dumps(data, indent=2))
    return path
