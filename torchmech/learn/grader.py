"""The grader's machinery: a learner's piece against the reference on drawn inputs.

In the spirit of PyTorch's OpInfo, each exercise (:mod:`torchmech.learn.exercises`) is data: a generator of
:class:`Sample` inputs (batch 1, odd and large; non-square and broadcast shapes; several seeds and
dtypes; two or more epochs where state matters) and an ``observe(piece, sample)`` function that runs
the piece on one sample, from a seeded RNG, and returns everything a caller can observe: the values
returned, the inputs after the call (mutated or not), parameters, modes, the RNG's state afterwards.
:func:`~torchmech.learn.exercises.check_piece` runs the learner's piece and the reference on the same samples
and :func:`compare_observations` reports the first :class:`Difference`; :func:`relation` says how two tensors
differ ("yours = expected × 3 (the number of columns)", "sign flipped", "transposed", "log-softmax of the
expected") from the values alone, so a mistake nobody catalogued is still named by what it does.

Example::

    >>> import torch
    >>> relation(torch.tensor([1.0, -2.0]), torch.tensor([-1.0, 2.0]))
    'sign flipped'
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import numbers
import random
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

import torchmech


# --- samples ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sample:
    """One input of an exercise, built afresh for every call (so no call sees another's mutation).

    Attributes:
        make: builds the positional arguments.
        names: the arguments' names, for messages.
        seed: torch's, NumPy's and Python's generators are seeded with it before the call.
        sizes: named sizes of this input ("the number of columns": 3) that a ratio may be explained by.
        extra: anything else the exercise's ``observe`` needs (inputs of a forward pass, epochs…).
    """

    make: Callable[[], tuple]
    names: tuple[str, ...] = ()
    seed: int = 0
    sizes: Mapping[str, int] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def text(self) -> str:
        """The arguments in one short line: tensors by shape and dtype, small values as they are."""
        args = self.make()
        names = self.names or tuple(f"arg{i}" for i in range(len(args)))
        return ", ".join(f"{n}={short(a)}" for n, a in zip(names, args, strict=False))


def short(value: Any, limit: int = 6) -> str:
    """A value in a few characters: a tensor's shape, dtype and first elements."""
    if isinstance(value, torch.Tensor):
        kind = "tensor" if not isinstance(value, torch.nn.Parameter) else "Parameter"
        if value.device.type == "meta":
            return f"{kind} {tuple(value.shape)} {_dtype(value.dtype)} on meta"
        flat = value.detach().flatten()[:limit].tolist()
        more = ", …" if value.numel() > limit else ""
        body = ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in flat)
        return f"{kind} {tuple(value.shape)} {_dtype(value.dtype)} [{body}{more}]"
    if isinstance(value, np.ndarray):
        flat = value.flatten()[:limit].tolist()
        more = ", …" if value.size > limit else ""
        body = ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in flat)
        return f"ndarray {value.shape} {value.dtype} [{body}{more}]"
    if isinstance(value, torch.nn.Module | torch.optim.Optimizer):
        return type(value).__name__
    if callable(value) and hasattr(value, "__name__"):
        return value.__name__
    if isinstance(value, torch.utils.data.DataLoader):
        return f"DataLoader({len(value.dataset)} samples, batch_size={value.batch_size})"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list | tuple) and len(value) > limit:
        return f"[{', '.join(short(v) for v in value[:limit])}, … ({len(value)} in all)]"
    if isinstance(value, list | tuple):
        inner = ", ".join(short(v) for v in value)
        return f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
    text = repr(value)
    if "\n" in text or (len(text) > 60 and text.startswith("<")):
        return type(value).__name__
    return text if len(text) < 80 else text[:77] + "…"


def _dtype(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


# --- running a piece ---------------------------------------------------------------------------------
@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch, NumPy and Python with ``seed``; restore the generators' states afterwards."""
    saved = torch.get_rng_state(), np.random.get_state(), random.getstate()
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)
    try:
        yield
    finally:
        torch.set_rng_state(saved[0])
        np.random.set_state(saved[1])
        random.setstate(saved[2])


@dataclass(frozen=True)
class RngState:
    """A generator's state after a call, compared whole (the same draws in the same order)."""

    name: str
    state: bytes

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RngState) and self.state == other.state

    def __hash__(self) -> int:
        return hash(self.state)

    def __repr__(self) -> str:
        return f"<{self.name} state>"


