"""The console kept for the table: libraries' logs, warnings and prints held off it while the chapter runs, and a
long command's progress (:class:`Progress`: a bar on a terminal, one line per finished step in a log)."""

from __future__ import annotations

import contextlib
import importlib
import logging
import re
import sys
import time
import warnings
from collections.abc import Container, Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TextIO, runtime_checkable

QUIET_LOGGERS = ("lightning.pytorch", "lightning.fabric")

#: Library log lines that tell a reader nothing here, dropped wherever and whenever they are logged: logger → the
#: starts of the messages dropped. ``torch.utils.cpp_extension`` logs "No CUDA runtime is found, using
#: CUDA_HOME=…" when it is imported on a machine with a CUDA toolkit and no CUDA device; ``torch.utils.benchmark``
#: and inductor import it, outside any quiet block and in worker processes, so a quiet block cannot hold it.
DROPPED = {"torch.utils.cpp_extension": ("No CUDA runtime is found",)}


class _Dropped(logging.Filter):
    def __init__(self, starts: tuple[str, ...]) -> None:
        super().__init__()
        self.starts = starts

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.starts)


def drop_noise() -> None:
    """Filter :data:`DROPPED`'s lines out of their loggers (once each). Runs when this module is imported, before
    the commands import torch; the logger's other lines still show."""
    for name, starts in DROPPED.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _Dropped) for f in logger.filters):
            logger.addFilter(_Dropped(starts))


drop_noise()


@contextlib.contextmanager
def quiet_libraries(import_lightning: bool) -> Iterator[None]:
    """Within the block, third-party chatter stays off the console: ``QUIET_LOGGERS`` log only errors and
    Python warnings are ignored; both are restored afterwards. ``import_lightning``: import Lightning first,
    since its import sets its logger to INFO (and the chapter's §9 would import it inside the block)."""
    with warnings.catch_warnings():  # also undoes the filters Lightning's import adds, and restores showwarning
        warnings.simplefilter("ignore")
        # A library may force its own warning through (torch 2.4's torch.distributed.optim, imported by Ignite,
        # warns under simplefilter("always")): nothing is shown inside the block.
        warnings.showwarning = lambda *args, **kwargs: None
        if import_lightning:
            importlib.import_module("lightning.pytorch")
        loggers = [logging.getLogger(name) for name in QUIET_LOGGERS]
        levels = [logger.level for logger in loggers]
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)


@contextlib.contextmanager
def quiet(import_lightning: bool) -> Iterator[None]:
    """A command's run kept off stdout, which holds only its result: :func:`quiet_libraries`, and every print
    (progress lines, a library's tables) on stderr. Worker processes run under it too."""
    with contextlib.redirect_stdout(sys.stderr), quiet_libraries(import_lightning):
        yield


#: A progress line in a log (what :class:`Progress` and :func:`run_finished` write): ``[what] … 41.2 s``, maybe
#: ``(5/9)`` after it. ``releases.measure`` leaves these out of the console it records.
PROGRESS_LINE = re.compile(r"^\[[^\]\n]+\] .* \d+\.\d s( \(\d+/\d+\))?$")
#: A run that took this long or longer says so in a log (:func:`run_finished`, a :class:`Progress` of ticks);
#: shorter ones say nothing.
LONG_RUN_S = 1.0
_IN_A_LOG: list[Progress] = []  # the progresses open in a log, innermost last


