"""The input dimensions an exercise's task allows (its **spans**), each checked against the drawn samples.

An :class:`~torchmech.learn.exercises.core.Exercise` declares the spans its task text allows
(``Exercise.spans``: "0-d", "broadcasting", "≥ 3 epochs"…). Each span of the fixed vocabulary :data:`SPANS`
has two checks:

* ``covered(samples)``: the exercise's drawn samples (not its trimmed chapter runs) really span it. It reads
  what a sample *makes* (``sample.make()``: the piece's positional arguments, a function's or a class's
  constructor's) and the tensors a sample hands the observer (``sample.extra``: a builder's inputs, a layer's
  ``x``, a LightningModule's data), never a hand-written tag, so a sample list edited later cannot claim a span
  it lost;
* ``mentioned(exercise)``: the task text (or the signature's defaults) allows it, so an exercise must declare
  it (a test holds every exercise to both: :func:`undeclared` and :func:`uncovered` are empty).

Example::

    >>> from torchmech.learn.exercises import exercise
    >>> exercise("compute_z").spans
    ('0-d', 'rank ≥ 3', 'empty', 'broadcasting', 'several dtypes', 'dtype promotion')
    >>> uncovered(exercise("compute_z")), undeclared(exercise("compute_z"))
    ([], [])
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from torchmech.learn.grader import Sample

#: A drawn sample and the positional arguments it made.
Drawn = tuple[Sample, tuple]


@dataclass(frozen=True)
class Span:
    """One input dimension: its name, what it means, the task words that allow it, its check on the samples."""

    name: str
    meaning: str
    words: str
    covered: Callable[[Any, Sequence[Drawn]], bool]

    def mentioned(self, e: Any) -> bool:
        return bool(re.search(self.words, e.task)) if self.words else False


def drawn(e: Any) -> list[Drawn]:
    """The exercise's drawn samples (its trimmed chapter runs left out), each with the arguments it makes."""
    return [(s, tuple(s.make())) for s in e.sample_list if "run" not in s.extra]


def _named(s: Sample, args: tuple) -> Iterator[tuple[str, Any]]:
    """(name, value) of every argument and of every tensor the observer gets in ``extra`` (a tuple's items
    named ``key[i]``)."""
    names = s.names or ()
    for i, a in enumerate(args):
        yield (names[i] if i < len(names) else f"arg{i}"), a
    for key, v in s.extra.items():
        if isinstance(v, torch.Tensor):
            yield key, v
        elif isinstance(v, tuple | list):
            yield from ((f"{key}[{i}]", t) for i, t in enumerate(v) if isinstance(t, torch.Tensor))


def _tensors(s: Sample, args: tuple) -> list[torch.Tensor]:
    return [v for _, v in _named(s, args) if isinstance(v, torch.Tensor)]


def _arg(s: Sample, args: tuple, name: str) -> Any:
    names = s.names or ()
    return args[names.index(name)] if name in names and names.index(name) < len(args) else None


def _any_tensor(test: Callable[[torch.Tensor], bool]) -> Callable[[Any, Sequence[Drawn]], bool]:
    return lambda e, samples: any(test(t) for s, a in samples for t in _tensors(s, a))


def _rank_3(e: Any, samples: Sequence[Drawn]) -> bool:
    shapes = [_arg(s, a, "shape") for s, a in samples]
    return _any_tensor(lambda t: t.dim() >= 3)(e, samples) or any(isinstance(v, tuple) and len(v) >= 3
                                                                    for v in shapes)


def _single_row(e: Any, samples: Sequence[Drawn]) -> bool:
    if _any_tensor(lambda t: t.dim() >= 1 and t.shape[0] == 1)(e, samples):
        return True
    return any(batch == 1 for s, a in samples for _, batch in _batching(s, a))


def _batching(s: Sample, args: tuple) -> Iterator[tuple[int, int]]:
    """(the number of samples, the batch size) of every batched input a sample makes."""
    from torch.utils.data import DataLoader

    for _, v in _named(s, args):
        if isinstance(v, DataLoader) and v.batch_size:
            yield len(v.dataset), v.batch_size  # type: ignore[arg-type]
    batch = _arg(s, args, "batch_size")
    if isinstance(batch, int) and args and isinstance(args[0], torch.Tensor):
        yield len(args[0]), batch
    if "batch" in s.extra and "train" in s.extra:
        yield s.extra["train"], s.extra["batch"]


def _broadcasting(e: Any, samples: Sequence[Drawn]) -> bool:
    """Every tensor argument is, in some sample, the one that grows the result: the others broadcast to less."""
    grows: dict[int, bool] = {}
    for _, args in samples:
        shapes = [(i, a.shape) for i, a in enumerate(args) if isinstance(a, torch.Tensor)]
        if len(shapes) < 2:
            continue
        try:
            full = torch.broadcast_shapes(*(sh for _, sh in shapes))
        except RuntimeError:  # arguments that are not meant to broadcast together
            continue
        for i, _ in shapes:
            others = torch.broadcast_shapes(*(sh for j, sh in shapes if j != i))
            grows[i] = grows.get(i, False) or others != full
    return bool(grows) and all(grows.values())


def _several_dtypes(e: Any, samples: Sequence[Drawn]) -> bool:
    """Some argument (or observer's tensor) comes in two dtypes or more across the samples."""
    seen: dict[str, set[torch.dtype]] = {}
    for s, a in samples:
        for name, v in _named(s, a):
            if isinstance(v, torch.Tensor):
                seen.setdefault(name, set()).add(v.dtype)
    return any(len(d) >= 2 for d in seen.values())


def _kind(dtype: torch.dtype) -> str:
    return "float" if dtype.is_floating_point else "bool" if dtype == torch.bool else "int"


