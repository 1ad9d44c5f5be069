"""§4 torch.nn: the chapter's Sequential, Xavier on a layer, L1 and L2 penalties, and the
gradients of the three losses the chapter picks (BCE, cross-entropy, MSE)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from tests.registry import check, check_exercise, claim_cases, exercise_cases
from tests.strategies import FLOAT_DTYPES, reals, shapes, tensors, torch_seeds
from torchmech.chapter.glorot import fans, glorot_bound
from torchmech.chapter.implementation import Implementation
from torchmech.chapter.losses import (
    cross_entropy_logit_grad,
    l1_penalty,
    l1_penalty_grad,
    l2_penalty,
    mse_grad,
)
from torchmech.chapter.models import chapter_sequential

pytestmark = pytest.mark.s4


@pytest.mark.parametrize("claim", claim_cases("s4"))
def test_claim(claim, spec) -> None:
    """Each claim of this section in the registry (torchmech/spec/claims.py) holds: the book's value,
    or the band, bound or law its rule names with its reason."""
    check(claim, spec)


@pytest.mark.parametrize("exercise", exercise_cases("s4"))
def test_exercise(exercise, workspace) -> None:
    """The exercise graded as `torchmech learn check s4` grades it (on the reference: its check catches
    every catalogued mistake, each named as itself)."""
    check_exercise(exercise, workspace)


def test_sequential_maps_4_features_to_32(device: str, implementation: Implementation) -> None:
    """The chapter's Sequential (its printed repr is the claim s4.sequential.repr): 4 inputs in,
    32 features out, each layer feeding the next."""
    model = implementation.chapter_sequential().to(device)
    out = model(torch.randn(5, 4, device=device))
    assert out.shape == (5, 32) and bool((out >= 0).all())  # ends in a ReLU


def test_xavier_uniform_on_the_first_layer(device: str) -> None:
    """nn.init.xavier_uniform_(model[0].weight) refills that weight within ±glorot_bound(4, 16)
    and leaves the other layers alone."""
    model = chapter_sequential().to(device)
    before = [p.detach().clone() for p in model.parameters()]
    nn.init.xavier_uniform_(model[0].weight)
    assert fans(model[0].weight.shape) == (4, 16)
    assert model[0].weight.abs().max().item() <= glorot_bound(4, 16)
    assert not torch.equal(model[0].weight.detach(), before[0])
    for p, q in zip(list(model.parameters())[1:], before[1:], strict=True):
        assert torch.equal(p.detach(), q)


@given(shape=shapes(min_dims=1, max_dims=3), strength=reals(0.0, 1.0), data=st.data())
def test_l1_penalty_and_its_gradient(shape, strength: float, data, device: str, implementation: Implementation) -> None:
    """The chapter's L1 penalty λ·Σ|W| equals λ times the vector 1-norm of W flattened
    (``torch.linalg.vector_norm(W, ord=1)``, an independent oracle) and has gradient λ·sign(W)."""
    w = data.draw(tensors(shape, torch.float64, device, -5, 5)).requires_grad_()
    penalty = implementation.l1_penalty(w, strength)
    torch.testing.assert_close(penalty, strength * torch.linalg.vector_norm(w.detach(), ord=1))
    penalty.backward()
    torch.testing.assert_close(w.grad, l1_penalty_grad(w, strength))


def test_l1_penalty_of_model_2_as_in_the_book(implementation: Implementation) -> None:
    """Book: l1_penalty = 0.01 * model[2].weight.abs().sum(), i.e. 0.01 times the 1-norm of the
    flattened (32, 16) weight (oracle: ``torch.linalg.vector_norm(W, ord=1)``); at W = 0 the
    subgradient is 0."""
    model = chapter_sequential()
    norm = torch.linalg.vector_norm(model[2].weight.detach(), ord=1)
    torch.testing.assert_close(implementation.l1_penalty(model[2].weight).detach(), 0.01 * norm)
    w = torch.zeros(3, requires_grad=True)
    implementation.l1_penalty(w).backward()
    assert torch.equal(w.grad, torch.zeros(3))


def test_l1_penalty_by_hand(implementation: Implementation) -> None:
    """One value worked by hand: W = [[1.5, −2], [0, −0.25]] has Σ|W| = 1.5 + 2 + 0 + 0.25 = 3.75,
    so λ = 0.2 gives 0.75 and the default λ = 0.01 gives 0.0375."""
    w = torch.tensor([[1.5, -2.0], [0.0, -0.25]], dtype=torch.float64)
    torch.testing.assert_close(implementation.l1_penalty(w, 0.2), torch.tensor(0.75, dtype=torch.float64))
    torch.testing.assert_close(implementation.l1_penalty(w), torch.tensor(0.0375, dtype=torch.float64))


def _one_step(opt_class, w0: torch.Tensor, x: torch.Tensor, lr: float, wd: float, in_loss: bool):
    w = w0.clone().requires_grad_()
    opt = opt_class([w], lr=lr, weight_decay=0.0 if in_loss else wd)
    loss = (x @ w).pow(2).mean()
    if in_loss:
        loss = loss + l2_penalty(w, wd)
    loss.backward()
    opt.step()
    return w.detach()


@given(seed=torch_seeds, rows=st.integers(1, 6), cols=st.integers(1, 6),
       lr=reals(1e-3, 0.5), wd=reals(1e-4, 0.5))
def test_weight_decay_is_an_l2_penalty(seed: int, rows: int, cols: int, lr: float, wd: float,
                                       device: str) -> None:
    """L2 through an optimizer: SGD (and Adam) with weight_decay=wd take the same step as adding
    (wd/2)·‖W‖² to the loss: both add wd·W to the gradient."""
    g = torch.Generator().manual_seed(seed)
    w0 = torch.randn(rows, cols, generator=g, dtype=torch.float64).to(device)
    x = torch.randn(4, rows, generator=g, dtype=torch.float64).to(device)
    for opt in (torch.optim.SGD, torch.optim.Adam):
        torch.testing.assert_close(_one_step(opt, w0, x, lr, wd, False), _one_step(opt, w0, x, lr, wd, True))


@given(shape=shapes(), dtype=st.sampled_from(FLOAT_DTYPES), soft=st.booleans(), data=st.data())
def test_bce_on_sigmoid_gradient_is_sigma_minus_y_over_n(shape, dtype, soft: bool, data, device: str,
                                                         implementation: Implementation) -> None:
    """BCELoss(σ(z), y), mean over N elements, has ∂L/∂z = (σ(z) − y)/N; BCEWithLogitsLoss agrees."""
    z = data.draw(tensors(shape, dtype, device, -8, 8)).requires_grad_()
    y = data.draw(tensors(shape, dtype, device, 0, 1)) if soft else \
        data.draw(tensors(shape, torch.int64, device, 0, 1)).to(dtype)
    nn.BCELoss()(torch.sigmoid(z), y).backward()
    torch.testing.assert_close(z.grad, implementation.bce_logit_grad(z.detach(), y))
    z.grad = None
    nn.BCEWithLogitsLoss()(z, y).backward()
    torch.testing.assert_close(z.grad, implementation.bce_logit_grad(z.detach(), y))


@given(n=st.integers(1, 8), classes=st.integers(2, 6), dtype=st.sampled_from(FLOAT_DTYPES), data=st.data())
def test_cross_entropy_gradient_is_softmax_minus_onehot_over_n(n: int, classes: int, dtype, data,
                                                               device: str, implementation: Implementation) -> None:
    """CrossEntropyLoss on logits (N, C), mean over N samples: ∂L/∂z = (softmax(z) − onehot(k))/N."""
    z = data.draw(tensors((n, classes), dtype, device, -10, 10)).requires_grad_()
    k = data.draw(tensors((n,), torch.int64, device, 0, classes - 1))
    nn.CrossEntropyLoss()(z, k).backward()
    torch.testing.assert_close(z.grad, implementation.cross_entropy_logit_grad(z.detach(), k))


@given(shape=shapes(), dtype=st.sampled_from(FLOAT_DTYPES), data=st.data())
def test_mse_gradient_is_two_residuals_over_n(shape, dtype, data, device: str, implementation: Implementation) -> None:
    """MSELoss(ŷ, y), mean over N elements: ∂L/∂ŷ = 2(ŷ − y)/N."""
    pred = data.draw(tensors(shape, dtype, device, -100, 100)).requires_grad_()
    y = data.draw(tensors(shape, dtype, device, -100, 100))
    nn.MSELoss()(pred, y).backward()
    torch.testing.assert_close(pred.grad, implementation.mse_grad(pred.detach(), y))


def test_penalties_and_loss_gradients_name_bad_input() -> None:
    """A negative strength, mismatched shapes, logits that are not (N, C): ValueError naming it."""
    with pytest.raises(ValueError, match="L1 strength"):
        l1_penalty(torch.ones(2), -0.1)
    with pytest.raises(ValueError, match="weight_decay"):
        l2_penalty(torch.ones(2), -0.1)
    with pytest.raises(ValueError, match=r"shapes differ: \(2,\) vs \(3,\)"):
        mse_grad(torch.ones(2), torch.ones(3))
    with pytest.raises(ValueError, match=r"logits \(N, C\)"):
        cross_entropy_logit_grad(torch.ones(4), torch.zeros(4, dtype=torch.int64))
