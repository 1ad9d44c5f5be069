"""Whole chapter: the `torchmech chapter` command and the learning path's own machinery."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from torchmech import SECTIONS
from torchmech.cli import main
from torchmech.runtime import console
from torchmech.runtime.console import PROGRESS_LINE, QUIET_LOGGERS, Progress
from torchmech.spec.claims import book, claims

pytestmark = pytest.mark.chapter

ROOT_CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"

OK = ("exact", "band", "bound", "law", "erratum")  # the holds values of a claim that holds


@pytest.mark.slow
def test_full_chapter_json_for_mnist_and_lightning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without --quick, §8 and §9 report the chapter's full runs (20 epochs, 10 epochs): one row per
    registry claim, in registry order, every one holding. The runs are the process's shared runs, so
    §8's and §9's own tests read the same trainings (nothing trains twice in one session)."""
    assert main(["chapter", "--json", "--section", "s8", "s9", "--out", str(tmp_path)]) == 0
    rows = json.loads(capsys.readouterr().out)["claims"]
    assert [r["id"] for r in rows] == [c.id for c in claims("s8") + claims("s9")]
    assert all(r["holds"] in OK for r in rows), [r for r in rows if r["holds"] not in OK]
    assert (tmp_path / "mnist_curve.png").is_file()


