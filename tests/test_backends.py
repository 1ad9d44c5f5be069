"""Backends (torchmech/runtime/backends.py), the conformance matrix and `diverge`: the chapter judged on
torch.compile and bf16 autocast against a float64 run, and the first diverging operation named."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from torch import nn

from tests.planted import PLANTED, Explodes, GradientOff, LossInHalf, LrOff, UlpNoise
from tests.strategies import torch_seeds
from torchmech.chapter.runs import mpg_run, xor_run
from torchmech.chapter.train import NonFinite
from torchmech.check import conformance
from torchmech.check.conformance import run_conformance
from torchmech.check.diverge import diverge
from torchmech.cli import main
from torchmech.runtime import backends as backends_module
from torchmech.runtime.backends import BACKENDS, TOLERANCES, Backend, available_backends, named, usable
from torchmech.spec.claims import claims
from torchmech.spec.core import Context
from torchmech.spec.runs import Runs

pytestmark = pytest.mark.chapter

ROOT = Path(__file__).resolve().parents[1]

#: The fast subset `make test` runs on compile and bf16 autocast: §1–§4 and one small training (§7's MPG).
FAST_SUBSET = [c for c in claims() if c.section in ("s1", "s2", "s3", "s4") or c.id.startswith("s7.mpg.")]


@pytest.mark.parametrize("name", ["compile", "cpu-bf16"])
@pytest.mark.parametrize("claim", [pytest.param(c, id=c.id) for c in FAST_SUBSET])
def test_the_fast_subset_holds_on_compile_and_bf16(name: str, claim, runs: Runs) -> None:
    """§1–§4 and §7's training on torch.compile and on bf16 autocast: structural claims as on the CPU,
    numbers within the float64 arbiter's budget (the CPU float32 and float64 runs are measured too)."""
    if claim.device_free:
        pytest.skip("does not depend on the backend: checked once, on the CPU")
    result = claim.judge(Context(runs=runs).on(name))
    assert result.holds not in ("no", "quick"), result.explain() + f"\n  ratio: {result.ratio}"
    if claim.id.startswith("s7.mpg.loss"):
        assert result.holds == "conforms" and result.ratio is not None


def test_an_unknown_or_absent_backend_is_a_one_line_error() -> None:
    """The error names the problem and the choices: every backend for a typo, the available ones for one
    this machine lacks."""
    with pytest.raises(ValueError, match=r"^unknown backend 'tpu': choose from cpu, cpu-fp64, compile") as err:
        named("tpu")
    assert "\n" not in str(err.value)
    if torch.cuda.is_available():
        pytest.skip("every CUDA backend is available here")
    with pytest.raises(ValueError, match=r"'cuda-tf32' is not available here \(no cuda device on this machine\): "
                                         r"available: cpu, cpu-fp64, compile, cpu-bf16, deterministic$"):
        usable("cuda-tf32")
    assert "cuda" not in available_backends()


def test_active_sets_the_flags_and_restores_them_even_on_error() -> None:
    """deterministic turns torch.use_deterministic_algorithms on inside the block and back off after it,
    also when the block raises."""
    assert not torch.are_deterministic_algorithms_enabled()
    with pytest.raises(RuntimeError, match="inside"):
        with BACKENDS["deterministic"].active():
            assert torch.are_deterministic_algorithms_enabled()
            raise RuntimeError("inside")
    assert not torch.are_deterministic_algorithms_enabled()
    with BACKENDS["cpu"].active():
        assert not torch.are_deterministic_algorithms_enabled()


def test_the_arbiter_starts_from_the_reference_weights_and_computes_in_float64() -> None:
    """cpu-fp64 upcasts the float32-initialised model exactly (same seed, same weights) and casts floating
    inputs, leaving integer labels alone; its forward pass equals the float64 matmul done by hand."""
    torch.manual_seed(1)
    model = nn.Linear(3, 2)
    w32 = model.weight.detach().clone()
    arb = BACKENDS["cpu-fp64"]
    step = arb.prepare(model)
    assert model.weight.dtype == torch.float64 and torch.equal(model.weight.detach(), w32.double())
    x = torch.tensor([[0.1, 0.2, 0.3]])
    assert arb.cast(x).dtype == torch.float64 and arb.cast(torch.tensor([3])).dtype == torch.int64
    expected = x.double() @ w32.double().T + model.bias.detach()
    assert torch.equal(step(arb.cast(x)), expected)


