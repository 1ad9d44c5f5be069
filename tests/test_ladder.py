"""The mitigation ladder (torchmech/check/ladder.py): each rung changes the one setting it names, and on a planted
failing backend the ladder names the setting that restores the claims, with its cost in step time."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

from tests.planted import EmulatedTF32, tf32
from torchmech.check.conformance import run_conformance
from torchmech.check.ladder import RUNGS, NotApplicable, climb
from torchmech.cli import main
from torchmech.runtime.backends import BACKENDS
from torchmech.spec.claims import claim as get_claim
from torchmech.spec.core import Context

pytestmark = pytest.mark.chapter

RUNG = {r.name: r for r in RUNGS}


@pytest.mark.parametrize(("name", "rungs"), [
    ("compile", ["fallback_random", "emulate_precision_casts", "aot_eager", "eager", "deterministic"]),
    ("cpu-bf16", ["deterministic", "module_fp32", "autocast_off"]),
    ("deterministic", []),
    ("cuda-tf32", ["tf32_off", "deterministic"]),
    ("cuda-bf16", ["deterministic", "module_fp32", "autocast_off"]),
    ("cuda-graphs", ["fallback_random", "emulate_precision_casts", "aot_eager", "eager", "deterministic",
                     "no_cuda_graphs"]),
])
def test_each_backend_climbs_the_rungs_of_its_settings(name: str, rungs: list[str]) -> None:
    """compile: inductor's two settings, then the compile backends without inductor; TF32 only where TF32 is
    on; CUDA graphs only under reduce-overhead; the float32 module, then autocast off, only under autocast
    (no device needed to say so)."""
    be = BACKENDS[name]
    assert [r.name for r in RUNGS if r.applies(be)] == rungs


def test_each_rung_changes_one_setting_and_names_it() -> None:
    """The changed backend differs from the original in exactly the rung's field(s), is named after both,
    and keeps the original's precision (it is judged by the same tolerance)."""
    for name in ("compile", "cuda-tf32", "cuda-graphs", "cpu-bf16"):
        be = BACKENDS[name]
        for rung in (r for r in RUNGS if r.applies(be) and r.name != "module_fp32"):
            changed = rung.changed(be, "s7.mpg.test_mse")
            moved = [f for f in be.__dataclass_fields__ if getattr(be, f) != getattr(changed, f)]
            assert changed.name == f"{name}+{rung.name}" and changed.precision == be.precision
            expected = {"fallback_random": ["inductor"], "emulate_precision_casts": ["inductor"],
                        "aot_eager": ["compiler"], "eager": ["compiler"], "tf32_off": ["tf32"],
                        "deterministic": ["deterministic"], "no_cuda_graphs": ["compile"],
                        "autocast_off": ["autocast"]}[rung.name]
            assert moved == ["name", *expected], (name, rung.name, moved)


def test_inductor_settings_hold_while_active_only() -> None:
    """compile+fallback_random sets inductor's flag inside active() and restores it after, also on error."""
    import torch._inductor.config as inductor

    changed = RUNG["fallback_random"].changed(BACKENDS["compile"], "s7.mpg.test_mse")
    assert inductor.fallback_random is False
    with pytest.raises(RuntimeError, match="inside"):
        with changed.active():
            assert inductor.fallback_random is True
            raise RuntimeError("inside")
    assert inductor.fallback_random is False


def test_the_compile_rungs_compile_with_their_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """aot_eager and eager call torch.compile with that backend and no mode; inductor keeps its mode."""
    calls: list[dict] = []
    monkeypatch.setattr(torch, "compile", lambda fn, **kwargs: calls.append(kwargs) or fn)
    for rung, expected in (("aot_eager", {"backend": "aot_eager"}), ("eager", {"backend": "eager"})):
        RUNG[rung].changed(BACKENDS["compile"], "s7.mpg.test_mse").prepare(nn.Linear(2, 1))
        assert calls[-1] == expected
    BACKENDS["compile"].prepare(nn.Linear(2, 1))
    assert calls[-1] == {"mode": "default"}


def test_a_module_in_float32_runs_outside_autocast_even_when_copied() -> None:
    """Under bf16 autocast, fp32_modules=("2",) runs the third layer in float32 (its output float32, equal to
    the float32 computation on its upcast input) while the first stays bf16; a deep copy keeps it so."""
    torch.manual_seed(0)
    be = replace(BACKENDS["cpu-bf16"], fp32_modules=("2",))
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    step = be.prepare(model)
    x = torch.randn(5, 4)
    for net in (step, copy.deepcopy(step)):
        with be.autocast_context():
            hidden = net[1](net[0](x))
            out = net(x)
        assert hidden.dtype == torch.bfloat16 and out.dtype == torch.float32
        assert torch.equal(out, nn.functional.linear(hidden.float(), net[2].weight, net[2].bias))


def test_the_float32_rung_keeps_the_module_that_adds_the_most() -> None:
    """bf16 autocast judged as float32 (a mislabelled backend): diverge names MPG's first Linear as the first over
    budget, but the last one, "4", adds the most error (`diverge --layers`): the rung keeps that module in
    float32; a claim without a run says why the rung cannot apply."""
    mislabelled = replace(BACKENDS["cpu-bf16"], name="bf16-as-fp32", precision="fp32")
    assert RUNG["module_fp32"].changed(mislabelled, "s7.mpg.test_mse").fp32_modules == ("4",)
    with pytest.raises(NotApplicable, match=r"s3\.autograd\.dL_dw has no training run"):
        RUNG["module_fp32"].changed(mislabelled, "s3.autograd.dL_dw")


