"""The exercises' sample inputs and observers, section by section (the data of :mod:`torchmech.exercises`).

A sample generator returns a tuple of :class:`~torchmech.grader.Sample`; an observer runs one piece on one
sample and returns what a caller can observe, ordered from the most telling (structure, laws) to exact
values. The reference's observation is the expectation; the learner's must equal it. Every sample is
deterministic (its tensors drawn from a generator seeded by its index), so a failure replays.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from torchmech.grader import Raised, Sample, call, learner_frame, rng_states, seeded


def _gen(i: int) -> torch.Generator:
    return torch.Generator().manual_seed(1000 + i)


def _fresh(*values: Any) -> Callable[[], tuple]:
    """A ``make`` that hands out copies, so a mutating call cannot change the next one's input."""
    def make() -> tuple:
        return tuple(v.clone() if isinstance(v, torch.Tensor) else v.copy() if hasattr(v, "copy") else v
                     for v in values)
    return make


def _sizes(t: torch.Tensor) -> dict[str, float]:
    cols = t.shape[1] if t.dim() >= 2 else 1
    rows = t.shape[0] if t.dim() else 1
    return {"the number of rows": rows, "the number of columns": cols, "the number of elements": t.numel(),
            "the number of elements per row (numel / shape[0])": t.numel() // rows}


def _raised(err: Exception) -> dict[str, Any]:
    return {"returned": Raised(err, learner_frame(err))}


# --- §1 ------------------------------------------------------------------------------------------------
def compute_z_samples() -> tuple[Sample, ...]:
    cases = [((), (), (), torch.int64), ((1,), (1,), (1,), torch.float32), ((3,), (3,), (3,), torch.int64),
             ((2, 2), (2, 2), (2, 2), torch.float32), ((3, 1), (1, 4), (4,), torch.float64),
             ((2, 3, 5), (5,), (1, 3, 1), torch.float32), ((65, 7), (65, 7), (7,), torch.float64)]
    out = []
    for i, (sa, sb, sc, dtype) in enumerate(cases):
        g = _gen(i)
        if dtype.is_floating_point:
            a, b, c = (torch.randn(s, generator=g, dtype=dtype) for s in (sa, sb, sc))
        else:
            a, b, c = (torch.randint(-9, 10, s, generator=g, dtype=dtype) for s in (sa, sb, sc))
        out.append(Sample(_fresh(a, b, c), ("a", "b", "c"), seed=i))
    return tuple(out)


# --- §2 ------------------------------------------------------------------------------------------------
def fans_samples() -> tuple[Sample, ...]:
    shapes = [(5, 3), (3, 5), (1, 1), (8, 3, 5, 5), (4, 2, 3), (2, 7, 1, 3, 2), (16, 1, 3), (10, 784)]
    return tuple(Sample(_fresh(s), ("shape",), seed=i) for i, s in enumerate(shapes))


def glorot_samples() -> tuple[Sample, ...]:
    cases = [(3, 5, 1.0), (784, 32, 1.0), (4, 16, 0.5), (1, 1, 2.0), (10, 3, math.sqrt(2.0)), (2, 4, 1.0)]
    return tuple(Sample(_fresh(*c), ("fan_in", "fan_out", "gain"), seed=i) for i, c in enumerate(cases))


def unit_samples() -> tuple[Sample, ...]:
    return (Sample(tuple, (), seed=1),)


def _normal_law(values: torch.Tensor, std: float) -> bool:
    """Values drawn from N(0, std²): the variance's χ² test and the excess kurtosis, each at α ≈ 1e-4."""
    n = values.numel()
    v = values.double()
    s2 = float(v.var())
    z = (n - 1) * s2 / std**2
    # Wilson–Hilferty: χ²(k) ≈ k·(1 − 2/(9k) + z·√(2/(9k)))³; |z| ≤ 3.9 is α ≈ 1e-4 two-sided
    k = n - 1
    lo, hi = (k * (1 - 2 / (9 * k) + q * math.sqrt(2 / (9 * k))) ** 3 for q in (-3.9, 3.9))
    kurt = float(((v - v.mean()) ** 4).mean() / v.var(unbiased=False) ** 2) - 3
    return lo <= z <= hi and abs(kurt) <= 3.9 * math.sqrt(24 / n) and abs(float(v.mean())) <= 3.9 * std / math.sqrt(n)


def _parameters(model: nn.Module) -> dict[str, str]:
    return {n: str(tuple(p.shape)) for n, p in model.named_parameters()}


def parameter_module(piece: Any, sample: Sample) -> dict[str, Any]:
    with seeded(sample.seed):
        try:
            model = piece()
            draws = [[p.detach().clone() for p in piece().parameters()] for _ in range(300)]
        except Exception as err:
            return _raised(err)
        obs: dict[str, Any] = {"registered parameters (name: shape)": _parameters(model),
                               "every parameter requires grad": all(p.requires_grad for p in model.parameters())}
        if len(draws[0]) == 2 and [tuple(p.shape) for p in draws[0]] == [(2, 3), (1, 2)]:
            obs["w1 follows Xavier-normal, N(0, 2/(3 + 2)) (300 draws, α = 1e-4)"] = _normal_law(
                torch.cat([d[0].flatten() for d in draws]), math.sqrt(2 / 5))
            obs["w2 follows Xavier-normal, N(0, 2/(2 + 1)) (300 draws, α = 1e-4)"] = _normal_law(
                torch.cat([d[1].flatten() for d in draws]), math.sqrt(2 / 3))
        obs["initial values (seeded)"] = {n: p.detach().clone() for n, p in model.named_parameters()}
        obs["buffers"] = sorted(n for n, _ in model.named_buffers())
    return obs


# --- §3 ------------------------------------------------------------------------------------------------
def linear_loss_grad_samples() -> tuple[Sample, ...]:
    out = []
    for i, (n, dtype) in enumerate([(5, torch.float32), (1, torch.float32), (7, torch.float64), (64, torch.float32),
                                    (2, torch.float64)]):
        g = _gen(i)
        w, b = (torch.randn((), generator=g, dtype=dtype) for _ in range(2))
        x, y = torch.randn(n, generator=g, dtype=dtype), torch.randn(n, generator=g, dtype=dtype)

        def make(w=w, b=b, x=x, y=y) -> tuple:
            return w.clone().requires_grad_(), b.clone().requires_grad_(), x.clone(), y.clone()
        out.append(Sample(make, ("w", "b", "x", "y"), seed=i, sizes={"the number of samples": n}))
    return tuple(out)


def call_keeping_grads(piece: Any, sample: Sample) -> dict[str, Any]:
    """:func:`~torchmech.grader.call`, and the ``.grad`` the call left on each input that requires grad."""
    args = sample.make()
    obs = call(lambda *_: piece(*args), sample)
    for name, arg in zip(sample.names, args, strict=False):
        if isinstance(arg, torch.Tensor) and arg.requires_grad:
            obs[f"`{name}.grad` after the call (by hand: untouched)"] = None if arg.grad is None else arg.grad.clone()
    return obs


def fgsm_samples() -> tuple[Sample, ...]:
    cases = [(2, 1, 0.1, None), (3, 7, 0.05, (0.0, 1.0)), (5, 32, 0.3, (0.0, 1.0)), (2, 8, 0.2, (-0.5, 0.5)),
             (4, 5, 0.1, None)]
    out = []
    for i, (d, n, eps, clamp) in enumerate(cases):
        g = _gen(i)
        torch.manual_seed(100 + i)
        multiclass = i == 4
        model = nn.Sequential(nn.Linear(d, 3), nn.LogSoftmax(1)) if multiclass else \
            nn.Sequential(nn.Linear(d, 1), nn.Sigmoid())
        x = torch.rand(n, d, generator=g)
        if multiclass:
            y = torch.randint(0, 3, (n,), generator=g)
            loss = nn.NLLLoss()
        else:
            y = (torch.rand(n, generator=g) > 0.5).float()
            loss = _bce_on_first_column
        state = model.state_dict()

        def make(model=model, state=state, x=x, y=y, loss=loss, eps=eps, clamp=clamp) -> tuple:
            model.load_state_dict(state)
            model.zero_grad(set_to_none=True)
            return model, loss, x.clone(), y.clone(), eps, clamp
        out.append(Sample(make, ("model", "loss_fn", "x", "y", "epsilon", "clamp"), seed=i))
    return tuple(out)


def _bce_on_first_column(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return nn.functional.binary_cross_entropy(p[:, 0], t)


def fgsm(piece: Any, sample: Sample) -> dict[str, Any]:
    args = sample.make()
    model, x = args[0], args[2]
    with seeded(sample.seed):
        try:
            out = piece(*args)
        except Exception as err:
            return _raised(err)
        clamp = args[5]
        inside = (clamp is None or not isinstance(out, torch.Tensor)
                  or bool(((out >= clamp[0]) & (out <= clamp[1])).all()))
        obs: dict[str, Any] = {
            "every value of the result within clamp": inside,
            "returned": out.detach() if isinstance(out, torch.Tensor) else out,
            "the returned tensor requires grad": bool(getattr(out, "requires_grad", False)),
            "your input `x` after the call": x.detach().clone(),
            "your input `x` requires grad after the call": x.requires_grad,
            "the model's parameters have no .grad after the call": all(p.grad is None for p in model.parameters()),
        }
        obs.update(rng_states())
    return obs


# --- §4 ------------------------------------------------------------------------------------------------
def l1_samples() -> tuple[Sample, ...]:
    cases = [((2, 2), 0.2, torch.float32), ((1,), None, torch.float32), ((5, 3), 0.01, torch.float64),
             ((3, 4, 2), 1e-3, torch.float32), ((16, 4), 0.5, torch.float64)]
    out = []
    for i, (shape, strength, dtype) in enumerate(cases):
        w = torch.randn(shape, generator=_gen(i), dtype=dtype)
        if i == 0:
            w[0, 0] = 0.0

        def make(w=w, strength=strength) -> tuple:
            p = nn.Parameter(w.clone())
            return (p,) if strength is None else (p, strength)
        out.append(Sample(make, ("weight", "strength"), seed=i))
    return tuple(out)


def l1(piece: Any, sample: Sample) -> dict[str, Any]:
    args = sample.make()
    try:
        out = piece(*args)
    except Exception as err:
        return _raised(err)
    obs: dict[str, Any] = {"returned": out.detach() if isinstance(out, torch.Tensor) else out}
    if isinstance(out, torch.Tensor) and out.requires_grad:
        (grad,) = torch.autograd.grad(out.sum(), args[0], allow_unused=True)
        obs["its gradient with respect to weight"] = grad
    else:
        obs["its gradient with respect to weight"] = "none: the result is not differentiable"
    return obs


def _pairs(shapes: list, target: Callable[[torch.Generator, tuple, torch.dtype], torch.Tensor],
           names: tuple[str, str]) -> tuple[Sample, ...]:
    out = []
    for i, (shape, dtype) in enumerate(shapes):
        g = _gen(i)
        z = 2 * torch.randn(shape, generator=g, dtype=dtype)
        out.append(Sample(_fresh(z, target(g, shape, dtype)), names, seed=i, sizes=_sizes(z)))
    return tuple(out)


_GRAD_SHAPES = [((6,), torch.float32), ((1,), torch.float64), ((7, 1), torch.float32), ((4, 3), torch.float32),
                ((33, 5), torch.float64), ((2, 3, 2), torch.float32)]


def bce_samples() -> tuple[Sample, ...]:
    return _pairs(_GRAD_SHAPES, lambda g, s, d: (torch.rand(s, generator=g) > 0.5).to(d), ("z", "y"))


def mse_samples() -> tuple[Sample, ...]:
    return _pairs(_GRAD_SHAPES, lambda g, s, d: torch.randn(s, generator=g, dtype=d), ("pred", "y"))


def cross_entropy_samples() -> tuple[Sample, ...]:
    out = []
    for i, (n, c, dtype) in enumerate([(4, 5, torch.float32), (1, 2, torch.float32), (7, 10, torch.float64),
                                       (64, 3, torch.float32), (9, 4, torch.float64)]):
        g = _gen(i)
        z = 2 * torch.randn(n, c, generator=g, dtype=dtype)
        k = torch.randint(0, c, (n,), generator=g)
        out.append(Sample(_fresh(z, k), ("logits", "target"), seed=i,
                          sizes={"the number of samples": n, "the number of classes": c,
                                 "the number of elements": n * c}))
    return tuple(out)


def _batches(*shapes: tuple[int, ...]) -> tuple[torch.Tensor, ...]:
    return tuple(torch.rand(s, generator=_gen(50 + i)) for i, s in enumerate(shapes))


def _builder_samples(*inputs: tuple[int, ...]) -> tuple[Sample, ...]:
    xs = _batches(*inputs)
    return (Sample(tuple, (), seed=1, extra={"inputs": xs}), Sample(tuple, (), seed=7, extra={"inputs": xs[:1]}))


def sequential_samples() -> tuple[Sample, ...]:
    return _builder_samples((1, 4), (7, 4), (64, 4))


def mpg_regressor_samples() -> tuple[Sample, ...]:
    return _builder_samples((1, 9), (8, 9), (79, 9))


def mnist_mlp_samples() -> tuple[Sample, ...]:
    return _builder_samples((1, 1, 28, 28), (7, 1, 28, 28), (64, 1, 28, 28))


def _layers(model: nn.Module) -> list[str]:
    return [f"{type(m).__name__}({m.extra_repr()})" for m in model.modules() if not list(m.children())]


def builder(piece: Any, sample: Sample) -> dict[str, Any]:
    """A model builder: its layers in order, parameters, initial values from the seed, outputs."""
    with seeded(sample.seed):
        try:
            model = piece(*sample.make())
        except Exception as err:
            return _raised(err)
        obs: dict[str, Any] = {"an nn.Module": isinstance(model, nn.Module)}
        if not isinstance(model, nn.Module):
            return obs
        obs["the layers, in order"] = _layers(model)
        obs["registered parameters (name: shape)"] = _parameters(model)
        obs["initial values (seeded)"] = {n: p.detach().clone() for n, p in model.named_parameters()}
        obs.update(rng_states())
        for x in sample.extra["inputs"]:
            try:
                out = model(x.clone())
            except Exception as err:
                obs[f"output on an input of shape {tuple(x.shape)}"] = Raised(err, learner_frame(err))
            else:
                obs[f"output on an input of shape {tuple(x.shape)}"] = out.detach()
    return obs


# --- §5 ------------------------------------------------------------------------------------------------
def xor_samples() -> tuple[Sample, ...]:
    cases = [(200, 1), (40, 3), (2, 0), (10, 7), (1000, 2)]
    return tuple(Sample(_fresh(n, seed), ("n", "seed"), seed=i) for i, (n, seed) in enumerate(cases))


class Probe(nn.Module):
    """A small model that records, per forward call, whether it ran in train mode and with grad on."""

    def __init__(self, d: int, k: int, out: nn.Module | None) -> None:
        super().__init__()
        self.lin = nn.Linear(d, k)
        self.out = out
        self.calls: list[str] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(("train" if self.training else "eval") + (" + grad" if torch.is_grad_enabled() else ""))
        z = self.lin(x)
        return self.out(z) if self.out is not None else z


def _loader(x: torch.Tensor, y: torch.Tensor, batch: int, shuffle: bool) -> Any:
    from torch.utils.data import DataLoader, TensorDataset

    return DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=shuffle)


def train_samples() -> tuple[Sample, ...]:
    from torchmech.train import binary_correct, multiclass_correct

    def setup(i: int, d: int, k: int, n: int, batch: int, epochs: int, kind: str, shuffle: bool, valid: str,
              opt: str) -> Sample:
        g = _gen(i)
        x = torch.randn(n, d, generator=g)
        if kind == "binary":
            y, loss, correct, out = (torch.rand(n, generator=g) > 0.5).float(), nn.BCELoss(), binary_correct, \
                nn.Sigmoid()
        elif kind == "multiclass":
            y, loss, correct, out = torch.randint(0, k, (n,), generator=g), nn.CrossEntropyLoss(), \
                multiclass_correct, None
        else:
            y, loss, correct, out = torch.randn(n, generator=g), nn.MSELoss(), None, None
        xv, yv = x[: max(1, n // 2)] + 0.1, y[: max(1, n // 2)]

        def make() -> tuple:
            torch.manual_seed(10 + i)
            model = Probe(d, k, out)
            optimizer = (torch.optim.SGD(model.parameters(), lr=0.3) if opt == "sgd"
                         else torch.optim.Adam(model.parameters(), lr=0.05))
            batches = _loader(x, y, batch, shuffle)
            valid_batches = None if valid == "none" else [(xv, yv)] if valid == "one" else _loader(xv, yv, 2, False)
            return model, loss, optimizer, batches, epochs, valid_batches, correct
        n_batches = -(-n // batch)
        return Sample(make, ("model", "loss_fn", "optimizer", "train_batches", "num_epochs", "valid_batches",
                             "correct"), seed=i,
                      sizes={"(the number of batches / the number of samples)": n_batches / n,
                             "the number of batches": n_batches, "the number of samples": n})
    return (setup(0, 2, 1, 5, 2, 3, "binary", False, "loader", "sgd"),
            setup(1, 3, 4, 13, 4, 2, "multiclass", True, "none", "sgd"),
            setup(2, 4, 1, 9, 9, 2, "regression", False, "one", "adam"),
            setup(3, 2, 1, 6, 1, 2, "binary", True, "loader", "sgd"),
            setup(4, 3, 4, 21, 8, 3, "multiclass", False, "one", "adam"))


def train(piece: Any, sample: Sample) -> dict[str, Any]:
    model, loss, optimizer, batches, epochs, valid, correct = sample.make()
    epoch_ends: list[tuple[int, int]] = []
    with seeded(sample.seed):
        try:
            history = piece(model, loss, optimizer, batches, epochs, valid, correct=correct,
                            on_epoch_end=lambda e, h: epoch_ends.append((e, len(h.train_loss))))
        except Exception as err:
            return _raised(err)
        calls = list(model.calls)
        obs: dict[str, Any] = {
            "the model's mode at each forward call (train/eval, + grad when gradients are on)": calls,
            "returned": history,
            "on_epoch_end calls (epoch, epochs in the history)": epoch_ends,
            "the weights after training": {n: p.detach().clone() for n, p in model.named_parameters()},
        }
        obs.update(rng_states())
    return obs


def diagnose_train(expected: dict, got: dict) -> str:
    key = "the model's mode at each forward call (train/eval, + grad when gradients are on)"
    e, g = expected.get(key), got.get(key)
    if not isinstance(e, list) or not isinstance(g, list) or e == g:
        return ""
    if len(e) != len(g):
        return f"{len(g)} forward calls where {len(e)} are expected (one per batch, training and validation)"
    wrong = [(i, a, b) for i, (a, b) in enumerate(zip(e, g, strict=True)) if a != b]
    i, a, b = wrong[0]
    if a == "train + grad" and b.startswith("eval") and any(c.startswith("eval") for c in e[:i]):
        return ("after the first validation the model stays in eval mode: training steps after it run in eval "
                "mode (model.train() belongs at the start of every epoch)")
    if a == "eval" and b == "train":
        return "validation runs in train mode (model.eval() missing)"
    if a == "eval" and b.endswith("+ grad"):
        return "validation runs with gradients on (torch.no_grad() missing)"
    if a == "train + grad" and b == "train":
        return "training steps run without gradients"
    return f"forward call {i + 1}: {b!r} where {a!r} is expected"


# --- §6 ------------------------------------------------------------------------------------------------
def modulelist_samples() -> tuple[Sample, ...]:
    return (Sample(tuple, (), seed=1, extra={"inputs": _batches((1, 2), (7, 2), (50, 2))}),
            Sample(tuple, (), seed=3, extra={"inputs": _batches((3, 2))}))


def modulelist(piece: Any, sample: Sample) -> dict[str, Any]:
    obs = builder(piece, sample)
    if "initial values (seeded)" not in obs:
        return obs
    with seeded(sample.seed):
        model = piece()
        obs["module_list is an nn.ModuleList"] = isinstance(getattr(model, "module_list", None), nn.ModuleList)
        x = sample.extra["inputs"][-1]
        for label, arg in (("a tensor", x.clone()), ("a NumPy array", x.double().numpy())):
            try:
                pred = model.predict(arg)
            except Exception as err:
                obs[f"predict on {label}"] = Raised(err, learner_frame(err))
                continue
            obs[f"predict on {label}"] = pred.detach() if isinstance(pred, torch.Tensor) else pred
            obs[f"predict on {label}: requires grad"] = bool(getattr(pred, "requires_grad", False))
        with torch.no_grad():
            for p in model.parameters():
                p.zero_()
        try:
            edge = model.predict(torch.zeros(2, 2))
        except Exception as err:
            edge = Raised(err, learner_frame(err))
        obs["predict where the output is exactly 0.5 (all weights 0)"] = edge
    return obs


def noisy_samples() -> tuple[Sample, ...]:
    cases = [(4, 3, 0.2, 5, torch.float32), (1, 1, 0.1, 1, torch.float32), (7, 2, 0.5, 9, torch.float64),
             (3, 3, 1.0, 64, torch.float32), (2, 5, 0.05, 4, torch.float32)]
    out = []
    for i, (n_in, n_out, sigma, batch, dtype) in enumerate(cases):
        x = torch.randn(batch, n_in, generator=_gen(i), dtype=dtype)
        out.append(Sample(_fresh(n_in, n_out, sigma), ("input_size", "output_size", "noise_stddev"), seed=i,
                          extra={"x": x}))
    return tuple(out)


def _noise_law(layer: nn.Module, n_in: int, n_out: int, sigma: float, dtype: torch.dtype) -> dict[str, Any]:
    """With w = 2·I (padded) and b = 0 on a zero input, the training output is 2·ε in its first columns."""
    params = list(layer.parameters())
    with torch.no_grad():
        params[0].copy_(2 * torch.eye(n_in, n_out, dtype=params[0].dtype))
        params[1].zero_()
    zeros = torch.zeros(400, n_in, dtype=dtype)
    with torch.no_grad():
        out = layer(zeros, training=True)
    m = min(n_in, n_out)
    noise = out[:, :m] / 2
    rows = out[:4]
    return {"every row of the batch gets its own noise": not bool((rows == rows[:1]).all()),
            f"the noise on the input has std σ = {sigma:g} (400 draws, α = 1e-4)": _normal_law(noise.flatten(), sigma)}


def noisy_linear(piece: Any, sample: Sample) -> dict[str, Any]:
    n_in, n_out, sigma = sample.make()
    x: torch.Tensor = sample.extra["x"]
    with seeded(sample.seed):
        try:
            layer = piece(n_in, n_out, sigma).to(x.dtype)
        except Exception as err:
            return _raised(err)
        obs: dict[str, Any] = {"registered parameters (name: shape)": _parameters(layer)}
        shapes = [tuple(p.shape) for p in layer.parameters()]
        obs["initial values (seeded)"] = {n: p.detach().clone() for n, p in layer.named_parameters()}
        if shapes != [(n_in, n_out), (n_out,)]:
            return obs
        try:
            with torch.no_grad():
                obs["output with training=False"] = layer(x.clone(), training=False)
                obs["fresh noise on every training=True call"] = not torch.equal(layer(x.clone(), training=True),
                                                                                 layer(x.clone(), training=True))
                probe = x.clone()
                layer(probe, training=True)
                obs["your input `x` after a training call"] = probe
                layer.train()
                obs["noise in train() mode (training not given)"] = not torch.equal(layer(x.clone()), layer(x.clone()))
                layer.eval()
                obs["no noise in eval() mode (training not given)"] = torch.equal(layer(x.clone()), layer(x.clone()))
                obs.update(_noise_law(layer, n_in, n_out, sigma, x.dtype))
                meta = piece(n_in, n_out, sigma).to("meta", x.dtype)
                y = meta(torch.zeros(2, n_in, device="meta", dtype=x.dtype), training=True)
                obs["a meta input's output is on meta"] = y.device.type
        except Exception as err:
            obs["forward"] = Raised(err, learner_frame(err))
            return obs
        torch.manual_seed(sample.seed)
        fresh = piece(n_in, n_out, sigma).to(x.dtype)
        with torch.no_grad():
            obs["output with training=True (seeded)"] = fresh(x.clone(), training=True)
    return obs


# --- §7 ------------------------------------------------------------------------------------------------
def bucket_samples() -> tuple[Sample, ...]:
    g = _gen(0)
    cases = [torch.arange(60, 91), torch.tensor([72, 73, 75, 76, 78, 79, 82], dtype=torch.int32),
             torch.randint(70, 83, (3, 4), generator=g), torch.tensor([73]), torch.randint(70, 83, (101,), generator=g)]
    return tuple(Sample(_fresh(c), ("years",), seed=i) for i, c in enumerate(cases))


@functools.cache
def _mpg_frame() -> Any:
    from torchmech.data.auto_mpg import load_auto_mpg

    return load_auto_mpg()


def mpg_samples() -> tuple[Sample, ...]:
    def make(rows: int | None, train_size: float, state: int) -> Callable[[], tuple]:
        def build() -> tuple:
            df = _mpg_frame().copy()
            if rows is not None:
                df = df.sample(n=rows, random_state=rows).reset_index(drop=True)
            return None if rows == 0 else df, train_size, state
        return build
    cases = [(0, 0.8, 1), (None, 0.8, 7), (120, 0.5, 3), (None, 0.75, 11)]
    return tuple(Sample(make(*c), ("df", "train_size", "random_state"), seed=i) for i, c in enumerate(cases))


# --- §8 ------------------------------------------------------------------------------------------------
def batches_samples() -> tuple[Sample, ...]:
    cases = [(100, 16), (1, 1), (7, 3), (64, 64), (10, 32), (50, 7)]
    out = []
    for i, (n, batch) in enumerate(cases):
        x = torch.rand(n, 3, generator=_gen(i))
        out.append(Sample(_fresh(x, torch.arange(n), batch), ("x", "y", "batch_size"), seed=i,
                          extra={"epochs": 3}))
    return tuple(out)


def shuffled_batches(piece: Any, sample: Sample) -> dict[str, Any]:
    x, y, batch = sample.make()
    with seeded(sample.seed):
        try:
            batches = piece(x, y, batch)
            epochs = [[(bx.clone(), by.clone()) for bx, by in batches] for _ in range(sample.extra["epochs"])]
            length = len(batches)
        except Exception as err:
            return _raised(err)
        obs: dict[str, Any] = {
            "len(batches)": length,
            "the labels of each batch, epoch by epoch": [[by for _, by in ep] for ep in epochs],
            "each batch's x rows belong to its labels": all(_rows_of(x, bx, by) for ep in epochs for bx, by in ep),
        }
        obs.update(rng_states())
    return obs


def _rows_of(x: torch.Tensor, bx: Any, by: Any) -> bool:
    """``bx`` are the rows of ``x`` that the labels ``by`` (here the sample indices) name."""
    try:
        return bool(torch.equal(bx, x[by.long()]))
    except Exception:
        return False


def diagnose_batches(expected: dict, got: dict) -> str:
    key = "the labels of each batch, epoch by epoch"
    e, g = expected.get(key), got.get(key)
    if not isinstance(g, list) or not isinstance(e, list) or len(g) < 2:
        return ""
    order = lambda ep: torch.cat(ep).tolist() if ep else []  # noqa: E731
    if all(order(ep) == order(g[0]) for ep in g) and not all(order(ep) == order(e[0]) for ep in e):
        return "the same order in every epoch: draw a new order on every pass (in __iter__), not once"
    if len(g) == len(e) and order(g[0]) != order(e[0]) and sorted(order(g[0])) == sorted(order(e[0])):
        return "another shuffle than the DataLoader's: replay its two draws (base seed, then the sampler's seed)"
    return ""


# --- §9 ------------------------------------------------------------------------------------------------
def lightning_samples() -> tuple[Sample, ...]:
    g = _gen(9)
    x, y = torch.rand(80, 1, 28, 28, generator=g), torch.randint(0, 10, (80,), generator=g)
    return (Sample(_fresh(x, y), ("images", "labels"), seed=3, extra={"epochs": 2, "batch": 24}),)


def lightning_module(piece: Any, sample: Sample) -> dict[str, Any]:
    """Fit 2 short epochs with a logger that records every logged value, then test; what was logged, the
    optimizer, the weights after."""
    import logging
    import tempfile
    import warnings

    import lightning.pytorch as pl
    from lightning.pytorch.loggers import Logger
    from torch.utils.data import DataLoader, TensorDataset

    class Recorder(Logger):
        def __init__(self) -> None:
            super().__init__()
            self.logged: list[tuple[str, int, float]] = []

        @property
        def name(self) -> str:
            return "recorder"

        @property
        def version(self) -> int:
            return 0

        def log_metrics(self, metrics: dict, step: int | None = None) -> None:
            self.logged += [(k, int(step or 0), float(v)) for k, v in metrics.items() if k != "epoch"]

        def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
            pass

    x, y = sample.make()
    train_loader = DataLoader(TensorDataset(x[:56], y[:56]), batch_size=sample.extra["batch"])
    valid_loader = DataLoader(TensorDataset(x[56:], y[56:]), batch_size=10)
    with seeded(sample.seed), warnings.catch_warnings(), tempfile.TemporaryDirectory() as tmp:
        warnings.simplefilter("ignore")
        logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
        try:
            model = piece()
            optimizer = model.configure_optimizers()
            opt = optimizer[0] if isinstance(optimizer, list | tuple) else optimizer
            logger = Recorder()
            trainer = pl.Trainer(max_epochs=sample.extra["epochs"], logger=logger, enable_checkpointing=False,
                                 enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp,
                                 log_every_n_steps=1, num_sanity_val_steps=0, accelerator="cpu", devices=1)
            trainer.fit(model, train_loader, valid_loader)
            trainer.test(model, valid_loader, verbose=False)
        except Exception as err:
            return _raised(err)
    logged = sorted(logger.logged)
    names = sorted({k for k, _, _ in logged})
    metrics = [getattr(model, f"{stage}_acc", None) for stage in ("train", "valid", "test")]
    return {"one Accuracy object per stage (train_acc, valid_acc, test_acc)":
            all(m is not None for m in metrics) and len({id(m) for m in metrics}) == 3,
            "the metrics logged": names,
            "the optimizer": f"{type(opt).__name__}(lr={opt.param_groups[0]['lr']})" if hasattr(opt, "param_groups")
            else type(opt).__name__,
            **{f"{name} as logged (step, value)": [(s, v) for k, s, v in logged if k == name] for name in names},
            "the weights after training": {n: p.detach().clone() for n, p in model.named_parameters()}}


# --- the chapter's own runs, trimmed, on the learner's piece ------------------------------------------------
def _run_sample(label: str, run: Callable[[Any], Any]) -> Sample:
    return Sample(tuple, (), seed=0, extra={"run": run, "label": label})


def _xor(model: str, epochs: int) -> Sample:
    def run(impl: Any) -> Any:
        from torchmech.runs import xor_run

        return xor_run(model, epochs=epochs, impl=impl)
    return _run_sample(f"the chapter's run xor_run({model!r}, epochs={epochs}) with yours", run)


def _mpg(epochs: int) -> Sample:
    def run(impl: Any) -> Any:
        from torchmech.runs import mpg_run

        r = mpg_run(epochs=epochs, impl=impl)
        return r.model, r.history, {"test MSE": r.test_mse, "test MAE": r.test_mae}
    return _run_sample(f"the chapter's run mpg_run(epochs={epochs}) with yours", run)


#: exercise → the trimmed chapter runs that take its piece (compared with the same runs on the reference).
CHAPTER_RUNS: dict[str, Callable[[], tuple[Sample, ...]]] = {
    "train": lambda: (_xor("logistic", 3), _mpg(2)),
    "make_xor": lambda: (_xor("logistic", 2),),
    "ModuleListModel": lambda: (_xor("modulelist", 2),),
    "NoisyLinear": lambda: (_xor("noisy", 2),),
    "mpg_features": lambda: (_mpg(2),),
    "mpg_regressor": lambda: (_mpg(2),),
}


def chapter_run(name: str, piece: Any, sample: Sample) -> dict[str, Any]:
    """One trimmed chapter run with the learner's piece in place of the reference's: its history, the
    trained weights, its metrics."""
    from torchmech.implementation import Implementation

    impl = Implementation(f"graded {name}", {name: piece})
    with seeded(sample.seed):
        try:
            model, history, *metrics = sample.extra["run"](impl)
        except Exception as err:
            return _raised(err)
        obs: dict[str, Any] = {"the run's history": history,
                               "the trained weights": {n: p.detach().clone() for n, p in model.named_parameters()}}
        if metrics:
            obs["the run's test metrics"] = metrics[0]
    return obs
