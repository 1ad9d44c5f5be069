"""Where the learner's workspace is, found before anything heavy is imported (torch included).

A workspace is found as git finds a repository (:func:`find_workspace`): ``--impl`` when given, else
``$TORCHMECH_IMPL``, else the nearest folder from the current one upward holding the :data:`MARKER` that
``torchmech learn init`` writes; so every command torchmech prints runs as printed from the workspace's root
and from any folder inside it. A workspace is never made inside a torchmech checkout (:func:`checkout_around`).
"""

from __future__ import annotations

from pathlib import Path

#: The stub module of each section, as the workspace names it.
MODULES: dict[str, str] = {"s1": "s1_graph", "s2": "s2_init", "s3": "s3_autodiff", "s4": "s4_nn", "s5": "s5_xor",
                           "s6": "s6_modules", "s7": "s7_auto_mpg", "s8": "s8_mnist", "s9": "s9_lightning"}

#: The file ``learn init`` writes at a workspace's root: every command finds the workspace from the current folder
#: upward, as git finds a repository.
MARKER = ".torchmech-workspace"


class WorkspaceError(Exception):
    """A folder that is no workspace (missing, or without any section module): one line."""


class NotDone(WorkspaceError):
    """A solution asked for an exercise that is not done yet (one line; exit status 1)."""


def _is_workspace(path: Path) -> bool:
    return (path / MARKER).is_file() or any((path / f"{m}.py").is_file() for m in MODULES.values())


def find_workspace(impl: str | Path | None = None, start: str | Path | None = None) -> Path:
    """The workspace a command grades, found as git finds a repository: ``impl`` when given (``--impl``), else
    ``$TORCHMECH_IMPL``, else the nearest folder from ``start`` (default: the current folder) upward that holds
    the :data:`MARKER` ``learn init`` writes. A given folder inside a workspace means that workspace.
    Imports nothing heavy: it answers before torch is loaded.

    Raises:
        WorkspaceError: none is found (one line: where it looked, and how to make one).

    Example::

        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     (Path(d) / "ch13" / "notes").mkdir(parents=True)
        ...     _ = (Path(d) / "ch13" / MARKER).write_text("")
        ...     find_workspace(start=Path(d) / "ch13" / "notes") == (Path(d) / "ch13").resolve()
        True
    """
    import os

    given = impl if impl not in (None, "") else os.environ.get("TORCHMECH_IMPL") or None
    if given is not None:
        path = Path(given).expanduser()
        found = next((p for p in (path.resolve(), *path.resolve().parents) if (p / MARKER).is_file()), None)
        if _is_workspace(path):
            return path
        if path.exists() and found is not None:
            return found
        origin = "--impl" if impl not in (None, "") else "$TORCHMECH_IMPL"
        raise WorkspaceError(f"no torchmech workspace in {given} ({origin}; make one with `torchmech learn init "
                             f"{given}`)")
    here = Path(start if start is not None else Path.cwd()).expanduser().resolve()
    for folder in (here, *here.parents):
        if (folder / MARKER).is_file():
            return folder
    raise WorkspaceError(f"no torchmech workspace in {here} or any folder above it (make one with `torchmech learn "
                         "init ch13`, then `cd ch13`; or give --impl DIR, or set TORCHMECH_IMPL)")


def checkout_around(directory: Path) -> Path | None:
    """The torchmech checkout that holds ``directory`` (its ``pyproject.toml`` names torchmech), or ``None``."""
    path = directory.expanduser().resolve()
    for folder in (path, *path.parents):
        project = folder / "pyproject.toml"
        if project.is_file() and (folder / "torchmech").is_dir() and 'name = "torchmech"' in project.read_text():
            return folder
    return None
