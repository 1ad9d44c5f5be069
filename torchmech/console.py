"""The console kept for the table: libraries' logs, warnings and prints held off it while the chapter runs."""

from __future__ import annotations

import contextlib
import importlib
import logging
import sys
import warnings
from collections.abc import Iterator

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
def quiet_process(import_lightning: bool) -> Iterator[None]:
    """A worker process's run kept quiet: :func:`quiet_libraries`, and its prints on stderr."""
    with contextlib.redirect_stdout(sys.stderr), quiet_libraries(import_lightning):
        yield
