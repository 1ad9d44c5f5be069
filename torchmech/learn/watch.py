"""``torchmech learn watch``: a warm process that re-grades the section file you save and shows its board.

As rustlings' ``watch``: torch and the grader are imported once; each time a section module of the workspace is
saved (``s3_autodiff.py`` …), that section alone is loaded again from its text and graded, and its board is shown
with the count over the chapter ("7/22 done"); when the section is done it says which exercise is next. A file
that does not parse or import fails its own section on the board and the watch goes on; Ctrl-C ends it cleanly.
File events come from ``watchfiles`` (the OS's notifications), with a polling loop where those are missing or
asked away (``--poll``: network folders, some containers).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torchmech import SECTIONS
from torchmech.learn.grades import Grade, board
from torchmech.learn.where import MODULES
from torchmech.learn.workspace import check_section, load_workspace, status
from torchmech.runtime.console import quiet_libraries

#: How often the polling fallback looks at the files, in seconds.
POLL_EVERY = 0.2


def snapshot(workspace: Path) -> dict[Path, tuple[int, int]]:
    """Each section file's (modification time, size)."""
    names = {f"{m}.py" for m in MODULES.values()}
    return {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in workspace.glob("*.py") if p.name in names}


def changed_files(workspace: Path, *, poll: bool = False, stop: threading.Event | None = None,
                  since: dict[Path, tuple[int, int]] | None = None) -> Iterator[set[Path]]:
    """Each batch of section files saved in ``workspace`` from the :func:`snapshot` ``since`` on (default: now).
    The OS's file events (``watchfiles``) wake it, and a look at the files' times at each wake and at least once
    a second catches what the events miss (a save before the watcher listened); ``poll``, or no ``watchfiles``:
    the look alone, every :data:`POLL_EVERY` seconds."""
    names = {f"{m}.py" for m in MODULES.values()}
    try:
        import watchfiles
    except ImportError:
        poll = True
    if poll:
        ticks: Iterable[object] = iter(lambda: time.sleep(POLL_EVERY), 0)  # None for ever: a tick per look
    else:
        ticks = watchfiles.watch(workspace, stop_event=stop, debounce=100, step=20, recursive=False,
                                 yield_on_timeout=True, rust_timeout=1000,
                                 watch_filter=lambda _, path: Path(path).name in names)
    last = snapshot(workspace) if since is None else since
    for _ in ticks:
        if stop is not None and stop.is_set():
            return
        now = snapshot(workspace)
        saved = {p for p in now.keys() | last.keys() if now.get(p) != last.get(p)}
        last = now
        if saved:
            yield saved


class Watch:
    """The state of one watch: each section's latest grades, and how to show them."""

    def __init__(self, workspace: Path, show: Callable[[str], None], timeout: float | None = None) -> None:
        self.workspace, self.show, self.timeout = workspace, show, timeout
        self.grades: dict[str, list[Grade]] = {}

    @property
    def done(self) -> str:
        graded = [g for gs in self.grades.values() for g in gs]
        return f"{sum(g.status == 'done' for g in graded)}/{len(graded)} done"

    def start(self) -> None:
        """Every section's grades (remembered where nothing changed), then the board of the first section with
        work left."""
        for g in status(self.workspace, timeout=self.timeout):
            self.grades.setdefault(g.section, []).append(g)
        todo = next((s for s, gs in self.grades.items() if any(g.status != "done" for g in gs)), None)
        self.show(self._board(todo) if todo else f"Every exercise is done.\n{self._watching()}")

    def saved(self, files: Iterable[Path]) -> None:
        """Re-grade the sections of the saved files and show their boards."""
        sections = [s for s, m in MODULES.items() if any(Path(f).name == f"{m}.py" for f in files)]
        for section in sections:
            with quiet_libraries(import_lightning=section == "s9"):
                ws = load_workspace(self.workspace, timeout=self.timeout, sections=[section])
                self.grades[section] = check_section(section, ws, timeout=self.timeout)
            self.show(self._board(section))

    def _board(self, section: str) -> str:
        grades = self.grades[section]
        text = board(grades).rsplit("\n\nNext:", 1)[0].rsplit("\n\nAll done here.", 1)[0]
        lines = [f"{SECTIONS[section]} — {MODULES[section]}.py", text, ""]
        if all(g.status == "done" for g in grades):
            after = next((g for s in MODULES for g in self.grades.get(s, []) if g.status != "done"), None)
            lines.append(f"{SECTIONS[section].split(' ')[0]} is done. " + (
                f"Next: `{after.exercise}` in {MODULES[after.section]}.py." if after else "The whole chapter is done."))
        else:
            todo = next(g for g in grades if g.status != "done")
            verb = "fix" if todo.status == "failing" else "write"
            lines.append(f"Next: {verb} `{todo.exercise}` and save (`torchmech learn check --hint {todo.exercise}` "
                         "for a hint).")
        lines.append(self._watching())
        return "\n".join(lines)

    def _watching(self) -> str:
        return f"[{self.done}] watching {self.workspace}: save a section file to grade it; Ctrl-C to stop"


@dataclass
class Watched:
    """What a watch leaves when it stops: the count over the chapter (a :class:`CommandResult`, exit status 0)."""

    workspace: Path
    done: str
    exit_code: int = 0

    def table(self) -> str:
        return f"stopped watching {self.workspace} ({self.done})"

    def to_json(self) -> dict[str, Any]:
        return {"workspace": str(self.workspace), "done": self.done}

    def write(self, out: Path) -> list[Path]:
        return []


def watch(workspace: Path, *, timeout: float | None = None, poll: bool = False,
          changes: Iterable[set[Path]] | None = None, show: Callable[[str], None] | None = None) -> Watched:
    """Watch ``workspace`` until Ctrl-C (or until ``changes`` runs out): grade each saved section and show its
    board. Returns the command's result: its last line, exit status 0.

    Args:
        workspace: the workspace's folder.
        timeout: each exercise's time limit in seconds (default the grader's).
        poll: poll the files instead of the OS's file events.
        changes: batches of saved files (default: :func:`changed_files`, for ever).
        show: where a board goes (default: stdout, the screen cleared first on a terminal).
    """
    show = show or _screen
    state = Watch(workspace, show, timeout)
    try:
        before = snapshot(workspace)  # a file saved while the first grading runs is graded right after it
        state.start()
        for files in changes if changes is not None else changed_files(workspace, poll=poll, since=before):
            try:
                state.saved(files)
            except Exception as err:  # the watch outlives whatever one grading raised: say it in one line
                show(f"could not grade {', '.join(sorted(Path(f).name for f in files))}: {type(err).__name__}: {err}")
    except KeyboardInterrupt:
        pass
    return Watched(workspace, state.done)


def _screen(text: str) -> None:
    if sys.stdout.isatty():
        sys.stdout.write("\033[2J\033[H")
    print(text, flush=True)
