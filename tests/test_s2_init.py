"""§2 Tensors that hold parameters: requires_grad, Glorot/Xavier initialisation, MyModule's trap."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats
from torch import nn

from tests.registry import check, check_exercise, claim_cases, exercise_cases
from tests.strategies import torch_seeds
from torchmech.chapter.glorot import ParameterModule, RawTensorModule, fans, glorot_bound, glorot_std
from torchmech.chapter.implementation import Implementation

pytestmark = pytest.mark.s2


@pytest.mark.parametrize("claim", claim_cases("s2"))
def test_claim(claim, spec) -> None:
    """Each claim of this section in the registry (torchmech/spec/claims.py) holds: the book's value,
    or the band, bound or law its rule names with its reason."""
    check(claim, spec)


@pytest.mark.parametrize("exercise", exercise_cases("s2"))
def test_exercise(exercise, workspace) -> None:
    """The exercise graded as `torchmech learn check s2` grades it (on the reference: its check catches
    every catalogued mistake, each named as itself)."""
    check_exercise(exercise, workspace)


ALPHA = 1e-4  # significance level of every statistical test in this file


# --- requires_grad ----------------------------------------------------------------------------
def test_requires_grad_defaults_to_false_and_requires_grad_sets_it_in_place(device: str) -> None:
    """requires_grad is False by default; requires_grad_() flips it on the same tensor."""
    w = torch.tensor([1.0, 2.0, 3.0], device=device)
    assert w.requires_grad is False
    assert w.requires_grad_() is w
    assert w.requires_grad is True


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64,
                                   torch.complex64, torch.complex128])
def test_floating_and_complex_tensors_can_require_grad(dtype: torch.dtype) -> None:
    """Only floating-point and complex dtypes can require gradients: these can."""
    assert torch.ones(2, dtype=dtype, requires_grad=True).requires_grad


@pytest.mark.parametrize("dtype", [torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32,
                                   torch.int64])
def test_integer_tensors_cannot_require_grad(dtype: torch.dtype) -> None:
    """... and integer (and bool) tensors cannot: PyTorch raises, naming the dtype rule."""
    with pytest.raises(RuntimeError, match="floating point and complex dtype"):
        torch.ones(2, dtype=dtype, requires_grad=True)
    with pytest.raises(RuntimeError, match="floating point"):
        torch.ones(2, dtype=dtype).requires_grad_()  # worded "floating point dtype" here


# --- fans and the Glorot formulas -------------------------------------------------------------
@pytest.mark.parametrize(("shape", "expected"), [
    ((5, 3), (3, 5)),               # Linear(3, 5).weight: (out, in)
    ((8, 3, 5, 5), (75, 200)),      # Conv2d(3, 8, 5): receptive field 25
    ((4, 2, 3), (6, 12)),           # Conv1d(2, 4, 3)
    ((16, 4, 2, 2, 2), (32, 128)),  # Conv3d(4, 16, 2)
])
def test_fans_by_hand(shape: tuple[int, ...], expected: tuple[int, int], implementation: Implementation) -> None:
    """fans(shape) = (in · receptive field, out · receptive field), counted by hand."""
    assert implementation.fans(shape) == expected


@given(shape=hnp.array_shapes(min_dims=2, max_dims=5, min_side=0, max_side=6))
def test_fans_follow_pytorchs_convention(shape: tuple[int, ...], implementation: Implementation) -> None:
    """fans agrees with the fan-in/fan-out PyTorch's own initialisers use, for any ≥2-D shape."""
    # nn.init's private helper is the convention itself; xavier_* and kaiming_* call it.
    assert implementation.fans(shape) == nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))


@pytest.mark.parametrize("shape", [(), (3,), (7,)])
def test_fans_need_two_dimensions(shape: tuple[int, ...]) -> None:
    """Fewer than 2 dimensions have no fan-in/fan-out: ValueError, as nn.init.xavier_* raises."""
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        fans(shape)
    with pytest.raises(ValueError):
        nn.init.xavier_uniform_(torch.empty(shape))


