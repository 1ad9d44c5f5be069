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
* :func:`hint` climbs each exercise's ladder one rung per request: the chapter's idea, the
  formula, the reference's line — never the solution unasked.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import json
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torchmech import SECTIONS
from torchmech.chapter.implementation import Implementation
from torchmech.learn.exercises import Exercise, exercise, exercises, failures
from torchmech.learn.grader import TIME_LIMIT, TookTooLong, learner_frame, time_limit
from torchmech.learn.mistakes import likely_mistake

#: The stub module of each section, as the workspace names it.
MODULES: dict[str, str] = {"s1": "s1_graph", "s2": "s2_init", "s3": "s3_autodiff", "s4": "s4_nn", "s5": "s5_xor",
                           "s6": "s6_modules", "s7": "s7_auto_mpg", "s8": "s8_mnist", "s9": "s9_lightning"}

_HEADER = '''"""{title} — your implementation. `torchmech learn check {section} --impl .` grades it."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
{extra}'''

_EXTRA = {
    "s5": "\nfrom torchmech.data.xor import XorData\nfrom torchmech.train import History\n",
    "s7": "\nfrom torchmech.data.auto_mpg import MpgData, load_auto_mpg\n",
    "s9": "\nimport lightning.pytorch as pl\nfrom torchmetrics import Accuracy\n",
}

README = """# Chapter 13, written by you

One module per section of the chapter. Each function or class raises `NotImplementedError`
until you write it; its docstring says the task and which claims of the chapter check it.

    torchmech learn status --impl .          # every section: not started / failing / done
    torchmech learn check s1 --impl .        # grade §1 against the book's values and laws
    torchmech learn check s1 --impl . --hint # one more hint for the first unfinished exercise
    pytest --impl=PATH/TO/THIS/FOLDER        # in a torchmech checkout: the specification on your code

An exercise you have not started falls back to torchmech's own version, so you can work on one
at a time. Nothing here is overwritten by `torchmech learn init`.
"""


class WorkspaceError(Exception):
    """A folder that is no workspace (missing, or without any section module): one line."""


def init_workspace(directory: Path) -> tuple[list[Path], list[Path]]:
    """Write the stubs and the README into ``directory``; returns (written, kept) — existing files
    are kept untouched."""
    directory.mkdir(parents=True, exist_ok=True)
    written, kept = [], []
    files = {directory / "README.md": README}
    for section, module in MODULES.items():
        body = [_HEADER.format(title=SECTIONS[section], section=section, extra=_EXTRA.get(section, "")).rstrip() + "\n"]
        for e in exercises(section):
            body.append(_stub(e, directory))
        files[directory / f"{module}.py"] = "".join(body)
    for path, text in files.items():
        if path.exists():
            kept.append(path)
            continue
        path.write_text(text)
        written.append(path)
    return written, kept


def _stub(e: Exercise, directory: Path) -> str:
    checked = ", ".join(e.claims) if e.claims else "the reference, on drawn inputs"
    wrap = lambda text: textwrap.fill(text, 100, initial_indent="    ", subsequent_indent="    ")  # noqa: E731
    checks = (f"Checked by: {checked}; every sample input is compared with torchmech's own {e.name} (values, "
              f"shapes, dtypes, types, the inputs after the call, the random draws).")
    doc = (f'    """{wrap(e.task).strip()}\n\n{wrap(checks)}\n'
           f'    Stuck? `torchmech learn check {e.section} --impl {directory} --hint`.\n    """')
    raise_line = f'raise NotImplementedError("{e.name}: not started (see the docstring)")'
    if e.stub.startswith("class "):
        return (f"\n\n{e.stub}\n{doc}\n\n    def __init__(self, *args, **kwargs) -> None:\n"
                f"        super().__init__()\n        {raise_line}\n")
    return f"\n\n{e.stub}\n{doc}\n    {raise_line}\n"


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
    """:func:`load_workspace`, once per process (pytest's ``--impl``)."""
    return load_workspace(directory)


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
        raise WorkspaceError(f"no torchmech workspace in {path} (run `torchmech learn init {path}`)")
    overrides: dict[str, Any] = {}
    source: dict[str, str] = {}
    errors: dict[str, str] = {}
    for section, module in MODULES.items():
        file = path / f"{module}.py"
        if not file.exists() or (sections is not None and section not in sections):
            continue
        try:
            tree = ast.parse(file.read_text(), filename=str(file))
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
                spec.loader.exec_module(mod)
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
@dataclass
class Grade:
    """How one exercise stands: ``not started``, ``failing`` (with the first failure and, when the code
    behaves exactly like one, the catalogued mistake) or ``done``."""

    exercise: str
    section: str
    status: str
    failure: str = ""
    failed: list[str] = field(default_factory=list)  # claim ids, "samples", "time", "import"
    mistake: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"exercise": self.exercise, "section": self.section, "status": self.status,
                "failure": self.failure, "failed": self.failed, "mistake": self.mistake}


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
    return [grade(e, ws, full=full, timeout=timeout) for e in exercises(section)]


