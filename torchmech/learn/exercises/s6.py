"""§6 nn.Module subclasses and custom layers: its exercises, their sample inputs and observers."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from torchmech.learn.exercises.core import (
    Exercise,
    Sample,
    _batches,
    _fresh,
    _gen,
    _normal_law,
    _parameters,
    _raised,
    _xor,
    builder,
)
from torchmech.learn.grader import Raised, learner_frame, seeded


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
             (3, 3, 1.0, 64, torch.float32), (2, 5, 0.05, 4, torch.float32), (5, 4, None, 3, torch.float64)]
    out = []
    for i, (n_in, n_out, sigma, batch, dtype) in enumerate(cases):
        x = torch.randn(batch, n_in, generator=_gen(i), dtype=dtype)
        args = (n_in, n_out) if sigma is None else (n_in, n_out, sigma)  # None: noise_stddev left out
        out.append(Sample(_fresh(*args), ("input_size", "output_size", "noise_stddev"), seed=i,
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
    args = sample.make()
    (n_in, n_out), sigma = args[:2], args[2] if len(args) > 2 else 0.1  # the signature's default
    x: torch.Tensor = sample.extra["x"]
    with seeded(sample.seed):
        try:
            layer = piece(*args).to(x.dtype)
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
                meta = piece(*args).to("meta", x.dtype)
                y = meta(torch.zeros(2, n_in, device="meta", dtype=x.dtype), training=True)
                obs["a meta input's output is on meta"] = y.device.type
        except Exception as err:
            obs["forward"] = Raised(err, learner_frame(err))
            return obs
        torch.manual_seed(sample.seed)
        fresh = piece(*args).to(x.dtype)
        with torch.no_grad():
            obs["output with training=True (seeded)"] = fresh(x.clone(), training=True)
    return obs


EXERCISES: tuple[Exercise, ...] = (
    Exercise("ModuleListModel", "s6", "class ModuleListModel(nn.Module):",
             "The chapter's MyModule: Linear(2,4), ReLU, Linear(4,4), ReLU, Linear(4,1), Sigmoid (built in that "
             "order) kept in an nn.ModuleList named module_list and applied in a loop in forward; predict(x) "
             "gives 0/1 float32 values of shape (N,), class 1 where the output ≥ 0.5 (NumPy in → NumPy out, "
             "tensor in → tensor out), without gradients.",
             ("s6.modulelist.repr",), modulelist_samples, modulelist,
             ("§6: nn.ModuleList registers a list of layers; forward decides how to use them.",
              "for f in self.module_list: x = f(x); predict thresholds the one output column.",
              "self.module_list = nn.ModuleList([nn.Linear(2, 4), nn.ReLU(), …, nn.Sigmoid()])"),
             runs=lambda: (_xor("modulelist", 2),), spans=("a single row", "several seeds")),
    Exercise("NoisyLinear", "s6", "class NoisyLinear(nn.Module):",
             "NoisyLinear(input_size, output_size, noise_stddev=0.1): parameters w (input_size × output_size) "
             "initialised by nn.init.xavier_uniform_ and b (output_size,) zeros, in that order; forward(x, "
             "training=None) returns (x + ε)·w + b with ε ~ N(0, σ²) drawn afresh per element of x (its shape, "
             "dtype and device; torch.normal(0, σ, x.shape, dtype=x.dtype, device=x.device)) in training "
             "(None follows self.training), x·w + b otherwise.",
             ("s6.noisy_linear.train_1", "s6.noisy_linear.train_2", "s6.noisy_linear.eval", "s6.noisy_linear.law"),
             noisy_samples, noisy_linear,
             ("§6: a custom layer is an nn.Module with parameters and a forward.",
              "noise of x's shape is added to the INPUT in training only, then the linear map.",
              "x_new = torch.add(x, torch.normal(0.0, self.noise_stddev, x.shape, dtype=x.dtype, device=x.device))"),
             runs=lambda: (_xor("noisy", 2),),
             spans=("a single row", "several dtypes", "several seeds", "defaults and other values")),
)