def test_fans_and_glorot_reject_bad_numbers() -> None:
    """Negative or non-integer dims, negative fans, an empty weight, a negative gain: ValueError."""
    with pytest.raises(ValueError, match="non-negative ints"):
        fans((3, -1))
    with pytest.raises(ValueError, match="non-negative ints"):
        fans((3, 2.5))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-negative"):
        glorot_bound(-1, 3)
    with pytest.raises(ValueError, match="empty weight"):
        glorot_std(0, 0)
    with pytest.raises(ValueError, match="gain"):
        glorot_bound(3, 4, gain=-1.0)


@given(fan_in=st.integers(1, 10_000), fan_out=st.integers(1, 10_000), gain=st.floats(0.01, 10))
def test_both_glorot_laws_have_variance_gain2_times_2_over_fan_sum(fan_in: int, fan_out: int, gain: float,
                                                                   implementation: Implementation) -> None:
    """Uniform on [−a, a] has variance a²/3; the normal has σ²; both equal gain²·2/(n_in + n_out)."""
    variance = gain**2 * 2 / (fan_in + fan_out)
    assert math.isclose(implementation.glorot_bound(fan_in, fan_out, gain) ** 2 / 3, variance, rel_tol=1e-12)
    assert math.isclose(implementation.glorot_std(fan_in, fan_out, gain) ** 2, variance, rel_tol=1e-12)


@given(shape=hnp.array_shapes(min_dims=2, max_dims=4, min_side=1, max_side=8),
       gain=st.floats(0.1, 3), seed=torch_seeds)
def test_xavier_uniform_stays_within_the_glorot_bound(shape, gain: float, seed: int, device: str) -> None:
    """Every draw of xavier_uniform_ lies in [−a, a] with a = glorot_bound(*fans(shape), gain)."""
    torch.manual_seed(seed)
    w = nn.init.xavier_uniform_(torch.empty(shape, device=device), gain=gain)
    assert w.abs().max().item() <= glorot_bound(*fans(shape), gain) * (1 + 1e-6)


# --- the laws, tested statistically -----------------------------------------------------------
GAINS = [None, 0.5, math.sqrt(2)]  # None: the gain left unset (1)
SHAPES = [(300, 500), (64, 32, 5, 5)]  # 150,000 and 51,200 draws
INITS = {"uniform": nn.init.xavier_uniform_, "normal": nn.init.xavier_normal_}
SEED = 20240101


def xavier_pvalues(law: str, gain: float | None, shape: tuple[int, ...], seed: int,
                   device: str = "cpu") -> tuple[float, float]:
    """p-values of (KS against the exact law, variance test) for one draw of xavier_<law>_."""
    torch.manual_seed(seed)
    kwargs = {} if gain is None else {"gain": gain}
    w = INITS[law](torch.empty(shape, device=device), **kwargs).double().cpu().numpy().ravel()
    g = 1.0 if gain is None else gain
    n = w.size
    m2 = float(np.mean(w**2))  # the mean is known to be 0
    if law == "uniform":
        a = glorot_bound(*fans(shape), g)
        ks = stats.kstest(w, stats.uniform(loc=-a, scale=2 * a).cdf).pvalue
        var, var_of_square = a**2 / 3, 4 * a**4 / 45  # E[w²], Var[w²] for U(−a, a)
        z = (m2 - var) / math.sqrt(var_of_square / n)  # CLT: n is ≥ 51,200
        pvar = 2 * stats.norm.sf(abs(z))
    else:
        s = glorot_std(*fans(shape), g)
        ks = stats.kstest(w, stats.norm(scale=s).cdf).pvalue
        chi2 = n * m2 / s**2  # exactly χ²(n) for N(0, s²)
        pvar = 2 * min(stats.chi2.cdf(chi2, n), stats.chi2.sf(chi2, n))
    return float(ks), float(pvar)


