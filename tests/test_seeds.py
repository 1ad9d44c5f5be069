"""``torchmech conformance --seeds K``: the training claims judged over K seeds (:mod:`torchmech.check.seeds`).

A planted backend whose SGD steps 0.9 × as far (:class:`tests.planted.SlowSGD`) is told apart over 10 seeds;
``deterministic``, ``compile`` and the float64 arbiter are not. The statistics are checked against a case computed
by hand and against a fixed-seed simulation of their power.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.planted import SlowSGD
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
    train_mpg,
)
from torchmech.cli import main
from torchmech.spec.claims import book, claims

pytestmark = pytest.mark.chapter

#: The seeds of the judged tests: enough for the exact test to reach α with room (2 / 2¹⁰ ≈ 0.002).
K = 10
SLOW = SlowSGD("slow-sgd", "the CPU in float32, every gradient × 0.9 (SGD's step 0.9 × as far)")


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
    report = judge_seeds(["deterministic"], 8, sections=["s3", "s8"])
    assert report.rows == [] and report.exit_code == 0 and report.seeds == list(range(1, 9))
    assert "s8.mnist.test_acc: not judged over seeds" in report.table()


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