class Progress:
    """A long command's progress on stderr, reported here only. On a terminal: tqdm's bar, redrawn in place. In a
    log (stderr redirected: CI, ``nohup``, a notebook's ``!make chapter``), where a bar draws nothing, one line per
    finished step, ``[chapter] §5 done: 12 claims in 41.2 s (5/9)``, and for ticks (``unit``: epochs) one line at
    the end of a long run (:data:`LONG_RUN_S`), ``[run] mnist 20 epochs: 212.4 s``; while it is open, the chapter's
    long runs say when they finish (:func:`run_finished`).

    Args:
        total: the steps (or ticks) to come.
        desc: what runs (``chapter``, ``conformance``, ``mnist``).
        unit: what a tick is (``epochs``); empty: the steps are named (:meth:`done`).
        leave: keep the finished bar on the terminal.
        stream: where it goes (default: ``sys.stderr`` now).
        overlapping: the steps run at once (in worker processes): a line gives the time since the start (``done
            at 83.1 s``), not since the step before.
    """

    def __init__(self, total: int, desc: str, unit: str = "", leave: bool = False,
                 stream: TextIO | None = None, overlapping: bool = False) -> None:
        self.total, self.desc, self.unit, self.leave, self.overlapping = total, desc, unit, leave, overlapping
        self.stream = stream if stream is not None else sys.stderr
        self.n = 0
        self._bar: Any = None
        self._start = self._last = time.perf_counter()

    @property
    def in_a_log(self) -> bool:
        """``True`` where the stream is not a terminal."""
        try:
            return not self.stream.isatty()
        except (AttributeError, ValueError):  # no isatty, or closed
            return True

    def __enter__(self) -> Progress:
        if self.in_a_log:
            _IN_A_LOG.append(self)
        else:
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, desc=self.desc, file=self.stream, leave=self.leave)
        self._start = self._last = time.perf_counter()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.close()
            return
        _IN_A_LOG.remove(self)
        seconds = time.perf_counter() - self._start
        if kind is None and self.unit and self.n and seconds >= LONG_RUN_S:
            self.say(f"[run] {self.desc} {self.n} {self.unit}: {seconds:.1f} s")

    def update(self, n: int = 1) -> None:
        """``n`` ticks (epochs) done."""
        self.n += n
        if self._bar is not None:
            self._bar.update(n)

    def done(self, step: str, detail: str = "") -> None:
        """The step ``step`` finished (``detail``: what it did, ``12 claims``)."""
        self.n += 1
        now = time.perf_counter()
        if self._bar is not None:
            self._bar.set_postfix_str(f"{step} done")
            self._bar.update(1)
        else:
            when = f"at {now - self._start:.1f}" if self.overlapping else f"in {now - self._last:.1f}"
            self.say(f"[{self.desc}] {step} done{': ' + detail if detail else ''} {when} s ({self.n}/{self.total})")
        self._last = now

    def write(self, text: str, file: TextIO | None = None) -> None:
        """A line of the command's own (an epoch's loss) to ``file``, above the bar if there is one."""
        if self._bar is not None:
            self._bar.write(text, file=file)
        else:
            print(text, file=file if file is not None else self.stream, flush=True)

    def say(self, line: str) -> None:
        print(line, file=self.stream, flush=True)


def run_finished(what: str, seconds: float) -> None:
    """A run of the chapter (``mnist 20 epochs on cpu``) took ``seconds``: one line, ``[run] mnist 20 epochs on
    cpu: 212.4 s``, where a command's :class:`Progress` is open in a log and the run was long (:data:`LONG_RUN_S`);
    nothing elsewhere (a terminal's bar, a test session, a library call)."""
    if _IN_A_LOG and seconds >= LONG_RUN_S:
        _IN_A_LOG[-1].say(f"[run] {what}: {seconds:.1f} s")


def text_table(header: Sequence[str], rows: Iterable[Sequence[str]], right: Container[int] = (),
               markdown: bool = False) -> str:
    """The one table renderer of the package's results: each column as wide as its widest cell, left-aligned
    but for the columns in ``right`` (numbers), a rule of dashes under the header, trailing blanks cut;
    ``markdown``: a Markdown table of the same cells instead.

    Example::

        >>> print(text_table(("claim", "ratio"), [("s7.mpg.test_mse", "0.33"), ("s8", "1")], right={1}))
        claim            ratio
        ---------------  -----
        s7.mpg.test_mse   0.33
        s8                   1
        >>> print(text_table(("a", "b"), [("1", "x|y")], markdown=True))
        | a | b |
        |---|---|
        | 1 | x/y |
    """
    rows = [tuple(str(v) for v in row) for row in rows]
    if markdown:
        cells = lambda row: "| " + " | ".join(v.replace("|", "/") for v in row) + " |"  # noqa: E731
        return "\n".join([cells(header), "|" + "---|" * len(header), *map(cells, rows)])
    widths = [max(len(row[j]) for row in [tuple(header), *rows]) for j in range(len(header))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if j in right else v.ljust(w)
                         for j, (v, w) in enumerate(zip(row, widths, strict=True))).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


@runtime_checkable
class CommandResult(Protocol):
    """What every command returns, and the one thing ``torchmech``'s entry point prints: ``table()`` on the
    console (or ``to_json()`` under ``--json``), the files ``write(out)`` wrote, and the ``exit_code`` (0: all
    holds). The chapter's report, the conformance matrix, the ladder, a divergence, a learner's grades and a
    run's output implement it (``tests/test_house.py`` checks each)."""

    @property
    def exit_code(self) -> int: ...

    def table(self) -> str: ...

    def to_json(self) -> dict[str, Any]: ...

    def write(self, out: Path) -> list[Path]: ...