@pytest.mark.parametrize("shape", SHAPES, ids=["linear", "conv"])
@pytest.mark.parametrize("gain", GAINS, ids=["unset", "0.5", "sqrt2"])
@pytest.mark.parametrize("law", ["uniform", "normal"])
def test_xavier_draws_follow_the_glorot_law(law: str, gain: float | None, shape, device: str) -> None:
    """xavier_uniform_ / xavier_normal_ draw from U(−a, a) / N(0, σ²) with a = glorot_bound and
    σ = glorot_std: a KS test against the exact law and a test of the variance, α = 1e-4 each.

    Power: at these sizes a 1 % error in the variance (0.5 % in the scale) is rejected
    (the variance test's z is ≥ 2.3 per 1 %).

    Measured once on the CPU (torch 2.14.1) over seeds 1..1000 for each of the 12 cases
    (`python -m tests.test_s2_init` repeats the count): the variance test never rejected
    (0 of 12,000); the KS test rejected 12 of 12,000, all from two seeds — 820 (uniform
    linear and conv, normal conv) and 822 (uniform linear), at every gain, since the gain only
    rescales one generator stream. So 2 of 1,000 seed streams are rejected, where about 0.3
    are expected at α = 1e-4 over the 3–4 draws a stream feeds. The fixed SEED below is not
    among them.
    """
    ks, pvar = xavier_pvalues(law, gain, shape, SEED, device)
    assert ks > ALPHA, f"KS rejects the Glorot {law} law: p = {ks:.2e}"
    assert pvar > ALPHA, f"variance differs from gain²·2/(n_in + n_out): p = {pvar:.2e}"


# --- MyModule and its trap --------------------------------------------------------------------
def test_mymodule_tensors_are_not_parameters() -> None:
    """The book's MyModule: torch.empty(..., requires_grad=True) attributes are not registered,
    so parameters() and state_dict() are empty and an optimizer has nothing to train."""
    m = RawTensorModule()
    assert m.w1.shape == (2, 3) and m.w2.shape == (1, 2)
    assert m.w1.requires_grad and m.w2.requires_grad
    assert list(m.parameters()) == []
    assert m.state_dict() == {}
    with pytest.raises(ValueError, match="empty parameter list"):
        torch.optim.SGD(m.parameters(), lr=0.1)


def test_nn_parameter_registers_them(implementation: Implementation) -> None:
    """The fix, nn.Parameter: the same draws (same seed), now parameters and in the state_dict."""
    torch.manual_seed(1)
    raw = RawTensorModule()
    torch.manual_seed(1)
    fixed = implementation.ParameterModule()
    assert [n for n, _ in fixed.named_parameters()] == ["w1", "w2"]
    assert list(fixed.state_dict()) == ["w1", "w2"]
    torch.testing.assert_close(fixed.w1.detach(), raw.w1.detach())
    torch.testing.assert_close(fixed.w2.detach(), raw.w2.detach())


def test_to_moves_parameters_but_not_plain_tensor_attributes(device: str) -> None:
    """.to(device, float64) converts registered parameters and passes the book's tensors by.
    The device half runs on every machine: ``.to("meta")`` (a device that always exists) moves
    both registered parameters to meta and leaves both plain tensor attributes on the CPU."""
    raw, fixed = RawTensorModule().to(device, torch.float64), ParameterModule().to(device, torch.float64)
    assert raw.w1.dtype == torch.float32 and raw.w1.device.type == "cpu"
    assert fixed.w1.dtype == torch.float64 and fixed.w1.device.type == device
    raw, fixed = RawTensorModule().to("meta"), ParameterModule().to("meta")
    assert [t.device.type for t in (raw.w1, raw.w2)] == ["cpu", "cpu"]
    assert [t.device.type for t in (fixed.w1, fixed.w2)] == ["meta", "meta"]
    assert all(isinstance(p, nn.Parameter) for p in (fixed.w1, fixed.w2))


if __name__ == "__main__":  # count rejections over 1,000 seeds (minutes on 2 cores)
    for law in INITS:
        for gain in GAINS:
            for shape in SHAPES:
                p = np.array([xavier_pvalues(law, gain, shape, s) for s in range(1, 1001)])
                print(law, gain, shape, "rejections (KS, variance):", (p <= ALPHA).sum(axis=0).tolist())
