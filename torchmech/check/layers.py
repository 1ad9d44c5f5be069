"""Which layer makes the error, and how much of it: each leaf's error split into what it adds and inherits.

:func:`attribute` follows a claim's training run (as :func:`~torchmech.check.diverge.diverge` does) on the
float64 arbiter first, then on the reference ``a`` and on the backend under suspicion ``b``. While ``b`` runs,
each leaf module's forward hook also calls the module *as ``b`` runs it* — ``b``'s dtype, autocast and
compilation, and any hook a backend put on it — on the arbiter's input and weights (cast to ``b``'s dtype),
through :func:`torch.func.functional_call` (which keeps the module's hooks), and for a module with
parameters its backward pass given the arbiter's upstream gradient. For a Linear the forward rounding
bound at ``b``'s unit roundoff is set beside the measured error.

The numbers of a row are in units of the reference's own error for that event, :math:`e_a =
\\mathrm{rmse}(x_a, x_{64})` (where the reference equals the arbiter there, of float32's rounding at the
tensor's size, :math:`2^{-24}\\,\\mathrm{rms}(x_{64})`): ``total`` 3 means ``b`` is three times as far from
float64 as the reference is. ``budget`` is :meth:`~torchmech.runtime.backends.Tolerance.tensor_budget` (the
one :func:`~torchmech.check.diverge.diverge` judges by) in the same units.

Example::

    >>> from torchmech.check.layers import attribute
    >>> found = attribute("cpu", "deterministic", claim_id="s7.mpg.test_mse", steps=1)
    >>> all(row.added <= row.budget for row in found.rows if row.added is not None)
    True
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from torchmech.check.diverge import Event, Recorder, _aligned, _Enough, _f64, _rmse, run_of
from torchmech.runtime.backends import ARBITER, Backend, named

#: The unit roundoff of a dtype: half the distance from 1 to the next number (2⁻²⁴ for float32).
UNIT_ROUNDOFF: dict[torch.dtype, float] = {torch.float32: 2.0**-24, torch.bfloat16: 2.0**-8,
                                           torch.float16: 2.0**-11, torch.float64: 2.0**-53}


#: TF32's unit roundoff (10 explicit mantissa bits), for a backend whose precision is ``tf32``.
TF32_UNIT_ROUNDOFF = 2.0**-11


def gamma(n: int, u: float) -> float:
    """Higham's γₙ = n·u / (1 − n·u): the relative error bound of n successive roundings at unit roundoff u."""
    return n * u / (1 - n * u) if n * u < 1 else math.inf


def linear_bound_factor(n: int, be: Backend) -> float:
    """The factor c of the deterministic bound ``|fl(Wx + b) − (Wx + b)| ≤ c·(|W|·|x| + |b|)`` (elementwise)
    for a Linear of ``n`` inputs on ``be``, given float64 ``W``, ``x`` and ``b``: each factor is rounded to
    ``be``'s dtype (unit roundoff u_s) and, under autocast, again to the autocast dtype (u_c); the n products
    and the bias are summed at u_acc (float32 under a 16-bit autocast: the CPU's bf16 matmuls accumulate in
    float32; else u_s), and the result is rounded to the autocast dtype: c = ((1 + u_s)(1 + u_c))²·(1 +
    γ_{n+1}(u_acc))·(1 + u_c) − 1. A backend whose precision is ``tf32`` (TF32 matmuls said, not hidden) has its
    inputs rounded at u_c = 2⁻¹¹, summed and returned in float32. For float32 and n = 8 c ≈ 11·2⁻²⁴."""
    u_s = UNIT_ROUNDOFF.get(be.dtype, 0.0)
    if be.autocast is not None:
        u_c = u_out = UNIT_ROUNDOFF.get(be.autocast, 0.0)
    else:  # a backend that says TF32 (its precision) multiplies inputs rounded to 10 bits, its output float32
        u_c, u_out = (TF32_UNIT_ROUNDOFF if be.precision == "tf32" else 0.0), 0.0
    u_acc = UNIT_ROUNDOFF[torch.float32] if be.autocast is not None or u_c else u_s
    return ((1 + u_s) * (1 + u_c)) ** 2 * (1 + gamma(n + 1, u_acc)) * (1 + u_out) - 1


