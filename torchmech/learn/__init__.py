"""Learner mode: write the chapter yourself and let the same specification grade it.

where (finding the workspace, before torch is imported), workspace (its stubs, loading, grading and the board;
:func:`check` for notebooks), hints (hints and solutions per exercise), grader (the differential machinery:
comparison, relations), limits (time limits), exercises/ (each section's exercises), mistakes/ (the catalogue of classic
mistakes), course (the grades as JUnit XML and Gradescope's results.json), watch (re-grading on save).
``from torchmech import learn; learn.check("s1", "ch13")``.
Imports :mod:`torchmech.spec` and below; never :mod:`torchmech.check` or :mod:`torchmech.report`.

The names below are imported when first used (PEP 562), so that ``torchmech learn status`` answers from the
remembered grades without importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

#: Each public name → the module that defines it.
_HOME = {
    "MARKER": "where", "MODULES": "where", "WorkspaceError": "where", "find_workspace": "where",
    "Grade": "grades", "Grades": "grades", "board": "grades", "remembered": "grades", "Workspace": "workspace",
    "cached_workspace": "workspace", "check": "workspace", "check_section": "workspace", "grade": "workspace",
    "grade_piece": "workspace", "init_workspace": "workspace", "load_workspace": "workspace", "status": "workspace",
    "NotDone": "where", "hint": "hints", "solution": "hints",
}

__all__ = sorted(_HOME)


def __getattr__(name: str) -> Any:
    if name == "Report":  # the name ``learn.check`` returned before it was ``Grades`` (notebooks may name it)
        name = "Grades"
    if name not in _HOME:
        raise AttributeError(f"module 'torchmech.learn' has no attribute {name!r}")
    return getattr(importlib.import_module(f"torchmech.learn.{_HOME[name]}"), name)


def __dir__() -> list[str]:
    return [*__all__, "Report"]
