"""The chapter's models, forward and one training step, CPU and CUDA side by side.

Each group holds one model and size; its cases are the devices, so pytest-benchmark's table
shows them next to each other. The timer synchronises the device before reading the clock;
the warm-up is excluded. ``extra_info``: device name, threads, torch version, dtype, FLOPs per
call and the achieved GFLOP/s.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from torchmech.chapter.models import mlp, mnist_mlp, mpg_regressor
from torchmech.check.bench import FULL_CPU_LIMIT, mlp_flops, train_step
from torchmech.runtime.devices import synced_perf_counter

CHAPTER_MODELS = {  # name: (builder, the sizes of its linear layers, the chapter's batch size, input shape)
    "xor_mlp": (lambda: mlp((2, 4, 4, 1)), (2, 4, 4, 1), 2, (2,)),
    "mpg_regressor": (mpg_regressor, (9, 8, 4, 1), 8, (9,)),
    "mnist_mlp": (mnist_mlp, (784, 32, 16, 10), 64, (1, 28, 28)),
}


def _info(benchmark, device: str, flops: int) -> None:
    benchmark.extra_info.update({
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "threads": torch.get_num_threads(), "torch": torch.__version__, "dtype": "float32",
        "flops_per_call": flops,
    })


def _gflops(benchmark, flops: int) -> None:
    if benchmark.stats is not None:  # None with --benchmark-disable
        benchmark.extra_info["gflops_per_s"] = flops / benchmark.stats.stats.median / 1e9


@pytest.mark.parametrize("name", CHAPTER_MODELS)
@pytest.mark.benchmark(timer=synced_perf_counter, warmup=True, warmup_iterations=10)
def test_chapter_model_step(benchmark, name: str, device: str) -> None:
    """One training step (forward, backward, SGD) of the chapter's model at its batch size."""
    benchmark.group = f"chapter model step: {name}"
    build, sizes, batch, shape = CHAPTER_MODELS[name]
    torch.manual_seed(0)
    model = build().to(device)
    x = torch.randn(batch, *shape, device=device)
    y = torch.rand(batch, sizes[-1], device=device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)

    def step() -> torch.Tensor:
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss

    flops = mlp_flops(sizes, batch)
    _info(benchmark, device, flops)
    assert torch.isfinite(benchmark(step)).item()
    _gflops(benchmark, flops)


@pytest.mark.benchmark(timer=synced_perf_counter, warmup=True, warmup_iterations=3)
def test_mlp_family_step(benchmark, width: int, batch: int, device: str) -> None:
    """One training step of a 3-layer MLP of ``width`` units on ``batch`` samples."""
    if device == "cpu" and width > FULL_CPU_LIMIT:
        pytest.skip(f"width {width} is for accelerators: one CPU step takes seconds on 2 cores")
    benchmark.group = f"MLP step: width {width}, batch {batch}"
    flops = mlp_flops((width,) * 4, batch)
    _info(benchmark, device, flops)
    assert torch.isfinite(benchmark(train_step(width, batch, device))).item()
    _gflops(benchmark, flops)
