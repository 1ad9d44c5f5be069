"""``torchmech conformance --seeds K``: the training claims judged over K seeds (:mod:`torchmech.check.seeds`).

A planted backend whose SGD steps 0.9 × as far (:class:`tests.planted.SlowSGD`) is told apart over 10 seeds on
§7; ``deterministic``, ``compile`` and the float64 arbiter are not. On §8 (MNIST, Adam) a backend whose weights move
0.9 × as far as Adam steps them (:class:`tests.planted.SlowAdam`) is told apart over 10 seeds at epoch 0, and
neither ``deterministic``, ``compile`` nor SlowSGD is (Adam's step ignores a gradient's scale). The statistics are
checked against a case computed by hand and against a fixed-seed simulation of their power.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.planted import SlowAdam, SlowSGD
from torchmech.check import seeds
from torchmech.check.conformance import run_conformance
from torchmech.check.seeds import (
    ALPHA,
    SeedsReport,
    detectable_shift,
    judge_seeds,
    min_seeds,
    p_value,
    power,
    train_mnist,
    train_mpg,
    training_claims,
)
from torchmech.cli import main
from torchmech.spec.claims import book, claims

pytestmark = pytest.mark.chapter

#: The seeds of the judged tests: enough for the exact test to reach α with room (2 / 2¹⁰ ≈ 0.002).
K = 10
SLOW = SlowSGD("slow-sgd", "the CPU in float32, every gradient × 0.9 (SGD's step 0.9 × as far)")
SLOW_ADAM = SlowAdam("slow-adam", "the CPU in float32, the weights moving 0.9 × as far as the optimizer steps them")


@pytest.fixture(scope="module")
def judged() -> SeedsReport:
    """§7's training claims over K seeds on the plant and on three backends that must not differ (~40 s on one
    thread, ~20 s of it compiling)."""
    return judge_seeds([SLOW, "deterministic", "compile", "cpu-fp64"], K, sections=["s7"])


def test_slow_sgd_is_told_apart(judged: SeedsReport) -> None:
    """The plant reaches the batched run (through ``function``) and its slower start shows in every seed: the
    first epoch's loss differs at α, and the report exits 1 naming it."""
    assert ("s7.mpg.loss.epoch0", "slow-sgd") in judged.failed()
    row = next(r for r in judged.rows if r.id == "s7.mpg.loss.epoch0")
    assert all(s > r for r, s in zip(row.reference, row.values["slow-sgd"], strict=True))  # higher in every seed
    assert row.p["slow-sgd"] == pytest.approx(2 / 2**K)  # the exact test's smallest p
    assert judged.exit_code == 1


@pytest.mark.parametrize("backend", ["deterministic", "compile", "cpu-fp64"])
def test_no_false_alarm(judged: SeedsReport, backend: str) -> None:
    """Backends equal up to rounding differ in no claim; the float64 arbiter's epoch-0 loss sits ~4e-8 above or
    below float32's in the same direction for every seed: inside the margin, so not a finding."""
    assert [i for i, b in judged.failed() if b == backend] == []
    assert all(r.p[backend] >= ALPHA for r in judged.rows)


def test_report_is_the_registry_and_the_design(judged: SeedsReport) -> None:
    """Every §7 training claim with a number per seed is judged (the loss at the printed epochs, MSE, MAE); the
    seeds are listed; the JSON carries each cell's p, margin, power and values; two runs give the same numbers."""
    ids = [c.id for c in claims("s7") if c.recipe == "mpg" and c.id != "s7.mpg.batches"]
    assert [r.id for r in judged.rows] == ids
    js = json.loads(json.dumps(judged.to_json()))
    assert js["seeds"] == list(range(1, K + 1)) and js["alpha"] == ALPHA
    cell = js["claims"][0]["cells"]["deterministic"]
    assert cell["p"] == 1.0 and cell["margin"] == 1e-4 and len(cell["values"]) == K
    assert "power 0.8" in judged.table() and "DIFFERS" in judged.table()
    again = train_mpg(range(1, K + 1))
    assert again.train_loss[:, 0].tolist() == js["claims"][0]["reference"]


def test_batched_mpg_member_is_the_books_run() -> None:
    """Member 0 at seed 1 walks the book's batches from the book's weights: its first epoch's loss is the
    printed one (the registry's), and a member's numbers do not depend on the others beside it."""
    one = train_mpg([1], epochs=1)
    assert f"{one.train_loss[0, 0].item():.4f}" == book("s7.mpg.loss.epoch0")
    two = train_mpg([5, 1], epochs=1)
    assert two.train_loss[1, 0].item() == pytest.approx(one.train_loss[0, 0].item(), rel=1e-6)


