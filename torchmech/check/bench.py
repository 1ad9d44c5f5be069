"""Benchmarks of the chapter's models on each device: FLOP counts, a timer that waits for the
device, a width × batch sweep of MLP training steps, the CPU/CUDA crossover, and the achieved
fraction of a GEMM peak measured in the same run. Speed per backend (the chapter's models through each
backend, beside its conformance status) is :mod:`torchmech.check.speed`.

Speed is measured here and in ``benchmarks/``, never asserted in ``tests/``.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from torchmech.chapter.models import mlp
from torchmech.runtime.backends import named
from torchmech.runtime.console import text_table
from torchmech.runtime.devices import available_devices, noisy, spread_label, synchronize


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

    @property
    def noisy(self) -> bool:
        """Its repeats spread over :data:`~torchmech.runtime.devices.NOISY_SPREAD` of the median."""
        return noisy(self.median_s, self.iqr_s)


def measure(fn: Callable[[], object], device: str, min_run_time: float = 0.2) -> tuple[float, float]:
    """(median, IQR) seconds per call of ``fn`` with ``torch.utils.benchmark.Timer``, each call
    followed by a synchronisation of ``device`` so queued kernels are timed in full."""

    from torch.utils import benchmark as tbench  # here: it imports torch.utils.cpp_extension, which logs a line as
    # it is imported, and the console's filter (torchmech.runtime.console.DROPPED) is in place by now

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
    """Per case, each measured device's time (a column per device measured: no CUDA column without CUDA), CUDA's
    speedup over the CPU where both ran, and on the fastest device of the case (CUDA where it ran) the achieved
    TFLOP/s and its share of the GEMM peak measured in the same run (:func:`gemm_peak`, named by
    :func:`describe_peaks`). A case a device did not run (TF32 and bf16 on the CPU) shows ``–``. ``spread``: the
    case's widest IQR over median among its devices, marked ``noisy`` over
    :data:`~torchmech.runtime.devices.NOISY_SPREAD`."""
    by_case: dict[tuple[int, int, str], dict[str, Timing]] = {}
    for r in records:
        by_case.setdefault((r.width, r.batch, r.precision), {})[r.device.split(":")[0]] = r
    kinds = sorted({d for cases in by_case.values() for d in cases}, key=lambda d: (d != "cpu", d != "cuda", d))
    speedup = "cpu" in kinds and "cuda" in kinds
    rows = []
    for (width, batch, precision), cases in sorted(by_case.items()):
        best = cases.get("cuda") or next((c for d, c in cases.items() if d != "cpu"), None) or cases["cpu"]
        peak = peaks.get((best.device.split(":")[0], precision.split("+")[0]))
        ms = [f"{cases[d].median_s * 1e3:.3f}" if d in cases else "–" for d in kinds]
        ratio = ([f"{cases['cpu'].median_s / cases['cuda'].median_s:.2f}" if {"cpu", "cuda"} <= set(cases) else "–"]
                 if speedup else [])
        widest = max(cases.values(), key=lambda c: c.iqr_s / c.median_s if c.median_s > 0 else 0.0)
        rows.append((str(width), str(batch), precision, *ms, spread_label(widest.median_s, widest.iqr_s), *ratio,
                     f"{best.tflops:.3f}", f"{best.tflops / peak:.1%}" if peak else "–"))
    header = ("width", "batch", "prec", *(f"{d} ms" for d in kinds), "spread", *(["speedup"] if speedup else []),
              "TFLOP/s", "of peak")
    return text_table(header, rows, right={0, 1, *range(3, len(header))})


def describe_peaks(peaks: dict[tuple[str, str], float], sizes: dict[str, int]) -> str:
    """The line that says what "of peak" divides by: each GEMM peak of the run (device kind, precision → TFLOP/s)
    with the size of its matrices (device kind → n).

    Example::

        >>> describe_peaks({("cpu", "fp32"): 0.0951}, {"cpu": 2048})
        'of peak: the share of the GEMM peak measured in this run (one n×n matmul): cpu fp32 0.0951 TFLOP/s (n=2048)'
    """
    each = [f"{kind} {precision} {tflops:.3g} TFLOP/s (n={sizes[kind]})" for (kind, precision), tflops in peaks.items()]
    return "of peak: the share of the GEMM peak measured in this run (one n×n matmul): " + "; ".join(each)


#: A machine is busy when a benchmark starts if its 1-minute load average is above this many runnable tasks per core
#: it may use: its timings then share the cores with someone else's work.
BUSY_LOAD_PER_CORE = 0.5


def busy(per_core: float = BUSY_LOAD_PER_CORE) -> str | None:
    """A one-line warning when the machine is busy now (:data:`BUSY_LOAD_PER_CORE`), else ``None`` (also where
    the load average cannot be read)."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # not on Unix
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if load <= per_core * cores:
        return None
    return (f"warning: the machine was busy when the timings began (load average {load:.1f} on {cores} "
            f"core{'s' * (cores > 1)}): they may be unreliable")


def write_results(records: Sequence[Timing], peaks: dict[tuple[str, str], float], out_dir: Path,
                  environment: dict[str, str], calibration: dict[str, Any] | None = None) -> list[Path]:
    """``bench.json`` (every case, the peaks, the crossover, the environment, the calibration) and ``bench.png``
    (achieved TFLOP/s against batch, one line per device and width)."""
    from matplotlib.figure import Figure

    out_dir.mkdir(parents=True, exist_ok=True)
    data = {"environment": environment,
            "records": [asdict(r) | {"tflops": r.tflops, "noisy": r.noisy} for r in records],
            "gemm_peak_tflops": {f"{d}/{p}": v for (d, p), v in peaks.items()},
            "crossover_batch": {str(k): v for k, v in crossover(records).items()}, "calibration": calibration}
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
