"""Learner mode: write the chapter yourself and let the same specification grade it.

workspace (a learner's workspace: its stubs, loading, grading and the board; :func:`check` for notebooks),
grader (the differential machinery: comparison, relations, time limits), exercises/ (each section's exercises)
and mistakes/ (the catalogue of classic mistakes). ``from torchmech import learn; learn.check("s1", "ch13")``.
Imports :mod:`torchmech.spec` and below; never :mod:`torchmech.check` or :mod:`torchmech.report`.
"""

from torchmech.learn.workspace import (
    MODULES,
    Grade,
    Grades,
    Workspace,
    WorkspaceError,
    board,
    cached_workspace,
    check,
    check_section,
    grade,
    grade_piece,
    hint,
    init_workspace,
    load_workspace,
)

#: The name ``learn.check`` returned before it was :class:`Grades` (notebooks may name it).
Report = Grades

__all__ = ["MODULES", "Grade", "Grades", "Workspace", "WorkspaceError", "board", "cached_workspace", "check",
           "check_section", "grade", "grade_piece", "hint", "init_workspace", "load_workspace"]
