"""The chapter's implementable pieces, as exercises a learner writes and the specification grades.

Each :class:`Exercise` names one piece of :class:`torchmech.claims.Implementation` (``compute_z``,
``NoisyLinear``, ``train``…), its fixed signature, the task in the chapter's terms, the registry
claims that grade it, its checks (laws over a few inputs, each failing with what it expected and
what it got) and a ladder of three hints: the chapter's idea, the formula, the reference's line.
:mod:`torchmech.learn` writes the stubs and grades a learner's workspace with them; the mistake
catalogue (:mod:`torchmech.mistakes`) proves that every exercise's checks can fail.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

Check = Callable[[Any], None]  # check(impl): raises AssertionError naming what it expected and got


@dataclass(frozen=True)
class Exercise:
    """One piece of the chapter for the learner to write.

    Attributes:
        name: the piece's name in :class:`~torchmech.claims.Implementation` (and in the workspace).
        section: ``s1`` … ``s9``.
        stub: the fixed signature, as the workspace's stub writes it (a ``def`` or ``class`` line).
        task: what to write, in the chapter's terms.
        claims: registry claim ids that grade it.
        checks: laws over a few inputs, ``check(impl)``.
        hints: the chapter's idea, the formula, the reference's line (shown one at a time).
    """

    name: str
    section: str
    stub: str
    task: str
    claims: tuple[str, ...]
    checks: tuple[Check, ...]
    hints: tuple[str, str, str]


def expect(ok: bool, expected: str, got: Any) -> None:
    """Fail a check with what it expected and what the learner's code gave."""
    if not ok:
        raise AssertionError(f"expected {expected}, got {got}")


def _close(a: torch.Tensor, b: torch.Tensor, atol: float = 1e-6) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a.double(), b.double(), rtol=1e-5, atol=atol))


# --- §1 ------------------------------------------------------------------------------------------------
def _check_compute_z(impl: Any) -> None:
    g = torch.Generator().manual_seed(0)
    a, b, c = (torch.randn(3, generator=g) for _ in range(3))
    got = impl.compute_z(a, b, c)
    expect(_close(got, 2 * (a - b) + c), f"2·(a − b) + c = {(2 * (a - b) + c).tolist()}", got)


# --- §2 ------------------------------------------------------------------------------------------------
def _check_fans(impl: Any) -> None:
    for shape, fans in (((5, 3), (3, 5)), ((8, 3, 5, 5), (75, 200)), ((4, 2, 3), (6, 12))):
        got = tuple(impl.fans(shape))
        expect(got == fans, f"fans{shape} = {fans} (fan_in = shape[1]·receptive field)", got)


def _check_glorot(piece: str, formula: Callable[[int, int, float], float], text: str) -> Check:
    def check(impl: Any) -> None:
        for fan_in, fan_out, gain in ((3, 5, 1.0), (784, 32, 1.0), (4, 16, 0.5)):
            got = getattr(impl, piece)(fan_in, fan_out, gain)
            want = formula(fan_in, fan_out, gain)
            expect(math.isclose(got, want, rel_tol=1e-9), f"{piece}({fan_in}, {fan_out}, {gain}) = {want:.6g} ({text})",
                   got)
    check.__name__ = f"check_{piece}"
    return check


def _check_parameter_module(impl: Any) -> None:
    m = impl.ParameterModule()
    names = [(n, tuple(p.shape)) for n, p in m.named_parameters()]
    expect(names == [("w1", (2, 3)), ("w2", (1, 2))], "registered parameters w1 (2, 3) and w2 (1, 2)", names)


# --- §3 ------------------------------------------------------------------------------------------------
def _check_linear_loss_grad(impl: Any) -> None:
    from torchmech.autodiff import linear_loss

    g = torch.Generator().manual_seed(1)
    w, b = torch.randn((), generator=g).requires_grad_(), torch.randn((), generator=g).requires_grad_()
    x, y = torch.randn(5, generator=g), torch.randn(5, generator=g)
    linear_loss(w, b, x, y).backward()  # autograd is the oracle
    dw, db = impl.linear_loss_grad(w, b, x, y)
    expect(_close(dw, w.grad) and _close(db, b.grad), f"autograd's (dL/dw, dL/db) = ({w.grad:.6f}, {b.grad:.6f})",
           (dw, db))