# --- the matrix ------------------------------------------------------------------------------------
def test_the_matrix_judges_each_backend_and_fails_a_planted_bug(monkeypatch: pytest.MonkeyPatch,
                                                                runs: Runs) -> None:
    """§3 and §7 on deterministic and on a planted backend: the reference and the arbiter come first; on
    the arbiter MPG's numbers are the yardstick; deterministic (bit-identical to the CPU here) holds with
    ratio e/(k·e + tol) computed from the three runs; the planted bug fails §7's loss lines (measured: 11 of
    its 12 numbers; only the test MSE, which SGD steers back, stays within budget) and sets the exit code."""
    monkeypatch.setitem(BACKENDS, "planted", PLANTED)
    matrix = run_conformance(["deterministic", "planted"], sections=["s3", "s7"])
    assert matrix.backends == ["cpu", "cpu-fp64", "deterministic", "planted"]
    assert matrix.cell("s7.mpg.test_mse", "cpu-fp64").holds == "arbiter"
    x32, x64 = runs.get("mpg", backend=BACKENDS["cpu"]).test_mse, runs.get("mpg", backend=BACKENDS["cpu-fp64"]).test_mse
    t = BACKENDS["deterministic"].tolerance
    e = abs(x32 - x64)
    det = matrix.cell("s7.mpg.test_mse", "deterministic")
    assert det.holds == "conforms" and det.ratio == pytest.approx(e / (t.k * e + t.tol * max(1, x64)))
    assert matrix.cell("s7.data.rows", "deterministic").holds == "n/a"  # data: judged once, on cpu
    assert matrix.cell("s3.autograd.dL_dw", "planted").holds == "exact"  # no Linear there: the bug is invisible
    planted = matrix.cell("s7.mpg.loss.epoch20", "planted")
    assert planted.holds == "no" and planted.ratio > 1
    assert ("s7.mpg.loss.epoch20", "planted") in matrix.failed() and matrix.exit_code == 1
    assert not any(b == "deterministic" for _, b in matrix.failed())
    assert "FAIL" in matrix.summary() and "planted" in matrix.table().splitlines()[0]


