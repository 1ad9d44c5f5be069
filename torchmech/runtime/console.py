"""The console kept for the table: libraries' logs, warnings and prints held off it while the chapter runs."""

from __future__ import annotations

import contextlib
import importlib
import logging
import sys
import warnings
from collections.abc import Container, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

QUIET_LOGGERS = ("lightning.pytorch", "lightning.fabric")


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
