r"""The one place that decides how many CPU threads torch computes with (its intra-op threads), and applies them.

:func:`threads` resolves the count, first found first: ``--threads N`` (``requested``), ``$TORCHMECH_THREADS``,
``$OMP_NUM_THREADS``, else the policy's default: :data:`POLICY` (one thread) for everything that trains the
chapter, ``None`` (torch's own count) where a caller asks for it (``torchmech bench``, whose width × batch sweep
reaches matrices where threads pay). :func:`applied` sets the count for a block and restores torch's afterwards,
so an in-process caller (a test calling ``torchmech.cli.main``) keeps its own.

Why one thread: the chapter's models are tiny (a 2×4 MLP on 100 points, a 9→8→4→1 regressor, a 784→32→16→10
classifier), so a step is mostly Python's and the kernels' launch overhead, and a second thread adds an
OpenMP barrier per operation. Quiet, one and two threads train as fast; beside one other busy process the
two threads spin at those barriers and lose by several times (the measurements, with their machine and date:
``benchmarks/threads_table.py``, ``benchmarks/results/cpu-2core/threads.json``). The printed digits do not
depend on the count (``tests/test_threads.py`` compares the exact claims of §1–§4 and §8 at 1 and 2 threads).

This module imports torch only inside :func:`applied`: the command line resolves (and rejects a bad value)
before it knows whether it needs torch (``learn status`` answered from remembered grades never imports it).

Example::

    >>> threads(environ={}), threads(3, environ={"TORCHMECH_THREADS": "2"}), threads(environ={"OMP_NUM_THREADS": "4"})
    (1, 3, 4)
    >>> threads(default=None, environ={})  # torch's own count
    >>> threads(environ={"TORCHMECH_THREADS": "abc"})
    Traceback (most recent call last):
    ...
    ValueError: TORCHMECH_THREADS='abc': expected a whole number of threads > 0
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping

#: Threads for the chapter's runs when nothing asks otherwise: one (the models are tiny; see the module's text).
POLICY = 1

#: The environment variables read, in order of precedence (``--threads`` comes before both).
VARIABLES = ("TORCHMECH_THREADS", "OMP_NUM_THREADS")


def _count(name: str, text: str) -> int:
    """``text`` as a thread count (OpenMP's nested list ``"4,2"``: its first level), or a one-line error naming
    ``name``."""
    first = text.split(",")[0].strip()
    try:
        value = int(first)
    except ValueError:
        value = 0
    if value <= 0:
        raise ValueError(f"{name}={text!r}: expected a whole number of threads > 0")
    return value


def threads(requested: int | None = None, default: int | None = POLICY,
            environ: Mapping[str, str] | None = None) -> int | None:
    """The torch threads to compute with: ``requested`` (``--threads``), else ``$TORCHMECH_THREADS``, else
    ``$OMP_NUM_THREADS``, else ``default`` (``None``: torch's own count, left as it is). A variable set to the
    empty string counts as unset.

    Raises:
        ValueError: ``requested`` or the variable that decides is not a whole number > 0 (one line, naming it).
    """
    if requested is not None:
        if isinstance(requested, bool) or not isinstance(requested, int) or requested <= 0:
            raise ValueError(f"--threads={requested!r}: expected a whole number of threads > 0")
        return requested
    env = os.environ if environ is None else environ
    for name in VARIABLES:
        text = env.get(name, "").strip()
        if text:
            return _count(name, text)
    return default


@contextlib.contextmanager
def applied(count: int | None) -> Iterator[int]:
    """Within the block torch computes with ``count`` intra-op threads (``None``: its own count, untouched);
    afterwards it has its count from before again. Yields the count in use (what a result's environment names).

    Example::

        >>> import torch
        >>> before = torch.get_num_threads()
        >>> with applied(1) as used:
        ...     used == torch.get_num_threads() == 1
        True
        >>> torch.get_num_threads() == before
        True
    """
    import torch

    before = torch.get_num_threads()
    if count is not None and count != before:
        torch.set_num_threads(count)
    try:
        yield torch.get_num_threads()
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
