"""`torchmech diverge --layers` (torchmech/check/layers.py): each layer's error to float64 split into what the layer
adds and what it inherits, each Linear's beside its rounding bound; and the ladder keeping the module that adds
the most in float32."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from tests.planted import PLANTED, EmulatedTF32, GradientOff
from torchmech.check.ladder import RUNGS
from torchmech.check.layers import Attribution, Row, attribute, linear_bound_factor
from torchmech.cli import main
from torchmech.runtime.backends import BACKENDS, named
from torchmech.runtime.console import CommandResult

pytestmark = pytest.mark.chapter


def forward(found: Attribution, step: int = 0) -> dict[str, Row]:
    """The forward rows of one step, by module."""
    return {r.module: r for r in found.rows if r.kind == "forward" and r.step == step and r.module != "loss"}


def test_the_planted_linear_adds_the_error_and_the_layers_after_inherit_it(mnist_root: Path) -> None:
    """MNIST's second Linear ("3") multiplies its output by 1.001: in both steps it has the largest added (over
    budget, and far over its rounding bound), and the layers after it add no more than float32 does and inherit
    the fault (inherited over budget, added within). In step 0 the layers before it carry only float32's own
    error; in step 1 the first Linear inherits the fault through its weights (step 0's update had its gradient
    off), adding nothing itself."""
    found = attribute("cpu", PLANTED, "s8.mnist.test_acc", steps=2, data=mnist_root)
    assert found.largest_added.module == "3" and found.exit_code == 1
    for step in (0, 1):
        rows = forward(found, step)
        assert list(rows) == ["0", "1", "2", "3", "4", "5"]
        assert rows["3"].added > rows["3"].budget and rows["3"].bound_ratio > 100
        assert rows["3"].added > 100 * max(r.added for m, r in rows.items() if m != "3")
        assert rows["1"].added <= 2 and rows["1"].bound_ratio <= 1
        for m in ("4", "5"):
            assert rows[m].added <= rows[m].budget < rows[m].inherited
            assert rows[m].inherited > 0.5 * rows[m].total
        assert rows["5"].bound_ratio <= 1
    before = forward(found, 0)
    assert all(before[m].total <= before[m].budget and before[m].inherited <= 2 for m in ("0", "1", "2"))
    assert forward(found, 1)["1"].inherited > forward(found, 1)["1"].budget


@pytest.mark.parametrize("claim_id", ["s5.logistic.accuracy", "s6.noisy_module.accuracy", "s7.mpg.test_mse",
                                      "s8.mnist.test_acc"])
def test_deterministic_adds_nothing_over_budget(claim_id: str, mnist_root: Path) -> None:
    """deterministic runs the CPU's float32 kernels: every event's added is within budget, every Linear within its
    rounding bound, and the split is exact — |added − inherited| ≤ total ≤ added + inherited — on XOR, MyNoisyModule
    (its replay draws the same noise), MPG and MNIST; the loss and its gradient (where diverge records them) are
    replayed too."""
    found = attribute("cpu", "deterministic", claim_id, steps=2, data=mnist_root)
    assert found.exit_code == 0 and found.rows
    replayed = [r for r in found.rows if r.kind != "update"]  # an optimizer step is not replayed: its total only
    assert all(r.added is not None for r in replayed)  # the loss and its gradient too, where they are recorded
    assert all(r.added is None and r.total <= r.budget for r in found.rows if r.kind == "update")
    for r in replayed:
        assert r.added <= r.budget, r
        assert abs(r.added - r.inherited) <= r.total * (1 + 1e-6) + 1e-9, r
        assert r.total <= (r.added + r.inherited) * (1 + 1e-6) + 1e-9, r
    linears = [r for r in found.rows if "(Linear)" in r.name]
    assert linears and all(0 < r.bound_ratio <= 1 for r in linears)


@pytest.mark.parametrize("claim_id", ["s7.mpg.test_mse", "s5.logistic.accuracy"])
def test_bf16_adds_at_its_matmuls_within_their_rounding_bound(claim_id: str) -> None:
    """Under bf16 autocast every Linear adds an error thousands of times float32's (the bf16 matmul), within its
    rounding bound at bf16's unit roundoff — and not a vacuous one (observed ≥ 1 % of it) — and within budget;
    the ReLUs and the Sigmoid, exact on float32 input, add about as little as float32 does."""
    found = attribute("cpu", "cpu-bf16", claim_id, steps=1)
    linears = [r for r in found.rows if "(Linear)" in r.name]
    assert linears and all(0.01 < r.bound_ratio <= 1 and 1e3 < r.added <= r.budget for r in linears)
    others = [r for r in found.rows if "(ReLU)" in r.name or "(Sigmoid)" in r.name]
    assert others and all(r.added <= 2 for r in others)


def test_a_backend_that_rounds_more_than_it_says_is_over_its_rounding_bound() -> None:
    """A backend that rounds every Linear's inputs to TF32 but says float32: each Linear's measured error is over
    the float32 rounding bound (the bound catches what the budget, scaled by the reference's own error, may not);
    the same rounding said as TF32 (precision ``tf32``, as ``cuda-tf32``) is within TF32's bound, and not far
    under it."""
    found = attribute("cpu", EmulatedTF32("tf32-as-fp32", "TF32 judged as float32", tf32=True), "s7.mpg.test_mse",
                      steps=1)
    linears = [r for r in found.rows if "(Linear)" in r.name]
    assert linears and all(r.bound_ratio > 1 for r in linears)
    said = EmulatedTF32("tf32-as-tf32", "TF32 said", tf32=True, precision="tf32")  # as cuda-tf32 says it
    found = attribute("cpu", said, "s7.mpg.test_mse", steps=1)
    linears = [r for r in found.rows if "(Linear)" in r.name]
    assert linears and all(0.01 < r.bound_ratio <= 1 for r in linears)


@pytest.mark.parametrize(("param", "factor"), [("3.weight", 1.002), ("1.bias", 1.01)])
def test_a_gradient_fault_is_added_at_its_parameter(param: str, factor: float, mnist_root: Path) -> None:
    """A gradient hook on one parameter (× 1.002, × 1.01) is what that parameter's backward adds: its gradient
    row has the largest added of the gradients, over budget; every forward row and every gradient computed before
    it in the backward pass adds nothing over budget."""
    planted = GradientOff("grad-off", f"∂L/∂{param} × {factor}", param=param, factor=factor)
    found = attribute("cpu", planted, "s8.mnist.test_acc", steps=1, data=mnist_root)
    grads = [r for r in found.rows if r.kind == "grad" and r.module != "loss"]
    top = max(grads, key=lambda r: r.added)
    assert top.name == f"step 0 · grad · {param}" and top.added > top.budget
    before = found.rows[: found.rows.index(top)]
    assert all(r.added <= r.budget for r in before)


@pytest.mark.parametrize(("n", "seed"), [(1, 0), (8, 1), (100, 2), (784, 3)])
def test_the_rounding_bound_holds_and_is_near_tight(n: int, seed: int) -> None:
    """The bound of linear_bound_factor holds elementwise for float32 and for bf16 autocast on drawn inputs of
    n = 1 … 784, within a factor of 10 of the worst element for n ≥ 8 where the bound is γ-like (it is not
    vacuous); the float32 bound does not hold for bf16 arithmetic."""
    g = torch.Generator().manual_seed(seed)
    x, w, b = (torch.randn(s, generator=g, dtype=torch.float64) for s in ((64, n), (16, n), (16,)))
    exact = nn.functional.linear(x, w, b)
    scale = nn.functional.linear(x.abs(), w.abs(), b.abs())
    worst = {}
    for name in ("cpu", "cpu-bf16"):
        be = named(name)
        with be.autocast_context():
            got = nn.functional.linear(be.cast(x), be.cast(w), be.cast(b)).double()
        worst[name] = ((got - exact).abs() / (linear_bound_factor(n, be) * scale)).max().item()
        fp32_ratio = ((got - exact).abs() / (linear_bound_factor(n, named("cpu")) * scale)).max().item()
        if name == "cpu-bf16":
            assert fp32_ratio > 1
    assert all(r <= 1 for r in worst.values()), worst
    if n >= 8:
        assert all(r > 0.1 / (n + 3) for r in worst.values()), worst


def test_diverge_layers_cli_writes_json_table_and_chart(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`diverge --layers --json`: the list under "layers" with module, kind, step, total, added, inherited and
    bound_ratio for every event; the chart written whole (no .part left); the console table names the largest."""
    argv = ["diverge", "--b", "cpu-bf16", "--claim", "s7.mpg.test_mse", "--steps", "1", "--layers",
            "--out", str(tmp_path)]
    assert main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    layers = out["layers"]
    assert [(r["module"], r["kind"]) for r in layers[:5]] == [("0", "forward"), ("1", "forward"), ("2", "forward"),
                                                              ("3", "forward"), ("4", "forward")]
    assert all({"module", "kind", "step", "total", "added", "inherited", "bound_ratio"} <= set(r) for r in layers)
    assert {r["kind"] for r in layers} == {"forward", "grad"}
    chart = tmp_path / "layers-s7.mpg.test_mse-cpu-bf16.png"
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and not list(tmp_path.glob("*.part"))
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "largest added: module" in text and "obs/bound" in text and "step 0 · grad · 0.weight" in text
    assert isinstance(Attribution("cpu", "x", "c", 1, []), CommandResult)


def test_the_float32_rung_keeps_the_module_that_adds_the_most() -> None:
    """Under bf16 autocast judged as float32 on MPG, the ladder's module_fp32 keeps in float32 the module with the
    largest added — the last Linear, "4" (not the first one diverge names, "0") — and is named after it."""
    mislabelled = dataclasses.replace(BACKENDS["cpu-bf16"], name="bf16-as-fp32", precision="fp32")
    changed = next(r for r in RUNGS if r.name == "module_fp32").changed(mislabelled, "s7.mpg.test_mse")
    top = attribute("cpu", mislabelled, "s7.mpg.test_mse", steps=3).largest_added
    assert changed.fp32_modules == (top.module,) == ("4",)
    assert changed.name == "bf16-as-fp32+module_fp32(4)"
