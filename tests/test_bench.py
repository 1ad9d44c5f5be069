"""Whole chapter: the benchmark helpers count, time and compare correctly (no time is asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from torchmech import bench, devices
from torchmech.bench import Timing, crossover, mlp_flops

pytestmark = pytest.mark.chapter


def test_mlp_flops_against_a_hand_count() -> None:
    """A 2-4-3 MLP on 5 samples: forward 2·5·(2·4 + 4·3) = 200 FLOPs; backward adds the weight
    gradients (200) and the second layer's input gradient (2·5·4·3 = 120): 520 in all."""
    assert mlp_flops((2, 4, 3), 5, backward=False) == 200
    assert mlp_flops((2, 4, 3), 5) == 520
    assert mlp_flops((784, 32, 16, 10), 64, backward=False) == 2 * 64 * (784 * 32 + 32 * 16 + 16 * 10)
    with pytest.raises(ValueError, match="batch > 0"):
        mlp_flops((2, 4), 0)


def test_synced_timer_waits_for_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    """The benchmark timer synchronises CUDA before reading the clock when CUDA is in use, and
    the sweep's timer synchronises the device it measures."""
    calls: list[object] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append(device))
    devices.synced_perf_counter()
    assert calls == [None]
    devices.synchronize("cuda")
    assert calls[-1] == "cuda"
    synced: list[str] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # no real CUDA here for torch's own Timer
    monkeypatch.setattr(bench, "synchronize", synced.append)
    bench.measure(lambda: None, "cuda:1", min_run_time=0.001)
    assert len(synced) > 1 and set(synced) == {"cuda:1"}  # every timed call waits for its device


def test_synced_timer_does_not_touch_cuda_when_unused(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a CPU-only run (or before CUDA is initialised) the timer never synchronises."""
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: pytest.fail("synchronized"))
    assert devices.synced_perf_counter() > 0


def _t(device: str, width: int, batch: int, seconds: float) -> Timing:
    return Timing(device, width, batch, "fp32", seconds, 0.0, mlp_flops((width,) * 4, batch))


def test_crossover_on_synthetic_timings() -> None:
    """Crossover = per width, the smallest batch where CUDA beats the CPU; None if it never does
    or the CPU was not measured."""
    records = [
        _t("cpu", 32, 1, 1e-4), _t("cuda", 32, 1, 3e-4),
        _t("cpu", 32, 64, 2e-4), _t("cuda", 32, 64, 3e-4),   # CUDA never wins at width 32
        _t("cpu", 512, 1, 2e-4), _t("cuda:0", 512, 1, 3e-4),
        _t("cpu", 512, 64, 5e-3), _t("cuda:0", 512, 64, 3e-4),  # wins from batch 64
        _t("cpu", 512, 4096, 1e-1), _t("cuda:0", 512, 4096, 1e-3),
        _t("cuda", 4096, 64, 1e-3),                         # no CPU case at this width
    ]
    assert crossover(records) == {32: None, 512: 64, 4096: None}


def test_gemm_peak_times_each_precision_in_its_own_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """The TF32 peak is timed with TF32 on (and the switch restored), fp32 with it off, bf16 on
    bf16 matrices; the result is 2·n³ FLOPs over the median."""
    seen: list[tuple[bool, torch.dtype]] = []

    def fake_measure(fn, device, min_run_time=0.2):
        seen.append((torch.backends.cuda.matmul.allow_tf32, fn().dtype))
        return 0.5, 0.0

    monkeypatch.setattr(bench, "measure", fake_measure)
    before = torch.backends.cuda.matmul.allow_tf32
    assert bench.gemm_peak("cpu", "tf32", 8) == pytest.approx(2 * 8**3 / 0.5 / 1e12)
    bench.gemm_peak("cpu", "fp32", 8)
    bench.gemm_peak("cpu", "bf16", 8)
    assert seen == [(True, torch.float32), (False, torch.float32), (False, torch.bfloat16)]
    assert torch.backends.cuda.matmul.allow_tf32 == before


def test_cuda_graphs_need_cuda() -> None:
    """The CUDA-graph option refuses a CPU device with a clear error (a graph is a CUDA object)."""
    with pytest.raises(ValueError, match="CUDA graphs need a CUDA device"):
        bench.train_step(8, 2, "cpu", cuda_graph=True)


def test_cli_bench_writes_json_and_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`torchmech bench --quick` runs on the CPU alone, says CUDA was not available when it is not,
    and writes bench.json (every case, the GEMM peak, the environment) and bench.png."""
    from torchmech.cli import main

    assert main(["bench", "--quick", "--device", "cpu", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "width" in out.splitlines()[0] and "CUDA was not available" in out
    data = json.loads((tmp_path / "bench.json").read_text())
    assert len(data["records"]) == 4 and data["gemm_peak_tflops"]["cpu/fp32"] > 0
    assert data["environment"]["torch"] == torch.__version__
    assert (tmp_path / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
