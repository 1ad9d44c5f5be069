"""The claim registry itself (torchmech/spec/claims.py): its rules, its one copy of the book's numbers,
and the promise that every claim is both a pytest case and a row of `torchmech chapter`."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.registry import check
from torchmech import SECTIONS
from torchmech.chapter.implementation import Implementation
from torchmech.report.chapter import run_chapter
from torchmech.spec import claims as registry
from torchmech.spec.claims import CLAIMS, claim, claims
from torchmech.spec.core import (
    Arbiter,
    AtLeast,
    Band,
    Context,
    Erratum,
    Exact,
    Law,
    OffReference,
    Result,
    shape_difference,
)

pytestmark = pytest.mark.chapter

ROOT = Path(__file__).resolve().parents[1]
CPU, CUDA = Context(), Context(device=torch.device("cuda"))  # a name only: no CUDA kernel runs here


# --- the registry's shape ---------------------------------------------------------------------
def test_ids_are_unique_sectioned_and_in_chapter_order() -> None:
    """Every id is `sN.topic.name`, unique, and the registry runs through the sections in order."""
    ids = [c.id for c in CLAIMS]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"s[1-9](\.[a-z0-9_]+)+", i, flags=re.IGNORECASE) for i in ids), ids
    order = [c.section for c in CLAIMS]
    assert order == sorted(order, key=list(SECTIONS).index)
    assert {c.section for c in CLAIMS} == {s for s in SECTIONS if s != "chapter"}
    assert all(c.statement and c.book for c in CLAIMS)


def test_every_claim_is_a_pytest_case_and_a_report_row(tmp_path: Path) -> None:
    """Both views read the registry: collecting the suite finds one `test_claim` case per claim (on the
    CPU), and `run_chapter` (here §1 and §4) gives one row per claim."""
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "--runslow",
                           "-p", "no:cacheprovider", "-k", "test_claim and cpu", str(ROOT / "tests")],
                          capture_output=True, text=True, cwd=ROOT, timeout=300, check=False)
    cases = re.findall(r"::test_claim\[cpu-(.+)\]", done.stdout)
    assert sorted(cases) == sorted(c.id for c in CLAIMS), done.stdout[-2000:] + done.stderr[-2000:]
    report = run_chapter(sections=["s1", "s4"])
    assert [r.id for r in report.results] == [c.id for c in claims("s1") + claims("s4")]


def test_the_books_numbers_live_only_in_the_registry() -> None:
    """Each printed number with 3 or more decimals (MNIST's accuracies, MPG's losses, …) appears in
    torchmech/spec/claims.py and in no other file of the package or of tests/."""
    numbers = {n for c in CLAIMS for n in re.findall(r"-?\d+\.\d{3,}", c.book)}
    assert len(numbers) >= 40
    others = [p for p in [*(ROOT / "torchmech").rglob("*.py"), *(ROOT / "tests").rglob("*.py")]
              if p.name != "claims.py"]
    found = {(str(p.relative_to(ROOT)), n) for p in others for n in numbers
             if re.search(rf"(?<![\d.]){re.escape(n)}(?!\d)", p.read_text())}
    assert not found, sorted(found)


def test_a_changed_book_value_fails_both_views() -> None:
    """Plant a wrong book value: the chapter report exits 1 naming the claim, and the claim's pytest
    case fails with the sentence, the book's value, ours (torchmech is under test) and the rule, first thing,
    without a traceback."""
    target = claim("s3.autograd.dL_dw")
    wrong = dataclasses.replace(target, book=target.book.replace("0)", "1)"))  # the last printed digit
    i = CLAIMS.index(target)
    CLAIMS[i] = wrong
    try:
        report = run_chapter(sections=["s3"])
    finally:
        CLAIMS[i] = target
    assert report.exit_code == 1 and [r.id for r in report.failed] == ["s3.autograd.dL_dw"]
    assert "FAIL: s3.autograd.dL_dw" in report.summary()
    with pytest.raises(pytest.fail.Exception) as failure:
        check(wrong, CPU)
    assert failure.value.pytrace is False
    assert str(failure.value).splitlines()[:4] == [f"{wrong.id}: {wrong.statement}", f"  book: {wrong.book}",
                                                   f"  ours: {target.book}", "  rule: exact to the printed digits"]


def _learners(**pieces: object) -> Context:
    return Context(impl=Implementation("workspace /somewhere", pieces))


def test_a_learners_failing_claim_says_yours_and_a_raising_piece_its_line() -> None:
    """Under a learner's implementation the measured value is "yours", never "ours"; a piece that raises fails
    in two lines: the claim, then the exception and the learner's line (here this file's lambda), with no
    traceback and no chained exception behind it."""
    c = claim("s1.compute_z.rank0")
    with pytest.raises(pytest.fail.Exception) as failure:
        check(c, _learners(compute_z=lambda a, b, c: 2 * a - b + c))
    lines = str(failure.value).splitlines()
    assert lines[:4] == [f"{c.id}: {c.statement}", f"  book: {c.book}", "  yours: tensor(3)",
                         "  rule: exact to the printed digits"]
    assert failure.value.pytrace is False and not re.search(r"\bours", str(failure.value))
    with pytest.raises(pytest.fail.Exception) as raised:
        check(c, _learners(compute_z=lambda a, b, c: torch.ad(a, b)))
    lines = str(raised.value).splitlines()
    assert len(lines) == 2 and lines[0] == f"{c.id}: {c.statement}"
    assert re.fullmatch(r"  yours raised AttributeError: .*'ad' at test_claims\.py:\d+", lines[1]), lines[1]
    assert raised.value.pytrace is False and raised.value.__context__ is None
    with pytest.raises(pytest.fail.Exception) as inside:  # one tensor, not the pair: the claim's unpacking raises
        check(claim("s3.analytic.dL_dw"), _learners(linear_loss_grad=lambda w, b, x, y: torch.tensor(1.0)))
    assert str(inside.value).splitlines()[1].startswith("  yours raised TypeError")
    assert not re.search(r" at \S+\.py:\d+$", str(inside.value)), str(inside.value)  # no learner's line to name


def test_a_shape_only_difference_is_said_as_a_shape() -> None:
    """A printed tensor whose numbers are the book's in another shape says so ("shape (1,) where () is
    expected"): in the failure of a learner's linear_loss_grad that keeps x's dimension, and for printed
    tensors and nested lists alike; nothing is said where the shapes agree or a value is no tensor."""
    def keeps_the_dimension(w, b, x, y):  # 2x·r without the sum: shape (1,)
        r = w.detach() * x + b.detach() - y
        return 2 * x * r, (2 * r).sum()

    c = claim("s3.analytic.dL_dw")
    with pytest.raises(pytest.fail.Exception) as failure:
        check(c, _learners(linear_loss_grad=keeps_the_dimension))
    assert str(failure.value).splitlines()[2:4] == [
        f"  yours: {c.book.replace('(', '([').replace(')', '])')}",
        "  shape (1,) where () is expected (the numbers agree)"]
    assert shape_difference("tensor(-0.56)", "tensor([-0.56])") == "shape (1,) where () is expected (the numbers agree)"
    assert shape_difference("tensor(-0.56)", "tensor([-0.57])") == "shape (1,) where () is expected"
    assert shape_difference("tensor([[ 0.11, -0.05]], grad_fn=<AddBackward0>)",
                            "tensor([ 0.11, -0.05], grad_fn=<AddBackward0>)") == (
        "shape (2,) where (1, 2) is expected (the numbers agree)")
    assert shape_difference("[[1.5, 2.5], [3.5, 4.5]]", "[[1.5, 2.5, 3.5, 4.5]]") == (
        "shape (1, 4) where (2, 2) is expected (the numbers agree)")
    assert shape_difference("tensor(1)", "tensor(3)") == shape_difference("624", "[624]") == ""
    same = Result(id="s1.x", section="s1", statement="", book="tensor(1)", ours="tensor(3)", holds="no", rule="r")
    assert "shape" not in same.explain()


def test_claims_and_contexts_print_in_one_short_line() -> None:
    """A claim or context in a traceback (a test's parameter) is one short line, not a dump of every field."""
    assert repr(claim("s1.compute_z.rank0")) == "Claim('s1.compute_z.rank0')"
    assert repr(Context()) == "Context(cpu, eager, impl=torchmech)"
    assert repr(_learners()) == "Context(cpu, eager, impl=workspace /somewhere)"


def test_an_implementation_under_test_replaces_one_piece() -> None:
    """The context's implementation is a parameter: a planted compute_z (a − b + c) fails §1's claims
    while the reference passes, and every other piece still comes from the reference."""
    wrong = Implementation("planted", {"compute_z": lambda a, b, c: torch.sub(a, b) + c})
    ctx = Context(impl=wrong)
    assert wrong.source("compute_z") == "planted" and wrong.source("fans") == "reference"
    assert claim("s1.compute_z.rank0").judge(ctx).holds == "no"
    assert claim("s1.compute_z.rank0").judge(CPU).holds == "exact"
    assert claim("s2.xavier.seed1").judge(ctx).holds == "exact"
    with pytest.raises(AttributeError, match="no piece 'nonsense'"):
        _ = wrong.nonsense


# --- the rules --------------------------------------------------------------------------------
def test_exact_compares_the_printed_digits() -> None:
    """Exact formats as the book prints (4 decimals here): 1.23454 prints 1.2345 and holds; 1.23456 does not."""
    assert Exact(4).judge("1.2345", 1.23454, CPU).holds == "exact"
    assert Exact(4).judge("1.2345", 1.23456, CPU).holds == "no"
    assert Exact(2).judge("0.12 / 0.34", (0.12, 0.335), CPU).ours == "0.12 / 0.34"


def test_bands_absolute_relative_and_per_part() -> None:
    """A band holds within its width (relative: of |book|), for each part of a tuple; its reason is shown."""
    band = Band(0.001, "summation order")
    assert band.judge("0.5000", 0.5009, CPU).holds == "band"
    assert band.judge("0.5000", 0.5011, CPU).holds == "no"
    assert band.judge("0.5000", 0.50001, CPU).holds == "exact"
    rel = Band(0.005, "drift", relative=True)
    assert rel.judge("4.0000", 4.0 * 1.0049, CPU).holds == "band"
    assert rel.judge("4.0000", 4.0 * 1.0051, CPU).holds == "no"
    two = Band(0.02, "two points", digits=2)
    assert two.judge("0.50 / 0.70", (0.51, 0.68), CPU).holds == "band"  # 0.02 exactly, despite float rounding
    assert two.judge("0.50 / 0.70", (0.51, 0.67), CPU).holds == "no"
    assert "summation order" in band.describe(CPU) and "0.50%" in rel.describe(CPU)


@pytest.mark.parametrize("epoch", [3, 14, 19])
def test_an_epochs_arbiter_budget_counts_the_drift_so_far(epoch: int) -> None:
    """MNIST's accuracy at an epoch: e_ref is the reference's largest error to float64 so far in the run, not
    this epoch's alone (which is 0 where the float32 run lands on float64's digits by chance). With the earlier
    epochs' values planted (the reference 12 answers of 60,000 off at one earlier epoch, exactly on float64's
    at this one): the budget is k·2e-4 + tol; the same number at the first epoch (nothing earlier) has tol alone.
    A later epoch's error does not count, and the verdict takes the values the matrix measured (no training)."""
    ids = [f"s8.mnist.train_acc.epoch{i}" for i in range(20)]
    known = {(i, b): 0.95 for i in ids for b in ("cpu", "cpu-fp64", "compile")}
    known[ids[epoch - 1], "cpu"] = 0.95 + 12 / 60_000  # 2e-4 off float64, one epoch before
    known[ids[epoch + 1] if epoch < 19 else ids[0], "cpu"] = 0.95 + 600 / 60_000 if epoch < 19 else 0.95
    ctx = Context(known=known).on("compile")
    t = ctx.be.tolerance
    c = claim(ids[epoch])
    assert c.rule.drift(ctx) == pytest.approx(12 / 60_000)
    x64 = x32 = 0.95
    budget = t.k * 12 / 60_000 + t.tol * 1.0
    at_edge = c.rule.conform(x64 + budget * 0.999, x32, x64, ctx, c.rule.drift(ctx))
    over = c.rule.conform(x64 + budget * 1.001, x32, x64, ctx, c.rule.drift(ctx))
    assert (at_edge.holds, over.holds) == ("conforms", "no") and over.ratio == pytest.approx(1.001)
    known[ids[epoch], "compile"] = x64 + budget * 0.999
    assert c.judge(ctx).holds == "conforms"  # from the known values: the matrix's path
    first = claim(ids[0])
    assert first.rule.drift(ctx) == 0.0 and "so far in the run" in c.rule.describe(ctx)


def test_off_the_reference_numbers_are_judged_by_the_float64_arbiter() -> None:
    """The book's digits are facts of the reference backend (the CPU in float32, eager): there nothing is
    loosened; on any other backend a number holds when |x − x₆₄| ≤ k·|x₃₂ − x₆₄| + tol·max(1, |x₆₄|),
    the worst part of a tuple decides, and the error ratio comes with the verdict."""
    c = claim("s7.mpg.loss.epoch180")
    assert isinstance(c.rule, Arbiter)
    assert c.rule.judge(c.book, c.number * (1 - 0.002), CPU).holds == "no"  # the reference: the book's digits
    compile_ = Context().on("compile")
    t = compile_.be.tolerance
    x64, x32 = 6.20, 6.21  # the reference's own error: 0.01
    budget = t.k * 0.01 + t.tol * x64
    at_edge = c.rule.conform(x64 + budget * 0.999, x32, x64, compile_)
    assert (at_edge.holds, round(at_edge.ratio, 3)) == ("conforms", 0.999)
    over = c.rule.conform(x64 - budget * 1.001, x32, x64, compile_)  # either side of the arbiter
    assert (over.holds, round(over.ratio, 3)) == ("no", 1.001)
    pair = claim("s5.logistic.accuracy")
    worst = pair.rule.conform((0.5, 0.6 + 0.02), (0.5, 0.6), (0.5, 0.6), compile_)  # x₃₂ = x₆₄: tol alone
    assert worst.holds == "no" and worst.ratio == pytest.approx(0.02 / (t.tol * 1.0))
    assert pair.rule.judge(pair.book, (0.5, 0.5), Context().on("cpu-fp64")).holds == "arbiter"
    assert "k" not in c.rule.describe(CPU) and f"{t.k:g}·|x₃₂ − x₆₄|" in c.rule.describe(compile_)
    noisy = claim("s6.noisy_module.accuracy")  # noise from another generator or dtype: only the law holds
    assert isinstance(noisy.rule, OffReference)
    assert noisy.rule.judge(noisy.book, (0.97, 0.95), CUDA).holds == "bound"
    assert noisy.rule.judge(noisy.book, (0.97, 0.95), Context().on("cpu-fp64")).holds == "bound"
    assert noisy.rule.judge(noisy.book, (0.97, 0.6), CUDA).holds == "no"


def test_at_least_law_and_erratum() -> None:
    """AtLeast holds at or above its threshold; a Law is its predicate; an Erratum holds (as
    `erratum`) exactly when its documented finding does."""
    assert AtLeast(0.9, "r").judge("0.9500", 0.9, CPU).holds == "bound"
    assert AtLeast(0.9, "r").judge("0.9500", 0.8999, CPU).holds == "no"
    law = Law(lambda m, book: m > float(book), "bigger than the book")
    assert law.judge("1", 2, CPU).holds == "law" and law.judge("1", 0, CPU).holds == "no"
    erratum = Erratum(law, "the book undercounts")
    assert erratum.judge("1", 2, CPU).holds == "erratum" and erratum.judge("1", 0, CPU).holds == "no"


def test_quick_trims_long_runs_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    """--quick: a claim marked `skip` is not measured at all, one marked `show` is measured but not judged."""
    skipped = claim("s8.mnist.test_acc")
    result = skipped.judge(Context(quick=True))
    assert (result.holds, result.ours) == ("quick", "not run (--quick)")
    shown = dataclasses.replace(claim("s1.compute_z.rank0"), quick="show")
    assert shown.judge(Context(quick=True)).holds == "quick"
    assert shown.judge(CPU).holds == "exact"


def test_a_missing_optional_package_is_a_skip() -> None:
    """A claim that needs an absent package is reported `skip` with the reason, not as a failure."""
    needy = dataclasses.replace(claim("s1.compute_z.rank0"), needs="no_such_package_here")
    assert needy.judge(CPU).holds == "skip" and "no_such_package_here" in needy.judge(CPU).ours


def test_registry_module_has_a_lookup_for_tests() -> None:
    """book(id) gives the printed value; an unknown id is a KeyError naming it."""
    assert registry.book("s4.sequential.parameters") == claim("s4.sequential.parameters").book
    with pytest.raises(KeyError, match=r"s0\.nothing"):
        claim("s0.nothing")
