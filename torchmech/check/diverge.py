"""Where two backends part: the first operation whose error exceeds the float64 arbiter's budget.

:func:`diverge` runs a claim's training (its real run: :func:`~torchmech.chapter.runs.xor_run`,
:func:`~torchmech.chapter.runs.mpg_run`, :func:`~torchmech.chapter.runs.mnist_run`) for the first few steps on backend
``a``, on backend ``b`` and on the arbiter (``cpu-fp64``), recording every leaf module's output in the
forward pass and every parameter's gradient in the backward pass. The three streams are aligned event
by event; the first event where ``b``'s error to the arbiter exceeds the tensor budget of
:mod:`torchmech.runtime.backends` (:meth:`~torchmech.runtime.backends.Tolerance.tensor_budget`:
``k·rmse(a, x₆₄)·max(1, eps_b/eps_a) + max(tol·rms(x₆₄), eps·max|x₆₄|)``, with ``b``'s precision: the
tolerance scales with the tensor, so a gradient of size 1e-3 is judged as closely as a loss of size 500,
and ``a``'s own error is scaled to ``b``'s unit of precision) is named, with its inputs' shapes, both values
and a repro (the module and its input saved to a file).

Under ``torch.compile`` each leaf is compiled on its own so that its output can be observed (the
matrix of :mod:`torchmech.check.conformance` compiles whole models: fusions across layers can differ).

Example::

    >>> from torchmech.check.diverge import diverge
    >>> found = diverge("cpu", "deterministic", claim_id="s7.mpg.test_mse", steps=1)
    >>> found.first is None  # deterministic algorithms change nothing on the CPU
    True
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from torchmech.chapter.runs import mnist_run, mpg_run, xor_run
from torchmech.runtime.backends import ARBITER, Backend, named
from torchmech.spec.claims import claims


def _run(recipe: str, be: Backend, data: Path | None) -> Any:
    """The claim's real run: XOR (one model), MPG, or MNIST's first epoch."""

    if recipe == "mpg":
        return mpg_run(backend=be)
    if recipe == "mnist":
        return mnist_run(data, epochs=1, backend=be)
    return xor_run(recipe, backend=be)


def recipe_of(claim_id: str) -> str:
    """The training behind a claim (its :attr:`~torchmech.spec.core.Claim.recipe`); an unknown claim, or one
    without a training, is a one-line error naming the claims with one."""
    found = next((c for c in claims() if c.id == claim_id), None)
    if found is None or found.recipe is None:
        topics = dict.fromkeys(c.id.rsplit(".", 1)[0] + ".*" for c in claims() if c.recipe is not None)
        why = "is not a claim of the registry" if found is None else "has no training run to follow"
        raise ValueError(f"claim {claim_id!r} {why}: use a claim of {', '.join(topics)}")
    return found.recipe


def run_of(claim_id: str) -> Callable[[Backend, Path | None], Any]:
    """The run behind a claim, as a function of (backend, data root); see :func:`recipe_of`."""
    recipe = recipe_of(claim_id)
    return lambda be, data: _run(recipe, be, data)


@dataclass(frozen=True)
class Event:
    """One recorded value: ``step 0 · forward · 2 (Linear)``, ``step 0 · grad · 2.weight``, ``step 1 · update ·
    2.weight`` (what an optimizer step wrote), ``step 0 · loss (MSELoss)``."""

    name: str
    value: torch.Tensor  # float64, on the CPU
    input_shapes: tuple[tuple[int, ...], ...] = ()
    module: nn.Module | None = None  # the leaf as it was called (forward events), for the repro
    inputs: tuple[torch.Tensor, ...] = ()
    site: str = ""  # the module's name in the model: the leaf (forward), the parameter's owner (grad)


class _Enough(Exception):
    """Raised by the recorder once it has seen its steps: ends the run early."""


@dataclass(frozen=True)
class Recorder(Backend):
    """A backend that runs as ``base`` does and records, for the first ``steps`` forward passes into ``events``:
    from the second on, every parameter's update, as the last optimizer step wrote it and this forward pass
    meets it (``step N · update · 0.bias``: the weight now minus the weight the previous pass met; judged as
    an update, not a weight, whose budget is 100× a step's size); every leaf's output; the loss; the gradient
    out of the loss and every parameter's gradient. A fault in the optimizer (a wrong learning rate on one
    parameter, an update applied a step late) is so named at the update it wrote, before the forward pass
    that reads it."""

    base: Backend | None = None
    steps: int = 3
    events: list[Event] = field(default_factory=list, compare=False)
    calls: list[int] = field(default_factory=lambda: [0], compare=False)  # forward passes begun

    @classmethod
    def around(cls, base: Backend, steps: int) -> Recorder:
        return cls(**{f.name: getattr(base, f.name) for f in fields(Backend)}, base=base, steps=steps)

    def cast(self, t: torch.Tensor) -> torch.Tensor:
        return self.base.cast(t)

    def function(self, fn: Callable) -> Callable:
        return self.base.function(fn)

    def loss(self, loss_fn: Callable, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The base's loss, recorded: its value (``step N · loss``) and, in the backward pass, the gradient out
        of it (``step N · grad · loss``: d loss / d prediction), so a fault in the loss is named at the loss."""
        step = self.calls[0] - 1
        if pred.requires_grad:
            pred.register_hook(lambda g: self.events.append(Event(f"step {step} · grad · loss", _f64(g), site="loss")))
        loss = self.base.loss(loss_fn, pred, y)
        name = getattr(loss_fn, "__name__", None) or type(loss_fn).__name__
        self.events.append(Event(f"step {step} · loss ({name})", _f64(loss), (tuple(pred.shape), tuple(y.shape)),
                                 site="loss"))
        return loss

    def autocast_context(self) -> AbstractContextManager:
        return self.base.autocast_context()

    def active(self) -> AbstractContextManager:
        return self.base.active()

    def prepare(self, model: nn.Module) -> nn.Module:
        model = self.base.prepare(model) if not self.base.compile else replace(self.base, compile=None).prepare(model)
        calls = self.calls

        params = [(name.replace("._orig_mod", ""), p) for name, p in model.named_parameters()]
        before: dict[str, torch.Tensor] = {}

        def count(module: nn.Module, args: tuple) -> None:
            if calls[0] >= self.steps:
                raise _Enough
            for name, p in params:  # what the last optimizer step wrote, as this forward pass meets it
                now = _f64(p)
                if calls[0] > 0:  # the update, not the weight: a fault of a step's size next to weights 100× larger
                    self.events.append(Event(f"step {calls[0]} · update · {name}", now - before[name],
                                             site=name.rpartition(".")[0]))
                before[name] = now
            calls[0] += 1

        model.register_forward_pre_hook(count)
        for parent_name, parent, child_name, leaf in list(_leaves(model)):
            name = f"{parent_name + '.' if parent_name else ''}{child_name}"
            runner = self.base.compiled(leaf)
            if runner is not leaf:
                setattr(parent, child_name, runner)
            runner.register_forward_hook(self._forward_hook(name, leaf, calls))
        for name, p in model.named_parameters():
            p.register_hook(self._grad_hook(name.replace("._orig_mod", ""), calls))
        return model

    def _forward_hook(self, name: str, leaf: nn.Module, calls: list[int]) -> Callable:
        def hook(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
            tensors = tuple(a for a in args if isinstance(a, torch.Tensor))
            self.events.append(Event(f"step {calls[0] - 1} · forward · {name} ({type(leaf).__name__})",
                                     _f64(output), tuple(tuple(a.shape) for a in tensors),
                                     _bare(leaf), tuple(a.detach().float().cpu() for a in tensors), name))
        return hook

    def _grad_hook(self, name: str, calls: list[int]) -> Callable:
        def hook(grad: torch.Tensor) -> None:
            self.events.append(Event(f"step {calls[0] - 1} · grad · {name}", _f64(grad),
                                     site=name.rpartition(".")[0]))
        return hook


def _bare(leaf: nn.Module) -> nn.Module:
    """A float32 CPU copy of ``leaf`` as it is now, without hooks (the repro's module)."""
    m = copy.deepcopy(leaf).float().cpu()
    for hooks in ("_forward_hooks", "_forward_pre_hooks", "_forward_hooks_with_kwargs", "_forward_hooks_always_called",
                  "_forward_pre_hooks_with_kwargs", "_backward_hooks", "_backward_pre_hooks"):
        getattr(m, hooks, {}).clear()
    return m


def _f64(t: torch.Tensor) -> torch.Tensor:
    """A float64 CPU copy of ``t`` — a copy even where ``t`` is one already (the arbiter's): a recorded value must
    not change as the run goes on (an optimizer writes its parameters in place)."""
    return t.detach().to("cpu", torch.float64, copy=True)


def _leaves(model: nn.Module) -> Iterator[tuple[str, nn.Module, str, nn.Module]]:
    """(parent's name, parent, child's name, leaf) for every module without children."""
    for parent_name, parent in model.named_modules():
        for child_name, child in parent.named_children():
            if not any(True for _ in child.children()):
                yield parent_name, parent, child_name, child


def record(be: Backend, claim_id: str, steps: int = 3, data: Path | None = None) -> list[Event]:
    """The events of the first ``steps`` training steps of ``claim_id``'s run on ``be``."""
    recorder = Recorder.around(be, steps)
    try:
        run_of(claim_id)(recorder, data)
    except _Enough:
        pass
    return recorder.events


def _rms(t: torch.Tensor) -> float:
    return t.pow(2).mean().sqrt().item() if t.numel() else 0.0


def _rmse(x: torch.Tensor, y: torch.Tensor) -> float:
    return _rms(x - y)


@dataclass
class Divergence:
    """What :func:`diverge` found: the first event over budget (``None``: none), and every event's ratio."""

    a: str
    b: str
    claim_id: str
    steps: int
    ratios: list[tuple[str, float]]
    first: int | None = None
    events: tuple[list[Event], list[Event], list[Event]] | None = None

    repro_file: Path | None = None
    repro_code: str | None = None
    note: str = ""  # what a second look found (inductor's random draws)

    @property
    def found(self) -> bool:
        return self.first is not None

    @property
    def module(self) -> str | None:
        """The name of the diverging operation's module in the model (a gradient: its parameter's module);
        ``None`` where none diverged or the loss did (:attr:`at_loss`: it is no module of the model)."""
        site = self.events[0][self.first].site if self.found and self.events else None
        return None if site == "loss" else site

    @property
    def at_loss(self) -> bool:
        """Whether the first divergence is the loss (its value, or the gradient out of it)."""
        return self.found and self.events is not None and self.events[0][self.first].site == "loss"

    @property
    def exit_code(self) -> int:
        """1 where ``b`` diverges from ``a`` (as a failing check), else 0."""
        return 1 if self.found else 0

    def write(self, out: Path) -> list[Path]:
        """The repro (``out/diverge-repro.pt``: the diverging module and its input) when one diverged."""
        if not self.found:
            return []
        path = out / "diverge-repro.pt"
        self.repro_code, self.repro_file = self.repro(path), path
        return [path] if path.exists() else []

    def table(self) -> str:
        """The report (:meth:`describe`) and, once written, the code that replays the repro."""
        repro = f"\n\nrepro ({self.repro_file}):\n{self.repro_code}" if self.repro_code else ""
        return self.describe() + repro

    def to_json(self) -> dict[str, Any]:
        first = self.ratios[self.first] if self.found else None
        return {"a": self.a, "b": self.b, "claim": self.claim_id, "steps": self.steps, "operations": len(self.ratios),
                "first": first and {"name": first[0], "ratio": first[1]}, "note": self.note, "report": self.describe(),
                "repro": self.repro_code}

    def describe(self) -> str:
        """The report: the first diverging operation with its inputs, both values and a repro; or none."""
        if self.first is None:
            worst = max(self.ratios, key=lambda r: r[1], default=("none", 0.0))
            return (f"{self.b} follows {self.a} within the budget through {len(self.ratios)} operations of the first "
                    f"{self.steps} steps of {self.claim_id}'s run (largest error ratio {worst[1]:.2g}, at {worst[0]})"
                    + (f"\n  note: {self.note}" if self.note else ""))
        ea, eb, e64 = (stream[self.first] for stream in self.events)
        name, ratio = self.ratios[self.first]
        diff = (eb.value - ea.value).abs()
        where = int(diff.argmax()) if diff.numel() else 0
        lines = [f"first divergence of {self.b} from {self.a} in {self.claim_id}'s run: {name}",
                 f"  error to float64 {ratio:.3g}× the budget (rmse {_rmse(eb.value, e64.value):.3g}; "
                 f"{self.a}'s own {_rmse(ea.value, e64.value):.3g})",
                 f"  inputs: {', '.join(str(s) for s in eb.input_shapes) or '(a gradient)'}",
                 f"  {self.a}: {_peek(ea.value, where)}",
                 f"  {self.b}: {_peek(eb.value, where)}",
                 f"  float64: {_peek(e64.value, where)}"]
        return "\n".join(lines + ([f"  note: {self.note}"] if self.note else []))

    def repro(self, path: Path) -> str:
        """Save the diverging module and its input to ``path``; return the code that replays it on both backends."""
        ea = self.events[0][self.first]
        if ea.module is None:
            what = "the loss" if self.at_loss else "a gradient"
            return f"# {self.ratios[self.first][0]} is {what}: replay the run with `torchmech diverge`"
        torch.save({"module": ea.module, "inputs": ea.inputs}, path)
        return (f"import torch\nfrom torchmech.runtime.backends import named\n"
                f"r = torch.load({str(path)!r}, weights_only=False)\n"
                f"for name in ({self.a!r}, {self.b!r}, 'cpu-fp64'):\n"
                f"    be = named(name)\n"
                f"    m = be.prepare(r['module'])\n"
                f"    with be.active(), be.autocast_context():\n"
                f"        print(name, m(*(be.cast(x) for x in r['inputs'])))")


def _peek(t: torch.Tensor, where: int) -> str:
    flat = t.flatten()
    if not flat.numel():
        return "(empty)"
    return f"shape {tuple(t.shape)}, element {where} = {flat[where].item():.9g} (first: {flat[0].item():.9g})"


def _aligned(streams: tuple[list[Event], ...]) -> tuple[list[Event], ...]:
    """The streams event by event, in the first one's order. Backward passes may reach a layer's parameters in
    another order (under autocast a Linear's bias gradient comes before its weight's): where every stream
    holds the same events, each one once, the others are put in the first's order. Raises ``RuntimeError``
    naming the first event where the backends ran different operations."""
    names = [[e.name for e in s] for s in streams]
    if all(n == names[0] for n in names):
        return streams
    if all(len(set(n)) == len(n) and set(n) == set(names[0]) for n in names):
        order = {name: i for i, name in enumerate(names[0])}
        return tuple(sorted(s, key=lambda e: order[e.name]) for s in streams)
    n = next((i for i, row in enumerate(zip(*names, strict=False)) if len(set(row)) > 1), min(map(len, names)))
    raise RuntimeError(f"the backends ran different operations from event {n}: "
                       f"{[row[n] if n < len(row) else 'end' for row in names]}")


def diverge(a: str | Backend = "cpu", b: str | Backend = "compile", claim_id: str = "s7.mpg.test_mse",
            steps: int = 3, data: Path | None = None) -> Divergence:
    """Record ``claim_id``'s first ``steps`` training steps on ``a``, ``b`` and the arbiter; find the first
    operation where ``b`` leaves the budget of ``b``'s precision around ``a``'s own error.

    Under inductor ``b``'s random numbers (MyNoisyModule's noise) come from inductor's own generator, not
    eager's: a divergence there is found again with inductor's ``fallback_random``, which draws them as
    eager does. If ``b`` then follows ``a`` within budget, the difference was the random draws, not the
    arithmetic: nothing is found; otherwise the first operation over budget with eager's draws is named.
    Either way the report says so (``note``)."""
    be_a, be_b = named(a), named(b)
    streams = _aligned(tuple(record(be, claim_id, steps, data) for be in (be_a, be_b, named(ARBITER))))
    ratios, first = _judge(streams, be_a, be_b)
    found = Divergence(be_a.name, be_b.name, claim_id, steps, ratios, first, streams)
    if first is None or not be_b.compile or be_b.compiler != "inductor" or ("fallback_random", True) in be_b.inductor:
        return found
    eager_draws = replace(be_b, name=f"{be_b.name}+fallback_random",
                          inductor=(*be_b.inductor, ("fallback_random", True)))
    again = _aligned((streams[0], record(eager_draws, claim_id, steps, data), streams[2]))
    ratios_again, first_again = _judge(again, be_a, eager_draws)
    draws = (f"{be_b.name} first left the budget at {ratios[first][0]} (ratio {ratios[first][1]:.3g}), where "
             f"inductor draws its own random numbers; with fallback_random (eager's draws)")
    if first_again is not None:
        return replace(found, ratios=ratios_again, first=first_again, events=again,
                       note=f"{draws} this is the first operation over budget: not the random draws")
    return replace(found, ratios=ratios_again, first=None, events=again,
                   note=f"{draws} it follows {be_a.name} within budget: the difference is the draws, not the "
                        f"arithmetic")


def _judge(streams: tuple[list[Event], ...], be_a: Backend,
           be_b: Backend) -> tuple[list[tuple[str, float]], int | None]:
    """Every event's error ratio (``b``'s error to float64 over its tensor budget) and the first over 1."""
    tolerance = be_b.tolerance
    ratios: list[tuple[str, float]] = []
    first = None
    for i, (ea, eb, e64) in enumerate(zip(*streams, strict=True)):
        budget = tolerance.tensor_budget(_rmse(ea.value, e64.value), e64.value, be_a.tolerance.eps)
        error = _rmse(eb.value, e64.value)
        ratio = error / budget if budget > 0 else (0.0 if error == 0 else math.inf)
        ratios.append((ea.name, ratio))
        if first is None and ratio > 1:
            first = i
    return ratios, first
