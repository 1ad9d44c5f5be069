"""§3 Gradients by automatic differentiation: the chapter's dL/dw and dL/db, accumulation,
gradcheck, the chain rule in forward and reverse mode, and the gradient w.r.t. the input."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tests.registry import check, check_exercise, claim_cases, exercise_cases
from tests.strategies import FLOAT_DTYPES, reals
from torchmech.chapter.autodiff import (
    CHAIN_CASES,
    ChainCase,
    fgsm,
    forward_mode,
    linear_loss,
    reverse_mode,
    saliency,
)
from torchmech.chapter.graph import compute_z
from torchmech.chapter.implementation import Implementation
from torchmech.chapter.models import logistic_regression
from torchmech.chapter.train import binary_correct, train

pytestmark = pytest.mark.s3


@pytest.mark.parametrize("claim", claim_cases("s3"))
def test_claim(claim, spec) -> None:
    """Each claim of this section in the registry (torchmech/spec/claims.py) holds: the book's value,
    or the band, bound or law its rule names with its reason."""
    check(claim, spec)


@pytest.mark.parametrize("exercise", exercise_cases("s3"))
def test_exercise(exercise, workspace) -> None:
    """The exercise graded as `torchmech learn check s3` grades it (on the reference: its check catches
    every catalogued mistake, each named as itself)."""
    check_exercise(exercise, workspace)


def _book_example(device: str, dtype: torch.dtype = torch.float32):
    w = torch.tensor(1.0, requires_grad=True, device=device, dtype=dtype)
    b = torch.tensor(0.5, requires_grad=True, device=device, dtype=dtype)
    x = torch.tensor([1.4], device=device, dtype=dtype)
    y = torch.tensor([2.1], device=device, dtype=dtype)
    return w, b, x, y


@given(dtype=st.sampled_from(FLOAT_DTYPES), w=reals(-3, 3), b=reals(-3, 3),
       xy=st.integers(1, 16).flatmap(lambda n: st.tuples(
           st.lists(reals(-3, 3), min_size=n, max_size=n), st.lists(reals(-3, 3), min_size=n, max_size=n))))
def test_autograd_equals_the_analytic_gradient(dtype, w: float, b: float, xy, device: str,
                                               implementation: Implementation) -> None:
    """For any w, b and vectors x, y: autograd's dL/dw = 2Σx(wx+b−y) and dL/db = 2Σ(wx+b−y)."""
    xs, ys = xy
    wt = torch.tensor(w, dtype=dtype, device=device, requires_grad=True)
    bt = torch.tensor(b, dtype=dtype, device=device, requires_grad=True)
    x = torch.tensor(xs, dtype=dtype, device=device)
    y = torch.tensor(ys, dtype=dtype, device=device)
    linear_loss(wt, bt, x, y).backward()
    dw, db = implementation.linear_loss_grad(wt, bt, x, y)
    # Both sides round each of the n terms differently; bound the difference by the rounding
    # error of the sums: a few ulps (eps) per term times the terms' magnitudes. Relative
    # tolerance 0, since cancellation can make the sum itself tiny.
    eps = torch.finfo(dtype).eps
    size = 2 * (x.abs() * (wt.detach().abs() * x.abs() + bt.detach().abs() + y.abs()))
    atol_w = 8 * len(xs) * eps * size.sum().item() + 1e-30
    atol_b = 8 * len(xs) * eps * (size / x.abs().clamp_min(1e-3)).sum().item() + 1e-30
    torch.testing.assert_close(wt.grad, dw, rtol=0, atol=atol_w)
    torch.testing.assert_close(bt.grad, db, rtol=0, atol=atol_b)


def test_grad_accumulates_until_zeroed(device: str) -> None:
    """backward() adds into .grad: two calls give twice the gradient; zeroing starts over."""
    w, b, x, y = _book_example(device)
    linear_loss(w, b, x, y).backward()
    once = w.grad.clone()
    linear_loss(w, b, x, y).backward()
    torch.testing.assert_close(w.grad, 2 * once)
    w.grad.zero_()
    linear_loss(w, b, x, y).backward()
    torch.testing.assert_close(w.grad, once)


def test_gradcheck_on_the_chapters_functions(device: str) -> None:
    """gradcheck and gradgradcheck (float64, finite differences) pass on compute_z and the loss."""
    torch.manual_seed(3)
    opts = {"dtype": torch.float64, "device": device, "requires_grad": True}
    abc = tuple(torch.randn(3, **opts) for _ in range(3))
    assert torch.autograd.gradcheck(compute_z, abc)
    assert torch.autograd.gradgradcheck(compute_z, abc)
    wbxy = (torch.randn((), **opts), torch.randn((), **opts), torch.randn(5, **opts), torch.randn(5, **opts))
    assert torch.autograd.gradcheck(linear_loss, wbxy)
    assert torch.autograd.gradgradcheck(linear_loss, wbxy)


def _away_from_kinks(case: ChainCase, margin: float = 0.05):
    return st.lists(reals(case.low, case.high), min_size=1, max_size=8).filter(
        lambda xs: all(abs(x - k) > margin for x in xs for k in case.kinks))