def _promotion(e: Any, samples: Sequence[Drawn]) -> bool:
    """PyTorch's type promotion in full: a call mixing int and float tensors; one mixing two widths of one kind
    among tensors with dimensions; one where a 0-d tensor has another dtype than those with dimensions (a 0-d
    tensor counts less)."""
    mixed = widths = zero_d = False
    for _, args in samples:
        ts = [a for a in args if isinstance(a, torch.Tensor)]
        dims = [t for t in ts if t.dim() > 0]
        mixed |= len({_kind(t.dtype) for t in ts}) > 1
        widths |= any(len({t.dtype for t in dims if _kind(t.dtype) == k}) > 1 for k in ("int", "float"))
        zero_d |= bool(dims) and any(t.dim() == 0 and t.dtype not in {d.dtype for d in dims} for t in ts)
    return mixed and widths and zero_d


def _epochs(s: Sample, args: tuple) -> int:
    given = _arg(s, args, "num_epochs")
    return int(given if isinstance(given, int) else s.extra.get("epochs", 1))


def _seeds(e: Any, samples: Sequence[Drawn]) -> bool:
    seeds = {s.seed for s, _ in samples} | {v for s, a in samples for n, v in _named(s, a)
                                             if n in ("seed", "random_state")}
    return len(seeds) >= 2


# --- optional arguments -----------------------------------------------------------------------------------
def signature_defaults(e: Any) -> list[tuple[int, str, Any]]:
    """(position, name, default) of every optional positional parameter of the piece: a function's from its
    stub, a class's from the ``Name(...)`` its task text writes (a constructor's); keyword-only ones are not
    made by samples and are left out."""
    if e.stub.startswith("def "):
        text = e.stub.rstrip(":") + ": pass"
    else:
        at = e.task.find(f"{e.name}(")
        if at < 0:
            return []
        depth, end = 0, at + len(e.name)
        for end in range(at + len(e.name), len(e.task)):
            depth += {"(": 1, ")": -1}.get(e.task[end], 0)
            if depth == 0:
                break
        text = f"def f{e.task[at + len(e.name):end + 1]}: pass"
    try:
        fn = ast.parse(text).body[0]
    except SyntaxError:
        return []
    assert isinstance(fn, ast.FunctionDef)
    params = [*fn.args.posonlyargs, *fn.args.args]
    first = len(params) - len(fn.args.defaults)
    return [(i, p.arg, ast.literal_eval(d)) for i, (p, d) in enumerate(zip(params[first:], fn.args.defaults,
                                                                            strict=True), start=first)]


def _is_default(value: Any, default: Any) -> bool:
    if default is None or value is None:
        return value is default
    try:
        return bool(value == default) and type(value) is type(default)
    except Exception:
        return False


def _defaults(e: Any, samples: Sequence[Drawn]) -> bool:
    """Every optional argument is left out in some sample (so the piece's own default is used: passing the
    default's value would not test it) and given another value than its default in another."""
    optional = signature_defaults(e)
    return bool(optional) and all(
        any(len(a) <= i for _, a in samples)
        and any(len(a) > i and not _is_default(a[i], d) for _, a in samples) for i, _, d in optional)


#: The vocabulary, in the order a report lists it.
SPANS: dict[str, Span] = {s.name: s for s in (
    Span("0-d", "a tensor of rank 0", r"0-d|any shapes?\b(?! of rank ≥ 1)", _any_tensor(lambda t: t.dim() == 0)),
    Span("rank ≥ 3", "a tensor (or a weight's shape) of rank 3 or more", r"any shapes?\b|rank ≥ 2",
         _rank_3),
    Span("empty", "a tensor with no elements", r"(?<!torch\.)\bempty\b", _any_tensor(lambda t: t.numel() == 0)),
    Span("a single row", "a batch of one: a first dimension of 1, or batches of one sample",
         r"\(N,\)|\(N, 1\)|logits \(N|any length|batch_size|train_batches", _single_row),
    Span("broadcasting", "each tensor argument, in some sample, is the one that sets the result's shape",
         r"broadcast", _broadcasting),
    Span("several dtypes", "an argument in two dtypes or more across the samples",
         r"\bdtypes?\b|integer tensor", _several_dtypes),
    Span("dtype promotion", "int with float, two widths of one kind, and a 0-d tensor of another dtype, each "
         "in one call", r"promotion|int or float", _promotion),
    Span("a smaller last batch", "a number of samples the batch size does not divide", r"batches",
         lambda e, samples: any(n % b for s, a in samples for n, b in _batching(s, a))),
    Span("≥ 3 epochs", "three epochs (or passes) or more in one sample", r"epoch|every pass",
         lambda e, samples: any(_epochs(s, a) >= 3 for s, a in samples)),
    Span("several seeds", "two seeds or more across the samples (the generators', or a seed argument)",
         r"seed|random_state|initiali[sz]|drawn|draws|shuffle", _seeds),
    Span("defaults and other values", "every optional argument left out in one sample (the piece's own default "
         "at work) and given another value in another", "", _defaults),
)}


def mentioned(e: Any) -> list[str]:
    """The spans the exercise's task text (or its signature's optional arguments) allows."""
    found = [s.name for s in SPANS.values() if s.mentioned(e)]
    if signature_defaults(e):
        found.append("defaults and other values")
    return found


def undeclared(e: Any) -> list[str]:
    """Spans the task allows that the exercise does not declare."""
    return [s for s in mentioned(e) if s not in e.spans]


def uncovered(e: Any) -> list[str]:
    """Spans the exercise declares that its samples do not cover (an unknown name counts as uncovered)."""
    samples = drawn(e)
    return [name for name in e.spans if name not in SPANS or not SPANS[name].covered(e, samples)]