def _check_fgsm(impl: Any) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 1), nn.Sigmoid())
    x, y = torch.rand(8, 2), (torch.rand(8) > 0.5).float()
    loss = lambda p, t: nn.functional.binary_cross_entropy(p[:, 0], t)  # noqa: E731
    xr = x.clone().requires_grad_()
    (grad,) = torch.autograd.grad(loss(model(xr), y), xr)
    got = impl.fgsm(model, loss, x, y, 0.1)
    expect(_close(got, x + 0.1 * grad.sign()), "x + ε·sign(∂L/∂x) with ε = 0.1 (the gradient w.r.t. the input)", got)
    expect(all(p.grad is None for p in model.parameters()), "the model's parameters left without .grad",
           "gradients in the parameters")


# --- §4 ------------------------------------------------------------------------------------------------
def _check_l1(impl: Any) -> None:
    w = torch.tensor([[1.5, -2.0], [0.0, -0.25]])
    got = impl.l1_penalty(w, 0.2)
    expect(_close(torch.as_tensor(got), torch.tensor(0.75)), "0.2 · Σ|W| = 0.75 for W = [[1.5, −2], [0, −0.25]]", got)


def _check_loss_grad(piece: str, loss: Callable[..., torch.Tensor], make: Callable[[torch.Generator], tuple],
                     text: str) -> Check:
    def check(impl: Any) -> None:
        g = torch.Generator().manual_seed(2)
        z, target = make(g)
        z = z.requires_grad_()
        loss(z, target).backward()
        got = getattr(impl, piece)(z.detach(), target)
        expect(_close(got, z.grad), f"autograd's ∂L/∂z of {text}", got)
    check.__name__ = f"check_{piece}"
    return check


def _check_sequential(impl: Any) -> None:
    model = impl.chapter_sequential()
    out = model(torch.randn(5, 4))
    expect(tuple(out.shape) == (5, 32) and bool((out >= 0).all()), "5 × 32 non-negative outputs (ends in a ReLU)",
           tuple(out.shape))


# --- §5 ------------------------------------------------------------------------------------------------
def _check_make_xor(impl: Any) -> None:
    d = impl.make_xor(40, 3)
    want = (d.x[:, 0] * d.x[:, 1] >= 0).astype(float)
    expect(len(d.x_train) == len(d.x_valid) == 20, "halves of 20 for n = 40", (len(d.x_train), len(d.x_valid)))
    expect(bool((d.y == want).all()), "label 1 unless x0·x1 < 0", d.y[:8])


