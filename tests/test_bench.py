"""Whole chapter: the benchmark helpers count, time and compare correctly (no time is asserted)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from torchmech.check import bench, speed, to_accuracy
from torchmech.check.bench import Timing, crossover, mlp_flops
from torchmech.cli import main
from torchmech.runtime import devices
from torchmech.runtime.backends import BACKENDS
from torchmech.spec.claims import MPG_LOSSES, claim

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
    """`torchmech bench --quick` runs on the CPU alone: its table has the CPU's column and no CUDA one (no `nan`),
    it says CUDA was not available, names the GEMM peak "of peak" divides by (the fp32 matmul's TFLOP/s and size),
    writes bench.json (every case, the GEMM peak, the environment) and bench.png, and names both last."""
    from torchmech.cli import main

    assert main(["bench", "--quick", "--device", "cpu", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["width", "batch", "prec", "cpu", "ms", "spread", "TFLOP/s", "of", "peak"]
    assert "nan" not in out and "CUDA was not available" in out
    data = json.loads((tmp_path / "bench.json").read_text())
    assert len(data["records"]) == 4 and data["gemm_peak_tflops"]["cpu/fp32"] > 0
    assert [r["noisy"] for r in data["records"]] == [r["iqr_s"] > 0.1 * r["median_s"] for r in data["records"]]
    assert f"of peak: the share of the GEMM peak measured in this run (one n×n matmul): cpu fp32 " \
           f"{data['gemm_peak_tflops']['cpu/fp32']:.3g} TFLOP/s (n=1024)" in lines
    assert lines[-1] == f"wrote {tmp_path / 'bench.json'}, {tmp_path / 'bench.png'}"
    assert data["environment"]["torch"] == torch.__version__
    assert (tmp_path / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_table_has_a_column_per_device_measured() -> None:
    """A device not measured has no column (CPU alone: no CUDA time, no speedup); with both, CUDA's speedup over
    the CPU; a case one device did not run (TF32 on the CPU) and a precision without a peak show "–", never nan."""
    flops = mlp_flops((32,) * 4, 1)
    cpu_only = bench.format_table([_t("cpu", 32, 1, 1e-4)], {("cpu", "fp32"): flops / 1e-4 / 1e12 * 4})
    assert cpu_only.splitlines()[0].split() == ["width", "batch", "prec", "cpu", "ms", "spread", "TFLOP/s", "of",
                                                "peak"]
    assert cpu_only.splitlines()[2].split() == ["32", "1", "fp32", "0.100", "0%", "0.000", "25.0%"]
    both = bench.format_table([_t("cpu", 32, 1, 2e-4), _t("cuda:0", 32, 1, 1e-4),
                               Timing("cuda:0", 32, 1, "tf32", 5e-5, 0.0, flops)], {("cuda", "fp32"): 1.0})
    lines = both.splitlines()
    assert lines[0].split() == ["width", "batch", "prec", "cpu", "ms", "cuda", "ms", "spread", "speedup", "TFLOP/s",
                                "of", "peak"]
    assert lines[2].split()[:7] == ["32", "1", "fp32", "0.200", "0.100", "0%", "2.00"]
    assert lines[3].split()[:7] == ["32", "1", "tf32", "–", "0.050", "0%", "–"] and lines[3].split()[-1] == "–"
    assert "nan" not in cpu_only + both


@given(times=st.lists(st.floats(1e-6, 10.0), min_size=1, max_size=40))
def test_spread_is_the_median_and_the_interquartile_range(times: list[float]) -> None:
    """Repeated timings' (median, IQR), as torch.quantile's linear interpolation takes them (in float64), for any
    number of repeats (one: IQR 0), in any order; noisy exactly where the IQR is over NOISY_SPREAD of the median."""
    median, iqr = devices.spread(times)
    t = torch.tensor(times, dtype=torch.float64)
    assert median == pytest.approx(float(t.median()) if len(times) % 2 else float(t.quantile(0.5)), rel=1e-12)
    assert iqr == pytest.approx(float(t.quantile(0.75) - t.quantile(0.25)), rel=1e-9, abs=1e-15)
    assert devices.spread(times[::-1]) == pytest.approx((median, iqr))
    assert devices.noisy(median, iqr) == (iqr > devices.NOISY_SPREAD * median)


def test_a_noisy_timing_is_marked_in_the_tables_the_records_and_compare(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """A case whose IQR is 30 % of its median (another process took the core for some repeats) says ``noisy`` in
    bench's table and JSON, in bench --backends' table and in `torchmech compare`; a steady one (5 %) does not."""
    flops = mlp_flops((32,) * 4, 1)
    steady, shaky = Timing("cpu", 32, 1, "fp32", 1e-4, 5e-6, flops), Timing("cpu", 32, 64, "fp32", 1e-4, 3e-5, flops)
    table = bench.format_table([steady, shaky], {}).splitlines()
    assert "5%" in table[2] and "noisy" not in table[2] and "30% noisy" in table[3]
    files = bench.write_results([steady, shaky], {}, tmp_path / "a", {"torch": torch.__version__})
    written = json.loads(files[0].read_text())["records"]
    assert [r["noisy"] for r in written] == [False, True]
    rows = [speed.BackendTiming("cpu", "xor_mlp", 2, 1, 1e-3, None, 1e-3, 2e-4, 1.0),
            speed.BackendTiming("compile", "xor_mlp", 2, 1, 9.0, 8.9, 1e-3, 1e-5, 1.0)]
    lines = speed.format_backend_table(rows, {}).splitlines()
    assert "20% noisy" in lines[2] and "noisy" not in lines[3]
    calm = Timing("cpu", 32, 64, "fp32", 1e-4, 2e-6, flops)  # B timed the same case steadily: A's spread marks it
    b = bench.write_results([steady, calm], {}, tmp_path / "b", {"torch": torch.__version__})
    assert main(["compare", str(files[0]), str(b[0])]) == 0
    out = capsys.readouterr().out
    assert [line.endswith("noisy") for line in out.splitlines() if line.startswith("cpu fp32")] == [False, True]


def test_bench_warns_once_when_the_machine_is_busy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A load average above half a task per core when `bench` starts: one warning line with the timings, before
    the file it names (and in --json); an idle machine: none. Stderr (no terminal here) holds one progress line
    per backend."""
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    code, out, _, _ = _bench_backends(tmp_path, "--backends", "cpu", "--models", "xor_mlp")
    assert code == 0 and "busy" not in out
    monkeypatch.setattr(os, "getloadavg", lambda: (64.0, 0.0, 0.0))
    code, out, err, data = _bench_backends(tmp_path, "--backends", "cpu", "--models", "xor_mlp")
    lines = out.splitlines()
    assert code == 0 and data is not None and out.count("may be unreliable") == 1
    assert re.fullmatch(r"warning: the machine was busy when the timings began \(load average 64\.0 on \d+ cores?\): "
                        r"they may be unreliable", lines[-2]) and lines[-1].startswith("wrote ")
    assert [re.sub(r"\d+\.\d s", "T s", line) for line in err.splitlines()] == ["[bench] cpu done in T s (1/1)"]


# --- `torchmech bench --backends`: speed per backend beside the conformance verdict ---------------------------
def _bench_backends(tmp_path: Path, *argv: str) -> tuple[int, str, str, dict | None]:
    """Run `torchmech bench --quick --out tmp_path ARGV`; (exit code, stdout, stderr, bench-backends.json)."""
    import contextlib
    import io

    from torchmech.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["bench", "--quick", "--out", str(tmp_path), *argv])
    path = tmp_path / "bench-backends.json"
    return code, out.getvalue(), err.getvalue(), json.loads(path.read_text()) if path.exists() else None