def rng_states() -> dict[str, RngState]:
    """The generators' states as observables."""
    torch_state = torch.get_rng_state().numpy().tobytes()
    np_state = np.random.get_state()
    return {"torch's random generator after the call": RngState("torch", torch_state),
            "NumPy's random generator after the call": RngState("numpy", np_state[1].tobytes()
                                                                + str(np_state[2]).encode())}


@dataclass
class Raised:
    """The piece raised: the exception and where (the learner's file and line, when it is theirs)."""

    error: BaseException
    where: str = ""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Raised) and type(other.error) is type(self.error)

    def __repr__(self) -> str:
        at = f" at {self.where}" if self.where else ""
        return f"raised {type(self.error).__name__}: {self.error}{at}"


_PACKAGE = str(Path(torchmech.__file__).resolve().parent)  # the whole package, every room
_LIBS = tuple(str(Path(p).resolve()) for p in {sys.prefix, sys.base_prefix, sys.exec_prefix})


def learner_frame(error: BaseException) -> str:
    """``file:line`` of the last traceback frame outside torchmech and the installed libraries: the
    learner's own line (a workspace module or a notebook cell); ``""`` if there is none."""
    found = ""
    for frame in traceback.extract_tb(error.__traceback__):
        path = str(Path(frame.filename).resolve()) if not frame.filename.startswith("<") else frame.filename
        if path.startswith(_PACKAGE) or path.startswith(_LIBS) or "site-packages" in path:
            continue
        found = f"{Path(frame.filename).name}:{frame.lineno}"
    return found


def call(piece: Any, sample: Sample) -> dict[str, Any]:
    """The observables of a function: what it returned, its inputs after the call, the generators."""
    args = sample.make()
    with seeded(sample.seed):
        try:
            out = piece(*args)
        except Exception as err:  # the learner's code: its error is an observable like any other
            return {"returned": Raised(err, learner_frame(err))}
        obs = {"returned": out}
        for name, arg in zip(sample.names, args, strict=False):
            if isinstance(arg, torch.Tensor | np.ndarray) or type(arg).__name__ == "DataFrame":
                obs[f"your input `{name}` after the call"] = _copy(arg)
        obs.update(rng_states())
    return obs


def _copy(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, np.ndarray) or type(value).__name__ == "DataFrame":
        return value.copy()
    return value


# --- comparing ---------------------------------------------------------------------------------------
@dataclass
class Difference:
    """The first observable in which the learner's piece and the reference differ on one sample."""

    what: str
    expected: Any
    got: Any
    problem: str
    relation: str = ""
    ratio: float | None = None


def tolerances(dtype: torch.dtype) -> tuple[float, float]:
    """(rtol, atol) of ``torch.testing.assert_close`` for ``dtype``, a little wider for float32 so that a
    by-hand gradient agrees with autograd's summation order."""
    if dtype in (torch.float16, torch.bfloat16):
        return 1e-3, 1e-5
    if dtype == torch.float32:
        return 1e-5, 1e-6
    return 1e-7, 1e-9


def differences(expected: Any, got: Any, what: str = "returned") -> Difference | None:
    """The first difference between two observables (tensors, arrays, numbers, containers, dataclasses,
    data frames), or ``None``: a call that raised on either side, else the comparison of the expected value's
    kind (:data:`KINDS`), else plain equality."""
    if isinstance(expected, Raised) or isinstance(got, Raised):
        return _raised_difference(expected, got, what)
    compare = next((compare for is_kind, compare in KINDS if is_kind(expected)), _equality_difference)
    return compare(expected, got, what)


def _raised_difference(expected: Any, got: Any, what: str) -> Difference | None:
    if isinstance(expected, Raised) and isinstance(got, Raised):
        return None if expected == got else Difference(what, expected, got, f"{got!r} where the other raises "
                                                                             f"{type(expected.error).__name__}")
    if isinstance(got, Raised):
        return Difference(what, expected, got, repr(got))
    return Difference(what, expected, got, f"returned {short(got)} where the reference raises "
                                           f"{type(expected.error).__name__}")


def _array_difference(expected: np.ndarray, got: Any, what: str) -> Difference | None:
    if not isinstance(got, np.ndarray):
        return Difference(what, expected, got, f"{_kind(got)} where a NumPy array is expected")
    if expected.shape != got.shape:
        return Difference(what, expected, got, f"shape {got.shape} where {expected.shape} is expected")
    if expected.dtype != got.dtype:
        return Difference(what, expected, got, f"dtype {got.dtype} where {expected.dtype} is expected")
    return _tensor_difference(torch.from_numpy(np.ascontiguousarray(expected)),
                              torch.from_numpy(np.ascontiguousarray(got)), what, kind_checked=True)


