"""Learner mode: the learner writes the chapter's code and the same specification grades it.

* :func:`init_workspace` writes one stub module per section (``s1_graph.py`` … ``s9_lightning.py``):
  each exercise's fixed signature, its task and the claims that check it, a body raising
  ``NotImplementedError``; and a short README. It never overwrites a learner's file.
* :func:`load_workspace` imports the learner's modules and returns an
  :class:`~torchmech.claims.Implementation` in which every written exercise replaces the reference
  piece; an exercise whose body still only raises ``NotImplementedError`` is *not started* and
  falls back to the reference, so a learner works one exercise at a time.
* :func:`grade` runs an exercise's registry claims and checks on that implementation:
  ``not started``, ``failing`` (the first failure: the book's value and theirs, or what a check
  expected and got, and the likely mistake from :mod:`torchmech.mistakes`) or ``done``.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torchmech import SECTIONS
from torchmech.claims import Context, Implementation, claim
from torchmech.exercises import Exercise, exercise, exercises

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
    """A workspace that cannot be used (missing folder, a module that does not import): one line."""


def init_workspace(directory: Path) -> tuple[list[Path], list[Path]]:
    """Write the stubs and the README into ``directory``; returns (written, kept) — existing files
    are kept untouched."""
    directory.mkdir(parents=True, exist_ok=True)
    written, kept = [], []
    files = {directory / "README.md": README}
    for section, module in MODULES.items():
        body = [_HEADER.format(title=SECTIONS[section], section=section, extra=_EXTRA.get(section, "")).rstrip() + "\n"]
        for e in exercises(section):
            body.append(_stub(e))
        files[directory / f"{module}.py"] = "".join(body)
    for path, text in files.items():
        if path.exists():
            kept.append(path)
            continue
        path.write_text(text)
        written.append(path)
    return written, kept


def _stub(e: Exercise) -> str:
    checked = ", ".join(e.claims) if e.claims else "its checks (laws over a few inputs)"
    wrap = lambda text: textwrap.fill(text, 100, initial_indent="    ", subsequent_indent="    ")  # noqa: E731
    doc = (f'    """{wrap(e.task).strip()}\n\n{wrap(f"Checked by: {checked}.")}\n'
           f'    Stuck? `torchmech learn check {e.section} --hint`.\n    """')
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
    """A learner's folder, loaded: the implementation to grade and where each exercise came from."""

    path: Path
    impl: Implementation
    source: dict[str, str] = field(default_factory=dict)  # exercise → "workspace" | "not started"

    def status(self, name: str) -> str:
        return self.source.get(name, "not started")


@functools.cache
def cached_workspace(directory: str) -> Workspace:
    """:func:`load_workspace`, once per process (pytest's ``--impl``)."""
    return load_workspace(directory)


def load_workspace(directory: str | Path) -> Workspace:
    """Import the learner's section modules; written exercises override the reference.

    Raises:
        WorkspaceError: the folder does not exist, or a module fails to import (named, with why).
    """
    path = Path(directory).expanduser()
    if not path.is_dir():
        raise WorkspaceError(f"no workspace at {path}: create one with `torchmech learn init {path}`")
    overrides: dict[str, Any] = {}
    source: dict[str, str] = {}
    for section, module in MODULES.items():
        file = path / f"{module}.py"
        if not file.exists():
            continue
        try:
            tree = ast.parse(file.read_text(), filename=str(file))
        except SyntaxError as err:
            raise WorkspaceError(f"{file.name} line {err.lineno}: {err.msg}") from err
        defined: dict[str, ast.AST] = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)}
        for node in tree.body:  # a piece may also be imported (reused from elsewhere): it counts as written
            if isinstance(node, ast.ImportFrom):
                defined.update({a.asname or a.name: node for a in node.names})
        name = f"torchmech_workspace_{abs(hash(str(path)))}_{module}"
        spec = importlib.util.spec_from_file_location(name, file)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        try:
            spec.loader.exec_module(mod)
        except Exception as err:  # the learner's module: any error is theirs to see, in one line
            raise WorkspaceError(f"{file.name} does not import: {type(err).__name__}: {err}") from err
        for e in exercises(section):
            if e.name in defined:
                started = not _not_started(defined[e.name])
                source[e.name] = "workspace" if started else "not started"
                if started:
                    overrides[e.name] = getattr(mod, e.name)
    return Workspace(path, Implementation(f"workspace {path}", overrides), source)


# --- grading ----------------------------------------------------------------------------------------
@dataclass
class Grade:
    """How one exercise stands: ``not started``, ``failing`` (with the first failure and the likely
    mistake) or ``done``."""

    exercise: str
    section: str
    status: str
    failure: str = ""
    failed: list[str] = field(default_factory=list)  # claim ids and check names that failed
    mistake: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"exercise": self.exercise, "section": self.section, "status": self.status,
                "failure": self.failure, "failed": self.failed, "mistake": self.mistake}


def failures(e: Exercise, impl: Implementation, first_only: bool = False) -> list[tuple[str, str]]:
    """(what failed, why) for each of the exercise's claims and checks that fail on ``impl``."""
    from torchmech.runs import Runs

    found: list[tuple[str, str]] = []
    ctx = Context(impl=impl, runs=Runs())
    for claim_id in e.claims:
        try:
            result = claim(claim_id).judge(ctx)
        except Exception as err:  # the learner's code raised: that is the failure
            found.append((claim_id, f"{claim_id}: raised {type(err).__name__}: {err}"))
        else:
            if result.holds == "no":
                found.append((claim_id, f"{claim_id}: {result.statement}\n  book: {result.book}\n  yours: "
                                        f"{result.ours}"))
        if found and first_only:
            return found
    for check in e.checks:
        try:
            check(impl)
        except Exception as err:
            why = str(err) if isinstance(err, AssertionError) else f"raised {type(err).__name__}: {err}"
            found.append((check.__name__.removeprefix("_"), f"{check.__name__.removeprefix('_')}: {why}"))
        if found and first_only:
            return found
    return found


def grade(e: Exercise, ws: Workspace) -> Grade:
    """Grade one exercise of a loaded workspace."""
    if ws.status(e.name) != "workspace":
        return Grade(e.name, e.section, "not started")
    found = failures(e, ws.impl)
    if not found:
        return Grade(e.name, e.section, "done")
    from torchmech.mistakes import likely_mistake

    return Grade(e.name, e.section, "failing", failure=found[0][1], failed=[k for k, _ in found],
                 mistake=likely_mistake(e.name, found))


def check_section(section: str, ws: Workspace) -> list[Grade]:
    return [grade(e, ws) for e in exercises(section)]


def board(grades: list[Grade]) -> str:
    """The learner's board: one line per exercise, the first failure under a failing one, then what to do next."""
    mark = {"done": "✓ done", "failing": "✗ failing", "not started": "· not started"}
    lines = []
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
