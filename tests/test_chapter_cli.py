"""Whole chapter: the `torchmech chapter` command and the learning path's own machinery."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import torch

from torchmech import SECTIONS, lit, report
from torchmech.cli import main
from torchmech.devices import OFF_CPU_REL
from torchmech.report import SECTION_RUNNERS
from torchmech.train import History

if TYPE_CHECKING:
    from tests.conftest import BookRuns
    from torchmech.lit import LightningRun
    from torchmech.projects import MnistResult

pytestmark = pytest.mark.chapter

ROOT_CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"


@pytest.mark.slow
def test_full_chapter_rows_for_mnist_and_lightning_hold(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch, book_runs: BookRuns) -> None:
    """Without --quick, §8 and §9 report the chapter's full runs (20 epochs, 10 epochs): every row
    holds, exact where no band is named. §1–§7 are the same with or without --quick (the quick
    test checks them). The two trainings are §8's and §9's own tests' runs (the same calls, the
    same seeds: see ``BookRuns``); the report is asked for exactly those calls."""
    def mnist_run(*, epochs: int, device: torch.device) -> MnistResult:
        assert epochs == 20
        return book_runs.mnist(str(device))

    def fit(epochs: int, *, logdir: Path, accelerator: str, devices: int, progress: bool) -> LightningRun:
        assert (epochs, devices, progress) == (10, 1, False)
        return book_runs.lightning(accelerator)

    monkeypatch.setattr(report, "mnist_run", mnist_run)
    monkeypatch.setattr(lit, "fit", fit)
    assert main(["chapter", "--json", "--section", "s8", "s9", "--out", str(tmp_path)]) == 0
    claims = json.loads(capsys.readouterr().out)["claims"]
    assert [c["section"] for c in claims] == ["s8"] * 21 + ["s9"] * 2  # 20 epochs and the test; acc and epoch
    assert all(c["holds"] in ("exact", "band") for c in claims), [c for c in claims if c["holds"] == "no"]
    assert all(c["holds"] == "exact" for c in claims if "band" not in c["claim"])
    assert (tmp_path / "mnist_curve.png").is_file()


def test_chapter_table_has_a_row_per_claim(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The plain table: header, one row per claim labelled §N, and a closing count; --section
    picks sections."""
    assert main(["chapter", "--section", "s1", "s4", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:4] == ["§", "claim", "book", "measured"]
    assert {line.split()[0] for line in out[2:-2]} == {"§1", "§4"}
    assert out[-1].startswith(f"{len(out) - 4}/{len(out) - 4} claims hold")


def test_off_the_cpu_golden_numbers_become_bands_and_laws() -> None:
    """The book's digits are CPU facts. Elsewhere a printed number is checked within ``OFF_CPU_REL``
    (named in the claim), and NoisyLinear's seeded noise as its law; on the CPU nothing is loosened."""
    cuda = torch.device("cuda")  # a name only: no CUDA kernel runs here
    assert report._golden("s7", "loss", "6.2156", 6.2156, cuda).holds == "exact"
    near = report._golden("s7", "loss", "6.2156", 6.2029, cuda)
    assert near.holds == "band" and "band ± 1%" in near.claim
    assert report._golden("s7", "loss", "6.2156", 6.2156 * (1 + 2 * OFF_CPU_REL), cuda).holds == "no"
    assert report._golden("s7", "loss", "6.2156", 6.2157, torch.device("cpu")).holds == "no"
    learned = History(train_acc=[0.97], valid_acc=[0.96])
    law, band = report._noisy_off_cpu(torch.device("cpu"), learned)  # the law itself holds on any device
    assert (law.ours, law.holds) == ("differ / same", "law") and band.holds == "band"
    assert report._noisy_off_cpu(torch.device("cpu"), History(train_acc=[0.97], valid_acc=[0.6]))[1].holds == "no"


def test_quick_chapter_report_has_every_section_and_its_images(tmp_path: Path) -> None:
    """`torchmech chapter --quick --out DIR` (well under a minute on 2 cores): chapter13.md's table has
    a row for every section §1–§9, every claim of §1–§7 holds on the CPU (exact where no band is
    named: --quick trims only §8 and §9), trimmed claims say so, its figures load as images, and
    results.json holds every number and the environment."""
    import matplotlib.image

    assert main(["chapter", "--quick", "--out", str(tmp_path)]) == 0
    md = (tmp_path / "chapter13.md").read_text()
    rows = [line for line in md.splitlines() if re.match(r"\| §\d", line)]
    assert {row.split("|")[1].strip() for row in rows} == {f"§{i}" for i in range(1, 10)}
    assert "| quick |" in md and "quick run" in md
    images = [tmp_path / line.split("](")[1].rstrip(")") for line in md.splitlines() if line.startswith("![")]
    assert len(images) >= 8
    for image in images:
        assert matplotlib.image.imread(image).size > 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["quick"] is True and results["environment"]["torch"] == torch.__version__
    assert results["environment"]["device"] == "cpu"
    claims = results["claims"]
    assert [c["section"] for c in claims] == sorted(c["section"] for c in claims)  # chapter order
    assert {c["section"] for c in claims} == set(SECTION_RUNNERS)
    full = [c for c in claims if c["section"] not in ("s8", "s9")]
    assert all(c["holds"] in ("exact", "band") for c in full), [c for c in full if c["holds"] == "no"]
    assert all(c["holds"] == "exact" for c in full if "band" not in c["claim"])
    assert all(c["holds"] != "no" for c in claims)
    assert {c["book"] for c in claims} >= {"tensor(1)", "tensor(-0.5600)", "tensor(-0.4000)"}


def test_chapter_output_under_a_file_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An output folder that cannot be created (under a regular file): one line, exit 2."""
    (tmp_path / "file").write_text("")
    assert main(["chapter", "--section", "s1", "--out", str(tmp_path / "file" / "reports")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("torchmech: error: cannot create the report folder") and len(err.splitlines()) == 1


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
    (["nonsense"], "invalid choice"),
    ([], "required"),
])
def test_cli_errors_are_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Wrong arguments give a one-line error and a non-zero exit, never a traceback."""
    assert _exit_code(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_xor_single_run_json_and_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`torchmech xor --json` trains one model and prints its final accuracies; --plot writes PNGs."""
    assert main(["xor", "--model", "logistic", "--epochs", "3", "--plot", str(tmp_path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == "logistic" and out["epochs"] == 3
    assert 0 <= out["valid_acc"] <= 1 and 0 <= out["train_acc"] <= 1
    assert sorted(Path(p).name for p in out["figures"]) == [
        "xor_data.png", "xor_logistic_curves.png", "xor_logistic_regions.png"]


def test_xor_many_seeds_reports_the_success_rate(capsys: pytest.CaptureFixture[str]) -> None:
    """`torchmech xor --seeds K --json` trains K seeds at once and reports the success rate."""
    assert main(["xor", "--model", "noisy", "--seeds", "8", "--epochs", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["seeds"] == 8 and out["parameters"] == 37
    assert 0 <= out["success_rate"] <= 1 and out["median_valid_acc"] <= out["best_valid_acc"]


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
    assert out[:2] == ["Epoch 0  Loss 536.1047", "Epoch 20  Loss 8.4361"]
    assert "test_mse=" in out[-1] and "test_mae=" in out[-1]


def test_mnist_json_and_missing_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`torchmech mnist --json` reports each epoch's accuracy and the test accuracy; without the
    data it says which files are missing and which command fetches them, exit 1."""
    assert main(["mnist", "--epochs", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["pipeline"] == "fast" and round(out["train_acc"][0], 4) == 0.8531 and 0 < out["test_acc"] < 1
    assert main(["mnist", "--epochs", "1", "--data", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert "train-images-idx3-ubyte" in err and "torchmech data fetch" in err and len(err.splitlines()) == 1


def test_data_fetch_is_idempotent(capsys: pytest.CaptureFixture[str]) -> None:
    """`torchmech data fetch` on a verified data root only checks the files (no network)."""
    assert main(["data", "fetch", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["mnist"].endswith("MNIST/raw")


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
