"""The one place that knows about devices: which exist, how to name one, how to wait for one, the environment a
result was measured in (:func:`environment`: the machine's fingerprint) and a calibration measured beside it
(:func:`calibration`: a fixed GEMM and a fixed training step, the yardstick ``torchmech compare`` divides by)."""

from __future__ import annotations

import itertools
import os
import platform
import re
import statistics
import time
from collections.abc import Sequence

import torch

from torchmech import __version__

#: Every device kind torchmech parametrises over, in the order tests list them.
DEVICE_KINDS: tuple[str, ...] = ("cpu", "cuda", "mps")


def is_available(kind: str) -> bool:
    """Whether a device kind (``cpu``, ``cuda``, ``mps``) can run tensors here."""
    if kind == "cpu":
        return True
    if kind == "cuda":
        return torch.cuda.is_available()
    if kind == "mps":
        backend = getattr(torch.backends, "mps", None)
        return bool(backend and backend.is_available())
    return False


def available_devices() -> list[str]:
    """The device kinds usable on this machine: always ``cpu``, then ``cuda``/``mps`` if present."""
    return [kind for kind in DEVICE_KINDS if is_available(kind)]


def resolve_device(name: str | torch.device | None = None) -> torch.device:
    """Turn a user's device name into a ``torch.device``, failing with a one-line reason.

    ``None`` and ``"auto"`` pick CUDA when present, else the CPU.

    Raises:
        ValueError: the name is not a device, or that device is not available here.
    """
    if name is None or name == "auto":
        return torch.device("cuda" if is_available("cuda") else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            f"unknown device {name!r}: use one of {', '.join(DEVICE_KINDS)} or 'auto'"
        ) from err
    if not is_available(device.type):
        raise ValueError(
            f"device {str(device)!r} is not available on this machine "
            f"(available: {', '.join(available_devices())})"
        )
    if device.type == "cuda" and device.index is not None:
        if device.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {str(device)!r} does not exist: "
                f"this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    return device


def synchronize(device: str | torch.device) -> None:
    """Wait until every kernel queued on ``device`` has finished (no-op on the CPU)."""
    kind = torch.device(device).type
    if kind == "cuda":
        torch.cuda.synchronize(device)
    elif kind == "mps":
        torch.mps.synchronize()


def synced_perf_counter() -> float:
    """``time.perf_counter()`` read after the accelerators have drained their queues.

    A timer for pytest-benchmark: asynchronous CUDA launches would otherwise be
    timed as if they took no time at all.
    """
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()
    return time.perf_counter()


#: The newest torch release the chapter has been measured on (``benchmarks/results/releases``; a test keeps them
#: equal): a verdict read on a newer one says so.
NEWEST_MEASURED = "2.15.0"


def release(version: str) -> tuple[int, ...]:
    """A version's release as numbers: ``"2.11.0+cu130"`` → ``(2, 11, 0)`` (a local build compares by release)."""
    return tuple(int(p) for p in re.findall(r"\d+", version.split("+")[0])[:3])


def newer_than_measured(torch_version: str) -> bool:
    """Whether ``torch_version`` is newer than :data:`NEWEST_MEASURED`.

    Example::

        >>> newer_than_measured("99.0.0"), newer_than_measured(NEWEST_MEASURED), newer_than_measured("2.4.1+cpu")
        (True, False, False)
    """
    return release(torch_version) > release(NEWEST_MEASURED)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except (AttributeError, OSError):  # not on Unix
        return "n/a"