@pytest.mark.parametrize("case", CHAIN_CASES, ids=[c.name for c in CHAIN_CASES])
def test_chain_rule_forward_and_reverse_mode_agree(case: ChainCase, device: str) -> None:
    """y = f(g(h(x))): forward accumulation (jvp), reverse accumulation (backprop) and the
    derivative worked out by hand by the chain rule agree, and gradcheck passes."""

    @given(xs=_away_from_kinks(case))
    def check(xs: list[float]) -> None:
        x = torch.tensor(xs, dtype=torch.float64, device=device)
        by_hand = case.derivative(x)
        torch.testing.assert_close(reverse_mode(case.fn, x), by_hand)
        torch.testing.assert_close(forward_mode(case.fn, x), by_hand)

    check()
    x = torch.linspace(case.low, case.high, 7, dtype=torch.float64, device=device)
    x = x[(x[:, None] - torch.tensor(case.kinks or (float("inf"),), dtype=torch.float64,
                                     device=device)).abs().min(dim=1).values > 0.05]
    assert torch.autograd.gradcheck(case.fn, (x.requires_grad_(),))


def _trained_logistic_model(device: str) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A logistic regression trained (with the package's train()) on a linearly separable set."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(200, 2, generator=g) * 2 - 1
    y = (x.sum(dim=1) > 0).float()
    torch.manual_seed(1)
    model = logistic_regression(2)
    loader = DataLoader(TensorDataset(x, y), batch_size=20, shuffle=True)
    history = train(model, nn.BCELoss(), torch.optim.SGD(model.parameters(), lr=0.5), loader, 30,
                    correct=binary_correct, device=device)
    assert history.train_acc[-1] > 0.95  # it did learn
    return model.eval(), x.to(device), y.to(device)


def test_fgsm_step_raises_the_loss(device: str, implementation: Implementation) -> None:
    """Side box of §3: the loss's gradient w.r.t. the input makes adversarial examples. One FGSM
    step x + ε·sign(∇ₓL) raises every sample's loss: for a logistic model the BCE is convex in x,
    so L(x + ε·sign g) ≥ L(x) + ε‖g‖₁ > L(x)."""
    model, x, y = _trained_logistic_model(device)
    loss = nn.BCELoss(reduction="none")
    before = loss(model(x)[:, 0], y)
    x_adv = implementation.fgsm(model, lambda p, t: nn.functional.binary_cross_entropy(p[:, 0], t), x, y, 0.1)
    after = loss(model(x_adv)[:, 0], y)
    assert (x_adv - x).abs().max().item() == pytest.approx(0.1)
    assert torch.all(after > before)
    accuracy = lambda inputs: ((model(inputs)[:, 0] >= 0.5).float() == y).float().mean().item()  # noqa: E731
    assert accuracy(x_adv) < accuracy(x)


@given(x=st.lists(st.tuples(reals(-2, 2), reals(-2, 2)), min_size=1, max_size=10))
def test_saliency_of_a_logistic_model_is_sigma_prime_times_w(x, device: str) -> None:
    """Saliency |∂ŷ/∂x| of σ(w·x + b) is σ(z)(1 − σ(z))·|w|: the gradient says which input matters."""
    torch.manual_seed(0)
    model = logistic_regression(2).to(device, torch.float64)
    xt = torch.tensor(x, dtype=torch.float64, device=device)
    p = model(xt)
    expected = (p * (1 - p)) * model[0].weight.detach().abs()
    torch.testing.assert_close(saliency(model, xt), expected.detach())


def test_input_gradient_helpers_name_bad_input() -> None:
    """Negative ε, integer inputs, mismatched x/y, non-scalar w, several outputs: clear errors."""
    model = logistic_regression(2)
    x, y = torch.zeros(3, 2), torch.zeros(3)
    loss = lambda p, t: nn.functional.binary_cross_entropy(p[:, 0], t)  # noqa: E731
    with pytest.raises(ValueError, match="epsilon"):
        fgsm(model, loss, x, y, -0.1)
    with pytest.raises(ValueError, match="floating point"):
        fgsm(model, loss, torch.zeros(3, 2, dtype=torch.int64), y, 0.1)
    with pytest.raises(ValueError, match=r"same shape.*\(2,\) and \(3,\)"):
        linear_loss(torch.tensor(1.0), torch.tensor(0.0), torch.zeros(2), torch.zeros(3))
    with pytest.raises(ValueError, match="scalars"):
        linear_loss(torch.ones(2), torch.tensor(0.0), torch.zeros(2), torch.zeros(2))
    with pytest.raises(ValueError, match="one output per sample"):
        saliency(nn.Linear(2, 3), x)


def test_kinks_are_excluded_from_the_chain_catalogue() -> None:
    """The catalogue's kinked cases really are kinked: one-sided derivatives differ there."""
    for case in (c for c in CHAIN_CASES if c.kinks):
        for k in case.kinks:
            x = torch.tensor(k, dtype=torch.float64)
            h = 1e-6
            left = (case.fn(x) - case.fn(x - h)) / h
            right = (case.fn(x + h) - case.fn(x)) / h
            assert abs(left - right) > 1e-3, case.name
