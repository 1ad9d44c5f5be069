"""Learner mode: the learner writes the chapter's code and the same specification grades it.

* :func:`init_workspace` writes one stub module per section (``s1_graph.py`` … ``s9_lightning.py``):
  each exercise's fixed signature, its task and the claims that check it, a body raising
  ``NotImplementedError``; and a short README. It never overwrites a learner's file.
* :func:`load_workspace` imports the learner's modules and returns an
  :class:`~torchmech.chapter.implementation.Implementation` in which every written exercise replaces the reference
  piece; an exercise whose body still only raises ``NotImplementedError`` is *not started* and
  falls back to the reference, so a learner works one exercise at a time.
* :func:`grade` runs an exercise's registry claims and its differential check (the learner's piece
  against the reference on drawn inputs, :mod:`torchmech.learn.grader`) within a time limit:
  ``not started``, ``failing`` (the first difference, what the values say about it, and a catalogued
  mistake only when the code behaves exactly like it) or ``done``. A module that does not import
  fails its own section only.
* :func:`check` is the same from Python or a notebook, for a section or for one function or class.
* :func:`find_workspace` finds the workspace as git finds a repository (``--impl``, ``$TORCHMECH_IMPL``, else
  the :data:`MARKER` from the current folder upward); :func:`init_workspace` refuses a torchmech checkout.
* Hints and solutions per exercise: :mod:`torchmech.learn.hints`.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torchmech import SECTIONS
from torchmech.chapter.implementation import Implementation
from torchmech.learn.exercises import Exercise, exercise, exercises, failures
from torchmech.learn.grader import learner_frame
from torchmech.learn.grades import Grade, Grades, remember, remembered
from torchmech.learn.limits import TIME_LIMIT, TookTooLong, time_limit
from torchmech.learn.mistakes import likely_mistake
from torchmech.learn.where import MARKER, MODULES, WorkspaceError, checkout_around, find_workspace

_HEADER = '''"""{title} — your implementation. `torchmech learn check {section}` grades it."""

# ruff: noqa: F401  (the imports the chapter's code uses here; keep what you need)
from __future__ import annotations

import math

{imports}
'''

#: Each section's imports beyond NumPy's and torch's (a learner's workspace sees torchmech as an installed library).
_EXTRA = {
    "s5": ("from torchmech.chapter.data.xor import XorData", "from torchmech.chapter.train import History"),
    "s7": ("from torchmech.chapter.data.auto_mpg import MpgData, load_auto_mpg",),
    "s9": ("import lightning.pytorch as pl", "from torchmetrics import Accuracy"),
}


def _imports(section: str) -> str:
    """The stub's third-party imports in the linter's order: plain imports, then from-imports, each by module."""
    lines = ["import numpy as np", "import torch", "from torch import nn", *_EXTRA.get(section, ())]
    return "\n".join(sorted(lines, key=lambda line: (line.startswith("from "), line.split()[1])))


README = """# Chapter 13, written by you

One module per section of the chapter. Each function or class raises `NotImplementedError`
until you write it; its docstring says the task and which claims of the chapter check it.
Every command below works from this folder or any folder inside it (torchmech finds the
workspace by its `.torchmech-workspace` file, as git finds a repository):

    torchmech learn status                  # every section: not started / failing / done
    torchmech learn check s1                # grade §1 against the book's values and laws
    torchmech learn check --hint compute_z  # one more hint for that exercise (any exercise, any time)
    torchmech learn solution compute_z      # the reference and the book's values, once compute_z is done
    torchmech learn watch                   # re-grade each file you save, and show its board

