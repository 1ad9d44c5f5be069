"""Hints and solutions, per exercise: help a learner asks for, never the answer unasked.

* :func:`hint` climbs one exercise's ladder a rung per request — the chapter's idea, the formula, the
  reference's line — for any exercise at any time (``torchmech learn check --hint NoisyLinear``, or
  ``learn.hint(NoisyLinear)`` in a notebook). The rung reached is kept in the workspace's ``.hints.json``
  (in a notebook without a workspace: for the session).
* :func:`solution` shows the reference's code and the values the book prints for it, only once the exercise
  is **done** — in the workspace, or for the piece a notebook cell defines (rustlings' rule: the solution
  after the exercise, never before).
"""

from __future__ import annotations

import inspect
import json
import textwrap
from pathlib import Path
from typing import Any

from torchmech.chapter.implementation import REFERENCE, Implementation
from torchmech.learn.where import NotDone, WorkspaceError, find_workspace
from torchmech.learn.workspace import exercise_of, grade, grade_piece, load_workspace
from torchmech.spec.claims import claim

_LABELS = ("the chapter's idea", "the formula", "the reference's line")

#: The rungs reached where no workspace keeps them (a notebook): exercise → rungs shown.
_SESSION: dict[str, int] = {}


class Hint(str):
    """A hint's text; a notebook shows it as text (no quotes)."""

    def __repr__(self) -> str:
        return str(self)


def _hint_file(workspace: str | Path | None) -> Path | None:
    """Where the rungs are kept: the given workspace, else the one found from here; ``None`` in a notebook
    outside any workspace."""
    if workspace is not None:
        return Path(workspace) / ".hints.json"
    try:
        return find_workspace() / ".hints.json"
    except WorkspaceError:
        return None


def hint(target: Any, workspace: str | Path | None = None) -> Hint:
    """The next rung of an exercise's hint ladder (the chapter's idea → the formula → the reference's line),
    for any exercise, written or not.

    Args:
        target: the exercise's name (``"compute_z"``) or the function or class itself.
        workspace: the workspace that keeps the rungs reached (default: the one found from the current folder;
            none: this session keeps them).

    Example::

        >>> _SESSION.clear()
        >>> def compute_z(a, b, c): ...
        >>> hint(compute_z).split(" (")[0]  # outside any workspace: this session keeps the rung
        'hint 1/3 for `compute_z`'
        >>> hint("compute_z").split(" (")[0]
        'hint 2/3 for `compute_z`'
    """
    e = exercise_of(target)
    file = _hint_file(workspace)
    if file is None:
        state = dict(_SESSION)
    else:
        state = json.loads(file.read_text()) if file.exists() else {}
    level = min(state.get(e.name, 0), len(e.hints) - 1)
    state[e.name] = level + 1
    if file is None:
        _SESSION[e.name] = level + 1
    else:
        file.write_text(json.dumps(state, indent=2))
    return Hint(f"hint {level + 1}/{len(e.hints)} for `{e.name}` ({_LABELS[level]}): {e.hints[level]}")


def solution(target: Any, workspace: str | Path | None = None, *, timeout: float | None = None) -> Hint:
    """The reference's code for an exercise and what the book prints for it — once that exercise is done.

    Args:
        target: the exercise's name (graded in the workspace) or a function or class a notebook cell defines
            (graded itself).
        workspace: the workspace (default: found from the current folder).
        timeout: the check's time limit in seconds (default the grader's).

    Raises:
        NotDone: the exercise is not done yet: one line saying how it stands and how to check it.
    """
    e = exercise_of(target)
    if isinstance(target, str):
        ws = load_workspace(find_workspace(workspace), timeout=timeout, sections=[e.section])
        status = grade(e, ws, timeout=timeout).status
        where = f"in {ws.path}"
    else:
        status = grade_piece(e, Implementation(f"the piece {e.name}", {e.name: target}), timeout=timeout).status
        where = "here"
    if status != "done":
        raise NotDone(f"`{e.name}` is {status} {where}: its solution opens once `torchmech learn check {e.section}` "
                      f"says done (a hint meanwhile: `torchmech learn check --hint {e.name}`)")
    source = textwrap.dedent(inspect.getsource(getattr(REFERENCE, e.name)))
    lines = [f"`{e.name}` is done. torchmech's reference ({REFERENCE.REFERENCE[e.name].replace(':', '.')}):", "",
             textwrap.indent(source.rstrip(), "    ")]
    printed = [claim(c) for c in e.claims]
    if printed:
        lines += ["", "What the book prints for it:"]
        lines += [f"  {c.id}: {c.statement}\n    book: {c.book}" for c in printed]
    return Hint("\n".join(lines))