def test_signed_rank_against_a_case_by_hand() -> None:
    """Differences −1, 2, …, 10: W₊ = 54, and of the 2¹⁰ sign patterns 2 reach it (W₊ ≥ 54 leaves out at most
    {1}): one-sided p = 2/1024, two-sided 4/1024. A margin of 0.5 (relative to a reference of 1) moves each
    difference by 0.5 toward 0; identical samples give p = 1."""
    ref = [1.0] * 10
    other = [1.0 + d for d in (-1, 2, 3, 4, 5, 6, 7, 8, 9, 10)]
    assert p_value(ref, other) == pytest.approx(4 / 1024)
    assert p_value(ref, ref, 1e-4) == 1.0
    assert p_value(ref, [1.0 + 1e-5 * (i + 1) for i in range(10)], 1e-4) == 1.0  # within the margin
    assert p_value(ref, [1.0 + 1e-3 * (i + 1) for i in range(10)], 1e-4) == pytest.approx(2 / 1024)
    assert p_value(ref, [*ref[:9], float("nan")], 1e-4) == 0.0  # a seed that blew up differs


def test_min_seeds_is_where_the_test_can_reach_alpha() -> None:
    """With 7 seeds even a shift in every seed gives p = 2/2⁷ > 0.01; with 8, 2/2⁸ < 0.01."""
    assert min_seeds() == 8
    shifted = lambda k: p_value([1.0] * k, [2.0] * k)  # noqa: E731
    assert shifted(7) > ALPHA > shifted(8)


def test_power_is_what_the_test_does() -> None:
    """The power (numpy's own signed-rank statistic against its exact null) is what scipy's test does: 2,000 draws
    of 16 normal differences, of another seed, shifted by the 80 %-power shift, are rejected by :func:`p_value`
    75–85 % of the time; unshifted, at most about α. (The normal approximation's shift would be rejected 68 %.)"""
    k = 16
    shift = detectable_shift(k)
    assert power(k, shift) == pytest.approx(0.8, abs=0.01)
    rng = np.random.default_rng(1)
    ref = [1.0] * k
    rejected = np.mean([p_value(ref, list(1.0 + shift + rng.standard_normal(k))) < ALPHA for _ in range(2000)])
    assert 0.75 <= rejected <= 0.85
    null = np.mean([p_value(ref, list(1.0 + rng.standard_normal(k))) < ALPHA for _ in range(2000)])
    assert null <= 2 * ALPHA