An exercise you have not started falls back to torchmech's own version, so you can work on one
at a time. Nothing here is overwritten by `torchmech learn init`. From a torchmech checkout,
`pytest --impl={path}` runs the whole specification on your code.
"""


def init_workspace(directory: Path) -> tuple[list[Path], list[Path]]:
    """Write the stubs, the README and the :data:`MARKER` into ``directory``; returns (written, kept) —
    existing files are kept untouched.

    Raises:
        WorkspaceError: ``directory`` is inside a torchmech checkout, whose tests, linter and git would take
            the learner's code for its own (one line naming a better place).
    """
    checkout = checkout_around(directory)
    if checkout is not None:
        raise WorkspaceError(f"{directory} is inside the torchmech checkout {checkout}, whose tests, ruff and git "
                             f"would take your code for theirs: make it elsewhere, e.g. `torchmech learn init "
                             f"{Path.home() / 'ch13'}`")
    directory.mkdir(parents=True, exist_ok=True)
    written, kept = [], []
    files = {directory / "README.md": README.format(path=directory.resolve()),
             directory / MARKER: "torchmech learner workspace (written by `torchmech learn init`)\n"}
    for section, module in MODULES.items():
        body = [_HEADER.format(title=SECTIONS[section], section=section, imports=_imports(section))]
        for e in exercises(section):
            body.append(_stub(e))
        files[directory / f"{module}.py"] = "".join(body)
    for path, text in files.items():
        if path.exists():
            kept.append(path)
            continue
        path.write_text(text)
        written.append(path)
    for section in MODULES:  # a fresh stub's grades are known: `learn status` answers at once
        if directory / f"{MODULES[section]}.py" in written:
            remember(directory, section, [Grade(e.name, section, "not started") for e in exercises(section)])
    return written, kept


def _stub(e: Exercise) -> str:
    checked = ", ".join(e.claims) if e.claims else "the reference, on drawn inputs"
    wrap = lambda text: textwrap.fill(text, 100, initial_indent="    ", subsequent_indent="    ")  # noqa: E731
    checks = (f"Checked by: {checked}; every sample input is compared with torchmech's own {e.name} (values, "
              f"shapes, dtypes, types, the inputs after the call, the random draws).")
    doc = (f'    """{wrap(e.task).strip()}\n\n{wrap(checks)}\n'
           f'    Stuck? `torchmech learn check --hint {e.name}`.\n    """')
    raise_line = f'raise NotImplementedError("{e.name}: not started (see the docstring)")'
    stub = textwrap.fill(e.stub, 120, subsequent_indent=" " * (e.stub.find("(") + 1), break_on_hyphens=False,
                         break_long_words=False)  # a long signature wraps under its first argument
    if e.stub.startswith("class "):
        return (f"\n\n{stub}\n{doc}\n\n    def __init__(self, *args, **kwargs) -> None:\n"
                f"        super().__init__()\n        {raise_line}\n")
    return f"\n\n{stub}\n{doc}\n    {raise_line}\n"


def _not_started(node: ast.AST) -> bool:
    """A function whose body is only (a docstring and) ``raise NotImplementedError…``; a class all of
    whose methods are."""
    if isinstance(node, ast.ClassDef):
        methods = [n for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
        return bool(methods) and all(_not_started(m) for m in methods)
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return False
    body = [n for n in node.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
    body = [n for n in body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Call)
                                    and ast.unparse(n.value).startswith("super().__init__"))]
    if len(body) != 1 or not isinstance(body[0], ast.Raise) or body[0].exc is None:
        return False
    exc = body[0].exc.func if isinstance(body[0].exc, ast.Call) else body[0].exc
    return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"


@dataclass
class Workspace:
    """A learner's folder, loaded: the implementation to grade, where each exercise came from, and the
    section modules that could not be loaded (section → the one-line reason, with file and line)."""

    path: Path
    impl: Implementation
    source: dict[str, str] = field(default_factory=dict)  # exercise → "workspace" | "not started"
    errors: dict[str, str] = field(default_factory=dict)

    def status(self, name: str) -> str:
        return self.source.get(name, "not started")


@functools.cache
def cached_workspace(directory: str) -> Workspace:
    """:func:`load_workspace` of the workspace ``directory`` is or lies in (:func:`find_workspace`), once per process
    (pytest's ``--impl``)."""
    return load_workspace(find_workspace(directory))


def _module_error(file: Path, err: BaseException) -> str:
    if isinstance(err, SyntaxError):
        return f"{file.name}:{err.lineno}: SyntaxError: {err.msg}"
    if isinstance(err, TookTooLong):
        return f"{file.name} does not import: {err}"
    at = learner_frame(err) or file.name
    return f"{at}: {file.name} does not import: {type(err).__name__}: {err}"


def load_workspace(directory: str | Path, timeout: float | None = None,
                   sections: Sequence[str] | None = None) -> Workspace:
    """Import the learner's section modules (only those of ``sections``, when given: a §1 check does not
    import §9's Lightning); written exercises override the reference. A module that does not parse or
    import (or hangs past the time limit) fails its own section only (:attr:`Workspace.errors`).

    Raises:
        WorkspaceError: the folder does not exist or holds no section module.
    """

    path = Path(directory).expanduser()
    if not path.is_dir() or not any((path / f"{m}.py").exists() for m in MODULES.values()):
        raise WorkspaceError(f"no torchmech workspace in {path} (make one with `torchmech learn init {path}`)")
    overrides: dict[str, Any] = {}
    source: dict[str, str] = {}
    errors: dict[str, str] = {}
    for section, module in MODULES.items():
        file = path / f"{module}.py"
        if not file.exists() or (sections is not None and section not in sections):
            continue
        try:
            text = file.read_text()
            tree = ast.parse(text, filename=str(file))
        except SyntaxError as err:
            errors[section] = _module_error(file, err)
            continue
        defined: dict[str, ast.AST] = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)}
        for node in tree.body:  # a piece may also be imported or assigned (`f = lambda …`): it counts as written
            if isinstance(node, ast.ImportFrom):
                defined.update({a.asname or a.name: node for a in node.names})
            elif isinstance(node, ast.Assign):
                defined.update({t.id: node for t in node.targets if isinstance(t, ast.Name)})
        name = f"torchmech_workspace_{abs(hash(str(path.resolve())))}_{module}"
        spec = importlib.util.spec_from_file_location(name, file)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        try:
            with time_limit(TIME_LIMIT if timeout is None else timeout):
                # From the text just read, not a cached .pyc: a file saved twice within a second (watch mode) is
                # never run stale, and no __pycache__ lands in the learner's folder.
                exec(compile(tree, str(file), "exec"), mod.__dict__)
        except (Exception, TookTooLong) as err:  # the learner's module: any error is theirs to see, in one line
            errors[section] = _module_error(file, err)
            sys.modules.pop(name, None)
            continue
        for e in exercises(section):
            if e.name in defined:
                started = not _not_started(defined[e.name])
                source[e.name] = "workspace" if started else "not started"
                if started and hasattr(mod, e.name):
                    overrides[e.name] = getattr(mod, e.name)
    return Workspace(path, Implementation(f"workspace {path}", overrides), source, errors)


