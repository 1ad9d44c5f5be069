"""Which setting restores a failing claim, and what it costs: the mitigation ladder.

A claim that fails on a backend raises the user's next question: which of the backend's settings is to
blame, and what does turning it off cost? :func:`climb` takes a conformance matrix and, for every backend
with failing claims, re-judges those claims with one setting changed at a time — a :class:`Rung` — by the
same rule and the same precision's tolerance (:mod:`torchmech.runtime.backends`), then times one training step of
each failing claim's model on the backend as it was and as changed (:func:`torchmech.check.speed.time_step`).

The rungs (:data:`RUNGS`), each tried where it applies:

* ``torch.compile``: inductor's ``fallback_random`` (random numbers from eager's generator) and
  ``emulate_precision_casts`` (rounding where eager rounds), then the ``aot_eager`` and ``eager`` compile
  backends (inductor left out, then AOTAutograd too);
* TF32 off; deterministic algorithms (and cuDNN's); no CUDA graphs (``mode="default"``);
* autocast: the module that adds the most error to the claim's run (the largest ``added`` of
  :func:`torchmech.check.layers.attribute`) kept in float32, the rest as it was; then autocast off (every module
  in float32).

A claim is *restored* by a rung when it holds with that one change. ``torchmech conformance --explain``
prints the ladder under the matrix and writes ``ladder.json``.

Example::

    >>> from torchmech.runtime.backends import named
    >>> [r.name for r in RUNGS if r.applies(named("compile"))]
    ['fallback_random', 'emulate_precision_casts', 'aot_eager', 'eager', 'deterministic']
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from torchmech.check.diverge import recipe_of
from torchmech.check.layers import attribute
from torchmech.check.speed import time_step
from torchmech.runtime.backends import REFERENCE_BACKEND, Backend, named
from torchmech.spec.claims import claim as get_claim
from torchmech.spec.core import Context, Result


class NotApplicable(Exception):
    """A rung that cannot be built for this claim (its reason in one line)."""


@dataclass(frozen=True)
class Rung:
    """One setting changed: ``name`` (short), ``does`` (a line), where it ``applies`` and the ``change``
    (the backend, the failing claim's id and the data root → the changed backend)."""

    name: str
    does: str
    applies: Callable[[Backend], bool]
    change: Callable[[Backend, str, Path | None], Backend]

    def changed(self, be: Backend, claim_id: str, data: Path | None = None) -> Backend:
        """``be`` with this rung's setting changed, named ``be.name+rung`` (and the modules it keeps in float32:
        ``cpu-bf16+module_fp32(4)``)."""
        changed = self.change(be, claim_id, data)
        kept = changed.fp32_modules[len(be.fp32_modules):]
        return replace(changed, name=f"{be.name}+{self.name}" + (f"({','.join(kept)})" if kept else ""))


def _inductor(be: Backend) -> bool:
    return bool(be.compile) and be.compiler == "inductor"


def _has_inductor_setting(name: str) -> bool:
    import torch._inductor.config as inductor

    return hasattr(inductor, name)


def _setting(name: str) -> Callable[[Backend, str, Path | None], Backend]:
    return lambda be, claim_id, data: replace(be, inductor=(*be.inductor, (name, True)))


def _diverging_module_in_float32(be: Backend, claim_id: str, data: Path | None) -> Backend:
    """``be`` with the module that adds the most error to ``claim_id``'s run kept in float32: the largest
    ``added`` of :func:`torchmech.check.layers.attribute` over the run's first 3 steps."""

    try:
        recipe_of(claim_id)
    except ValueError:
        raise NotApplicable(f"{claim_id} has no training run to find its diverging module in") from None
    top = attribute(REFERENCE_BACKEND, be, claim_id, steps=3, data=data).largest_added
    if top is None or not top.added:
        raise NotApplicable("no module of the run's first 3 steps adds an error to attribute")
    bound = f", {top.bound_ratio:.2g} of its rounding bound" if top.bound_ratio is not None else ""
    _ATTRIBUTED[be.name, top.module] = f"{top.module} adds {top.added:.3g}× the reference's own error{bound}"
    return replace(be, fp32_modules=(*be.fp32_modules, top.module))


#: What the attribution said of each module the ``module_fp32`` rung kept in float32: (backend, module) → a line
#: (how much error it adds, and that error against its rounding bound), shown by the ladder's table.
_ATTRIBUTED: dict[tuple[str, str], str] = {}


#: The ladder, in the order it is climbed.
RUNGS: tuple[Rung, ...] = (
    Rung("fallback_random", "inductor draws random numbers with eager's generator "
         "(torch._inductor.config.fallback_random)", _inductor, _setting("fallback_random")),
    Rung("emulate_precision_casts", "inductor rounds to the low precision wherever eager does "
         "(torch._inductor.config.emulate_precision_casts)",
         lambda be: _inductor(be) and _has_inductor_setting("emulate_precision_casts"),
         _setting("emulate_precision_casts")),
    Rung("aot_eager", "torch.compile(backend='aot_eager'): dynamo's and AOTAutograd's graphs, eager kernels",
         _inductor, lambda be, claim_id, data: replace(be, compiler="aot_eager")),
    Rung("eager", "torch.compile(backend='eager'): dynamo's capture only, eager kernels",
         lambda be: bool(be.compile) and be.compiler != "eager",
         lambda be, claim_id, data: replace(be, compiler="eager")),
    Rung("tf32_off", "float32 matmuls and convolutions in full float32 (no TF32)", lambda be: be.tf32,
         lambda be, claim_id, data: replace(be, tf32=False)),
    Rung("deterministic", "torch.use_deterministic_algorithms(True), cuDNN deterministic, no cuDNN benchmark",
         lambda be: not be.deterministic,
         lambda be, claim_id, data: replace(be, deterministic=True)),
    Rung("no_cuda_graphs", "torch.compile(mode='default'): no CUDA graph replays each step",
         lambda be: be.compile == "reduce-overhead", lambda be, claim_id, data: replace(be, compile="default")),
    Rung("module_fp32", "the module that adds the most error to the claim's run (torchmech diverge --layers) kept "
         "in float32, outside autocast", lambda be: be.autocast is not None, _diverging_module_in_float32),
    Rung("autocast_off", "every module in float32: no autocast", lambda be: be.autocast is not None,
         lambda be, claim_id, data: replace(be, autocast=None)),
)


@dataclass(frozen=True)
class Try:
    """One failing claim re-judged with one rung's change: ``result`` (``None`` where the rung did not apply,
    ``reason`` says why) and, for a rung that restores it, the step time before and after (seconds)."""

    claim: str
    backend: str
    rung: str
    changed: str
    result: Result | None
    reason: str = ""
    step_before_s: float | None = None
    step_after_s: float | None = None
    kept: tuple[str, ...] = ()  # module_fp32: the modules the change keeps in float32
    note: str = ""  # module_fp32: what the module kept in float32 adds, against its rounding bound

    @property
    def restores(self) -> bool:
        return self.result is not None and self.result.holds != "no"


@dataclass
class Ladder:
    """What :func:`climb` found: every (failing claim, backend, rung) tried, in ladder order."""

    failing: list[Result]
    tries: list[Try] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """1 where a claim fails (as the matrix), restored by a rung or not."""
        return 1 if self.failing else 0

    def restoring(self, claim_id: str, backend: str) -> list[str]:
        """The rungs that restore ``claim_id`` on ``backend``, in ladder order."""
        return [t.rung for t in self.tries if t.claim == claim_id and t.backend == backend and t.restores]

    def restores_all(self, backend: str) -> list[str]:
        """The rungs that alone restore every failing claim of ``backend``."""
        failing = {r.id for r in self.failing if r.backend == backend}
        rungs = dict.fromkeys(t.rung for t in self.tries if t.backend == backend)
        return [rung for rung in rungs
                if {t.claim for t in self.tries if t.backend == backend and t.rung == rung and t.restores} == failing]

    def table(self) -> str:
        """Per backend and rung: how many of its failing claims the change restores, the largest error ratio
        left, and the step time it costs; then the rungs that restore them all."""
        if not self.failing:
            return "mitigation ladder: no claim fails, nothing to explain"
        lines = ["mitigation ladder: each failing claim re-judged with one setting changed"]
        for be_name in dict.fromkeys(r.backend for r in self.failing):
            failing = [r for r in self.failing if r.backend == be_name]
            worst = max((r.ratio for r in failing if r.ratio is not None), default=None)
            lines.append(f"{be_name}: {len(failing)} failing claim(s)"
                         + (f", largest error ratio {worst:.3g}" if worst is not None else ""))
            tried = [t for t in self.tries if t.backend == be_name]
            for rung in dict.fromkeys(t.rung for t in tried):
                lines.append("  " + _rung_line(rung, [t for t in tried if t.rung == rung]))
            every = self.restores_all(be_name)
            lines.append(f"  → restores every failing claim: {', '.join(every)}" if every else
                         "  → no single setting restores every failing claim")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {"failing": [{"id": r.id, "backend": r.backend, "ratio": r.ratio} for r in self.failing],
                "restores_all": {b: self.restores_all(b) for b in dict.fromkeys(r.backend for r in self.failing)},
                "tries": [{"claim": t.claim, "backend": t.backend, "rung": t.rung, "changed": t.changed,
                           "holds": t.result.holds if t.result else None,
                           "ratio": t.result.ratio if t.result else None, "reason": t.reason,
                           "restores": t.restores, "step_before_s": t.step_before_s, "step_after_s": t.step_after_s,
                           "note": t.note}
                          for t in self.tries]}

    def write(self, out: Path) -> list[Path]:
        """``out/ladder.json`` (:meth:`to_json`)."""
        path = out / "ladder.json"
        path.write_text(json.dumps(self.to_json(), indent=2))
        return [path]


def _rung_line(rung: str, tries: list[Try]) -> str:
    applied = [t for t in tries if t.result is not None]
    if not applied:
        return f"{rung:<24} not tried: {tries[0].reason}"
    kept = dict.fromkeys(",".join(t.kept) for t in applied if t.kept)
    label = f"{rung} ({' / '.join(kept)})" if kept else rung  # the modules module_fp32 keeps in float32
    restored = [t for t in applied if t.restores]
    ratios = [t.result.ratio for t in applied if t.result.ratio is not None]
    text = f"{label:<24} restores {len(restored)}/{len(applied)}"
    if ratios:
        text += f" (largest ratio {max(ratios):.3g})"
    timed = {(t.step_before_s, t.step_after_s) for t in restored if t.step_before_s and t.step_after_s}
    if timed:
        before, after = max(timed, key=lambda ba: ba[1] / ba[0])
        text += f"; step {before * 1e3:.3f} → {after * 1e3:.3f} ms (×{after / before:.2f})"
    notes = dict.fromkeys(t.note for t in applied if t.note)
    return text + "".join(f"\n{'':<26}{note}" for note in notes)


def climb(failing: Sequence[Result], quick: bool = False, data: Path | None = None,
          rungs: Sequence[Rung] = RUNGS, min_run_time: float = 0.2,
          progress: Callable[[str], None] | None = None, known: dict[tuple[str, str], Any] | None = None) -> Ladder:
    """Re-judge each failing cell (a :class:`~torchmech.spec.core.Result` of a conformance matrix) with every rung
    that applies to its backend, one change at a time; time a training step of the claim's model before and
    after each change that restores it. The backends are looked up by name (:data:`BACKENDS`); ``known``: the
    values the matrix measured (:attr:`Context.known`), so the reference and the arbiter are not run again."""

    ladder = Ladder(list(failing))
    known = {} if known is None else known
    steps: dict[tuple[str, str], float] = {}
    built: dict[tuple[str, str, str], Backend | str] = {}  # one change per backend, rung and run

    def change(rung: Rung, be: Backend, claim_id: str) -> Backend | str:
        try:
            run = recipe_of(claim_id)
        except ValueError:
            run = claim_id
        key = (be.name, rung.name, run)
        if key not in built:
            try:
                built[key] = rung.changed(be, claim_id, data)
            except NotApplicable as why:
                built[key] = str(why)
        return built[key]

    def step_s(be: Backend, recipe: str) -> float:
        key = (be.name, recipe)
        if key not in steps:
            steps[key] = time_step(be, recipe, min_run_time).median_s
        return steps[key]

    for result in failing:
        be = named(result.backend)
        claim = get_claim(result.id)
        for rung in rungs:
            if not rung.applies(be):
                continue
            changed = change(rung, be, claim.id)
            if isinstance(changed, str):
                ladder.tries.append(Try(claim.id, be.name, rung.name, "", None, changed))
                continue
            verdict = claim.judge(Context(quick=quick, data=data, known=known).on(changed))
            kept = changed.fp32_modules[len(be.fp32_modules):]
            attempt = Try(claim.id, be.name, rung.name, changed.name, verdict, kept=kept,
                          note="; ".join(_ATTRIBUTED.get((be.name, m), "") for m in kept))
            if attempt.restores:
                try:
                    recipe = recipe_of(claim.id)
                except ValueError:
                    recipe = None
                if recipe is not None:
                    attempt = replace(attempt, step_before_s=step_s(be, recipe), step_after_s=step_s(changed, recipe))
            ladder.tries.append(attempt)
        if progress is not None:
            progress(result.id)
    return ladder