def _bool_difference(expected: bool, got: Any, what: str) -> Difference | None:
    if expected != got:
        return Difference(what, expected, got, f"expected {'yes' if expected else 'no'}, yours "
                                               f"{'yes' if got else 'no'}")
    return None


def _number_difference(expected: numbers.Number, got: Any, what: str) -> Difference | None:
    if isinstance(got, torch.Tensor | np.ndarray) or not isinstance(got, numbers.Number) or isinstance(got, bool):
        return Difference(what, expected, got, f"{_kind(got)} where a Python number is expected")
    if isinstance(expected, numbers.Integral) and not isinstance(got, numbers.Integral):
        return Difference(what, expected, got, f"{_kind(got)} where an integer is expected")
    if not math.isclose(float(got), float(expected), rel_tol=1e-7, abs_tol=1e-12):  # type: ignore[arg-type]
        return Difference(what, expected, got, "another value", "", _ratio(float(expected), float(got)))  # type: ignore[arg-type]
    return None


def _mapping_difference(expected: Mapping, got: Any, what: str) -> Difference | None:
    if not isinstance(got, Mapping):
        return Difference(what, expected, got, f"{_kind(got)} where a mapping is expected")
    if list(expected) != list(got):
        return Difference(what, list(expected), list(got), "other names")
    for key in expected:
        found = differences(expected[key], got[key], f"{what}[{key!r}]" if what != "" else str(key))
        if found:
            return found
    return None


def _sequence_difference(expected: list | tuple, got: Any, what: str) -> Difference | None:
    if not isinstance(got, list | tuple):
        return Difference(what, expected, got, f"{_kind(got)} where a {type(expected).__name__} is expected")
    if len(expected) != len(got):
        return Difference(what, expected, got, f"{len(got)} items where {len(expected)} are expected",
                          _list_change(expected, got))
    for i, (e, g) in enumerate(zip(expected, got, strict=True)):
        found = differences(e, g, f"{what}[{i}]")
        if found:
            return found
    return None


def _dataclass_difference(expected: Any, got: Any, what: str) -> Difference | None:
    if type(got).__name__ != type(expected).__name__:
        return Difference(what, expected, got, f"{_kind(got)} where a {type(expected).__name__} is expected")
    names = [f.name for f in dataclasses.fields(expected)]
    for name in names:
        if not hasattr(got, name):
            return Difference(f"{what}.{name}", getattr(expected, name), None, "missing")
        found = differences(getattr(expected, name), getattr(got, name), f"{what}.{name}")
        if found:
            holds = [o for o in names if o != name and differences(getattr(expected, o), getattr(got, name)) is None]
            if holds:
                found.relation = f"yours holds what `{holds[0]}` should hold (swapped?)"
            return found
    return None


def _frame_difference(expected: Any, got: Any, what: str) -> Difference | None:
    import pandas as pd

    try:
        (pd.testing.assert_frame_equal if type(expected).__name__ == "DataFrame"
         else pd.testing.assert_series_equal)(expected, got, check_exact=False, rtol=1e-7)
    except AssertionError as err:
        return Difference(what, expected, got, str(err).splitlines()[0])
    return None


def _equality_difference(expected: Any, got: Any, what: str) -> Difference | None:
    return Difference(what, expected, got, "differs") if expected != got else None


def _list_change(expected: Sequence, got: Sequence) -> str:
    """The items one list has more or fewer than the other ("yours adds LogSoftmax(dim=1) at the end")."""
    import difflib

    text = lambda x: x if isinstance(x, str) else short(x)  # noqa: E731
    a, b = [text(x) for x in expected], [text(x) for x in got]
    changes = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        where = "at the end" if i1 == len(a) else f"at position {i1}"
        if op == "insert":
            changes.append(f"yours adds {', '.join(b[j1:j2])} {where}")
        elif op == "delete":
            changes.append(f"yours lacks {', '.join(a[i1:i2])} {where}")
        elif op == "replace":
            changes.append(f"yours has {', '.join(b[j1:j2])} where {', '.join(a[i1:i2])} is expected")
    return "; ".join(changes[:3])


