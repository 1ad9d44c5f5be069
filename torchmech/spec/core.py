r"""The specification's machinery: what a claim is, how it is measured and how it holds.

* :class:`Context`: what a measure gets — the implementation under test, the device and backend,
  ``quick``, the data root and the shared runs.
* Rules (:class:`Rule`): :class:`Exact` to the printed digits, a :class:`Band` (absolute or relative),
  :class:`AtLeast`, a :class:`Law` (a statistical or structural predicate), an :class:`Erratum` (the book's
  statement does not reproduce: the documented finding holds instead), :class:`Arbiter` (the book's digits
  on the reference backend — the CPU in float32, eager — and elsewhere the float64 arbiter's rule of
  :mod:`torchmech.runtime.backends`), or :class:`OffReference` (one rule on the reference, another elsewhere).
  Each rule owns how a claim is judged under it (:meth:`Rule.verdict`).
* :class:`Claim` (one thing the chapter says, as data) and :class:`Result` (a judged claim).

The chapter's claims themselves live in :mod:`torchmech.spec.claims`, as OpInfo's entries live apart from
its ``core``.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from torchmech.chapter.implementation import REFERENCE, Implementation
from torchmech.runtime.backends import ARBITER, REFERENCE_BACKEND, Backend, named, plain
from torchmech.spec.runs import SHARED, Runs

#: What the *holds* column can say, from strongest to failing.
HOLDS: dict[str, str] = {
    "exact": "the book's digits, exactly",
    "band": "within the band the rule names (its reason beside it)",
    "bound": "on the right side of the bound the rule names",
    "law": "the law the rule states holds (off the CPU: the law behind the CPU generator's digits)",
    "erratum": "the book's statement does not reproduce; the documented finding (with its numbers) holds",
    "conforms": "off the reference backend: within k·(float32's own error) + tol of the float64 arbiter",
    "arbiter": "the float64 arbiter's own value: the yardstick of the other backends, not judged",
    "n/a": "not run on this backend (the claim's run trains in its own loop, or does not depend on the backend)",
    "quick": "not checked: --quick trimmed the run",
    "skip": "not run here: an optional package is missing",
    "no": "the claim fails",
}


@dataclass
class Context:
    """What a measure gets: the implementation under test, where and how to run, the shared runs.

    Attributes:
        device: where tensors live (the book's digits are CPU facts).
        backend: how the code runs (a name of :data:`torchmech.runtime.backends.BACKENDS`, or ``"eager"``: the
            plain backend of ``device``); a named backend sets the device (:meth:`on`).
        impl: the implementation under test (default: torchmech itself); the runs take their pieces from it
            (``train``, ``mnist_mlp``…: :func:`torchmech.spec.runs.run_pieces`).
        quick: trim the long trainings (MNIST to 2 epochs, Lightning to one short epoch).
        data: the MNIST data root (``None``: ``$TORCHMECH_DATA`` or the per-user cache).
        runs: the named runs, computed once per process (:data:`torchmech.spec.runs.SHARED`).
        known: the reference implementation's measured values, ``(claim id, backend name) → value``, measured
            elsewhere (:mod:`torchmech.check.conformance` measures each backend in its own process and then judges
            here): :meth:`Claim.measured` takes them instead of measuring, and adds what it measures.
    """

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    backend: str | Backend = "eager"
    impl: Implementation = REFERENCE
    quick: bool = False
    data: Path | None = None
    runs: Runs = SHARED
    known: dict[tuple[str, str], Any] = field(default_factory=dict)

    def __repr__(self) -> str:  # one line in a traceback, not the runs' and the known values' dump
        return f"Context({self.device}, {self.backend if isinstance(self.backend, str) else self.backend.name}, " \
               f"impl={self.impl.name}{', quick' if self.quick else ''})"

    @property
    def be(self) -> Backend:
        """The :class:`~torchmech.runtime.backends.Backend` the measures run on."""
        return plain(self.device) if self.backend == "eager" else named(self.backend)

    def on(self, backend: str | Backend) -> Context:
        """The same context on another backend (a name, or a :class:`~torchmech.runtime.backends.Backend`: the
        ladder's changed ones), its device too."""
        return replace(self, backend=backend, device=torch.device(named(backend).device))

    def tensor(self, value: Any, requires_grad: bool = False) -> torch.Tensor:
        """``torch.tensor(value)`` on the backend's device, floats in its dtype (a leaf)."""
        t = torch.tensor(value)
        dtype = self.be.dtype if t.is_floating_point() else t.dtype
        return torch.tensor(value, device=self.device, dtype=dtype, requires_grad=requires_grad)

    def _get(self, name: str, **kwargs: Any) -> Any:
        """The shared run ``name`` on this backend, with the pieces of the implementation under test."""
        return self.runs.get(name, backend=self.be, impl=self.impl, **kwargs)

    def xor(self, model: str):  # -> (nn.Module, History)
        return self._get("xor", model=model)

    def xor_notebook(self, model: str):  # -> (nn.Module, History), in the notebook's order
        return self._get("xor_notebook")[model]

    def ensemble(self, arch: str):  # -> EnsembleResult
        return self._get("ensemble", arch=arch)

    def mpg(self):  # -> MpgResult
        return self._get("mpg")

    def mnist(self):  # -> MnistResult
        return self._get("mnist", epochs=2 if self.quick else 20, data=self.data)

    def lightning(self, epochs: int = 10):  # -> LightningRun; beyond 10 epochs, resumed from the 10-epoch run
        return self._get("lightning", epochs=epochs, quick=self.quick, data=self.data)

    def ignite(self):  # -> IgniteRun
        return self._get("ignite", quick=self.quick, data=self.data)


# --- rules ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Verdict:
    """A rule's judgement: what we measured, as printed, and whether (and how) the claim holds;
    off the reference, the error ratio to the float64 arbiter's budget (≤ 1 holds)."""

    ours: str
    holds: str
    ratio: float | None = None


def show(value: Any, digits: int | None = None) -> str:
    """``value`` as the book would print it: floats to ``digits`` decimals, tuples joined by `` / ``."""
    if isinstance(value, tuple | list):
        return " / ".join(show(v, digits) for v in value)
    if isinstance(value, float) and digits is not None:
        return f"{value:.{digits}f}"
    return str(value)


def _printed_shape(text: str) -> tuple[tuple[int, ...], list[str], str] | None:
    """A printed tensor (``tensor([[1., 2.]], grad_fn=…)``) or nested list read back: its shape, its numbers as
    printed, the rest (``grad_fn=…``); ``None`` if ``text`` is neither, or is summarised (``...``)."""
    text = text.strip()
    wrapped = re.fullmatch(r"tensor\((.*)\)", text, flags=re.DOTALL)
    body = wrapped.group(1).strip() if wrapped else text
    if not body.startswith("[") and not wrapped:
        return None
    if body.startswith("["):
        depth, end = 0, len(body)
        for i, ch in enumerate(body):
            depth += {"[": 1, "]": -1}.get(ch, 0)
            if depth == 0:
                end = i + 1
                break
        data, rest = body[:end], body[end:]
    else:
        data, _, rest = body.partition(",")
    tokens = re.findall(r"\[|\]|[^\[\],\s]+", data)
    if "..." in tokens or not tokens:
        return None

    def parse(i: int) -> tuple[Any, int]:
        if tokens[i] != "[":
            return tokens[i], i + 1
        items, i = [], i + 1
        while tokens[i] != "]":
            item, i = parse(i)
            items.append(item)
        return items, i + 1

    try:
        tree, used = parse(0)
    except IndexError:
        return None
    if used != len(tokens):
        return None
    shape: list[int] = []
    node = tree
    while isinstance(node, list):
        shape.append(len(node))
        node = node[0] if node else None
    flat: list[str] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(reversed(node))
        else:
            flat.append(node)
    return tuple(shape), flat, rest.strip(" ,")


def shape_difference(expected: str, got: str) -> str:
    """How two printed tensors differ in shape, in words (``shape (1,) where () is expected``, with ``(the
    numbers agree)`` when only the shape differs); ``""`` when the shapes agree or either is no printed tensor."""
    a, b = _printed_shape(expected), _printed_shape(got)
    if a is None or b is None or a[0] == b[0]:
        return ""

    def same(x: str, y: str) -> bool:
        try:
            return float(x) == float(y)
        except ValueError:
            return x == y

    agree = len(a[1]) == len(b[1]) and all(map(same, a[1], b[1])) and a[2] == b[2]
    return f"shape {b[0]} where {a[0]} is expected" + (" (the numbers agree)" if agree else "")


def _numbers(value: Any) -> list[float]:
    if isinstance(value, str):
        return [float(v) for v in value.split(" / ")]
    if isinstance(value, tuple | list):
        return [float(v) for v in value]
    return [float(value)]


class Rule:
    """How a claim holds. ``judge(book, measured, ctx)`` → :class:`Verdict`; ``describe(ctx)`` says the
    rule in words, with its reason; ``verdict(claim, ctx)`` measures the claim and judges it (a rule that
    needs more than one measurement, :class:`Arbiter`, says so there)."""

    def verdict(self, claim: Claim, ctx: Context) -> Verdict:
        return self.judge(claim.book, claim.measured(ctx), ctx)

    def judge(self, book: str, measured: Any, ctx: Context) -> Verdict:
        raise NotImplementedError

    def describe(self, ctx: Context) -> str:
        raise NotImplementedError


@dataclass(frozen=True)
class Exact(Rule):
    """The measured value, printed as the book prints it (``digits`` decimals), equals the book's."""

    digits: int | None = None

    def judge(self, book: str, measured: Any, ctx: Context) -> Verdict:
        ours = show(measured, self.digits)
        return Verdict(ours, "exact" if ours == book else "no")

    def describe(self, ctx: Context) -> str:
        return "exact to the printed digits"


@dataclass(frozen=True)
class Band(Rule):
    """Within ``width`` of the book's number (``relative``: ``width`` × |book|), each of a tuple's parts."""

    width: float
    reason: str
    digits: int = 4
    relative: bool = False

    def judge(self, book: str, measured: Any, ctx: Context) -> Verdict:
        ours = show(measured, self.digits)
        if ours == book:
            return Verdict(ours, "exact")
        near = all(abs(m - b) <= self.width * (abs(b) if self.relative else 1.0) * (1 + 1e-9)  # 0.69 vs 0.71
                   for m, b in zip(_numbers(measured), _numbers(book), strict=True))
        return Verdict(ours, "band" if near else "no")

    def describe(self, ctx: Context) -> str:
        width = f"{self.width:.2%}" if self.relative else f"{self.width:g}"
        return f"within ± {width}: {self.reason}"


@dataclass(frozen=True)
class AtLeast(Rule):
    """Every part of the measured value is ≥ ``threshold``."""

    threshold: float
    reason: str
    digits: int = 4

    def judge(self, book: str, measured: Any, ctx: Context) -> Verdict:
        ours = show(measured, self.digits)
        if ours == book:
            return Verdict(ours, "exact")
        return Verdict(ours, "bound" if all(m >= self.threshold for m in _numbers(measured)) else "no")

    def describe(self, ctx: Context) -> str:
        return f"at least {self.threshold:g}: {self.reason}"


@dataclass(frozen=True)
class Law(Rule):
    """A statistical or structural predicate ``holds(measured, book)``, stated in words."""

    holds: Callable[[Any, str], bool]
    text: str
    show: Callable[[Any], str] = str

    def judge(self, book: str, measured: Any, ctx: Context) -> Verdict:
        return Verdict(self.show(measured), "law" if self.holds(measured, book) else "no")

    def describe(self, ctx: Context) -> str:
        return f"law: {self.text}"


@dataclass(frozen=True)
class Erratum(Rule):
    """The book's statement does not reproduce; ``finding`` (a law, with the numbers in ``note``) does."""

    finding: Law
    note: str

    def judge(self, book: str, measured: Any, ctx: Context) -> Verdict:
        v = self.finding.judge(book, measured, ctx)
        return Verdict(v.ours, "erratum" if v.holds == "law" else "no")

    def describe(self, ctx: Context) -> str:
        return f"erratum: {self.note}; checked: {self.finding.text}"


@dataclass(frozen=True)
class OffReference(Rule):
    """``cpu`` on the reference backend (the CPU in float32, eager), where the book's digits come from;
    ``elsewhere`` on every other backend, where the random draws differ (another device's generator,
    noise drawn in another dtype) so only a law can hold."""

    cpu: Rule
    elsewhere: Rule

    def _pick(self, ctx: Context) -> Rule:
        return self.cpu if ctx.be.is_reference else self.elsewhere

    def verdict(self, claim: Claim, ctx: Context) -> Verdict:
        return self._pick(ctx).verdict(claim, ctx)

    def judge(self, book: str, measured: Any, ctx: Context) -> Verdict:
        return self._pick(ctx).judge(book, measured, ctx)

    def describe(self, ctx: Context) -> str:
        return self._pick(ctx).describe(ctx) + ("" if ctx.be.is_reference else f" (on {ctx.be.name})")


@dataclass(frozen=True)
class Arbiter(Rule):
    """``cpu`` on the reference backend (the CPU in float32, eager: the book's digits); on any other
    backend *b* the float64 arbiter's rule (:mod:`torchmech.runtime.backends`): every part of the measured
    value holds when |x_b − x₆₄| ≤ k·|x₃₂ − x₆₄| + tol·max(1, |x₆₄|), with k and tol of b's precision.

    The claim's measure runs three times: on b, on the reference (x₃₂) and on the arbiter (x₆₄).

    ``earlier``: for a number read off a long training at one epoch (MNIST's accuracy per epoch), the same run's
    claims at the epochs before it. Two float32 runs of a chaotic training drift apart by amounts of one size,
    and |x₃₂ − x₆₄| at one epoch is one draw of that size: where the reference lands on float64's digits by
    chance (MNIST's epochs 14 and 17 on an Intel Xeon, while it was 12 answers of 60,000 off at epoch 10), the
    budget fell to tol alone and compile, 18 answers off, failed. So e_ref is the reference's largest error so
    far in the run (relative to max(1, |x₆₄|), scaled to this epoch's): the drift the run has shown, not one
    draw of it. k and tol are unchanged.
    """

    cpu: Rule
    digits: int = 4
    earlier: Callable[[], list[Claim]] | None = None

    def verdict(self, claim: Claim, ctx: Context) -> Verdict:
        measured = claim.measured(ctx)
        if ctx.be.is_reference or ctx.be.name == ARBITER:
            return self.judge(claim.book, measured, ctx)
        x32, x64 = claim.measured(ctx.on(REFERENCE_BACKEND)), claim.measured(ctx.on(ARBITER))
        return self.conform(measured, x32, x64, ctx, self.drift(ctx))

    def drift(self, ctx: Context) -> float:
        """The reference's largest relative error to the arbiter over the :attr:`earlier` claims (0 without)."""
        drift = 0.0
        for before in self.earlier() if self.earlier is not None else ():
            a32, a64 = before.measured(ctx.on(REFERENCE_BACKEND)), before.measured(ctx.on(ARBITER))
            for p32, p64 in zip(_numbers(a32), _numbers(a64), strict=True):
                drift = max(drift, abs(p32 - p64) / max(1.0, abs(p64)))
        return drift

    def judge(self, book: str, measured: Any, ctx: Context) -> Verdict:
        if ctx.be.is_reference:
            return self.cpu.judge(book, measured, ctx)
        if ctx.be.name == ARBITER:
            return Verdict(show(measured, self.digits), "arbiter")
        raise RuntimeError("off the reference an Arbiter claim is judged by conform() (Arbiter.verdict calls it)")

    def conform(self, measured: Any, x32: Any, x64: Any, ctx: Context, drift: float = 0.0) -> Verdict:
        """The verdict on a backend: the largest part's error ratio to its budget (``drift``: the reference's
        relative error earlier in the run, :meth:`drift`, the least e_ref is taken to be)."""
        tolerance = ctx.be.tolerance
        ratios = [abs(b - a64) / tolerance.budget(max(abs(a32 - a64), drift * max(1.0, abs(a64))), a64)
                  if b != a64 else 0.0
                  for b, a32, a64 in zip(_numbers(measured), _numbers(x32), _numbers(x64), strict=True)]
        ratio = max(ratios)
        return Verdict(show(measured, self.digits), "conforms" if ratio <= 1.0 else "no", ratio)

    def describe(self, ctx: Context) -> str:
        if ctx.be.is_reference:
            return self.cpu.describe(ctx)
        if ctx.be.name == ARBITER:
            return "the float64 arbiter (not judged)"
        t = ctx.be.tolerance
        so_far = " (|x₃₂ − x₆₄|: the largest so far in the run)" if self.earlier is not None else ""
        return (f"|x − x₆₄| ≤ {t.k:g}·|x₃₂ − x₆₄| + {t.tol:g}·max(1, |x₆₄|) on {ctx.be.name} ({ctx.be.precision})"
                + so_far)


# --- claims ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Result:
    """One judged claim: a row of the chapter's table and a pytest case's verdict."""

    id: str
    section: str
    statement: str
    book: str
    ours: str
    holds: str
    rule: str
    ratio: float | None = None
    backend: str = REFERENCE_BACKEND

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def explain(self, who: str = "ours") -> str:
        """The failure message: the sentence, the book's value, the measured one (labelled ``who``: ``"ours"`` for
        torchmech's, ``"yours"`` for a learner's), a shape that differs from the book's, the rule and its reason."""
        ratio = f"\n  error ratio: {self.ratio:.3g} (≤ 1 holds)" if self.ratio is not None else ""
        shape = shape_difference(self.book, self.ours)
        shape = f"\n  {shape}" if shape else ""
        return (f"{self.id}: {self.statement}\n  book: {self.book}\n  {who}: {self.ours}{shape}\n"
                f"  rule: {self.rule}\n  holds: {self.holds} on {self.backend}{ratio}")


#: :meth:`Claim.not_measured` of a value that does not depend on the backend: judged on the reference.
ON_THE_REFERENCE = ("", "n/a")


@dataclass(frozen=True)
class Claim:
    """One thing the chapter says, as data.

    Attributes:
        id: ``sN.topic.name``, stable (pytest ids and ``-k`` use it).
        statement: the chapter's claim in one sentence.
        book: the book's printed value, as printed.
        measure: ``measure(ctx)`` → the measured value (a number, a tuple, a string).
        rule: how it holds (:class:`Rule`).
        device_free: the value does not depend on the device (the data, the CPU generator's
            draws): pytest checks it once, on the CPU.
        quick: what ``--quick`` does: ``"check"`` (nothing: not trimmed), ``"show"`` (measured on
            the trimmed run, marked ``quick``) or ``"skip"`` (not run, marked ``quick``).
        slow: needs a long run (Lightning's 10 epochs): pytest marks its case ``slow``.
        needs: an optional package the measure imports (``"ignite"``): without it, ``skip``.
        plain_only: why the claim runs on plain backends only (``cpu``, ``cuda``, ``mps``): its run
            trains in its own loop (Lightning, Ignite). Elsewhere it is ``n/a``.
        recipe: the chapter's training its numbers come from (a key of
            :data:`~torchmech.chapter.recipes.RECIPES`: ``"mpg"``, ``"mnist"``, an XOR model): the run ``diverge``
            follows and the ladder times. ``None``: no training of its own.
    """

    id: str
    statement: str
    book: str
    measure: Callable[[Context], Any]
    rule: Rule
    device_free: bool = False
    quick: str = "check"
    slow: bool = False
    needs: str | None = None
    plain_only: str | None = None
    recipe: str | None = None

    def __repr__(self) -> str:  # one line in a traceback (a test's parameter), not every field
        return f"Claim({self.id!r})"

    @property
    def section(self) -> str:
        return self.id.split(".", 1)[0]

    @property
    def number(self) -> float:
        """The book's value as a number (a claim that printed one)."""
        return float(self.book)

    def measured(self, ctx: Context) -> Any:
        """The measure, run with the backend's global flags set (and restored); for the reference
        implementation a value in ``ctx.known`` is taken as measured, and a new one is added there."""
        key = (self.id, ctx.be.name)
        if ctx.impl is REFERENCE and key in ctx.known:
            return ctx.known[key]
        with ctx.be.active():
            value = self.measure(ctx)
        if ctx.impl is REFERENCE:
            ctx.known[key] = value
        return value

    def not_measured(self, ctx: Context) -> tuple[str, str] | None:
        """Why :meth:`judge` does not measure this claim on ``ctx``'s backend, as the cell's ``(ours, holds)``
        (``None``: it measures it): ``quick``-skipped, its package missing, a run of its own loop off a plain
        backend, or a value that does not depend on the backend (off the reference: judged on ``cpu``)."""
        be = ctx.be
        if ctx.quick and self.quick == "skip":
            return "not run (--quick)", "quick"
        if self.needs is not None and importlib.util.find_spec(self.needs) is None:
            return f"{self.needs} is not installed", "skip"
        if self.plain_only is not None and not be.is_plain:
            return f"not on {be.name}: {self.plain_only}", "n/a"
        if self.device_free and not be.is_reference:
            return ON_THE_REFERENCE
        return None

    def measured_on(self, ctx: Context) -> bool:
        """Whether :meth:`judge` measures this claim on ``ctx``'s backend itself (:meth:`not_measured`)."""
        return self.not_measured(ctx) is None

    def judge(self, ctx: Context) -> Result:
        """Measure in ``ctx`` and apply the rule (:meth:`Rule.verdict`), unless :meth:`not_measured` says why not
        (a value that does not depend on the backend: the reference's, ``n/a``)."""
        be = ctx.be

        def result(ours: str, holds: str, ratio: float | None = None, rule: str | None = None) -> Result:
            return Result(id=self.id, section=self.section, statement=self.statement, book=self.book, ours=ours,
                          holds=holds, rule=rule or self.rule.describe(ctx), ratio=ratio, backend=be.name)

        skipped = self.not_measured(ctx)
        if skipped == ON_THE_REFERENCE:
            on_cpu = self.rule.verdict(self, ctx.on(REFERENCE_BACKEND))
            return result(on_cpu.ours, "n/a", rule=f"does not depend on the backend: judged on {REFERENCE_BACKEND}")
        if skipped is not None:
            return result(*skipped)
        verdict = self.rule.verdict(self, ctx)
        return result(verdict.ours, "quick" if ctx.quick and self.quick == "show" else verdict.holds, verdict.ratio)