@dataclass(frozen=True)
class Row:
    """One event of ``b``'s run: a leaf's output (``kind`` forward), a parameter's gradient (grad) or the update an
    optimizer step wrote to it (update: ``total`` only, the optimizer is not replayed), with
    ``total``, ``added`` and ``inherited`` in units of ``unit`` (the reference's own error; see
    :func:`attribute`), ``budget`` (diverge's tensor budget, same units) and for a Linear's output
    ``bound_ratio`` (the largest element's measured added error over its rounding bound)."""

    name: str
    module: str
    kind: str
    step: int
    total: float
    added: float | None
    inherited: float | None
    budget: float
    unit: float
    bound_ratio: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "module": self.module, "kind": self.kind, "step": self.step,
                "total": self.total, "added": self.added, "inherited": self.inherited, "budget": self.budget,
                "unit": self.unit, "bound_ratio": self.bound_ratio}


def _step_of(name: str) -> int:
    return int(name.split(" · ")[0].removeprefix("step "))


def _kind_of(name: str) -> str:
    return "grad" if " · grad · " in name else "update" if " · update · " in name else "forward"


@dataclass
class Attribution:
    """What :func:`attribute` found: a :class:`Row` per event of ``b``'s run, in the run's order."""

    a: str
    b: str
    claim_id: str
    steps: int
    rows: list[Row]
    chart: Path | None = None

    @property
    def largest_added(self) -> Row | None:
        """The forward event of a module with the largest ``added`` (the module that makes the most error)."""
        rows = [r for r in self.rows if r.kind == "forward" and r.added is not None and r.module != "loss"]
        return max(rows, key=lambda r: r.added, default=None)

    @property
    def exit_code(self) -> int:
        """1 where some event of ``b`` leaves its budget (as :func:`~torchmech.check.diverge.diverge` finds), else 0."""
        return 1 if any(r.total > r.budget for r in self.rows) else 0

    def table(self) -> str:
        """Per event: total, added, inherited and the budget (units of the reference's own error), and
        observed / bound for a Linear; then the module that adds the most."""
        lines = [f"{self.b} against float64 in {self.claim_id}'s run, per layer (units: {self.a}'s own error "
                 f"there; inherited = rms of b's module on b's input minus on the arbiter's; — where not computed)",
                 f"{'event':<34} {'total':>9} {'added':>9} {'inherited':>9} {'budget':>9} {'obs/bound':>9}"]

        def num(x: float | None) -> str:
            return "—" if x is None else f"{x:.3g}"

        for r in self.rows:
            flag = ("  ← adds over budget" if r.added is not None and r.added > r.budget
                    else "  ← over budget" if r.total > r.budget else "")
            lines.append(f"{r.name:<34} {num(r.total):>9} {num(r.added):>9} {num(r.inherited):>9} "
                         f"{num(r.budget):>9} {num(r.bound_ratio):>9}{flag}")
        top = self.largest_added
        if top is not None:
            lines.append(f"largest added: module {top.module} ({top.name}: {top.added:.3g}× {self.a}'s own error, "
                         f"budget {top.budget:.3g})")
        if self.chart is not None:
            lines.append(f"chart: {self.chart}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        top = self.largest_added
        return {"a": self.a, "b": self.b, "claim": self.claim_id, "steps": self.steps,
                "layers": [r.to_json() for r in self.rows], "largest_added": top and top.module,
                "chart": str(self.chart) if self.chart else None}

    def write(self, out: Path) -> list[Path]:
        """A bar chart of total, added and inherited per event (log scale, the budget marked):
        ``out/layers-<claim>-<b>.png``, written whole or not at all."""
        path = out / f"layers-{self.claim_id}-{self.b}.png"
        _chart(self, path)
        self.chart = path
        return [path]


def _chart(found: Attribution, path: Path) -> None:
    from matplotlib.figure import Figure

    rows = found.rows
    fig = Figure(figsize=(max(6.0, 0.42 * len(rows) + 2), 4.2), layout="constrained")
    ax = fig.add_subplot()
    xs = range(len(rows))
    floor = 1e-3
    for offset, key, color in ((-0.27, "total", "#444444"), (0.0, "added", "#d62728"), (0.27, "inherited", "#1f77b4")):
        values = [max(getattr(r, key) or 0.0, floor) for r in rows]
        ax.bar([x + offset for x in xs], values, width=0.27, color=color, label=key)
    ax.scatter(list(xs), [max(r.budget, floor) for r in rows], marker="_", s=200, color="black", label="budget",
               zorder=3)
    ax.set_yscale("log")
    ax.set_xticks(list(xs), [r.name.replace(" · ", " ") for r in rows], rotation=60, ha="right", fontsize=7)
    ax.set_ylabel(f"error to float64 / {found.a}'s own")
    ax.set_title(f"{found.b} in {found.claim_id}: what each layer adds and inherits", fontsize=9)
    ax.legend(fontsize=7)
    part = path.with_name(path.name + ".part")
    fonts = logging.getLogger("matplotlib.font_manager")  # the log axis' mathtext looks for fonts it falls back from
    level = fonts.level
    fonts.setLevel(logging.ERROR)
    try:
        fig.savefig(part, format="png", dpi=110)
    finally:
        fonts.setLevel(level)
    os.replace(part, path)


def _loss_event(events: list[Event]) -> bool:
    """Whether the last event recorded is a loss's value (the recorder records the loss: ``step N · loss (…)``)."""
    return bool(events) and events[-1].site == "loss" and " · grad · " not in events[-1].name


@dataclass(frozen=True)
class _Keeper(Recorder):
    """The arbiter's recorder: keeps each leaf's input and parameters (float64) and the gradient that reaches
    its output, by event name."""

    kept: dict[str, Any] = field(default_factory=dict, compare=False)

    def loss(self, loss_fn: Callable, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = super().loss(loss_fn, pred, y)
        if _loss_event(self.events):
            self.kept[self.events[-1].name] = {"pred": _f64(pred).clone(), "y": y.detach().clone()}
        return loss

    def _forward_hook(self, name: str, leaf: nn.Module, calls: list[int]) -> Callable:
        record = super()._forward_hook(name, leaf, calls)

        def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
            record(module, args, output)
            event = self.events[-1].name
            params = {k.replace("_orig_mod.", ""): _f64(v).clone() for k, v in module.named_parameters()}
            self.kept[event] = {"inputs": tuple(_f64(a).clone() if isinstance(a, torch.Tensor) else a for a in args),
                                "params": params, "upstream": None}
            if isinstance(output, torch.Tensor) and output.requires_grad:
                def keep(grad: torch.Tensor) -> None:
                    self.kept[event]["upstream"] = _f64(grad)
                output.register_hook(keep)
        return hook


@dataclass(frozen=True)
class _Attributor(Recorder):
    """``b``'s recorder: besides the events, each leaf as ``b`` runs it on the arbiter's input and weights
    (``added``: output and parameter gradients, by event name)."""

    kept: dict[str, Any] = field(default_factory=dict, compare=False)
    added: dict[str, torch.Tensor] = field(default_factory=dict, compare=False)
    bounds: dict[str, float] = field(default_factory=dict, compare=False)
    busy: list[bool] = field(default_factory=lambda: [False], compare=False)  # the replay's own call
    states: dict[int, torch.Tensor] = field(default_factory=dict, compare=False)  # RNG before each leaf's call

    def prepare(self, model: nn.Module) -> nn.Module:
        model = super().prepare(model)
        inner = {id(m._orig_mod) for m in model.modules() if hasattr(m, "_orig_mod")}
        for module in model.modules():
            called = hasattr(module, "_orig_mod") or not any(True for _ in module.children())
            if module is not model and called and id(module) not in inner:
                module.register_forward_pre_hook(self._keep_rng_state)
        return model

    def _keep_rng_state(self, module: nn.Module, args: tuple) -> None:
        if not self.busy[0]:
            self.states[id(module)] = torch.get_rng_state()

    def loss(self, loss_fn: Callable, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The loss recorded, and replayed as ``b`` computes it on the arbiter's prediction (cast to ``b``'s
        dtype) with its gradient out of it (d loss / d prediction)."""
        loss = super().loss(loss_fn, pred, y)
        event = self.events[-1].name if _loss_event(self.events) else ""
        kept = self.kept.get(event)
        if kept is not None:
            with torch.enable_grad():
                pred64 = self.base.cast(kept["pred"]).requires_grad_(pred.requires_grad)
                replayed = self.base.loss(loss_fn, pred64, self.base.cast(kept["y"]))
            self.added[event] = _f64(replayed)
            if pred64.requires_grad:
                grad, = torch.autograd.grad(replayed, pred64)
                self.added[f"{event.split(' · ')[0]} · grad · loss"] = _f64(grad)
        return loss

    def _forward_hook(self, name: str, leaf: nn.Module, calls: list[int]) -> Callable:
        record = super()._forward_hook(name, leaf, calls)

        def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
            busy = self.busy
            if busy[0]:
                return
            record(module, args, output)
            event = self.events[-1].name
            kept = self.kept.get(event)
            if kept is None:
                return
            busy[0] = True
            try:
                self._replay(name, event, module, kept)
            finally:
                busy[0] = False
        return hook

    def _replay(self, name: str, event: str, module: nn.Module, kept: dict[str, Any]) -> None:
        """``module`` (as ``b`` runs it, hooks included) on the arbiter's input and weights, forward and, given
        the arbiter's upstream gradient, backward; the same random draws as ``b``'s own call."""
        prefix = "_orig_mod." if any(k.startswith("_orig_mod.") for k, _ in module.named_parameters()) else ""
        real = {k.replace("_orig_mod.", ""): p for k, p in module.named_parameters()}
        params = {k: self.base.cast(v).requires_grad_(real[k].requires_grad) for k, v in kept["params"].items()}
        inputs = tuple(self.base.cast(a) if isinstance(a, torch.Tensor) else a for a in kept["inputs"])
        state = self.states.get(id(module))
        with torch.random.fork_rng(devices=[]):
            if state is not None:
                torch.set_rng_state(state)
            with torch.enable_grad():
                out = functional_call(module, {prefix + k: v for k, v in params.items()}, inputs)
            self.added[event] = _f64(out)
            upstream, wanted = kept["upstream"], [k for k, v in params.items() if v.requires_grad]
            if upstream is not None and wanted and out.requires_grad:
                grads = torch.autograd.grad(out, [params[k] for k in wanted], self.base.cast(upstream).to(out.dtype))
                for k, g in zip(wanted, grads, strict=True):
                    for h in (getattr(real[k], "_backward_hooks", None) or {}).values():  # a backend's hooks
                        if not getattr(h, "_torchmech_recorder", False):
                            changed = h(g)
                            g = g if changed is None else changed
                    self.added[f"{event.split(' · ')[0]} · grad · {name}.{k}"] = _f64(g)
        if isinstance(module, nn.Linear) or isinstance(getattr(module, "_orig_mod", None), nn.Linear):
            x, w, b = kept["inputs"][0], kept["params"]["weight"], kept["params"].get("bias")
            scale = nn.functional.linear(x.abs(), w.abs(), None if b is None else b.abs())
            bound = linear_bound_factor(w.shape[1], self.base) * scale
            exact = nn.functional.linear(x, w, b)
            err = (self.added[event] - exact).abs()
            self.bounds[event] = (err / bound.clamp_min(1e-300)).max().item() if err.numel() else 0.0

    def _grad_hook(self, name: str, calls: list[int]) -> Callable:
        hook = super()._grad_hook(name, calls)
        hook._torchmech_recorder = True  # type: ignore[attr-defined]
        return hook


def _record(recorder: Recorder, claim_id: str, data: Path | None) -> list[Event]:
    try:
        run_of(claim_id)(recorder, data)
    except _Enough:
        pass
    return recorder.events


def attribute(a: str | Backend = "cpu", b: str | Backend = "cpu-bf16", claim_id: str = "s7.mpg.test_mse",
              steps: int = 2, data: Path | None = None) -> Attribution:
    r"""Split ``b``'s error to the float64 arbiter, event by event of ``claim_id``'s first ``steps`` training
    steps, into what each layer adds and what it inherits.

    For an event (a leaf's output, or a parameter's gradient) with value :math:`y_b` on ``b``, :math:`y_{64}` on
    the arbiter and :math:`y_a` on the reference ``a``, and :math:`M_b` the module as ``b`` runs it:

    .. math::
        \text{unit} = \mathrm{rmse}(y_a, y_{64}) \quad (2^{-24}\,\mathrm{rms}(y_{64}) \text{ where that is 0}),

        \text{total} = \mathrm{rmse}(y_b, y_{64}) / \text{unit}, \qquad
        \text{added} = \mathrm{rmse}(M_b(x_{64}; W_{64}), y_{64}) / \text{unit},

        \text{inherited} = \mathrm{rms}\big(y_b - M_b(x_{64}; W_{64})\big) / \text{unit}
        = \mathrm{rms}\big(M_b(x_b; W_b) - M_b(x_{64}; W_{64})\big) / \text{unit}

    with :math:`x_{64}, W_{64}` the arbiter's input and weights at that event, cast to ``b``'s dtype. The error
    vector splits exactly, :math:`y_b - y_{64} = (M_b(x_{64}) - y_{64}) + (y_b - M_b(x_{64}))`, so
    :math:`|\text{added} - \text{inherited}| \le \text{total} \le \text{added} + \text{inherited}` (and
    total² ≈ added² + inherited² where the two are uncorrelated): ``inherited`` is the error of the input
    and of the weights (earlier steps' updates) carried through the module as ``b`` runs it. For a gradient,
    :math:`M_b` is the module's backward on ``b`` given the arbiter's input, weights and upstream gradient
    (hooks on the parameter included); the loss is replayed as ``b`` computes it on the arbiter's prediction
    (cast to ``b``'s dtype), its gradient out of it given 1; an event with nothing to replay has
    ``added`` and ``inherited`` ``None``.

    For a Linear's output, ``bound_ratio`` is :math:`\max_i |M_b(x_{64})_i - (W x + b)_i| / c\,(|W||x| + |b|)_i`
    with the deterministic (worst-case) bound factor :math:`c` of :func:`linear_bound_factor` (γₙ₊₁ at ``b``'s
    unit roundoff, with the roundings of the inputs to ``b``'s dtype and autocast's): correct arithmetic never
    exceeds 1, whatever its summation order.

    Inputs are cast to ``b``'s dtype (float32 under autocast), not to the dtype ``b``'s own input had: under
    bf16 autocast an elementwise module after a bf16 matmul (ReLU, Sigmoid) gets a bf16 input on ``b`` and
    returns bf16; replayed on float32 it adds nothing, and that rounding shows as its ``inherited`` — the
    matmul's own ``added`` holds the rounding of its bf16 output.

    Args:
        a: the reference whose own error is the unit (``cpu``).
        b: the backend under suspicion (a name or a :class:`~torchmech.runtime.backends.Backend`).
        claim_id: a claim with a training run (:func:`~torchmech.check.diverge.recipe_of`).
        steps: training steps recorded.
        data: MNIST's data root (§8).

    Example::

        >>> found = attribute("cpu", "cpu-bf16", "s7.mpg.test_mse", steps=1)
        >>> [r.module for r in found.rows[:2]]
        ['0', '1']
    """
    be_a, be_b = named(a), named(b)
    keeper = _Keeper.around(named(ARBITER), steps)
    ev64 = _record(keeper, claim_id, data)
    eva = _record(Recorder.around(be_a, steps), claim_id, data)
    attributor = _Attributor.around(be_b, steps)
    attributor.kept.update(keeper.kept)
    evb = _record(attributor, claim_id, data)
    eva, evb, ev64 = _aligned((eva, evb, ev64))
    rows = []
    for ea, eb, e64 in zip(eva, evb, ev64, strict=True):
        e_ref = _rmse(ea.value, e64.value)
        rms64 = e64.value.pow(2).mean().sqrt().item() if e64.value.numel() else 0.0
        unit = e_ref if e_ref > 0 else (2.0**-24 * rms64 or 1.0)
        budget = be_b.tolerance.tensor_budget(e_ref, e64.value, be_a.tolerance.eps) / unit
        replay = attributor.added.get(eb.name)
        added = inherited = None
        if replay is not None:
            added, inherited = _rmse(replay, e64.value) / unit, _rmse(eb.value, replay) / unit
        rows.append(Row(eb.name, eb.site or "loss", _kind_of(eb.name), _step_of(eb.name),
                        _rmse(eb.value, e64.value) / unit, added, inherited, budget, unit,
                        attributor.bounds.get(eb.name)))
    return Attribution(be_a.name, be_b.name, claim_id, steps, rows)