class _Probe(nn.Module):
    """A linear classifier that records, per call, whether grad mode and train mode were on."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(2, 1)
        self.calls: list[tuple[bool, bool]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append((torch.is_grad_enabled(), self.training))
        return torch.sigmoid(self.lin(x))


def _check_train(impl: Any) -> None:
    from torch.utils.data import DataLoader, TensorDataset

    from torchmech.train import binary_correct

    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0], [0.5, 0.5]])
    y = torch.tensor([1.0, 1.0, 0.0, 0.0, 1.0])
    loader = DataLoader(TensorDataset(x, y), batch_size=2)  # batches of 2, 2, 1
    torch.manual_seed(0)
    model = _Probe()
    with torch.no_grad():
        losses = [nn.BCELoss()(model(xb)[:, 0], yb).item() for xb, yb in loader]
        right = binary_correct(model(x)[:, 0], y).item()
    model.calls.clear()
    h = impl.train(model, nn.BCELoss(), torch.optim.SGD(model.parameters(), lr=0.0), loader, 1,
                   valid_batches=loader, correct=binary_correct)
    mean = sum(losses) / 3  # lr 0: the batch losses of training and of validation are the same
    expect(math.isclose(h.train_loss[0], mean, rel_tol=1e-12) and math.isclose(h.valid_loss[0], mean, rel_tol=1e-12),
           f"train and valid epoch loss = mean of the 3 batch losses = {mean:.6f}", (h.train_loss, h.valid_loss))
    expect(h.train_acc[0] == h.valid_acc[0] == right / 5, f"accuracy = right answers / 5 samples = {right / 5}",
           (h.train_acc, h.valid_acc))
    expect(model.calls == [(True, True)] * 3 + [(False, False)] * 3,
           "3 training calls with grad in train mode, then 3 validation calls under no_grad in eval mode",
           model.calls)
    torch.manual_seed(0)
    model, ref = _Probe(), _Probe()
    ref.load_state_dict(model.state_dict())
    impl.train(model, nn.BCELoss(), torch.optim.SGD(model.parameters(), lr=0.5), loader, 1, correct=binary_correct)
    opt = torch.optim.SGD(ref.parameters(), lr=0.5)
    for xb, yb in loader:  # the update written out: gradients zeroed after every step
        nn.BCELoss()(ref(xb)[:, 0], yb).backward()
        opt.step()
        opt.zero_grad()
    expect(_close(model.lin.weight.detach(), ref.lin.weight.detach()), "the weights of 3 SGD steps, each from its "
           "own batch's gradient", model.lin.weight.detach().tolist())


# --- §6 ------------------------------------------------------------------------------------------------
def _check_modulelist(impl: Any) -> None:
    from torchmech.models import mlp

    torch.manual_seed(0)
    model = impl.ModuleListModel()
    seq = mlp((2, 4, 4, 1))
    seq.load_state_dict({k.removeprefix("module_list."): v for k, v in model.state_dict().items()})
    x = torch.randn(6, 2)
    expect(_close(model(x), seq(x)), "the outputs of Sequential(2→4→4→1, Sigmoid) with the same weights", model(x))
    with torch.no_grad():
        for m in model.module_list:
            if isinstance(m, nn.Linear):
                m.weight.zero_()
                m.bias.zero_()
    got = model.predict(torch.zeros(1, 2))  # sigmoid(0) = 0.5 exactly: class 1
    expect(torch.equal(torch.as_tensor(got), torch.ones(1)), "predict = 1.0 where the output is exactly 0.5", got)


def _check_noisy_linear(impl: Any) -> None:
    layer = impl.NoisyLinear(4, 3, 0.2)
    expect(tuple(layer.w.shape) == (4, 3) and tuple(layer.b.shape) == (3,), "w of shape (4, 3) and b of shape (3,)",
           (tuple(layer.w.shape), tuple(layer.b.shape)))
    x = torch.randn(5, 4)
    expect(_close(layer(x, training=False), x @ layer.w + layer.b), "x·w + b without noise (training=False)",
           layer(x, training=False))
    expect(not torch.equal(layer(x, training=True), layer(x, training=True)), "fresh noise on every training call",
           "two equal calls")
    layer.train()
    expect(not torch.equal(layer(x), layer(x)), "noise in train() mode when training is not given (None follows "
           "self.training; the book's default was False)", "no noise")
    layer.eval()
    expect(torch.equal(layer(x), layer(x)), "no noise in eval() mode", "noise")
    meta = layer.to("meta")(torch.zeros(2, 4, device="meta", dtype=torch.float32), training=True)
    expect(meta.device.type == "meta", "noise drawn on the input's device (here meta)", meta.device)


# --- §7 ------------------------------------------------------------------------------------------------
def _check_bucketize(impl: Any) -> None:
    years = torch.arange(60, 91)
    got = impl.bucketize_year(years)
    want = sum((years >= b).long() for b in (73, 76, 79))
    expect(torch.equal(got, want), "≤ 72 → 0, 73–75 → 1, 76–78 → 2, ≥ 79 → 3", got.tolist())


def _check_mpg_features(impl: Any) -> None:
    from sklearn.model_selection import train_test_split

    from torchmech.data.auto_mpg import NUMERIC, load_auto_mpg

    df = load_auto_mpg().dropna().reset_index(drop=True)
    train, test = train_test_split(df, train_size=0.8, random_state=1)
    mean, std = train[NUMERIC].mean(), train[NUMERIC].std()
    d = impl.mpg_features()
    want = torch.tensor(((test[NUMERIC] - mean) / std).values, dtype=torch.float32)
    expect(_close(d.x_test[:, :5], want, atol=1e-5), "the test split standardised with the TRAIN split's mean and std",
           d.x_test[:3, :5])


def _check_mpg_regressor(impl: Any) -> None:
    model = impl.mpg_regressor()
    sizes = [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)]
    expect(sizes == [(9, 8), (8, 4), (4, 1)], "Linear(9, 8), Linear(8, 4), Linear(4, 1)", sizes)
    last = [m for m in model.modules() if not isinstance(m, nn.Sequential)][-1]
    expect(isinstance(last, nn.Linear), "no activation after the last Linear (a regression)", type(last).__name__)


# --- §8 ------------------------------------------------------------------------------------------------
def _check_mnist_mlp(impl: Any) -> None:
    model = impl.mnist_mlp()
    sizes = [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, nn.Linear)]
    expect(sizes == [(784, 32), (32, 16), (16, 10)], "Linear(784, 32), Linear(32, 16), Linear(16, 10)", sizes)
    out = model(torch.rand(4, 1, 28, 28))
    expect(out.shape == (4, 10) and not _close(out.softmax(1).sum(1), out.sum(1)),
           "10 logits per image, no Softmax (CrossEntropyLoss applies log-softmax)", out[:1])


def _check_shuffled_batches(impl: Any) -> None:
    from torch.utils.data import DataLoader, TensorDataset

    x, y = torch.rand(100, 3), torch.arange(100)
    torch.manual_seed(5)
    book = [b for _ in range(2) for b in DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)]
    torch.manual_seed(5)
    mine = [b for _ in range(2) for b in impl.ShuffledBatches(x, y, 16)]
    same = len(book) == len(mine) and all(torch.equal(a[1], b[1]) for a, b in zip(book, mine, strict=False))
    expect(same, "DataLoader(shuffle=True)'s batches, in its order, over two epochs (seeded 5)",
           [b[1][:4].tolist() for b in mine[:2]])


# --- §9 ------------------------------------------------------------------------------------------------
def _check_lightning_module(impl: Any) -> None:
    import tempfile

    import lightning.pytorch as pl
    from torch.utils.data import DataLoader, TensorDataset

    data = TensorDataset(torch.rand(64, 1, 28, 28), torch.randint(0, 10, (64,)))
    loader = DataLoader(data, batch_size=16)
    model = impl.MultiLayerPerceptron()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                             enable_model_summary=False, default_root_dir=tmp)
        trainer.fit(model, loader, loader)
    logged = sorted(trainer.callback_metrics)
    expect({"train_loss", "train_acc", "valid_loss", "valid_acc"} <= set(logged),
           "train_loss, train_acc, valid_loss and valid_acc logged by the hooks Lightning 2.x calls", logged)


def _grad_case(kind: str) -> Callable[[torch.Generator], tuple]:
    if kind == "bce":
        return lambda g: (torch.randn(6, generator=g), (torch.rand(6, generator=g) > 0.5).float())
    if kind == "ce":
        return lambda g: (torch.randn(4, 5, generator=g), torch.randint(0, 5, (4,), generator=g))
    return lambda g: (torch.randn(6, generator=g), torch.randn(6, generator=g))


EXERCISES: tuple[Exercise, ...] = (
    Exercise("compute_z", "s1", "def compute_z(a, b, c):",
             "Return z = 2·(a − b) + c built from torch.sub, torch.mul and torch.add, so that PyTorch records "
             "the graph Sub → Mul → Add.",
             ("s1.compute_z.rank0", "s1.compute_z.rank1", "s1.compute_z.rank2", "s1.graph.dag"), (_check_compute_z,),
             ("§1: a computation graph is built while the code runs, one node per operation.",
              "z = 2 × (a − b) + c, in that order: subtract, multiply, add.",
              "r1 = torch.sub(a, b); r2 = torch.mul(r1, 2); return torch.add(r2, c)")),
    Exercise("fans", "s2", "def fans(shape):",
             "Return (fan_in, fan_out) of a weight of this shape in PyTorch's convention "
             "(out_features, in_features, *kernel).",
             (), (_check_fans,),
             ("§2: Glorot's scale depends on how many inputs and outputs a unit has.",
              "receptive = product of shape[2:]; fan_in = shape[1]·receptive; fan_out = shape[0]·receptive.",
              "receptive = math.prod(shape[2:]); return shape[1] * receptive, shape[0] * receptive")),
    Exercise("glorot_bound", "s2", "def glorot_bound(fan_in, fan_out, gain=1.0):",
             "Return the half-width a of Glorot's uniform law U(−a, a).", (),
             (_check_glorot("glorot_bound", lambda i, o, g: g * math.sqrt(6 / (i + o)), "gain·√(6 / (n_in + n_out))"),),
             ("§2: Xavier keeps the variance of activations equal across layers.",
              "a = gain · √(6 / (fan_in + fan_out)): U(−a, a) has variance a²/3 = 2/(fan_in + fan_out).",
              "return gain * math.sqrt(6.0 / (fan_in + fan_out))")),
    Exercise("glorot_std", "s2", "def glorot_std(fan_in, fan_out, gain=1.0):",
             "Return the standard deviation of Glorot's normal law.", (),
             (_check_glorot("glorot_std", lambda i, o, g: g * math.sqrt(2 / (i + o)), "gain·√(2 / (n_in + n_out))"),),
             ("§2: the normal version has the same variance as the uniform one.",
              "σ = gain · √(2 / (fan_in + fan_out)).",
              "return gain * math.sqrt(2.0 / (fan_in + fan_out))")),
    Exercise("ParameterModule", "s2", "class ParameterModule(nn.Module):",
             "The chapter's MyModule with two Xavier-normal tensors w1 (2×3) and w2 (1×2) that the module "
             "registers as parameters (the book's torch.empty(..., requires_grad=True) does not: the trap).",
             ("s2.mymodule.fixed",), (_check_parameter_module,),
             ("§2: a module only sees tensors it registered; a plain attribute is invisible to parameters().",
              "wrap each tensor in nn.Parameter(...) before assigning it to self.",
              "self.w1 = nn.Parameter(torch.empty(2, 3)); nn.init.xavier_normal_(self.w1)")),
    Exercise("linear_loss_grad", "s3", "def linear_loss_grad(w, b, x, y):",
             "Return (dL/dw, dL/db) of L = Σ(y − (w·x + b))², worked out by hand (not with autograd).",
             ("s3.analytic.dL_dw", "s3.analytic.dL_db"), (_check_linear_loss_grad,),
             ("§3: the chain rule gives the gradient of a squared error by hand.",
              "with r = w·x + b − y: dL/dw = 2·Σ x·r and dL/db = 2·Σ r.",
              "r = w.detach() * x + b.detach() - y; return 2 * (x * r).sum(), 2 * r.sum()")),
    Exercise("fgsm", "s3", "def fgsm(model, loss_fn, x, y, epsilon, clamp=None):",
             "One fast-gradient-sign step: x + ε·sign(∂L/∂x), the gradient with respect to the INPUT (the side "
             "box of §3); clamp to [lo, hi] when given; leave the model's parameters without gradients.",
             (), (_check_fgsm,),
             ("§3's side box: the gradient w.r.t. the input shows how to change the input to raise the loss.",
              "x_adv = x + ε · sign(∇ₓ L(model(x), y)).",
              "x = x.detach().requires_grad_(True); (g,) = torch.autograd.grad(loss_fn(model(x), y), x)")),
    Exercise("l1_penalty", "s4", "def l1_penalty(weight, strength=0.01):",
             "The chapter's L1 penalty λ·Σ|W|.", (), (_check_l1,),
             ("§4: L1 regularisation adds the weights' absolute sum to the loss.",
              "λ · Σ |w|.", "return strength * weight.abs().sum()")),
    Exercise("bce_logit_grad", "s4", "def bce_logit_grad(z, y):",
             "∂ BCELoss(σ(z), y) / ∂z, mean over the N elements, by hand.", (),
             (_check_loss_grad("bce_logit_grad", lambda z, t: nn.BCELoss()(torch.sigmoid(z), t), _grad_case("bce"),
                               "BCELoss(σ(z), y)"),),
             ("§4: BCE on a sigmoid has the simplest gradient in the chapter.", "(σ(z) − y) / N.",
              "return (torch.sigmoid(z) - y) / z.numel()")),
    Exercise("cross_entropy_logit_grad", "s4", "def cross_entropy_logit_grad(logits, target):",
             "∂ CrossEntropyLoss(z, k) / ∂z for logits (N, C) and classes (N,), by hand.", (),
             (_check_loss_grad("cross_entropy_logit_grad", nn.CrossEntropyLoss(), _grad_case("ce"),
                               "CrossEntropyLoss(z, k)"),),
             ("§4: cross-entropy applies log-softmax to the logits itself.",
              "(softmax(z) − onehot(k)) / N, softmax over the classes (dim 1).",
              "return (torch.softmax(logits, dim=1) - onehot) / logits.shape[0]")),
    Exercise("mse_grad", "s4", "def mse_grad(pred, y):",
             "∂ MSELoss(ŷ, y) / ∂ŷ, mean over the N elements, by hand.", (),
             (_check_loss_grad("mse_grad", nn.MSELoss(), _grad_case("mse"), "MSELoss(ŷ, y)"),),
             ("§4: the mean squared error's gradient is the residual.", "2 · (ŷ − y) / N.",
              "return 2 * (pred - y) / pred.numel()")),
    Exercise("chapter_sequential", "s4", "def chapter_sequential():",
             "The chapter's nn.Sequential: Linear(4, 16), ReLU, Linear(16, 32), ReLU.",
             ("s4.sequential.repr", "s4.sequential.parameters"), (_check_sequential,),
             ("§4: nn.Sequential chains layers in order.", "4 → 16 → 32 with a ReLU after each Linear.",
              "return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 32), nn.ReLU())")),
    Exercise("make_xor", "s5", "def make_xor(n=200, seed=1):",
             "The book's XOR data: np.random.seed(seed); x = uniform(−1, 1, (n, 2)); label 1 unless x0·x1 < 0; the "
             "first n/2 rows train. Return torchmech.data.xor.XorData (x, y as NumPy; the halves as float32 tensors).",
             ("s5.data.first_row", "s5.data.class1"), (_check_make_xor,),
             ("§5: XOR is the classic problem a linear boundary cannot solve.",
              "y = 1 where x0·x1 ≥ 0, else 0; split at n/2.",
              "np.random.seed(seed); x = np.random.uniform(low=-1, high=1, size=(n, 2))")),
    Exercise("train", "s5", "def train(model, loss_fn, optimizer, train_batches, num_epochs, valid_batches=None, *, "
             "correct=None, device='cpu', on_epoch_end=None):",
             "The one training loop; return torchmech.train.History. Per epoch: the loss is the mean of the batch "
             "losses over len(train_batches); accuracy is right answers over samples; validation runs in eval() mode "
             "under torch.no_grad(); gradients are zeroed after every step.", (), (_check_train,),
             ("§5: the training loop: forward, loss, backward, step, zero the gradients; then validate.",
              "loss_hist[epoch] = Σ batch losses / len(loader); acc = Σ correct / Σ samples.",
              "loss.backward(); optimizer.step(); optimizer.zero_grad()")),
    Exercise("ModuleListModel", "s6", "class ModuleListModel(nn.Module):",
             "The chapter's MyModule: Linear(2,4), ReLU, Linear(4,4), ReLU, Linear(4,1), Sigmoid kept in an "
             "nn.ModuleList named module_list and applied in a loop in forward; predict(x) gives 0/1 floats, class "
             "1 where the output ≥ 0.5 (NumPy in → NumPy out, tensor in → tensor out).",
             ("s6.modulelist.repr",), (_check_modulelist,),
             ("§6: nn.ModuleList registers a list of layers; forward decides how to use them.",
              "for f in self.module_list: x = f(x); predict = (model(x)[:, 0] >= 0.5).float().",
              "self.module_list = nn.ModuleList([nn.Linear(2, 4), nn.ReLU(), …, nn.Sigmoid()])")),
    Exercise("NoisyLinear", "s6", "class NoisyLinear(nn.Module):",
             "NoisyLinear(input_size, output_size, noise_stddev=0.1): w (input_size × output_size) Xavier-uniform, "
             "b zeros; forward(x, training=None) returns (x + ε)·w + b with ε ~ N(0, σ²) drawn per element on x's "
             "device in training (None follows self.training), x·w + b otherwise.",
             ("s6.noisy_linear.train_1", "s6.noisy_linear.train_2", "s6.noisy_linear.eval", "s6.noisy_linear.law"),
             (_check_noisy_linear,),
             ("§6: a custom layer is an nn.Module with parameters and a forward.",
              "y = (x + ε)·w + b, ε = torch.normal(0, σ, x.shape) in training only.",
              "x_new = torch.add(x, torch.normal(0.0, self.noise_stddev, x.shape, dtype=x.dtype, device=x.device))")),
    Exercise("bucketize_year", "s7", "def bucketize_year(years):",
             "Model Year → bucket 0..3 with torch.bucketize over the boundaries [73, 76, 79], right=True.", (),
             (_check_bucketize,),
             ("§7: a numeric column becomes a categorical one by bucketing.",
              "≤ 72 → 0, 73–75 → 1, 76–78 → 2, ≥ 79 → 3.",
              "torch.bucketize(years, torch.tensor([73, 76, 79]), right=True)")),
    Exercise("mpg_features", "s7", "def mpg_features(df=None, train_size=0.8, random_state=1):",
             "The book's features as torchmech.data.auto_mpg.MpgData: dropna; train_test_split(train_size=0.8, "
             "random_state=1); the 5 continuous columns standardised with the TRAIN split's mean and std (ddof 1); "
             "Model Year bucketed; Origin one-hot as one_hot(origin % 3).",
             ("s7.data.train_rows", "s7.data.train_mean.mpg", "s7.data.train_mean.model_year", "s7.data.origin"),
             (_check_mpg_features,),
             ("§7: standardise with the training split's statistics only: the test split is unseen data.",
              "x' = (x − mean_train) / std_train for both splits; 9 features = 5 numbers, 1 bucket, 3 one-hot.",
              "part[col] = (part[col] - stats.loc[col, 'mean']) / stats.loc[col, 'std']")),
    Exercise("mpg_regressor", "s7", "def mpg_regressor():",
             "§7's regression net: Linear(9, 8), ReLU, Linear(8, 4), ReLU, Linear(4, 1) — no output activation.",
             (), (_check_mpg_regressor,),
             ("§7: a regression net ends in a plain Linear.", "9 → 8 → 4 → 1 with ReLUs between.",
              "return nn.Sequential(nn.Linear(9, 8), nn.ReLU(), nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 1))")),
    Exercise("mnist_mlp", "s8", "def mnist_mlp():",
             "§8's classifier: Flatten, Linear(784, 32), ReLU, Linear(32, 16), ReLU, Linear(16, 10); no Softmax.",
             (), (_check_mnist_mlp,),
             ("§8: CrossEntropyLoss takes logits.", "784 → 32 → 16 → 10 after Flatten.",
              "nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), "
              "nn.Linear(16, 10))")),
    Exercise("ShuffledBatches", "s8", "class ShuffledBatches:",
             "ShuffledBatches(x, y, batch_size): a sized iterable yielding exactly DataLoader(TensorDataset(x, y), "
             "batch_size, shuffle=True)'s batches, by replaying its two draws from torch's generator per epoch.",
             (), (_check_shuffled_batches,),
             ("§8's fast path: the same batches without per-sample work.",
              "per pass: draw one int64 (the iterator's base seed), then one more as the seed of a "
              "torch.Generator; randperm(n, generator=…) is the order.",
              "seed = int(torch.empty((), dtype=torch.int64).random_().item())")),
    Exercise("MultiLayerPerceptron", "s9", "class MultiLayerPerceptron(pl.LightningModule):",
             "§9's LightningModule (image_shape=(1, 28, 28), hidden_units=(32, 16)): training_step, validation_step "
             "and test_step log <stage>_loss; on_train_epoch_end / on_validation_epoch_end / on_test_epoch_end log "
             "<stage>_acc from torchmetrics Accuracy(task='multiclass', num_classes=10); Adam lr 0.001.",
             (), (_check_lightning_module,),
             ("§9: Lightning calls your hooks; Lightning 2.x removed training_epoch_end.",
              "self.log('train_loss', loss) per step; self.log('train_acc', self.train_acc.compute()) at epoch end.",
              "def on_train_epoch_end(self): self.log('train_acc', self.train_acc.compute()); self.train_acc.reset()")),
)


def exercise(name: str) -> Exercise:
    for e in EXERCISES:
        if e.name == name:
            return e
    raise KeyError(f"no exercise {name!r}: choose from {', '.join(e.name for e in EXERCISES)}")


def exercises(section: str | None = None) -> list[Exercise]:
    return [e for e in EXERCISES if section is None or e.section == section]