def environment(device: str | torch.device | None = "cpu") -> dict[str, str]:
    """The machine's fingerprint, every value a string: torchmech, torch and Python versions, the device and its
    name, torch's thread count; the CPU's model, its logical cores, the load average (1, 5, 15 min) when this is
    called (a command calls it before it times anything), cuDNN's version; where CUDA is present, the GPU and
    CUDA's version too (a result measured on the CPU of a GPU machine names both)."""
    dev = resolve_device(device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else _cpu_name()
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    env = {"torchmech": __version__, "torch": torch.__version__, "python": platform.python_version(),
           "device": str(dev), "device_name": name, "threads": str(torch.get_num_threads()),
           "cpu": _cpu_name(), "logical_cores": str(os.cpu_count() or 1), "load_average": _load_average(),
           "cudnn": str(cudnn) if cudnn else "n/a"}
    if is_available("cuda"):
        env |= {"gpu": torch.cuda.get_device_name(0), "cuda": str(torch.version.cuda)}
    return env


#: A timing is *noisy* when its interquartile range is more than this share of its median: another process, a
#: frequency change or a cold cache moved its repeats, and a ratio read from it may not be the machine's.
NOISY_SPREAD = 0.10


def spread(times: Sequence[float]) -> tuple[float, float]:
    """(median, interquartile range) of repeated timings (quartiles by linear interpolation, as
    ``torch.quantile`` and ``torch.utils.benchmark`` take them); one timing: IQR 0.

    Example::

        >>> spread([1.0, 2.0, 3.0, 4.0, 5.0])
        (3.0, 2.0)
    """
    if not times:
        raise ValueError("no timings to summarise")
    if len(times) == 1:
        return float(times[0]), 0.0
    q1, _, q3 = statistics.quantiles(times, n=4, method="inclusive")
    return statistics.median(times), q3 - q1


def noisy(median: float, iqr: float) -> bool:
    """Whether a timing's spread (IQR over median) is over :data:`NOISY_SPREAD`."""
    return median > 0 and iqr / median > NOISY_SPREAD


def spread_label(median: float, iqr: float) -> str:
    """A table's spread cell: the IQR as a share of the median, ``4%``, or ``23% noisy`` (:func:`noisy`)."""
    return (f"{iqr / median:.0%}" if median > 0 else "–") + (" noisy" if noisy(median, iqr) else "")


#: The calibration's fixed work: an n×n fp32 matmul, and one SGD step of an MLP (sizes) on a batch.
CALIBRATION_GEMM_N = 512
CALIBRATION_MLP = (784, 32, 16, 10)
CALIBRATION_BATCH = 64


def _timed(fn: object, device: torch.device, repeats: int, warmup: int) -> tuple[float, float]:
    """(median, IQR) seconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones, ``device`` drained."""
    times = []
    for i in range(warmup + repeats):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        synchronize(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return spread(times)


def calibration(device: str | torch.device | None = "cpu", repeats: int = 9) -> dict[str, object]:
    """A yardstick measured in the same run as a record's timings (well under a second on a CPU): the median
    seconds of a :data:`CALIBRATION_GEMM_N`-square fp32 matmul (and its GFLOP/s), of one SGD training step of the
    :data:`CALIBRATION_MLP` MLP on a batch of :data:`CALIBRATION_BATCH` (each with its IQR), and ``seconds``, the
    geometric mean of the two: a machine (or a run beside other work) twice as slow doubles it; ``noisy`` where
    either spread is (:func:`noisy`). The shapes and the seed are fixed;
    torch's random state is left as it was."""
    dev = resolve_device(device)
    n = CALIBRATION_GEMM_N
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        a, b = torch.randn(n, n, device=dev), torch.randn(n, n, device=dev)
        layers: list[torch.nn.Module] = []
        for fan_in, fan_out in itertools.pairwise(CALIBRATION_MLP):
            layers += [torch.nn.Linear(fan_in, fan_out), torch.nn.ReLU()]
        model = torch.nn.Sequential(*layers[:-1]).to(dev)
        x = torch.randn(CALIBRATION_BATCH, CALIBRATION_MLP[0], device=dev)
        y = torch.randint(0, CALIBRATION_MLP[-1], (CALIBRATION_BATCH,), device=dev)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)

    def step() -> None:
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()

    gemm_s, gemm_iqr = _timed(lambda: a @ b, dev, repeats, warmup=2)
    step_s, step_iqr = _timed(step, dev, repeats * 3, warmup=3)
    return {"device": str(dev), "threads": torch.get_num_threads(), "gemm_n": n, "gemm_s": gemm_s,
            "gemm_iqr_s": gemm_iqr, "gemm_gflops": round(2 * n**3 / gemm_s / 1e9, 2),
            "step_mlp": "-".join(map(str, CALIBRATION_MLP)), "step_batch": CALIBRATION_BATCH, "step_s": step_s,
            "step_iqr_s": step_iqr, "seconds": (gemm_s * step_s) ** 0.5,
            "noisy": noisy(gemm_s, gemm_iqr) or noisy(step_s, step_iqr)}