def _rows(stdout: str) -> dict[tuple[str, str], str]:
    """The printed table's rows by (backend, model name), the whole line as the value."""
    return {(line.split()[0], line.split()[1]): line for line in stdout.splitlines()[2:]
            if line.strip() and not line.startswith(("compile s", "wrote", "warning")) and len(line.split()) > 2}


def test_bench_backends_one_row_per_backend_and_model(tmp_path: Path) -> None:
    """`bench --backends cpu-fp64 deterministic --models xor_mlp mpg` prints (and writes) one row per
    backend × model, cpu timed first although not named (the ratios are to it); cpu's ratio is exactly
    1.0, every other ratio is that backend's median over cpu's; step times are positive; without
    --conformance every verdict reads "not run". None of them compiles: no compile time (the first call's
    warm-up stays first_s), "–" in the table."""
    code, out, _, data = _bench_backends(tmp_path, "--backends", "cpu-fp64", "deterministic",
                                         "--models", "xor_mlp", "mpg")
    assert code == 0 and data is not None
    pairs = [(r["backend"], r["model"]) for r in data["records"]]
    assert pairs == [(b, m) for b in ("cpu", "cpu-fp64", "deterministic") for m in ("xor_mlp", "mpg")]
    assert set(_rows(out)) == set(pairs)
    cpu = {r["model"]: r["median_s"] for r in data["records"] if r["backend"] == "cpu"}
    for r in data["records"]:
        assert r["median_s"] > 0 and r["step_s"] == r["median_s"] and r["fraction"] is None
        assert r["compile_s"] is None and r["first_s"] > 0
        assert r["ratio"] == r["median_s"] / cpu[r["model"]]
        assert r["conforms"] == "not run"
    assert [r["ratio"] for r in data["records"] if r["backend"] == "cpu"] == [1.0, 1.0]
    assert all(line.split()[-2:] == ["not", "run"] for line in _rows(out).values())
    assert all(line.split()[4] == "–" for line in _rows(out).values())  # the compile s column


