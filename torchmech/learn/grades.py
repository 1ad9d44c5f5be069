"""The grades, the learner's board and the grades remembered: what ``learn check``, ``learn status`` and
``learn watch`` show, importing nothing heavy.

:class:`Grade` is how one exercise stands; :func:`board` is the text board; :class:`Grades` a grading's result
(its table, JSON, exit code, and the HTML board a notebook shows). :func:`remember` keeps each section's grades in
the workspace (``.torchmech/grades.json``) under a fingerprint of everything they depend on (the section's file,
the workspace's other modules, torchmech's code, torch's version, the options), and :func:`remembered` gives them
back while that fingerprint holds: ``learn status`` answers from them without importing torch.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torchmech import SECTIONS
from torchmech.learn.where import MODULES


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
                     f"`torchmech learn check --hint {todo.exercise}` for a hint).")
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
        """The board for Jupyter (JupyterLab, VS Code). Every style is inline, as a front end's CSS beats classes
        (JupyterLab right-aligns table cells); no background is set and the status colours read on light and
        dark themes alike; the diagnosis keeps its indentation in a ``<pre>``."""
        import html

        mono = "font-family:var(--jp-code-font-family,var(--vscode-editor-font-family,monospace))"
        cell = "text-align:left;vertical-align:top;padding:3px 14px 3px 0"
        pre = f"margin:0;padding:0;background:none;white-space:pre-wrap;word-break:normal;text-align:left;{mono}"
        colour = {"done": "#2ea043", "failing": "#e5534b", "not started": "#8b949e"}
        mark = {"done": "✓", "failing": "✗", "not started": "·"}
        rows = []
        for g in self.grades:
            detail = f"<pre style='{pre}'>{html.escape(g.failure)}</pre>" if g.failure else ""
            if g.mistake:
                detail += (f"<div style='margin-top:4px'><b>looks like a classic mistake:</b> "
                           f"{html.escape(g.mistake)}</div>")
            rows.append(f"<tr><td style='{cell}'>{SECTIONS[g.section].split(' ')[0]}</td>"
                        f"<td style='{cell};{mono}'>{g.exercise}</td><td style='{cell};white-space:nowrap;"
                        f"font-weight:bold;color:{colour[g.status]}'>{mark[g.status]} {g.status}</td>"
                        f"<td style='{cell}'>{detail}</td></tr>")
        head = "".join(f"<th style='{cell};border-bottom:1px solid #8888'>{h}</th>"
                       for h in ("§", "exercise", "status", "expected vs yours"))
        done = sum(g.status == "done" for g in self.grades)
        hint = (f"<p style='margin:8px 0 0;text-align:left;white-space:pre-wrap'>{html.escape(self.hint)}</p>"
                if self.hint else "")
        return (f"<div style='text-align:left'><b>{done}/{len(self.grades)} done</b><table style='border-collapse:"
                f"collapse;margin:4px 0 0'><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
                f"{hint}</div>")


# --- the grades remembered ------------------------------------------------------------------------------
#: Where a workspace keeps its sections' last grades.
REMEMBERED = Path(".torchmech") / "grades.json"


@functools.cache
def _code_version() -> str:
    """torchmech's own code and torch's version: a grade made by other grading code is not reused."""
    from importlib import metadata

    digest = hashlib.sha256(metadata.version("torch").encode())
    package = Path(__file__).resolve().parents[1]
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def fingerprint(workspace: Path, section: str, *, full: bool = False, timeout: float | None = None) -> str:
    """What a section's grades depend on: its module's text, the workspace's other (helper) modules, torchmech's
    code, torch's version and the grading options."""
    digest = hashlib.sha256(f"{_code_version()}|{section}|{full}|{timeout}".encode())
    helpers = sorted(p for p in workspace.glob("*.py") if p.stem not in MODULES.values())
    for path in [workspace / f"{MODULES[section]}.py", *helpers]:
        digest.update(path.name.encode() + b"\0" + (path.read_bytes() if path.is_file() else b"(none)"))
    return digest.hexdigest()


def _read(workspace: Path) -> dict[str, Any]:
    try:
        return json.loads((workspace / REMEMBERED).read_text())
    except (OSError, ValueError):
        return {}


def remembered(workspace: Path, section: str, *, full: bool = False,
               timeout: float | None = None) -> list[Grade] | None:
    """The section's grades as last made, if nothing they depend on has changed since; else ``None``."""
    entry = _read(workspace).get(section)
    if not entry or entry.get("fingerprint") != fingerprint(workspace, section, full=full, timeout=timeout):
        return None
    return [Grade(**g) for g in entry["grades"]]


def remember(workspace: Path, section: str, grades: list[Grade], *, full: bool = False,
             timeout: float | None = None) -> None:
    """Keep a section's grades (written whole, atomically; silently skipped where the folder is read-only). A
    grade that ran out of time is not kept: it says as much about the machine's load as about the code."""
    if any("time" in g.failed or "took longer than" in g.failure for g in grades):
        return
    state = _read(workspace)
    state[section] = {"fingerprint": fingerprint(workspace, section, full=full, timeout=timeout),
                      "grades": [g.as_dict() for g in grades]}
    target = workspace / REMEMBERED
    try:
        target.parent.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".grades-", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(state, f, indent=1)
        os.replace(tmp, target)
    except OSError:
        return
