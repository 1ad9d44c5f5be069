"""Grades a course can collect: a learner's board as JUnit XML and as Gradescope's ``results.json``.

``torchmech learn check --all --junit FILE --gradescope FILE`` writes both (``learn status`` too). Each holds one
entry per exercise graded, in the board's order:

* :func:`junit_xml` — the format CI servers read (GitLab, Jenkins, GitHub's test reporters): one
  ``<testsuite>`` per section, named by its title, one ``<testcase classname="torchmech.learn.s1_graph"
  name="compute_z">`` per exercise. A failing exercise holds ``<failure type="failing">``: its message the
  failure's first line, its text the whole failure and the classic mistake it looks like, if any.
* :func:`gradescope_results` — Gradescope's autograder ``results.json`` (gradescope-autograders.readthedocs.io,
  "Autograder Specifications"): one test per exercise worth :data:`POINTS`, ``status`` ``passed`` or ``failed``,
  the top-level ``score`` their sum and ``output`` the board.

A not-started exercise counts as 0, as a course grades unsubmitted work: a ``<failure type="not started">`` in
JUnit (not ``<skipped>``, which CI reports as neither passed nor failed), a failed test scoring 0 in Gradescope.
A module that does not import fails its section's exercises like any failing code.

:func:`write_junit` and :func:`write_gradescope` write a temporary file beside the target, then rename it over
the target: a reader (a CI job, Gradescope's harness) sees the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from torchmech import SECTIONS
from torchmech.learn.grades import Grade, Grades
from torchmech.learn.where import MODULES

#: The points each exercise is worth in ``results.json``; every exercise weighs the same.
POINTS = 1.0

#: Characters XML 1.0 cannot hold even escaped (a learner's exception message may carry them).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(text: str) -> str:
    """``text`` with each character XML cannot hold written as ``\\xNN``."""
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def message(g: Grade) -> str:
    """One line on an exercise that is not done: the failure's first line, or that it is not started.

    Args:
        g: an exercise's grade.

    Returns:
        The line ("" for a done exercise).
    """
    if g.status == "not started":
        return f"{g.exercise}: not started (its body only raises NotImplementedError); counts as 0"
    if g.status == "failing":
        return next((line.strip() for line in g.failure.splitlines() if line.strip()), "failing")
    return ""


def detail(g: Grade) -> str:
    """All a course shows about an exercise: its failure, the classic mistake it looks like, or its status.

    Args:
        g: an exercise's grade.

    Returns:
        The text, several lines for a failure.
    """
    if g.status != "failing":
        return message(g) or "done"
    return g.failure + (f"\nlooks like a classic mistake: {g.mistake}" if g.mistake else "")


def junit_xml(grades: Grades) -> str:
    """The grades as JUnit XML: a ``<testsuite>`` per section, a ``<testcase>`` per exercise.

    Args:
        grades: a grading's result (``learn.check`` or ``torchmech learn check|status``).

    Returns:
        The XML document, with its declaration.
    """
    def counts(gs: list[Grade]) -> dict[str, str]:
        return {"tests": str(len(gs)), "failures": str(sum(g.status != "done" for g in gs)), "errors": "0",
                "skipped": "0"}

    root = ET.Element("testsuites", {"name": "torchmech learn", **counts(grades.grades)})
    for section in dict.fromkeys(g.section for g in grades.grades):
        mine = [g for g in grades.grades if g.section == section]
        suite = ET.SubElement(root, "testsuite", {"name": SECTIONS[section], **counts(mine)})
        for g in mine:
            case = ET.SubElement(suite, "testcase", classname=f"torchmech.learn.{MODULES[section]}", name=g.exercise)
            if g.status != "done":
                failure = ET.SubElement(case, "failure", message=_xml_text(message(g)), type=g.status)
                failure.text = _xml_text(detail(g))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def gradescope_results(grades: Grades) -> dict[str, Any]:
    """The grades as Gradescope's autograder ``results.json``: a test per exercise, :data:`POINTS` each.

    Args:
        grades: a grading's result.

    Returns:
        The JSON object: ``score`` (the tests' sum), ``output`` (the board), ``tests`` (``name`` "§1 compute_z",
        ``number`` "1.1", ``score``, ``max_score``, ``status``, ``output``, ``tags``, ``visibility``), the
        formats (plain text: the board is no HTML), the visibilities, and ``extra_data``.
    """
    tests = []
    for section in dict.fromkeys(g.section for g in grades.grades):
        mark = SECTIONS[section].split(" ")[0]
        for k, g in enumerate((g for g in grades.grades if g.section == section), 1):
            tests.append({"name": f"{mark} {g.exercise}", "number": f"{mark.lstrip('§')}.{k}",
                          "score": POINTS if g.status == "done" else 0.0, "max_score": POINTS,
                          "status": "passed" if g.status == "done" else "failed", "output": detail(g),
                          "output_format": "text", "tags": [section, g.status], "visibility": "visible"})
    done = sum(g.status == "done" for g in grades.grades)
    return {"score": sum(t["score"] for t in tests), "output": grades.table(), "output_format": "text",
            "test_output_format": "text", "test_name_format": "text", "visibility": "visible",
            "stdout_visibility": "visible", "tests": tests,
            "extra_data": {"workspace": grades.workspace, "done": done, "exercises": len(tests), "full": grades.full}}


def check_target(path: str | Path) -> Path:
    """Say early (before a long grading) why ``path`` could not be written, as far as the folders show it.

    Args:
        path: a file to write.

    Returns:
        The path, ``~`` expanded.

    Raises:
        NotADirectoryError: a folder on the way to it is a file (the error's one line names it).
        IsADirectoryError: the path itself is a folder.
    """
    path = Path(path).expanduser()
    for folder in (path.parent, *path.parent.parents):  # the nearest one that exists must be a folder
        if folder.exists() or folder.is_symlink():
            if not folder.is_dir():
                raise NotADirectoryError(f"{folder} is a file, not a folder")
            break
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder")
    return path


def write_atomically(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in its folder and a rename; create the folders.

    Args:
        path: the file to write (replaced if it exists).
        text: its new content, written as UTF-8.

    Returns:
        The path written.

    Raises:
        OSError: the file cannot be written (:func:`check_target`'s errors, a folder that is not writable…).
    """
    path = check_target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp's 0o600 would keep a CI job's other users out
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def write_junit(grades: Grades, path: str | Path) -> Path:
    """Write :func:`junit_xml` to ``path`` atomically (:func:`write_atomically`).

    Args:
        grades: a grading's result.
        path: the XML file (its folders are created).

    Returns:
        The path written.
    """
    return write_atomically(path, junit_xml(grades))


def write_gradescope(grades: Grades, path: str | Path) -> Path:
    """Write :func:`gradescope_results` to ``path`` atomically (on Gradescope: ``/autograder/results/results.json``).

    Args:
        grades: a grading's result.
        path: the JSON file (its folders are created).

    Returns:
        The path written.
    """
    return write_atomically(path, json.dumps(gradescope_results(grades), indent=2, ensure_ascii=False) + "\n")
