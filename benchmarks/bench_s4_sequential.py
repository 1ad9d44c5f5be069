"""Forward and forward+backward+SGD step of §4's Sequential, CPU and CUDA side by side.

``make test`` runs each case once (``--benchmark-disable``); ``make bench`` times them.
The timer synchronises the device before reading the clock, so CUDA's asynchronous
launches are timed in full.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from torchmech.devices import synced_perf_counter
from torchmech.models import chapter_sequential

BATCH = 64


def _extra(benchmark, device: str) -> None:
    flops = 2 * BATCH * (4 * 16 + 16 * 32)  # multiply-adds of the two Linear layers, forward
    benchmark.extra_info.update({
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "dtype": "float32",
        "batch": BATCH,
        "forward_flops": flops,
    })


@pytest.mark.benchmark(group="s4 Sequential forward, batch 64", timer=synced_perf_counter, warmup=True)
def test_forward(benchmark, device: str) -> None:
    model = chapter_sequential().to(device)
    x = torch.randn(BATCH, 4, device=device)
    _extra(benchmark, device)
    with torch.no_grad():
        out = benchmark(model, x)
    assert out.shape == (BATCH, 32)


@pytest.mark.benchmark(group="s4 Sequential train step, batch 64", timer=synced_perf_counter, warmup=True)
def test_train_step(benchmark, device: str) -> None:
    model = chapter_sequential().to(device)
    x, y = torch.randn(BATCH, 4, device=device), torch.randn(BATCH, 32, device=device)
    opt = torch.optim.SGD(model.parameters(), lr=0.001)
    loss_fn = nn.MSELoss()

    def step() -> torch.Tensor:
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss

    _extra(benchmark, device)
    assert torch.isfinite(benchmark(step)).item()