def test_bench_backends_reports_compile_time_apart(tmp_path: Path) -> None:
    """On `compile` (only the tiny XOR MLP is compiled: seconds), the first call's compiling is reported
    apart: compile_s is more than 100 steady-state steps and more than eager cpu's first-call warm-up (which
    is no compile time: "–"), while the step time itself stays a steady-state median (below compile_s / 100)."""
    code, out, _, data = _bench_backends(tmp_path, "--backends", "compile", "--models", "xor_mlp")
    assert code == 0 and data is not None
    by = {r["backend"]: r for r in data["records"]}
    assert set(by) == {"cpu", "compile"} and by["cpu"]["ratio"] == 1.0
    assert by["compile"]["compile_s"] > 100 * by["compile"]["median_s"]
    assert by["compile"]["compile_s"] == max(by["compile"]["first_s"] - by["compile"]["median_s"], 0.0)
    assert by["compile"]["compile_s"] > by["cpu"]["first_s"] - by["cpu"]["median_s"]
    assert by["cpu"]["compile_s"] is None and _rows(out)["cpu", "xor_mlp"].split()[4] == "–"
    assert float(_rows(out)["compile", "xor_mlp"].split()[4]) == pytest.approx(by["compile"]["compile_s"], abs=0.006)


def test_bench_backends_mnist_epoch_says_its_fraction(mnist_root: Path) -> None:
    """The MNIST epoch on the exact-order path: a quick run times its first batches and says the
    fraction (3 of the 938 batches of an epoch); steps per call = those batches, step_s = median / 3;
    cpu-fp64's epoch ratio is its median over cpu's."""
    records = speed.time_backends(["cpu-fp64"], [speed.EPOCH], epoch_batches=3, repeats=1, data=mnist_root)
    assert [(r.backend, r.model) for r in records] == [("cpu", speed.EPOCH), ("cpu-fp64", speed.EPOCH)]
    cpu, fp64 = records
    assert cpu.steps == fp64.steps == 3 and cpu.fraction == fp64.fraction == 3 / 938
    assert cpu.step_s == cpu.median_s / 3 and cpu.ratio == 1.0 and fp64.ratio == fp64.median_s / cpu.median_s
    assert "mnist epoch 3/938" in speed.format_backend_table(records, {})


