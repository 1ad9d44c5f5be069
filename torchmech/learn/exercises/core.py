"""The exercises' machinery: :class:`Exercise` (one piece to write, as data), the differential check
(:func:`check_piece`: the learner's piece against the reference on every sample), :func:`failures` (the
exercise's claims and its check, within the time limit), and the helpers the sections' samples and
observers share (seeded draws, fresh copies, model builders' observer, the trimmed chapter runs).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from torchmech.chapter.implementation import REFERENCE, Implementation
from torchmech.chapter.runs import mpg_run, xor_run
from torchmech.learn.grader import (
    Difference,
    Raised,
    Sample,
    compare_observations,
    explain_ratios,
    learner_frame,
    rng_states,
    seeded,
    short,
)
from torchmech.learn.limits import TIME_LIMIT, TookTooLong, time_limit
from torchmech.spec.claims import claim, claims
from torchmech.spec.core import Context, shape_difference
from torchmech.spec.runs import Runs

Observe = Callable[[Any, Sample], dict[str, Any]]


@dataclass(frozen=True)
class Exercise:
    """One piece of the chapter for the learner to write.

    Attributes:
        name: the piece's name in :class:`~torchmech.chapter.implementation.Implementation` (and in the workspace).
        section: ``s1`` … ``s9``.
        stub: the fixed signature, as the workspace's stub writes it (a ``def`` or ``class`` line).
        task: what to write, in the chapter's terms (everything the checks require).
        claims: registry claim ids that grade it (quick ones; ``--full`` adds the section's others).
        samples: the drawn inputs.
        observe: ``observe(piece, sample)`` → observable name → value.
        hints: the chapter's idea, the formula, the reference's line (shown one at a time).
        diagnose: an exercise's own reading of a difference, ``diagnose(expected, yours)`` of two
            observations → a sentence or ``""``.
        runs: the trimmed chapter runs that take the piece (``xor_run`` with your ``train``…), compared
            with the same runs on the reference.
        spans: the input dimensions the task allows and the samples span ("0-d", "broadcasting", "≥ 3
            epochs"…: the vocabulary and each one's check on the samples in
            :mod:`torchmech.learn.exercises.spans`).
    """

    name: str
    section: str
    stub: str
    task: str
    claims: tuple[str, ...]
    samples: Callable[[], Sequence[Sample]]
    observe: Observe
    hints: tuple[str, str, str]
    diagnose: Callable[[dict, dict], str] | None = field(default=None, compare=False)
    runs: Callable[[], Sequence[Sample]] | None = field(default=None, compare=False)
    spans: tuple[str, ...] = ()

    @functools.cached_property
    def sample_list(self) -> tuple[Sample, ...]:
        """The drawn samples, then the trimmed chapter runs that take this piece (:attr:`runs`)."""
        return tuple(self.samples()) + (tuple(self.runs()) if self.runs else ())

    def run(self, piece: Any, sample: Sample) -> dict[str, Any]:
        """The observations of ``piece`` on one sample (a drawn input, or a trimmed chapter run)."""
        if "run" in sample.extra:
            return chapter_run(self.name, piece, sample)
        return self.observe(piece, sample)


@dataclass
class Finding:
    """How a piece differs from the reference: the first sample and observable that differ, and what the
    values say about it."""

    exercise: str
    sample: str
    difference: Difference
    summary: str
    differing: int
    total: int

    def message(self) -> str:
        d = self.difference
        lines = [f"on {self.sample}:", f"  {d.what}: {d.problem}"]
        if self.summary:
            lines.append(f"  {self.summary}")
        elif d.relation:
            lines.append(f"  {d.relation}")
        if d.got is not None and not d.problem.startswith("raised"):

            lines += [f"  expected {short(d.expected)}", f"  yours    {short(d.got)}"]
        if self.total > 1:
            lines.append(f"  ({self.differing} of {self.total} inputs differ)")
        return "\n".join(lines)


@functools.cache
def _reference_observation(e: Exercise, index: int) -> dict[str, Any]:
    return e.run(getattr(REFERENCE, e.name), e.sample_list[index])


def observations(e: Exercise, piece: Any) -> list[dict[str, Any]]:
    """The piece's observations on every sample of ``e``."""
    return [e.run(piece, s) for s in e.sample_list]


def check_piece(e: Exercise, piece: Any) -> Finding | None:
    """The learner's piece against the reference on every sample: the first difference, or ``None``."""
    found: list[tuple[Difference, Sample, dict, dict]] = []
    for i, s in enumerate(e.sample_list):
        expected = _reference_observation(e, i)
        got = e.run(piece, s)
        diff = compare_observations(expected, got)
        if diff is not None:
            found.append((diff, s, expected, got))
            if diff.problem.startswith("raised"):
                break
    if not found:
        return None
    diff, s, expected, got = found[0]
    summary = e.diagnose(expected, got) if e.diagnose else ""
    if not summary:
        same = [(d, smp) for d, smp, _, _ in found if d.what == diff.what]
        summary = explain_ratios(same) if len(same) == len(found) else ""
    return Finding(e.name, s.extra.get("label") or f"{e.name}({s.text()})", diff, summary, len(found),
                   len(e.sample_list))


def failures(e: Exercise, impl: Any, *, full: bool = False, timeout: float | None = None) -> list[tuple[str, str]]:
    """(what failed, why) for the exercise's claims and its differential check on ``impl``, within the
    time limit; ``full``: also every other claim of the exercise's section, on the chapter's full runs."""

    found: list[tuple[str, str]] = []
    ctx = Context(impl=impl)
    ids = list(e.claims)
    if full:
        ids += [c.id for c in claims(e.section) if c.id not in ids]
    else:
        ctx = Context(impl=impl, runs=Runs())
    limit = None if full else (TIME_LIMIT if timeout is None else timeout)
    try:
        with time_limit(limit):
            for claim_id in ids:
                try:
                    result = claim(claim_id).judge(ctx)
                except TookTooLong:
                    raise
                except Exception as err:  # the learner's code raised: that is the failure
                    at = learner_frame(err)
                    found.append((claim_id, f"{claim_id}: raised {type(err).__name__}: {err}"
                                            + (f" at {at}" if at else "")))
                else:
                    if result.holds == "no":
                        shape = shape_difference(result.book, result.ours)
                        found.append((claim_id, f"{claim_id}: {result.statement}\n  book: {result.book}\n  yours: "
                                                f"{result.ours}" + (f"\n  {shape}" if shape else "")))
            finding = check_piece(e, getattr(impl, e.name))
            if finding is not None:
                found.append(("samples", finding.message()))
    except TookTooLong as err:
        found.append(("time", f"{e.name}: {err}"))
    return found


# --- helpers of the sections' samples and observers ------------------------------------------------
def _gen(i: int) -> torch.Generator:
    return torch.Generator().manual_seed(1000 + i)


def _fresh(*values: Any) -> Callable[[], tuple]:
    """A ``make`` that hands out copies, so a mutating call cannot change the next one's input."""
    def make() -> tuple:
        return tuple(v.clone() if isinstance(v, torch.Tensor) else v.copy() if hasattr(v, "copy") else v
                     for v in values)
    return make


def _raised(err: Exception) -> dict[str, Any]:
    return {"returned": Raised(err, learner_frame(err))}


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


def _batches(*shapes: tuple[int, ...]) -> tuple[torch.Tensor, ...]:
    return tuple(torch.rand(s, generator=_gen(50 + i)) for i, s in enumerate(shapes))


def _builder_samples(*inputs: tuple[int, ...]) -> tuple[Sample, ...]:
    xs = _batches(*inputs)
    return (Sample(tuple, (), seed=1, extra={"inputs": xs}), Sample(tuple, (), seed=7, extra={"inputs": xs[:1]}))


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


def _run_sample(label: str, run: Callable[[Any], Any]) -> Sample:
    return Sample(tuple, (), seed=0, extra={"run": run, "label": label})


def _xor(model: str, epochs: int) -> Sample:
    def run(impl: Any) -> Any:
        return xor_run(model, epochs=epochs, impl=impl)
    return _run_sample(f"the chapter's run xor_run({model!r}, epochs={epochs}) with yours", run)


def _mpg(epochs: int) -> Sample:
    def run(impl: Any) -> Any:
        r = mpg_run(epochs=epochs, impl=impl)
        return r.model, r.history, {"test MSE": r.test_mse, "test MAE": r.test_mae}
    return _run_sample(f"the chapter's run mpg_run(epochs={epochs}) with yours", run)


def chapter_run(name: str, piece: Any, sample: Sample) -> dict[str, Any]:
    """One trimmed chapter run with the learner's piece in place of the reference's: its history, the
    trained weights, its metrics."""

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