def test_the_ladder_says_what_the_kept_module_adds_against_its_rounding_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """bf16 autocast judged as float32 fails §7's epoch-20 loss; the module_fp32 rung's line names the module it kept
    in float32 and the attribution behind the choice: how many times the reference's own error it adds, and that
    error against its bf16 rounding bound (under 1: the module rounds as bf16 may, the label is what is wrong)."""
    mislabelled = replace(BACKENDS["cpu-bf16"], name="bf16-as-fp32", precision="fp32")
    monkeypatch.setitem(BACKENDS, "bf16-as-fp32", mislabelled)
    failing = get_claim("s7.mpg.loss.epoch20").judge(Context().on(mislabelled))
    assert failing.holds == "no"
    ladder = climb([failing], rungs=[RUNG["module_fp32"]], min_run_time=0.05)
    [tried] = ladder.tries
    assert tried.changed == "bf16-as-fp32+module_fp32(4)"
    added, bound = re.fullmatch(r"4 adds (\S+)× the reference's own error, (\S+) of its rounding bound",
                                tried.note).groups()
    assert float(added) > 1e3 and 0 < float(bound) <= 1
    assert "module_fp32 (4)" in ladder.table() and tried.note in ladder.table()
    assert ladder.to_json()["tries"][0]["note"] == tried.note


def test_tf32_rounds_to_ten_mantissa_bits() -> None:
    """The planted rounding keeps 10 of float32's 23 mantissa bits, to nearest: 1 + 2⁻¹² rounds down to 1,
    1 + 2⁻¹¹ + 2⁻¹³ up to 1 + 2⁻¹⁰, and the relative error stays within 2⁻¹¹ on drawn numbers."""
    x = torch.tensor([1 + 2**-12, 1 + 2**-10, 1 + 2**-11 + 2**-13, 3.0])
    assert tf32(x).tolist() == [1.0, 1 + 2**-10, 1 + 2**-10, 3.0]
    y = torch.randn(10_000)
    assert ((tf32(y) - y).abs() / y.abs()).max() <= 2**-11


def test_the_ladder_names_the_setting_that_restores_a_planted_tf32_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    """A backend that rounds every Linear's inputs and weights to TF32, judged as float32, fails §7's numbers;
    of the two rungs that apply, TF32 off restores every failing claim (the planted rounding goes with it) and
    deterministic algorithms none; the restoring rung's step time before and after is measured. How many of
    §7's numbers fail depends on the CPU's float32 kernels (at least 6 on an AMD EPYC; 5 on an Intel Xeon, the
    training losses of epochs 20–100), so the test asks for the 5 both machines fail."""
    planted = EmulatedTF32("planted-tf32", "TF32 matmuls emulated on the CPU, judged as float32", tf32=True)
    monkeypatch.setitem(BACKENDS, "planted-tf32", planted)
    matrix = run_conformance(["planted-tf32"], sections=["s7"])
    failing = [matrix.cell(i, b) for i, b in matrix.failed()]
    assert len(failing) >= 5 and {r.backend for r in failing} == {"planted-tf32"}
    ladder = climb(failing, min_run_time=0.05, known=matrix.known)
    assert ladder.restores_all("planted-tf32") == ["tf32_off"]
    assert all(ladder.restoring(r.id, "planted-tf32") == ["tf32_off"] for r in failing)
    tf32_off = [t for t in ladder.tries if t.rung == "tf32_off"]
    assert all(t.result.holds == "conforms" and t.result.ratio <= 1 / 3 for t in tf32_off)
    assert all(t.step_before_s > 0 and t.step_after_s > 0 for t in tf32_off)
    assert all(t.result.holds == "no" for t in ladder.tries if t.rung == "deterministic")
    text = ladder.table()
    assert "→ restores every failing claim: tf32_off" in text and "deterministic" in text
    assert ladder.exit_code == 1


def test_conformance_explain_writes_the_ladder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`conformance --explain` with nothing failing: exit 0, the JSON's ladder empty, ladder.json written."""
    code = main(["conformance", "--backends", "deterministic", "--sections", "s3", "--explain", "--workers", "1",
                 "--out", str(tmp_path), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["ladder"] == {"failing": [], "restores_all": {}, "tries": []}
    assert json.loads((tmp_path / "ladder.json").read_text())["tries"] == []


def test_fallback_random_gives_compile_eagers_noise_back() -> None:
    """Under compile MyNoisyModule's noise comes from inductor's generator: the first look leaves the budget at
    its NoisyLinear, and with fallback_random (eager's draws, the ladder's rung) the run follows the CPU, so
    diverge finds nothing and says why — twice in a row: each look compiles afresh (dynamo's cache does not
    guard on inductor's settings; a graph compiled under fallback_random reused would hide the difference).
    A real fault under compile (l2's bias gradient 1 % off) is still named, with eager's draws."""
    from tests.planted import GradientOff
    from torchmech.check.diverge import diverge

    claim_id = "s6.noisy_module.accuracy"
    for _ in range(2):
        found = diverge("cpu", "compile", claim_id, steps=2)
        assert not found.found and "first left the budget at step 0 · forward · l1 (NoisyLinear)" in found.note
        assert "the difference is the draws" in found.describe()
    assert not diverge("cpu", RUNG["fallback_random"].changed(BACKENDS["compile"], claim_id), claim_id, steps=2).note
    faulty = GradientOff("compile-grad-off", "compile, l2's bias gradient × 1.01", compile="default", param="l2.bias")
    found = diverge("cpu", faulty, claim_id, steps=2)
    assert found.found and found.ratios[found.first][0] == "step 0 · grad · l2.bias"
    assert "not the random draws" in found.note