# --- grading ----------------------------------------------------------------------------------------
def grade_piece(e: Exercise, impl: Implementation, *, full: bool = False, timeout: float | None = None) -> Grade:
    """Grade the piece ``impl`` gives for ``e``: its claims, then every sample against the reference; a
    failure is named after a catalogued mistake only when the piece behaves exactly like it."""

    found = failures(e, impl, full=full, timeout=timeout)
    if not found:
        return Grade(e.name, e.section, "done")
    mistake = ""
    if found[0][0] != "time":
        try:
            with time_limit(TIME_LIMIT if timeout is None else timeout):
                mistake = likely_mistake(e.name, getattr(impl, e.name))
        except TookTooLong:
            mistake = ""
    return Grade(e.name, e.section, "failing", failure=found[0][1], failed=[k for k, _ in found], mistake=mistake)


def grade(e: Exercise, ws: Workspace, *, full: bool = False, timeout: float | None = None) -> Grade:
    """Grade one exercise of a loaded workspace."""
    if e.section in ws.errors:
        return Grade(e.name, e.section, "failing", failure=ws.errors[e.section], failed=["import"])
    if ws.status(e.name) != "workspace":
        return Grade(e.name, e.section, "not started")
    return grade_piece(e, ws.impl, full=full, timeout=timeout)


def check_section(section: str, ws: Workspace, *, full: bool = False, timeout: float | None = None) -> list[Grade]:
    """Grade every exercise of a section, and remember the grades in the workspace (:func:`remember`)."""
    grades = [grade(e, ws, full=full, timeout=timeout) for e in exercises(section)]
    remember(ws.path, section, grades, full=full, timeout=timeout)
    return grades


def status(directory: Path, *, full: bool = False, timeout: float | None = None) -> list[Grade]:
    """Every section's grades: remembered where nothing they depend on changed, graded again where it did."""
    known = {s: remembered(directory, s, full=full, timeout=timeout) for s in MODULES}
    stale = [s for s, grades in known.items() if grades is None]
    if stale:
        ws = load_workspace(directory, timeout=timeout, sections=stale)
        known.update({s: check_section(s, ws, full=full, timeout=timeout) for s in stale})
    return [g for s in MODULES for g in known[s] or []]


def exercise_of(target: Any) -> Exercise:
    """The exercise named ``target`` (``"compute_z"``), or whose name a function or class bears.

    Raises:
        WorkspaceError: no exercise has that name (one line listing the names).
    """
    name = target if isinstance(target, str) else getattr(target, "__name__", "")
    try:
        return exercise(name)
    except KeyError:
        raise WorkspaceError(f"{name or target!r} is no exercise: name it as the chapter does "
                             f"({', '.join(x.name for x in exercises())})") from None


def check(target: Any = None, impl: str | Path | None = None, *, full: bool = False,
          timeout: float | None = None) -> Grades:
    """Grade from Python or a notebook: ``check("s1")`` grades §1 of the workspace ``impl`` (default: as
    :func:`find_workspace` finds it); ``check(compute_z)`` grades a function or class defined
    right here, by its name (``compute_z``, ``NoisyLinear``…).

    Example::

        >>> import torch
        >>> def compute_z(a, b, c):
        ...     return torch.add(torch.mul(torch.sub(a, b), 2), c)
        >>> check(compute_z).grades[0].status
        'done'
    """
    if target is not None and not isinstance(target, str):
        e = exercise_of(target)
        return Grades([grade_piece(e, Implementation(f"the piece {e.name}", {e.name: target}), full=full,
                                   timeout=timeout)], full=full)
    sections = [target] if target else list(MODULES)
    unknown = [s for s in sections if s not in MODULES]
    if unknown:
        raise WorkspaceError(f"no section {unknown[0]!r}: choose from {', '.join(MODULES)}")
    ws = load_workspace(find_workspace(impl), timeout=timeout, sections=sections)
    grades = [g for s in sections for g in check_section(s, ws, full=full, timeout=timeout)]
    return Grades(grades, str(ws.path), full=full)