def board(grades: list[Grade], *, full: bool = False) -> str:
    """The learner's board: one line per exercise, the first failure under a failing one, then what to do next."""
    mark = {"done": "✓ done", "failing": "✗ failing", "not started": "· not started"}
    done = sum(g.status == "done" for g in grades)
    lines = [f"{done}/{len(grades)} done  (each exercise against torchmech's own on drawn inputs; its claims "
             + ("on the chapter's full runs)" if full else "on short runs — `--full` for the chapter's runs)")]
    for g in grades:
        lines.append(f"{SECTIONS[g.section].split(' ')[0]}  {g.exercise:26s} {mark[g.status]}")
        if g.status == "failing":
            lines += [f"      {line}" for line in g.failure.splitlines()]
            if g.mistake:
                lines.append(f"      looks like a classic mistake: {g.mistake}")
    todo = next((g for g in grades if g.status == "failing"), None) or next(
        (g for g in grades if g.status == "not started"), None)
    if todo is None:
        lines.append("\nAll done here. Next: `torchmech learn status` for the other sections.")
    else:
        verb = "fix" if todo.status == "failing" else "write"
        lines.append(f"\nNext: {verb} `{todo.exercise}` (its docstring says the task; "
                     f"`torchmech learn check {todo.section} --hint` for a hint).")
    return "\n".join(lines)


@dataclass
class Grades:
    """A grading's result: ``table()`` (the board), ``to_json()``, ``exit_code``; in Jupyter its
    ``_repr_html_`` shows the board (expected against yours, the diagnosis, the mistake)."""

    grades: list[Grade]
    workspace: str = ""
    hint: str | None = None
    full: bool = False

    def table(self) -> str:
        return board(self.grades, full=self.full) + (f"\n\n{self.hint}" if self.hint else "")

    def to_json(self) -> dict[str, Any]:
        return {"workspace": self.workspace, "done": sum(g.status == "done" for g in self.grades),
                "exercises": [g.as_dict() for g in self.grades], "hint": self.hint}

    @property
    def exit_code(self) -> int:
        return 0 if all(g.status == "done" for g in self.grades) else 1

    def write(self, out: Path) -> list[Path]:
        """``out/learn.json`` (:meth:`to_json`)."""
        out.mkdir(parents=True, exist_ok=True)
        path = out / "learn.json"
        path.write_text(json.dumps(self.to_json(), indent=2))
        return [path]

    def __repr__(self) -> str:
        return self.table()

    def _repr_html_(self) -> str:
        import html

        colour = {"done": "#1a7f37", "failing": "#cf222e", "not started": "#6e7781"}
        rows = []
        for g in self.grades:
            detail = html.escape(g.failure)
            if g.mistake:
                detail += f"\n<b>looks like a classic mistake:</b> {html.escape(g.mistake)}"
            rows.append(f"<tr><td>{g.section}</td><td><code>{g.exercise}</code></td>"
                        f"<td style='color:{colour[g.status]}'>{g.status}</td>"
                        f"<td><pre style='margin:0;white-space:pre-wrap'>{detail}</pre></td></tr>")
        done = sum(g.status == "done" for g in self.grades)
        hint = f"<p>{html.escape(self.hint)}</p>" if self.hint else ""
        return (f"<p><b>{done}/{len(self.grades)} done</b></p><table><tr><th>§</th><th>exercise</th>"
                f"<th>status</th><th>expected vs yours</th></tr>{''.join(rows)}</table>{hint}")


def check(target: Any = None, impl: str | Path | None = None, *, full: bool = False,
          timeout: float | None = None) -> Grades:
    """Grade from Python or a notebook: ``check("s1")`` grades §1 of the workspace ``impl`` (default
    ``$TORCHMECH_IMPL`` or the current folder); ``check(compute_z)`` grades a function or class defined
    right here, by its name (``compute_z``, ``NoisyLinear``…).

    Example::

        >>> import torch
        >>> def compute_z(a, b, c):
        ...     return torch.add(torch.mul(torch.sub(a, b), 2), c)
        >>> check(compute_z).grades[0].status
        'done'
    """
    import os

    if target is not None and not isinstance(target, str):
        name = getattr(target, "__name__", "")
        try:
            e = exercise(name)
        except KeyError:
            raise WorkspaceError(f"{name or target!r} is no exercise: name it as the chapter does "
                                 f"({', '.join(x.name for x in exercises())})") from None
        return Grades([grade_piece(e, Implementation(f"the piece {name}", {name: target}), full=full,
                                   timeout=timeout)], full=full)
    sections = [target] if target else list(MODULES)
    unknown = [s for s in sections if s not in MODULES]
    if unknown:
        raise WorkspaceError(f"no section {unknown[0]!r}: choose from {', '.join(MODULES)}")
    ws = load_workspace(impl or os.environ.get("TORCHMECH_IMPL", "."), timeout=timeout, sections=sections)
    grades = [g for s in sections for g in check_section(s, ws, full=full, timeout=timeout)]
    return Grades(grades, str(ws.path), full=full)


# --- hints ---------------------------------------------------------------------------------------------
def hint(name: str, ws_path: Path) -> str:
    """The next rung of ``name``'s hint ladder (the chapter's idea → the formula → the reference's line);
    the rung reached is kept in the workspace's ``.hints.json``."""
    e = exercise(name)
    state_file = ws_path / ".hints.json"
    state = json.loads(state_file.read_text()) if state_file.exists() else {}
    level = min(state.get(name, 0), len(e.hints) - 1)
    state[name] = level + 1
    state_file.write_text(json.dumps(state, indent=2))
    label = ("the chapter's idea", "the formula", "the reference's line")[level]
    return f"hint {level + 1}/3 for `{name}` ({label}): {e.hints[level]}"