def _kind(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor ({_dtype(value.dtype)})"
    if isinstance(value, np.ndarray):
        return f"a NumPy array ({value.dtype})"
    if value is None:
        return "None"
    return f"a {type(value).__name__}"


def _tensor_difference(expected: torch.Tensor, got: Any, what: str, kind_checked: bool = False) -> Difference | None:
    if not kind_checked and not isinstance(got, torch.Tensor):
        return Difference(what, expected, got, f"{_kind(got)} where a tensor is expected")
    if got.device.type != expected.device.type:
        return Difference(what, expected, got, f"on {got.device.type} where {expected.device.type} is expected")
    if tuple(got.shape) != tuple(expected.shape):
        rel = ""
        if expected.device.type != "meta" and got.numel() == expected.numel():
            if torch.allclose(got.detach().double().reshape(expected.shape), expected.detach().double()):
                rel = "the same values, in another shape"
        if got.numel() != expected.numel() and got.dim() > 0 and expected.dim() > 0 and \
                got.shape[1:] == expected.shape[1:]:
            rel = f"{got.shape[0]} rows where {expected.shape[0]} are expected"
        return Difference(what, expected, got, f"shape {tuple(got.shape)} where {tuple(expected.shape)} is expected",
                          rel)
    if got.dtype != expected.dtype:
        return Difference(what, expected, got, f"{_dtype(got.dtype)} where {_dtype(expected.dtype)} is expected")
    if expected.device.type == "meta":
        return None
    e, g = expected.detach().cpu(), got.detach().cpu()
    if e.dtype == torch.bool or not (e.is_floating_point() or e.is_complex()):
        if torch.equal(e, g):
            return None
        return Difference(what, expected, got, "other values", relation(e.double(), g.double()),
                          _tensor_ratio(e.double(), g.double()))
    rtol, atol = tolerances(e.dtype)
    if torch.allclose(g, e, rtol=rtol, atol=atol, equal_nan=True):
        return None
    return Difference(what, expected, got, "other values", relation(e.double(), g.double()),
                      _tensor_ratio(e.double(), g.double()))


def _ratio(e: float, g: float) -> float | None:
    return g / e if e != 0 else None


def _tensor_ratio(e: torch.Tensor, g: torch.Tensor) -> float | None:
    denom = float((e * e).sum())
    if denom == 0 or e.shape != g.shape:
        return None
    c = float((g * e).sum()) / denom
    return c if torch.allclose(g, c * e, rtol=1e-5, atol=1e-7) else None


# --- how two tensors differ ----------------------------------------------------------------------------
def _named(fn: Callable[[torch.Tensor], torch.Tensor], text: str, min_dim: int = 0):
    return fn, text, min_dim


#: Functions of the expected value that a wrong piece often computes instead.
RELATIONS = (
    _named(lambda e: -e, "sign flipped"),
    _named(lambda e: e.mT if e.dim() == 2 else e, "transposed", 2),
    _named(lambda e: torch.log_softmax(e, -1), "yours = log_softmax(expected): a LogSoftmax at the end", 2),
    _named(lambda e: torch.softmax(e, -1), "yours = softmax(expected): a Softmax at the end", 2),
    _named(torch.sigmoid, "yours = sigmoid(expected): a Sigmoid at the end"),
    _named(torch.relu, "yours = relu(expected): a ReLU at the end"),
    _named(lambda e: torch.softmax(e, 0), "yours = softmax(expected) over dim 0 (the samples)", 2),
    _named(torch.abs, "yours = |expected|"),
    _named(lambda e: e.round(), "yours = expected, rounded"),
)


def relation(expected: torch.Tensor, got: torch.Tensor) -> str:
    """How ``got`` follows from ``expected``, when a simple rule explains every element; else ``""``."""
    e, g = expected.double(), got.double()
    if e.shape != g.shape or e.numel() == 0:
        return ""
    close = lambda a, b: bool(torch.allclose(a, b, rtol=1e-5, atol=1e-7))  # noqa: E731
    for fn, text, min_dim in RELATIONS:
        if e.dim() >= min_dim:
            try:
                candidate = fn(e)
            except RuntimeError:
                continue
            if candidate.shape == g.shape and not close(candidate, e) and close(candidate, g):
                return text
    c = _tensor_ratio(e, g) if e.numel() > 1 else None
    if c is not None and c != 1:
        return f"yours = expected × {_fraction(c)}"
    offset = (g - e).flatten()
    if e.numel() > 1 and close(offset, offset[:1].expand_as(offset)):
        return f"yours = expected + {float(offset[0]):.4g} (a constant offset)"
    if e.dim() == 2 and e.shape[1] > 1:
        cols = [j for j in range(e.shape[1]) if not close(e[:, j], g[:, j])]
        if len(cols) < e.shape[1]:
            return f"only column{'s' if len(cols) > 1 else ''} {', '.join(map(str, cols))} differ" + (
                "s" if len(cols) == 1 else "")
    if e.dim() >= 1 and e.shape[0] > 1:
        rows = [i for i in range(e.shape[0]) if not close(e[i], g[i])]
        if len(rows) < e.shape[0]:
            kind = "row" if e.dim() > 1 else "element"
            return (f"only {kind}{'s' if len(rows) > 1 else ''} {', '.join(map(str, rows[:8]))}"
                    f"{' …' if len(rows) > 8 else ''} differ{'s' if len(rows) == 1 else ''} (counting from 0)")
    return ""


def _fraction(c: float) -> str:
    for k in range(2, 1025):
        if math.isclose(c, 1 / k, rel_tol=1e-5):
            return f"1/{k}"
    if math.isclose(c, round(c), rel_tol=1e-5):
        return str(round(c))
    return f"{c:.6g}"


def explain_ratios(diffs: Sequence[tuple[Difference, Sample]]) -> str:
    """A ratio that every differing sample shares, as a named size of the input: "yours = expected ×
    1/(the number of rows)"; or the one constant; else ``""``."""
    pairs = [(d.ratio, s) for d, s in diffs if d.ratio is not None and d.ratio != 0]
    if not pairs or len(pairs) != len(diffs):
        return ""
    names = set.intersection(*(set(s.sizes) for _, s in pairs)) if pairs else set()
    for name in sorted(names):
        if all(math.isclose(c, s.sizes[name], rel_tol=1e-5) for c, s in pairs):
            return f"yours = expected × {name} on every input that differs"
        if all(math.isclose(c, 1 / s.sizes[name], rel_tol=1e-5) for c, s in pairs):
            return f"yours = expected × 1/({name}) on every input that differs"
    first = pairs[0][0]
    if len(pairs) > 1 and all(math.isclose(c, first, rel_tol=1e-5) for c, _ in pairs):
        return f"yours = expected × {_fraction(first)} on every input that differs"
    return ""


def compare_observations(expected: Mapping[str, Any], got: Mapping[str, Any]) -> Difference | None:
    """The first observable (in the reference's order) in which ``got`` differs from ``expected``; a
    raised error comes first."""
    if isinstance(got.get("returned"), Raised) and not isinstance(expected.get("returned"), Raised):
        return Difference("returned" if "returned" in expected else "the call", expected.get("returned"),
                          got["returned"], repr(got["returned"]))
    for key, value in expected.items():
        if key not in got:
            raised = [(k, v) for k, v in got.items() if isinstance(v, Raised) and k not in expected]
            if raised:
                return Difference(raised[0][0], value, raised[0][1], repr(raised[0][1]))
            return Difference(key, value, None, "not observed (the call stopped before it)")
        found = differences(value, got[key], key)
        if found:
            if "after the call" in key and key.startswith("your input"):
                found.problem = "changed in place (the reference leaves it as it was)"
            elif "random generator" in key:
                found.problem = ("in another state: yours draws a different number of random numbers, or in "
                                 "another order, than the reference")
            return found
    return None


#: The kinds of observable, each with its comparison, tried in this order: the first kind the expected value
#: is of compares it (bools before numbers: a bool is a number too).
KINDS: tuple[tuple[Callable[[Any], bool], Callable[[Any, Any, str], Difference | None]], ...] = (
    (lambda e: isinstance(e, torch.Tensor), _tensor_difference),
    (lambda e: isinstance(e, np.ndarray), _array_difference),
    (lambda e: isinstance(e, bool | np.bool_), _bool_difference),
    (lambda e: isinstance(e, numbers.Number), _number_difference),
    (lambda e: isinstance(e, Mapping), _mapping_difference),
    (lambda e: isinstance(e, list | tuple), _sequence_difference),
    (lambda e: dataclasses.is_dataclass(e) and not isinstance(e, type), _dataclass_difference),
    (lambda e: type(e).__name__ in ("DataFrame", "Series"), _frame_difference),
)