@dataclasses.dataclass(frozen=True)
class _BlowsUp(Backend):
    """A backend whose training raises once a model has taken ``steps`` steps (a run that diverges to NaN, a
    compiler that fails), the way a faulty CUDA backend ends its column."""

    steps: int = 5

    def prepare(self, model: nn.Module) -> nn.Module:
        model = super().prepare(model)
        taken = [0]

        def hook(module: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor:
            taken[0] += 1
            if taken[0] > self.steps:
                raise RuntimeError("all elements of input should be between 0 and 1\n(and a second line)")
            return out

        model.register_forward_hook(hook)
        return model


def test_a_claim_whose_run_raises_is_named_and_the_rest_is_judged(monkeypatch: pytest.MonkeyPatch) -> None:
    """A backend whose runs raise fails every cell it measures as ``error``, each with the one line its measure
    raised; the column goes on with the next claim, the other columns are measured and judged as without it, the
    cells that need no measuring (data: judged on the CPU) stay ``n/a``, the exit code is 1, the verdict names
    claim and backend and the ladder does not climb for an error. (Worker processes take the same path.)"""
    monkeypatch.setitem(BACKENDS, "blows-up", _BlowsUp("blows-up", "raises after five steps"))
    matrix = run_conformance(["deterministic", "blows-up"], sections=["s7"])
    message = "RuntimeError: all elements of input should be between 0 and 1"
    trained = [c.id for c in claims("s7") if c.id.startswith("s7.mpg.")]
    assert matrix.errors == {} and matrix.cell_errors == {(i, "blows-up"): message for i in trained}
    cells = {r.id: r for r in matrix.cells["blows-up"]}
    assert all(cells[i].holds == "error" and cells[i].ours == message for i in trained)
    assert cells["s7.data.rows"].holds == "n/a"
    assert all(r.holds != "error" for b in ("cpu", "deterministic") for r in matrix.cells[b])
    assert matrix.cell("s7.mpg.test_mse", "deterministic").holds == "conforms"
    assert matrix.exit_code == 1 and f"s7.mpg.test_mse on blows-up raised {message}" in matrix.summary()
    assert json.loads(json.dumps(matrix.to_json()))["cell_errors"][0]["error"] == message
    assert matrix.explain().to_json() == climb_nothing()


@pytest.mark.parametrize("after", [0, 5, 77])
def test_a_run_that_goes_non_finite_names_the_step_and_what_raised(after: int) -> None:
    """Weights driven to ±inf after ``after`` healthy steps: XOR's BCELoss then raises on NaN probabilities and
    MPG's MSE comes out NaN; either way the run raises one NonFinite line naming the step (counted over the
    run, past the first epoch too: XOR's 100 points in batches of 2, MPG's 313 rows in batches of 8) and, for
    XOR, what BCELoss raised."""
    with pytest.raises(NonFinite) as xor:
        xor_run("logistic", backend=Explodes("explodes", "blows up", after=after))
    assert str(xor.value).startswith(f"weights non-finite by step {after + 3} (epoch {after // 50 + 1}); "
                                     "BCELoss raised RuntimeError: all elements of input should be between 0 and 1")
    with pytest.raises(NonFinite) as mpg:
        mpg_run(backend=Explodes("explodes", "blows up", after=after))
    assert str(mpg.value) == f"loss non-finite from step {after + 2} (epoch {(after + 1) // 40 + 1})"
    assert "\n" not in str(xor.value) + str(mpg.value)


def test_an_exploding_backend_is_a_verdict_beside_healthy_ones(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """`torchmech conformance` with a backend whose training blows up beside deterministic: no traceback; the
    exploding column's trained claims are errors naming the step, the other columns are judged as without it,
    the table is printed, conformance.json written, and the exit code is 1."""
    monkeypatch.setitem(BACKENDS, "explodes", Explodes("explodes", "blows up after five steps"))
    code = main(["conformance", "--backends", "deterministic", "explodes", "--sections", "s7", "--workers", "1",
                 "--out", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in out + err
    assert "loss non-finite from step 7 (epoch 1)" in out and "explodes" in out.splitlines()[0] + out
    written = json.loads((tmp_path / "conformance.json").read_text())
    errors = {e["id"]: e["error"] for e in written["cell_errors"] if e["backend"] == "explodes"}
    trained = [c.id for c in claims("s7") if c.id.startswith("s7.mpg.")]
    assert sorted(errors) == sorted(trained)
    assert set(errors.values()) == {"NonFinite: loss non-finite from step 7 (epoch 1)"}
    cells = {row["id"]: row["cells"] for row in written["claims"]}
    assert all(cells[i]["explodes"]["holds"] == "error" for i in trained)
    assert all(cells[i]["deterministic"]["holds"] not in ("error", "no") for i in cells)


def climb_nothing() -> object:
    """What the ladder writes when no claim fails by its rule (errors are not climbed)."""
    from torchmech.check.ladder import climb

    return climb([]).to_json()


def test_conformance_cli_writes_the_matrix_and_its_heat_map(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """`torchmech conformance --backends deterministic --sections s3 s7 --json`: exit 0, one JSON object with
    every claim's cell per backend, and a PNG heat map that decodes."""
    code = main(["conformance", "--backends", "deterministic", "--sections", "s3", "s7", "--out", str(tmp_path),
                 "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["failed"] == []
    assert list(out["backends"]) == ["cpu", "cpu-fp64", "deterministic"]
    ids = [row["id"] for row in out["claims"]]
    assert ids == [c.id for c in claims("s3") + claims("s7")]
    mse = next(row for row in out["claims"] if row["id"] == "s7.mpg.test_mse")["cells"]
    assert mse["cpu"]["holds"] in ("exact", "band") and mse["deterministic"]["ratio"] < 1
    with Image.open(tmp_path / "conformance.png") as png:
        png.verify()
    # the CLI measured the columns in worker processes (one per core): the cells are those of one process
    assert out["workers"] == min(3, conformance.default_workers())
    here = run_conformance(["deterministic"], sections=["s3", "s7"]).to_json()
    assert [row["cells"] for row in out["claims"]] == [row["cells"] for row in here["claims"]]


@pytest.mark.parametrize(("argv", "message"), [
    (["conformance", "--backends", "tpu"], "unknown backend 'tpu': choose from cpu, cpu-fp64"),
    (["diverge", "--b", "tpu"], "unknown backend 'tpu'"),
    (["diverge", "--claim", "s1.compute_z.rank0"], "claim 's1.compute_z.rank0' has no training run to follow"),
])
def test_conformance_and_diverge_bad_input_is_one_line(argv: list[str], message: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """A bad backend or a claim without a run: exit 2, one line naming it, no traceback."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


# --- diverge ---------------------------------------------------------------------------------------
def test_diverge_names_the_planted_matmul(tmp_path: Path) -> None:
    """The planted backend perturbs only §7's second Linear: diverge names exactly that operation, in the
    first step's forward pass, with its input's shape (a batch of 8 × 8 features), and saves a repro of it."""
    found = diverge("cpu", PLANTED, "s7.mpg.test_mse", steps=2)
    assert found.found
    name, ratio = found.ratios[found.first]
    assert name == "step 0 · forward · 2 (Linear)" and ratio > 1
    assert all(r <= 1 for _, r in found.ratios[: found.first])
    text = found.describe()
    assert "step 0 · forward · 2 (Linear)" in text and "(8, 8)" in text
    code = found.repro(tmp_path / "repro.pt")
    saved = torch.load(tmp_path / "repro.pt", weights_only=False)
    assert isinstance(saved["module"], nn.Linear) and saved["module"].in_features == 8
    assert [tuple(x.shape) for x in saved["inputs"]] == [(8, 8)] and "named(name)" in code


#: (claim, leaves recorded per step: outputs + gradients) of the runs diverge follows.
@pytest.mark.parametrize("claim_id", ["s5.logistic.accuracy", "s6.noisy_module.accuracy", "s7.mpg.test_mse",
                                      "s8.mnist.test_acc"])
def test_diverge_names_a_fault_in_the_loss_at_the_loss(claim_id: str, tmp_path: Path) -> None:
    """A loss computed in float16 (BCELoss, MSELoss, CrossEntropyLoss; the model's arithmetic untouched): the
    first event over budget is step 0's loss itself (measured ratios 1.9–5.3), not a gradient after it; it is
    no module of the model, so the ladder has none to keep in float32, and the repro says it is the loss."""
    found = diverge("cpu", LossInHalf("loss-in-half", "the loss in float16"), claim_id, steps=2)
    assert found.found and found.at_loss and found.module is None
    name, ratio = found.ratios[found.first]
    assert name.startswith("step 0 · loss (") and ratio > 1
    assert all(r <= 1 for _, r in found.ratios[:found.first])
    found.write(tmp_path)
    assert "is the loss" in found.table()


@pytest.mark.parametrize(("claim_id", "param", "factor"), [
    ("s7.mpg.test_mse", "2.weight", 1.1), ("s7.mpg.test_mse", "4.bias", 0.9), ("s8.mnist.test_acc", "3.weight", 1.1),
    ("s5.logistic.accuracy", "0.bias", 1.05)])
def test_diverge_names_an_optimizer_fault_at_the_update_it_wrote(claim_id: str, param: str, factor: float) -> None:
    """One parameter's update ``factor`` × too long (a fused optimizer's learning rate off on it): the first event
    over budget is the update the first step wrote to that parameter, ``step 1 · update · PARAM``, before any
    forward pass reads it (judged as a weight, 10 % of a step is under the weight's budget: ratio 0.32 on
    MPG); every event before it is within budget, and its module is the parameter's."""
    found = diverge("cpu", LrOff("lr-off", "one parameter's step too long", param=param, factor=factor), claim_id,
                    steps=2)
    assert found.found and found.ratios[found.first][0] == f"step 1 · update · {param}"
    assert all(r <= 1 for _, r in found.ratios[:found.first])
    assert found.module == param.rpartition(".")[0]


#: Events per step: the leaves' outputs, the parameters' gradients, and the loss with the gradient out of it; from
#: the second step on, each parameter as the optimizer left it too (the second number: the parameters).
RUN_EVENTS = [("s5.logistic.accuracy", 2 + 2 + 2, 2), ("s6.noisy_module.accuracy", 6 + 6 + 2, 6),
              ("s7.mpg.test_mse", 5 + 6 + 2, 6), ("s8.mnist.test_acc", 6 + 6 + 2, 6)]


@pytest.mark.parametrize(("claim_id", "events", "params"), RUN_EVENTS)
def test_diverge_finds_nothing_between_equal_backends(claim_id: str, events: int, params: int) -> None:
    """deterministic runs the CPU's float32 kernels: every operation of three steps of XOR's logistic
    regression, MyNoisyModule (its noise drawn alike), MPG and MNIST stays within budget, and at the scaled
    budget too every ratio is e/(3e + tol·rms) < 1/3 (or 0 where float32 equals float64)."""
    found = diverge("cpu", "deterministic", claim_id, steps=3)
    assert not found.found and len(found.ratios) == 3 * events + 2 * params
    assert max(r for _, r in found.ratios) < 1 / 3
    assert "follows cpu within the budget" in found.describe()


@pytest.mark.parametrize("claim_id", [c for c, *_ in RUN_EVENTS if c != "s6.noisy_module.accuracy"])
def test_diverge_no_false_alarm_on_one_ulp_noise(claim_id: str) -> None:
    """Every Linear's output one ulp up or down (as another float32 kernel may round): within budget at every
    operation of three steps, though the gradients of MNIST are of size 1e-3 and the budget scales with them."""
    noisy = UlpNoise("ulp-noise", "±1 ulp on every Linear")
    found = diverge("cpu", noisy, claim_id, steps=3)
    assert not found.found, found.describe()


@pytest.mark.parametrize(("param", "factor"), [("1.bias", 1.01), ("1.bias", 0.99), ("3.weight", 1.002),
                                               ("5.bias", 1.01)])
def test_diverge_names_a_small_gradient_fault_on_mnist(param: str, factor: float) -> None:
    """A gradient off by 1 % (0.2 % on the middle layer's weights) in MNIST's run: the first layer's bias
    gradient is of size 1e-3, so an absolute floor of 1e-4 would hide the fault ten times over. diverge names
    exactly that gradient in the first step, every operation before it within budget."""
    planted = GradientOff("grad-off", f"∂L/∂{param} × {factor}", param=param, factor=factor)
    found = diverge("cpu", planted, "s8.mnist.test_acc", steps=2)
    assert found.found, found.describe()
    name, ratio = found.ratios[found.first]
    assert name == f"step 0 · grad · {param}" and ratio > 1
    assert found.module == param.rpartition(".")[0]
    assert all(r <= 1 for _, r in found.ratios[: found.first])


@given(seed=torch_seeds, exponent=st.integers(-9, 4), rows=st.sampled_from([1, 3, 64, 257]),
       cols=st.sampled_from([1, 10, 33]), precision=st.sampled_from(["fp32", "tf32", "bf16"]))
def test_the_tensor_budget_scales_with_the_tensor(seed: int, exponent: int, rows: int, cols: int,
                                                  precision: str) -> None:
    """At every scale (1e-9 to 1e4) and shape: the budget of c·x is c times the budget of x; the reference's
    own error adds k times itself, scaled from float32's unit to the precision's; an error of 10·tol relative
    to each element is over budget (where the reference is exact), one of tol/10 within it."""
    tolerance = TOLERANCES[precision]
    torch.manual_seed(seed)
    x64 = torch.randn(rows, cols, dtype=torch.float64) * 10.0**exponent
    rms = x64.pow(2).mean().sqrt().item()
    budget = tolerance.tensor_budget(0.0, x64)
    assert tolerance.tensor_budget(0.0, 8 * x64) == pytest.approx(8 * budget, rel=1e-12)
    scale = max(1.0, tolerance.eps / 2.0**-23)  # the reference's own error, scaled to the precision's unit
    assert tolerance.tensor_budget(3e-3 * rms, x64) == pytest.approx(budget + tolerance.k * 3e-3 * rms * scale)
    assert tolerance.tensor_budget(3e-3 * rms, x64, tolerance.eps) == pytest.approx(budget + tolerance.k * 3e-3 * rms)
    for scale, over in ((10.0, True), (0.1, False)):
        error = (x64 * (1 + scale * tolerance.tol) - x64).pow(2).mean().sqrt().item()
        assert (error > budget) is over


def test_the_tensor_budget_has_a_floor_at_the_largest_element() -> None:
    """A tensor that is zero but for one element: the floor is one unit of the precision at that element
    (eps·max), above tol·rms; an empty tensor has no budget."""
    x = torch.zeros(10_000, dtype=torch.float64)
    x[7] = 3.0
    for t in TOLERANCES.values():
        assert t.tensor_budget(0.0, x) == pytest.approx(max(t.tol * 0.03, t.eps * 3.0))
        assert t.tensor_budget(0.0, torch.zeros(0, dtype=torch.float64)) == 0.0


# --- pytest --backend --------------------------------------------------------------------------------
def test_pytest_backend_option_runs_the_claims_on_that_backend() -> None:
    """`pytest --backend=compile`: the device-parametrised cases carry the backend's name, and claims that
    do not depend on the backend are skipped as judged once, on the CPU (they would run if the option were
    ignored); an unknown backend stops pytest with the one-line error."""
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", "--backend=compile",
                           "-k", "test_claim and xavier", str(ROOT / "tests" / "test_s2_init.py")],
                          capture_output=True, text=True, cwd=ROOT, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-2000:]
    assert "1 skipped" in done.stdout and "does not depend on the backend: judged on cpu" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--backend=tpu",
                          str(ROOT / "tests" / "test_s2_init.py")],
                         capture_output=True, text=True, cwd=ROOT, timeout=300, check=False)
    assert bad.returncode != 0 and "unknown backend 'tpu'" in bad.stdout + bad.stderr


def test_every_backend_is_documented_and_judged_by_a_known_precision() -> None:
    """Each backend's name is its key, it has a one-line summary and a precision with a tolerance whose
    reason is written down."""
    for name, b in BACKENDS.items():
        assert b.name == name and b.summary and "\n" not in b.summary
        assert b.precision in backends_module.TOLERANCES
        assert backends_module.TOLERANCES[b.precision].why


def test_compile_really_compiles_each_model_it_is_given() -> None:
    """Under `compile` dynamo captures the chapter model's frames (a `prepare` that forgot to compile would
    capture none), and the same run in float32 gives the reference's accuracies on XOR."""
    from torch._dynamo.utils import counters

    from torchmech.chapter.runs import xor_run

    before = counters["frames"]["ok"]
    _, compiled = xor_run("logistic", epochs=2, backend="compile")
    assert counters["frames"]["ok"] > before
    _, eager = xor_run("logistic", epochs=2)
    assert (compiled.train_acc, compiled.valid_acc) == (eager.train_acc, eager.valid_acc)