@pytest.mark.parametrize("argv", [["--backends", "no-such-backend"], ["--backends", "cpu", "--models", "resnet"]])
def test_bench_backends_bad_name_is_a_one_line_error(tmp_path: Path, argv: list[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """An unknown backend (or model) is one line on stderr, exit 2, naming the choices; nothing is timed
    (no backend's step or epoch is run: all names are checked first) or written."""
    monkeypatch.setattr(speed, "time_step", lambda *a, **k: pytest.fail("timed before checking the names"))
    monkeypatch.setattr(speed, "time_epoch", lambda *a, **k: pytest.fail("timed before checking the names"))
    code, out, err, data = _bench_backends(tmp_path, *argv)
    assert code == 2 and out == "" and data is None
    assert len(err.strip().splitlines()) == 1 and err.startswith("torchmech: error: ")
    assert ("cpu, cpu-fp64, compile" in err) if argv[1] != "cpu" else ("xor_mlp, mpg, mnist, mnist_epoch" in err)


def test_bench_backends_unavailable_backend_names_the_available_ones(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A backend that cannot run here (no CUDA, no Apple GPU) is one line, exit 2, listing those that can,
    before anything is timed (not even cpu)."""
    monkeypatch.setattr(speed, "time_step", lambda *a, **k: pytest.fail("timed before checking the names"))
    from torchmech.runtime.backends import BACKENDS, available_backends

    missing = next((name for name, b in BACKENDS.items() if b.missing() is not None), None)
    if missing is None:
        pytest.skip("every backend runs on this machine")
    code, _, err, data = _bench_backends(tmp_path, "--backends", "cpu", missing)
    assert code == 2 and data is None and len(err.strip().splitlines()) == 1
    assert "not available" in err and f"available: {', '.join(available_backends())}" in err


def test_bench_backends_reads_the_conformance_verdict(tmp_path: Path) -> None:
    """With --conformance FILE each backend's column counts its failing cells in that matrix: a fake
    conformance.json with one failing cell on `deterministic` reads "1 FAIL" there, "holds (0 fail)" on
    cpu; a backend absent from the matrix reads "not in matrix"; a quick matrix's verdicts say "quick"."""
    fake = tmp_path / "conformance.json"
    fake.write_text(json.dumps({"quick": False, "backends": {"cpu": {}, "cpu-fp64": {}, "deterministic": {}},
                                "claims": [], "failed": [{"id": "s3.grad", "backend": "deterministic"}]}))
    code, out, _, data = _bench_backends(tmp_path, "--backends", "deterministic", "--models", "xor_mlp",
                                         "--conformance", str(fake))
    assert code == 0 and data is not None
    rows = _rows(out)
    assert rows["deterministic", "xor_mlp"].endswith("1 FAIL")
    assert rows["cpu", "xor_mlp"].endswith("holds (0 fail)")
    assert data["verdicts"] == {"cpu": "holds (0 fail)", "deterministic": "1 FAIL"}
    matrix = json.loads(fake.read_text())
    assert speed.conformance_status(matrix, ["cpu-bf16"]) == {"cpu-bf16": "not in matrix"}
    assert speed.conformance_status(matrix | {"quick": True}, ["cpu", "deterministic"]) == {  # a quick matrix says so
        "cpu": "holds (0 fail, quick)", "deterministic": "1 FAIL (quick)"}


@pytest.mark.parametrize("content", ["{not json", json.dumps({"records": []}), None])
def test_bench_backends_bad_conformance_file_fails_before_timing(tmp_path: Path, content: str | None,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A conformance file that is missing, not JSON, or not a conformance matrix is one line naming it,
    exit 2, before anything is timed (time_backends is never called, no bench-backends.json)."""
    monkeypatch.setattr(speed, "time_backends", lambda *a, **k: pytest.fail("timed before reading the file"))
    fake = tmp_path / "conformance.json"
    if content is not None:
        fake.write_text(content)
    code, _, err, data = _bench_backends(tmp_path, "--backends", "cpu", "--conformance", str(fake))
    assert code == 2 and data is None and len(err.strip().splitlines()) == 1 and str(fake) in err


def test_bench_threads_hold_for_the_command_only(tmp_path: Path) -> None:
    """`bench --threads 1` times with one torch thread (the environment written says so) and gives the
    process its thread count back afterwards."""
    before = torch.get_num_threads()
    code, out, _, data = _bench_backends(tmp_path, "--backends", "cpu", "--models", "xor_mlp", "--threads", "1")
    assert code == 0 and data is not None and data["environment"]["threads"] == "1" and "1 CPU threads" in out
    assert torch.get_num_threads() == before


# --- time to accuracy --------------------------------------------------------------------------------
@given(times=st.lists(st.floats(1e-3, 10.0), min_size=1, max_size=25),
       quality=st.lists(st.floats(0.0, 1.0), min_size=25, max_size=25), target=st.floats(0.0, 1.0))
def test_time_to_accuracy_sums_the_steady_epochs_through_the_first_that_reaches(times: list[float],
                                                                                quality: list[float],
                                                                                target: float) -> None:
    """Over drawn epoch times and qualities: the epochs are 1 + the index of the first quality ≥ the target;
    the seconds are the epochs' times through it with the first counted as the median of the rest (never more
    than it took), and its excess is reported apart; not reached: no epochs, no seconds."""
    quality = quality[: len(times)]
    row = to_accuracy.to_accuracy(to_accuracy.Trace("cpu", "mnist", tuple(times), tuple(quality)),
                                  to_accuracy.Target("mnist", "test accuracy", target, True, "s8.mnist.test_acc"))
    steady = sorted(times[1:])[(len(times) - 2) // 2: (len(times) - 1) // 2 + 1] if len(times) > 1 else times
    median = sum(steady) / len(steady)
    assert row.epoch_s == pytest.approx(median) and row.first_extra_s == pytest.approx(max(times[0] - median, 0))
    hits = [i for i, q in enumerate(quality) if q >= target]
    if not hits:
        assert row.epochs is None and row.seconds is None
    else:
        assert row.epochs == hits[0] + 1
        assert row.seconds == pytest.approx(min(times[0], median) + sum(times[1: hits[0] + 1]))
    assert row.trained_epochs == len(times) and row.final == quality[-1]


def test_the_targets_are_the_registrys() -> None:
    """MNIST's target is the lower edge of the test-accuracy claim's band; MPG's the book's loss at the last
    printed epoch, compared as printed (to the book's decimals)."""
    acc = claim("s8.mnist.test_acc")
    assert to_accuracy.TARGETS["mnist"].value == pytest.approx(acc.number - acc.rule.cpu.width)
    last = claim(f"s7.mpg.loss.epoch{max(MPG_LOSSES)}")
    mpg = to_accuracy.TARGETS["mpg"]
    assert (mpg.value, mpg.higher, mpg.source) == (last.number, False, last.id)
    half = 0.5 * 10.0 ** -len(last.book.split(".")[1])
    assert mpg.reached(last.number + 0.9 * half) and not mpg.reached(last.number + 1.1 * half)


def test_the_timed_training_is_the_chapters_run(runs, mnist_root: Path) -> None:
    """Timing does not change the training: MPG's traced losses are the chapter run's, epoch for epoch, and
    MNIST's test accuracy after one traced epoch is that of the chapter's one-epoch run."""
    from torchmech.chapter.runs import mnist_run

    mpg = to_accuracy.trace("cpu", "mpg")
    assert list(mpg.quality) == runs.get("mpg", backend=BACKENDS["cpu"]).history.train_loss
    assert len(mpg.epoch_s) == 200 and min(mpg.epoch_s) > 0
    mnist = to_accuracy.trace("cpu", "mnist", mnist_root, epochs=1)
    assert mnist.quality == (mnist_run(mnist_root, epochs=1).test_acc,)


def test_cli_to_accuracy_writes_the_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`bench --to-accuracy --backends deterministic --models mpg`: one row per backend (cpu first), the
    epochs and seconds to the book's loss (reached on the reference, as the chapter's run passes it), the
    ratio to cpu, the verdict column; an unknown model or backend is a one-line error."""
    code = main(["bench", "--to-accuracy", "--backends", "deterministic", "--models", "mpg", "--out", str(tmp_path),
                 "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and [(r["backend"], r["model"]) for r in out["rows"]] == [("cpu", "mpg"), ("deterministic", "mpg")]
    cpu, det = out["rows"]
    assert cpu["epochs"] is not None and det["epochs"] == cpu["epochs"] and cpu["ratio"] == 1.0
    assert det["ratio"] == pytest.approx(det["seconds"] / cpu["seconds"]) and out["conformance"]["cpu"] == "not run"
    assert json.loads((tmp_path / "bench-to-accuracy.json").read_text())["rows"][0]["epochs"] == cpu["epochs"]
    for argv, message in ((["--models", "resnet"], "unknown model(s) resnet: choose from mnist, mpg"),
                          (["--backends", "tpu"], "unknown backend 'tpu': choose from cpu, cpu-fp64")):
        assert main(["bench", "--to-accuracy", *argv, "--out", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_to_accuracy_names_a_backend_whose_training_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    """A backend whose training raises (a run that blows up, a compiler that fails) gets a row saying so, with
    the one line it raised; the reference and the other backends are still timed to their targets."""
    from dataclasses import dataclass

    from torch import nn

    from torchmech.runtime.backends import Backend

    @dataclass(frozen=True)
    class Raises(Backend):
        def prepare(self, model: nn.Module) -> nn.Module:
            raise RuntimeError("planted: this backend cannot run the model\nsecond line")

    monkeypatch.setitem(BACKENDS, "raises", Raises("raises", "raises on every model"))
    rows = to_accuracy.time_to_accuracy(["raises", "deterministic"], ["mpg"])
    assert [(r.backend, r.error) for r in rows] == [
        ("cpu", None), ("raises", "RuntimeError: planted: this backend cannot run the model"), ("deterministic", None)]
    assert rows[1].seconds is None and rows[2].epochs == rows[0].epochs is not None
    assert "error (RuntimeError: planted" in to_accuracy.format_table(rows, {})