@pytest.mark.parametrize(("value", "message"), [
    ("0", "argument --seeds: must be > 0, got 0"),
    ("x", "argument --seeds: expected a whole number, got 'x'"),
    ("1", "--seeds 1: the paired signed-rank test at α = 0.01 needs at least 8 seeds"),
])
def test_bad_seeds_is_one_line(value: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Exit 2, one line naming the problem, no traceback, before any training."""
    try:
        code = main(["conformance", "--backends", "deterministic", "--seeds", value, "--out", str(tmp_path)])
    except SystemExit as exit_:  # argparse's own errors (a type that refuses the text) exit from the parser
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_sections_without_training_claims() -> None:
    """§3 has no training claim: nothing is trained, the report is empty and says so, and holds."""
    report = judge_seeds(["deterministic"], 8, sections=["s3"])
    assert report.rows == [] and report.exit_code == 0 and report.seeds == list(range(1, 9))
    assert report.skipped == {} and "no backend shifts a training claim" in report.table()


def test_a_backend_that_raises_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """A backend whose batched runs raise is a verdict, not a traceback: named with its error, every claim it
    measures failed, the other backends still judged."""
    real = seeds.measure_seeds

    def measure(backend: Any, recipes: Sequence[str], ks: Sequence[int]) -> dict[str, Any]:
        if getattr(backend, "name", backend) == "slow-sgd":
            raise RuntimeError("all elements of input should be between 0 and 1")
        return real(backend, recipes, ks)

    monkeypatch.setattr(seeds, "measure_seeds", measure)
    report = judge_seeds([SLOW, "deterministic"], 8, sections=["s7"])
    assert report.errors == {"slow-sgd": "RuntimeError: all elements of input should be between 0 and 1 (mpg's seeds)"}
    assert {b for _, b in report.failed()} == {"slow-sgd"} and report.exit_code == 1
    assert "slow-sgd's runs raised RuntimeError" in report.table()
    assert all(r.p["deterministic"] == 1.0 for r in report.rows)


def test_matrix_carries_the_seeds(judged: SeedsReport) -> None:
    """Under --seeds the matrix's JSON has a ``seeds`` key, its table the seeds' table, and a difference over
    seeds makes it exit 1; without, none of these (the matrix as before)."""
    matrix = run_conformance(["deterministic"], sections=["s3"])
    assert "seeds" not in matrix.to_json() and matrix.exit_code == 0
    matrix.seeds = judged
    assert matrix.to_json()["seeds"]["failed"] and matrix.exit_code == 1
    assert "training claims over 10 seeds" in matrix.table() and "DIFFER over seeds" in matrix.summary()


# --- §8 MNIST over seeds ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mnist_judged(mnist_root: Path) -> SeedsReport:
    """§8's claims over K seeds with one epoch trained (``MNIST_EPOCHS`` = 1: ~4 s a backend, ~15 s compiling), on
    the Adam plant, the SGD plant and two backends that must not differ."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(seeds, "MNIST_EPOCHS", 1)
        return judge_seeds([SLOW_ADAM, SLOW, "deterministic", "compile"], K, sections=["s8"])


def test_slow_adam_is_told_apart_on_mnist(mnist_judged: SeedsReport) -> None:
    """Adam at 0.9 × its step (the plant's weights move 0.9 × as far) learns less in the first epoch in every seed:
    the epoch-0 training accuracy differs at the exact test's smallest p, and the report exits 1 naming it."""
    assert mnist_judged.failed() == [("s8.mnist.train_acc.epoch0", "slow-adam")]
    row = mnist_judged.rows[0]
    assert all(s < r for r, s in zip(row.reference, row.values["slow-adam"], strict=True))
    assert row.p["slow-adam"] == pytest.approx(2 / 2**K) and mnist_judged.exit_code == 1


@pytest.mark.parametrize("backend", ["deterministic", "compile", "slow-sgd"])
def test_no_false_alarm_on_mnist(mnist_judged: SeedsReport, backend: str) -> None:
    """Backends equal up to rounding do not differ; nor does SlowSGD's gradient × 0.9, which Adam's step ignores
    (the plant that slows SGD does not slow Adam: each seed's accuracy moves by rounding's few answers, both ways)."""
    assert all(r.p[backend] >= ALPHA for r in mnist_judged.rows)


def test_mnist_claims_judged_and_skipped(mnist_judged: SeedsReport) -> None:
    """The first MNIST_EPOCHS epochs' training accuracies are judged; the later epochs and the test accuracy (after
    20 epochs) are listed as skipped, with their cost; by default the first five epochs are judged."""
    assert [r.id for r in mnist_judged.rows] == ["s8.mnist.train_acc.epoch0"]
    later = [c.id for c in claims("s8") if c.recipe == "mnist" and c.id != "s8.mnist.train_acc.epoch0"]
    assert list(mnist_judged.skipped) == later and len(later) == 20
    assert all("only the first 1 of MNIST's 20 epochs" in why for why in mnist_judged.skipped.values())
    assert "s8.mnist.test_acc: not judged over seeds" in mnist_judged.table()
    judged, skipped = training_claims(["s8"])
    assert [i for i, _, _ in judged] == [f"s8.mnist.train_acc.epoch{e}" for e in range(seeds.MNIST_EPOCHS)]
    assert seeds.MNIST_EPOCHS == 5 and len(skipped) == 16


def test_batched_mnist_member_is_the_books_run(mnist_root: Path) -> None:
    """Member 0 at seed 1 starts from the book's weights and walks the book's batches: its first epoch's training
    accuracy is the printed one to the claim's four digits (the registry's rule; baddbmm's summation order is not
    nn.Linear's, so bit identity is not promised), and a member's numbers do not depend on the others beside it."""
    one = train_mnist([1], epochs=1, root=str(mnist_root))
    assert f"{one.train_acc[0, 0].item():.4f}" == book("s8.mnist.train_acc.epoch0")
    two = train_mnist([5, 1], epochs=1, root=str(mnist_root))
    assert two.train_acc[1, 0].item() == pytest.approx(one.train_acc[0, 0].item(), abs=5 / 60_000)