def test_chapter_table_has_a_row_per_claim(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The plain table: header, one row per registry claim labelled §N with its id, and the verdict;
    --section picks sections. The last lines name the files written, the HTML page (the report to read) last."""
    assert main(["chapter", "--section", "s1", "s4", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:4] == ["§", "claim", "book", "measured"]
    ids = [c.id for c in claims("s1") + claims("s4")]
    assert [line.split()[1] for line in out[2:2 + len(ids)]] == ids
    assert {line.split()[0] for line in out[2:2 + len(ids)]} == {"§1", "§4"}
    assert out[-3].startswith(f"{len(ids)}/{len(ids)} claims hold")
    assert out[-2:] == [f"wrote {tmp_path / 'chapter13.md'}, {tmp_path / 'results.json'}",
                        f"report: {tmp_path / 'chapter13.html'}"]


def test_quick_chapter_report_has_every_claim_and_its_images(tmp_path: Path) -> None:
    """`torchmech chapter --quick --out DIR`: chapter13.md has a row for every registry claim, every
    claim of §1–§7 holds on the CPU (--quick trims only §8 and §9), trimmed claims say so, the figures
    load as images, and results.json holds every claim (the registry's order) and the environment;
    chapter13.html is written beside them (its contents: tests/test_report.py).
    --quick leaves out §8–§9's long trainings and §5–§6's 256-seed ensembles: those claims say `quick`."""
    import matplotlib.image

    assert main(["chapter", "--quick", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "chapter13.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    md = (tmp_path / "chapter13.md").read_text()
    rows = [line for line in md.splitlines() if re.match(r"\| §\d", line)]
    assert [row.split("|")[2].strip().strip("`") for row in rows] == [c.id for c in claims()]
    assert "| quick |" in md and "quick run" in md
    images = [tmp_path / line.split("](")[1].rstrip(")") for line in md.splitlines() if line.startswith("![")]
    assert len(images) >= 8
    for image in images:
        assert matplotlib.image.imread(image).size > 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["quick"] is True and results["environment"]["torch"] == torch.__version__
    assert results["environment"]["device"] == "cpu"
    assert [r["id"] for r in results["claims"]] == [c.id for c in claims()]
    kept = {c.id for c in claims() if c.section not in ("s8", "s9") and c.quick == "check"}
    full = [r for r in results["claims"] if r["id"] in kept]  # §1–§7 less the 256-seed ensembles
    assert all(r["holds"] in OK for r in full), [r for r in full if r["holds"] not in OK]
    assert all(r["holds"] in (*OK, "quick") for r in results["claims"])


def test_chapter_output_under_a_file_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An output folder that cannot be created (under a regular file): one line, exit 2."""
    (tmp_path / "file").write_text("")
    assert main(["chapter", "--section", "s1", "--out", str(tmp_path / "file" / "reports")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("torchmech: error: cannot create the report folder") and len(err.splitlines()) == 1


def test_chapter_without_mnist_is_a_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Without the MNIST files §8 stops the chapter as `torchmech mnist` stops: one line naming the
    missing file, the folder and `torchmech data fetch`, exit 1; first from ``$TORCHMECH_DATA``, then
    from `--data DIR` (which wins over the variable)."""
    empty, also_empty = tmp_path / "empty", tmp_path / "also_empty"
    monkeypatch.setenv("TORCHMECH_DATA", str(empty))
    for argv in (["chapter", "--section", "s8"], ["chapter", "--section", "s8", "--data", str(also_empty)]):
        assert main([*argv, "--out", str(tmp_path / "out")]) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and err.startswith("torchmech: error: MNIST file(s) train-images-idx3-ubyte")
        assert str(also_empty if "--data" in argv else empty) in err and "torchmech data fetch" in err


def test_chapter_console_is_the_table_and_the_verdict(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """`torchmech chapter` (§9 trains with Lightning) prints the table, the verdict and the files on stdout, and
    on stderr (not a terminal here) only its own progress lines: no Lightning banner or tip (its loggers write to
    stderr, as on a console), no warning; the loggers' levels and the warning filters are as before afterwards."""
    import lightning.pytorch  # its import sets its loggers' levels: the command restores what it found

    lightning_logger = logging.getLogger(lightning.pytorch.__name__)
    console = logging.StreamHandler(sys.stderr)  # Lightning's own handler when the root logger has none
    lightning_logger.addHandler(console)
    levels = [logging.getLogger(name).level for name in QUIET_LOGGERS]
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            filters = list(warnings.filters)
            assert main(["chapter", "--quick", "--section", "s9", "--out", str(tmp_path)]) == 0
            assert list(warnings.filters) == filters
    finally:
        lightning_logger.removeHandler(console)
    assert [str(w.message) for w in caught] == []
    assert [logging.getLogger(name).level for name in QUIET_LOGGERS] == levels
    out, err = capfd.readouterr()
    assert all(PROGRESS_LINE.match(line) for line in err.splitlines()), err
    assert err.splitlines()[-1].startswith(f"[chapter] §9 done: {len(claims('s9'))} claims in ")
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["§", "claim", "book", "measured"] and set(lines[1]) <= {"-", " "}
    assert all(line.startswith("§9 ") for line in lines[2:-4]) and len(lines) > 6
    assert lines[-4] == "" and re.match(r"\d+/\d+ claims hold", lines[-3])
    assert lines[-2].startswith("wrote ") and lines[-1] == f"report: {tmp_path / 'chapter13.html'}"


def _exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exit_:  # argparse exits on bad arguments
        return int(exit_.code or 0)


@pytest.mark.parametrize(("argv", "message"), [
    (["chapter", "--device", "tpu"], "unknown device 'tpu'"),
    (["chapter", "--bogus"], "unrecognized arguments"),
    (["chapter", "--section", "s10"], "invalid choice: 's10'"),
    (["xor", "--epochs", "0"], "--epochs: must be > 0"),
    (["xor", "--seeds", "many"], "expected a whole number"),
    (["xor", "--model", "svm"], "invalid choice: 'svm'"),
    (["xor", "--seeds", "4", "--plot", "figs"], "--plot draws one run"),
    (["xor", "--device", "cuda:7"], "is not available"),
    (["lightning", "--devices", "cpu"], "--devices: expected a whole number, got 'cpu'"),
    (["lightning", "--device", "cpu"], "unrecognized arguments: --device cpu"),  # it has --accelerator
    (["data", "fetch", "--device", "cpu"], "unrecognized arguments: --device cpu"),
    (["nonsense"], "invalid choice"),
    ([], "required"),
])
def test_cli_errors_are_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Wrong arguments give a one-line error and a non-zero exit, never a traceback."""
    assert _exit_code(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_xor_single_run_json_and_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`torchmech xor --seed S --json` prints exactly the final accuracies and losses of
    ``xor_run(model, epochs=…, seed=S)`` on the book's XOR data (the same call, the same seed: equal
    floats, JSON round-trips them); --plot writes the three PNGs."""
    from torchmech.chapter.data.xor import make_xor
    from torchmech.chapter.runs import xor_run

    assert main(["xor", "--model", "logistic", "--seed", "3", "--epochs", "3", "--plot", str(tmp_path),
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    _, history = xor_run("logistic", epochs=3, seed=3, device="cpu", data=make_xor())
    assert (out["model"], out["seed"], out["epochs"]) == ("logistic", 3, 3)
    assert [out["train_acc"], out["valid_acc"], out["train_loss"], out["valid_loss"]] == [
        history.train_acc[-1], history.valid_acc[-1], history.train_loss[-1], history.valid_loss[-1]]
    assert sorted(Path(p).name for p in out["figures"]) == [
        "xor_data.png", "xor_logistic_curves.png", "xor_logistic_regions.png"]


def test_xor_many_seeds_reports_the_success_rate(capsys: pytest.CaptureFixture[str]) -> None:
    """`torchmech xor --seed S --seeds K --json` reports what ``train_ensemble`` measures for seeds
    S … S+K−1 with the model's book learning rate: the success rate (valid acc > 0.9), the median and
    the best validation accuracy, exactly. 80 epochs from seed 3 put the rate strictly between 0 and 1
    (3 of 8 here), so a wrong threshold or seed range shows."""
    from torchmech.chapter.capacity import train_ensemble
    from torchmech.chapter.data.xor import make_xor
    from torchmech.chapter.models import MyNoisyModule

    assert main(["xor", "--model", "noisy", "--seed", "3", "--seeds", "8", "--epochs", "80", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    result = train_ensemble(MyNoisyModule, make_xor(), range(3, 11), epochs=80, lr=0.015, device="cpu")
    assert (out["seeds"], out["epochs"], out["parameters"]) == (8, 80, 37)
    assert 0 < out["success_rate"] < 1
    assert [out["success_rate"], out["median_valid_acc"], out["best_valid_acc"]] == [
        result.success_rate(0.9), result.valid_acc.median().item(), result.valid_acc.max().item()]


def test_xor_cannot_write_figures_under_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An output directory that cannot be created (under a regular file) is a one-line error."""
    (tmp_path / "file").write_text("")
    assert main(["xor", "--epochs", "1", "--plot", str(tmp_path / "file" / "figs")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("torchmech: error: cannot write") and len(err.splitlines()) == 1


def test_mpg_prints_the_books_loss_lines(capsys: pytest.CaptureFixture[str]) -> None:
    """`torchmech mpg` prints `Epoch N  Loss …` every 20 epochs, as the book, then the test metrics."""
    assert main(["mpg", "--epochs", "21"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:2] == [f"Epoch {e}  Loss {book(f's7.mpg.loss.epoch{e}')}" for e in (0, 20)]
    assert "test_mse=" in out[-1] and "test_mae=" in out[-1]


def test_mnist_json_and_missing_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`torchmech mnist --json` reports each epoch's accuracy and the test accuracy; without the
    data it says which files are missing and which command fetches them, exit 1."""
    assert main(["mnist", "--epochs", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["pipeline"] == "fast" and 0 < out["test_acc"] < 1
    assert f"{out['train_acc'][0]:.4f}" == book("s8.mnist.train_acc.epoch0")
    assert main(["mnist", "--epochs", "1", "--data", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert "train-images-idx3-ubyte" in err and "torchmech data fetch" in err and len(err.splitlines()) == 1


class _NoNetwork:
    """A source (and a socket) that fails the test if anything asks it."""

    name = "a source that must not be asked"

    def fetch(self, names: list[str], dest: Path) -> None:
        raise AssertionError(f"asked a source for {names} although every file was verified locally")

    @staticmethod
    def connect(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"opened a network connection to {args[1:]}")


def test_data_fetch_is_idempotent(mnist_root: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    """`torchmech data fetch` on a verified data root only checks the files: with every download
    source replaced by one that fails if asked (``default_sources``, which ``fetch_mnist`` reads
    when given none) and sockets unable to connect, it succeeds and prints the raw folder."""
    import socket

    from torchmech.chapter.data import mnist

    monkeypatch.setattr(mnist, "default_sources", lambda: [_NoNetwork()])
    monkeypatch.setattr(socket.socket, "connect", _NoNetwork.connect)
    assert main(["data", "fetch", "--json"]) == 0  # the default root, as `mnist_root` verified it
    assert json.loads(capsys.readouterr().out)["mnist"] == str(mnist.raw_dir(mnist_root))


def test_lightning_json_and_a_missing_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`torchmech lightning --json` trains, tests the best checkpoint and reports where the logs
    went; resuming from a checkpoint that does not exist is a one-line error."""
    assert main(["lightning", "--epochs", "1", "--logdir", str(tmp_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["epoch"] == 1 and out["global_step"] == 860 and out["test_acc"] > 0.85
    assert Path(out["last_checkpoint"]).is_file() and out["log_dir"].endswith("version_0")
    assert main(["lightning", "--resume", str(tmp_path / "absent.ckpt"), "--logdir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("torchmech: error: no checkpoint to resume from") and len(err.splitlines()) == 1


def test_ignite_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`torchmech ignite --json` reports the validation accuracy per epoch."""
    pytest.importorskip("ignite", reason="pytorch-ignite is an optional extra (torchmech[ignite])")
    assert main(["ignite", "--epochs", "1", "--logdir", str(tmp_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["valid_acc"]) == 1 and out["valid_acc"][0] > 0.85


def test_cli_runs_as_a_program() -> None:
    """`python -m torchmech` is the same command as the console script, with the same errors."""
    done = subprocess.run([sys.executable, "-m", "torchmech", "chapter", "--device", "cuda:99"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2
    assert done.stderr.startswith("torchmech: error:") and "Traceback" not in done.stderr


# --- progress in a log, and nothing else on the console ----------------------------------------------------
def _torchmech(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m torchmech ARGV`, stdout and stderr to pipes (no terminal: as in a log), one torch thread."""
    return subprocess.run([sys.executable, "-m", "torchmech", *argv], capture_output=True, text=True, timeout=300,
                          check=False, env=os.environ | {"OMP_NUM_THREADS": "1"} | (env or {}))


def _seconds_out(lines: list[str]) -> list[str]:
    return [re.sub(r"\d+\.\d s", "T s", line) for line in lines]


def test_chapter_in_a_log_says_each_section_and_names_the_page_last(tmp_path: Path) -> None:
    """With stderr redirected (CI, nohup, a notebook: a bar would draw nothing) `torchmech chapter` writes one line
    per finished section there, with its claims and seconds; stdout ends with the files, the HTML page last."""
    done = _torchmech("chapter", "--quick", "--sections", "s1", "s4", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    assert _seconds_out(done.stderr.splitlines()) == [f"[chapter] §1 done: {len(claims('s1'))} claims in T s (1/2)",
                                                       f"[chapter] §4 done: {len(claims('s4'))} claims in T s (2/2)"]
    assert all(PROGRESS_LINE.match(line) for line in done.stderr.splitlines())
    assert done.stdout.splitlines()[-1] == f"report: {tmp_path / 'chapter13.html'}"


def test_conformance_in_a_log_says_each_column_and_no_cuda_home_line(tmp_path: Path) -> None:
    """`torchmech conformance` in a log: one line per column, measured in two worker processes (each says when
    it finished, since the start). On a machine with a CUDA toolkit and no CUDA device (planted: CUDA_HOME set, no
    device visible), torch.utils.cpp_extension logs "No CUDA runtime is found, using CUDA_HOME=…" when it is
    imported (torch.utils.benchmark imports it, in every process): the line reaches neither stdout nor stderr."""
    plant = {"CUDA_HOME": str(tmp_path), "CUDA_VISIBLE_DEVICES": ""}
    if torch.version.cuda:  # the plant makes torch log it (a CPU-only build of torch never does)
        control = subprocess.run([sys.executable, "-c", "import torch.utils.cpp_extension"], capture_output=True,
                                 text=True, timeout=120, check=False, env=os.environ | plant)
        assert "No CUDA runtime is found" in control.stderr
    done = _torchmech("conformance", "--quick", "--sections", "s1", "--backends", "cpu", "--workers", "2",
                      "--out", str(tmp_path / "out"), env=plant)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "No CUDA runtime" not in done.stdout + done.stderr and "CUDA_HOME" not in done.stdout + done.stderr
    assert sorted(re.sub(r"\(\d/2\)$", "(i/2)", line) for line in _seconds_out(done.stderr.splitlines())) == [
        "[conformance] cpu done at T s (i/2)", "[conformance] cpu-fp64 done at T s (i/2)"]


def test_progress_in_a_log_and_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """In a log (a stream that is no terminal) a Progress writes a line per finished step, for ticks (epochs) one
    line at the end, and while it is open the chapter's long runs say when they finish; on a terminal, tqdm's bar
    and nothing else; with no Progress open (a test session, a library call) a run says nothing."""
    from torchmech.spec.runs import Runs

    monkeypatch.setattr(console, "LONG_RUN_S", 0.0)  # every run is long
    log = io.StringIO()
    with Progress(2, "chapter", stream=log) as progress:
        Runs().get("xor", model="logistic", epochs=2)
        progress.done("§5", "3 claims")
        progress.done("§6")
    with Progress(3, "mnist", unit="epochs", stream=log) as progress:
        for _ in range(3):
            progress.update()
    Runs().get("xor", model="logistic", epochs=2)  # no Progress open: nothing said
    assert _seconds_out(log.getvalue().splitlines()) == [
        "[run] xor logistic 2 epochs: T s", "[chapter] §5 done: 3 claims in T s (1/2)",
        "[chapter] §6 done in T s (2/2)", "[run] mnist 3 epochs: T s"]
    assert all(PROGRESS_LINE.match(line) for line in log.getvalue().splitlines())

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Terminal()
    with Progress(1, "chapter", stream=tty, leave=True) as progress:
        Runs().get("xor", model="logistic", epochs=2)
        progress.done("§5", "3 claims")
    assert "chapter: 100%" in tty.getvalue() and "§5 done" in tty.getvalue()
    assert "[run]" not in tty.getvalue() and "[chapter]" not in tty.getvalue()


HEAVY_MODULES = {"torch", "tqdm", "lightning", "matplotlib"}


@pytest.mark.parametrize("argv", [
    ["--version"], ["--help"],
    *([command, "--help"] for command in ("chapter", "xor", "mpg", "mnist", "lightning", "ignite", "bench", "data")),
    ["data", "fetch", "--help"],
])
def test_help_and_version_import_nothing_heavy(argv: list[str]) -> None:
    """`torchmech --version`, `--help` and every subcommand's `--help` answer (exit 0, text on stdout)
    without importing torch, tqdm, Lightning or matplotlib: `python -X importtime` lists every module
    the interpreter imported, torchmech.cli among them."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "torchmech", *argv],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0 and done.stdout.strip()
    modules = {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "torchmech.cli" in modules
    assert sorted(m for m in modules if m.split(".")[0] in HEAVY_MODULES) == []


# --- the learning path's machinery (root conftest.py), run on a scratch project ---------------
@pytest.fixture
def scratch(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(ROOT_CONFTEST.read_text())
    pytester.mkdir("tests")
    pytester.makeini("[pytest]\naddopts = --strict-markers -p no:cacheprovider\n")
    return pytester


def test_a_test_without_a_section_marker_fails_collection(scratch: pytest.Pytester) -> None:
    """Every test under tests/ needs exactly one of s1…s9/chapter: none, or two, stop the run."""
    (scratch.path / "tests" / "test_x.py").write_text(
        "import pytest\n"
        "def test_none(): pass\n"
        "@pytest.mark.s1\n@pytest.mark.s2\ndef test_two(): pass\n"
        "@pytest.mark.s1\ndef test_one(): pass\n")
    result = scratch.runpytest_inprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*exactly one section marker*", "*test_none: no section marker",
                                 "*test_two: s1, s2"])


def test_slow_is_deselected_and_the_summary_counts_by_section(scratch: pytest.Pytester) -> None:
    """`slow` runs only with --runslow; a `device` test runs on cpu and skips cuda with a reason
    when absent; the closing summary gives each section's passed/failed/skipped."""
    (scratch.path / "tests" / "test_y.py").write_text(
        "import pytest\n"
        "pytestmark = pytest.mark.s3\n"
        "def test_ok(device): assert device in ('cpu', 'cuda', 'mps')\n"
        "def test_bad(): assert False\n"
        "@pytest.mark.slow\ndef test_long(): pass\n")
    result = scratch.runpytest_inprocess("-rs")
    outcomes = result.parseoutcomes()
    assert outcomes["deselected"] == 1 and outcomes["failed"] == 1
    result.stdout.fnmatch_lines(["*learning path*", f"{SECTIONS['s3']}*1 failed*"])
    if "skipped" in outcomes:
        result.stdout.fnmatch_lines(["*no CUDA device on this machine*"])
    with_slow = scratch.runpytest_inprocess("--runslow").parseoutcomes()
    assert "deselected" not in with_slow
    assert with_slow["passed"] == outcomes["passed"] + 1


def test_unregistered_markers_are_rejected(scratch: pytest.Pytester) -> None:
    """--strict-markers: a typo'd marker is an error, not a silently unmarked test."""
    (scratch.path / "tests" / "test_z.py").write_text(
        "import pytest\n@pytest.mark.s10\ndef test_typo(): pass\n")
    result = scratch.runpytest_inprocess()
    assert result.ret != pytest.ExitCode.OK
    assert "'s10' not found in `markers`" in str(result.stdout) + str(result.stderr)


def test_a_warning_forced_through_stays_off_the_quiet_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """A library that forces its warning through (`simplefilter("always")` around `warn`, as torch 2.4's
    torch.distributed.optim does on Ignite's import) shows nothing inside the chapter's quiet block; after it,
    warnings show again."""
    import warnings

    from torchmech.runtime.console import quiet_libraries

    shown: list[str] = []
    monkeypatch.setattr(warnings, "showwarning", lambda message, *args, **kwargs: shown.append(str(message)))

    def forced(text: str) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn(text, DeprecationWarning, stacklevel=1)

    with quiet_libraries(import_lightning=False):
        forced("inside")
    forced("after")
    assert shown == ["after"]
