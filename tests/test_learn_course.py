"""Grades a course can collect (torchmech/learn/course.py, `learn check --all --junit FILE --gradescope FILE`): a
learner's board as JUnit XML and as Gradescope's results.json, each exercise once, a not-started one counted as 0,
written atomically; a bad path is a one-line error before the grading."""

from __future__ import annotations

import json
import os
import stat
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from junitparser import Failure, JUnitXml

from torchmech import SECTIONS, learn
from torchmech.cli import main
from torchmech.learn import MODULES, Grade, Grades, check_section, init_workspace, load_workspace
from torchmech.learn.course import (
    gradescope_results,
    junit_xml,
    message,
    write_atomically,
    write_gradescope,
    write_junit,
)
from torchmech.learn.exercises import EXERCISES

pytestmark = pytest.mark.chapter

#: A learner's §2: fans right, glorot_bound without the gain (a catalogued mistake), glorot_std raising with what
#: XML must escape (<, &, ") and hold (an escape and a NUL byte); ParameterModule not written.
S2 = '''import math


def fans(shape):
    r = math.prod(shape[2:])
    return shape[1] * r, shape[0] * r


def glorot_bound(fan_in, fan_out, gain=1.0):
    return math.sqrt(6.0 / (fan_in + fan_out))


def glorot_std(fan_in, fan_out, gain=1.0):
    raise ValueError('bad <fan> & "gain" \\x1b[31m\\x00 here')
'''
SECTIONS_GRADED = ("s1", "s2", "s3")


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Grades]:
    """A workspace with §1 done, §2 done / failing (one a catalogued mistake) / not started, §3 not started, and
    its grades on those three sections."""
    ws = tmp_path_factory.mktemp("course") / "ch13"
    init_workspace(ws)
    (ws / "s1_graph.py").write_text("import torch\n\n\ndef compute_z(a, b, c):\n"
                                    "    return torch.add(torch.mul(torch.sub(a, b), 2), c)\n")
    (ws / "s2_init.py").write_text(S2)
    loaded = load_workspace(ws, sections=SECTIONS_GRADED)
    return ws, Grades([g for s in SECTIONS_GRADED for g in check_section(s, loaded)], str(ws))


def test_the_workspace_holds_every_status(graded: tuple[Path, Grades]) -> None:
    """The fixture is what the other tests need: done, failing (one with a mistake) and not started, in ≥ 2
    sections."""
    _, grades = graded
    status = {g.exercise: g.status for g in grades.grades}
    assert status["compute_z"] == status["fans"] == "done"
    assert status["glorot_bound"] == status["glorot_std"] == "failing"
    assert status["ParameterModule"] == status["fgsm"] == "not started"
    assert next(g for g in grades.grades if g.exercise == "glorot_bound").mistake
    assert "<fan> &" in next(g for g in grades.grades if g.exercise == "glorot_std").failure


def test_junit_reads_back_with_junitparser(graded: tuple[Path, Grades], tmp_path: Path) -> None:
    """junitparser reads a testsuite per section (its title, its counts) and a testcase per exercise; a failing
    exercise's failure has the failure's first line as message and the whole failure and the classic mistake as
    text; a not-started exercise is a failure of type "not started" (a course grades it 0), never a pass or a
    skip."""
    _, grades = graded
    xml = JUnitXml.fromfile(str(write_junit(grades, tmp_path / "junit.xml")))
    by_name = {g.exercise: g for g in grades.grades}
    not_done = sum(g.status != "done" for g in grades.grades)
    assert (xml.tests, xml.failures, xml.errors, xml.skipped) == (len(grades.grades), not_done, 0, 0)
    suites = list(xml)
    assert [s.name for s in suites] == [SECTIONS[s] for s in SECTIONS_GRADED]
    for section, suite in zip(SECTIONS_GRADED, suites, strict=True):
        mine = [g for g in grades.grades if g.section == section]
        assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (
            len(mine), sum(g.status != "done" for g in mine), 0, 0)
        cases = list(suite)
        assert [c.name for c in cases] == [g.exercise for g in mine]
        assert {c.classname for c in cases} == {f"torchmech.learn.{MODULES[section]}"}
        for case in cases:
            g = by_name[case.name]
            assert case.is_passed == (g.status == "done") and not case.is_skipped
            if g.status == "done":
                assert case.result == []
                continue
            (failure,) = case.result
            assert isinstance(failure, Failure) and failure.type == g.status
            if g.status == "failing":
                assert failure.message == g.failure.splitlines()[0].strip()
                assert g.failure.splitlines()[-1].strip() in failure.text
                assert (f"looks like a classic mistake: {g.mistake}" in failure.text) == bool(g.mistake)
            else:
                assert "not started" in failure.message and "counts as 0" in failure.message


def test_junit_reads_back_with_the_standard_library(graded: tuple[Path, Grades]) -> None:
    """xml.etree parses it; every count attribute equals the elements it counts; what XML must escape comes back
    as written, and what XML 1.0 cannot hold (an escape, a NUL byte) comes back as \\xNN."""
    _, grades = graded
    root = ET.fromstring(junit_xml(grades))
    assert root.tag == "testsuites"
    for node in [root, *root.iter("testsuite")]:
        cases = list(node.iter("testcase"))
        assert int(node.get("tests")) == len(cases)
        assert int(node.get("failures")) == sum(c.find("failure") is not None for c in cases)
        assert int(node.get("errors")) == int(node.get("skipped")) == 0
    std = next(c for c in root.iter("testcase") if c.get("name") == "glorot_std").find("failure")
    assert 'raised ValueError: bad <fan> & "gain" \\x1b[31m\\x00 here at s2_init.py:14' in std.text
    odd = Grade("compute_z", "s1", "failing", failure='x < y & "z"\a\ud800 \U0001f600\nsecond', mistake="<&>")
    (case,) = ET.fromstring(junit_xml(Grades([odd]))).iter("failure")
    assert case.get("message") == 'x < y & "z"\\x07\\xd800 \U0001f600'
    assert case.text == 'x < y & "z"\\x07\\xd800 \U0001f600\nsecond\nlooks like a classic mistake: <&>'


def test_gradescope_results_hold_every_field(graded: tuple[Path, Grades], tmp_path: Path) -> None:
    """results.json: the top-level score (the tests' sum), output (the board), visibilities and formats; a test
    per exercise with a unique name and number, score 1 when done and 0 otherwise (not started too), max_score 1,
    status passed / failed, the failure as output."""
    _, grades = graded
    data = json.loads(write_gradescope(grades, tmp_path / "results" / "results.json").read_text(encoding="utf-8"))
    assert data == json.loads(json.dumps(gradescope_results(grades)))
    visibilities = {"hidden", "after_due_date", "after_published", "visible"}
    assert data["visibility"] in visibilities and data["stdout_visibility"] in visibilities
    assert data["output"] == grades.table() and data["output_format"] == data["test_output_format"] == "text"
    tests = data["tests"]
    assert len(tests) == len(grades.grades)
    for t, g in zip(tests, grades.grades, strict=True):
        assert {"name", "number", "score", "max_score", "status", "output", "visibility"} <= set(t)
        assert all(isinstance(t[k], str) for k in ("name", "number", "status", "output", "visibility"))
        assert all(isinstance(t[k], float) for k in ("score", "max_score"))
        assert g.exercise in t["name"] and t["visibility"] in visibilities
        assert (t["score"], t["max_score"], t["status"]) == ((1.0, 1.0, "passed") if g.status == "done"
                                                             else (0.0, 1.0, "failed"))
        if g.status == "failing":
            assert t["output"].startswith(g.failure)
            assert (f"\nlooks like a classic mistake: {g.mistake}" in t["output"]) == bool(g.mistake)
        else:
            assert t["output"] == (message(g) or "done")
    assert len({t["name"] for t in tests}) == len({t["number"] for t in tests}) == len(tests)
    assert [t["number"] for t in tests[:3]] == ["1.1", "2.1", "2.2"]
    assert isinstance(data["score"], float) and data["score"] == sum(t["score"] for t in tests) == 2.0
    assert data["extra_data"]["done"] == 2


def test_a_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reader holding the old file keeps reading all of it (the new one arrives by a rename, not by rewriting the
    old in place); a write that fails on the way leaves the old file whole and no temporary file behind; the file
    is readable by others, as CI artifacts are."""
    target = tmp_path / "deep" / "er" / "junit.xml"
    write_atomically(target, "old " * 1000)
    with target.open(encoding="utf-8") as reader:
        write_atomically(target, "new")
        assert reader.read() == "old " * 1000
    assert target.read_text() == "new" and os.stat(target).st_mode & stat.S_IROTH

    def crash(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="No space left"):
        write_atomically(target, "half")
    assert target.read_text() == "new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["junit.xml"]


def test_the_cli_writes_both_files(graded: tuple[Path, Grades], tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    """`learn check --all --junit --gradescope` grades every section and writes both files (folders created),
    closing the board with their paths; `learn status --junit` and `learn check s1 --gradescope --json` too."""
    ws, _ = graded
    junit, results = tmp_path / "ci" / "junit.xml", tmp_path / "autograder" / "results" / "results.json"
    assert main(["learn", "check", "--all", "--impl", str(ws), "--junit", str(junit),
                 "--gradescope", str(results)]) == 1
    out = capsys.readouterr().out
    assert out.rstrip().endswith(f"wrote {junit}, {results}") and "2/22 done" in out
    xml = JUnitXml.fromfile(str(junit))
    assert (xml.tests, xml.failures, len(list(xml))) == (len(EXERCISES), len(EXERCISES) - 2, len(MODULES))
    data = json.loads(results.read_text())
    assert [t["name"].split(" ")[1] for t in data["tests"]] == [e.name for e in EXERCISES]
    assert data["score"] == 2.0
    assert main(["learn", "status", "--impl", str(ws), "--junit", str(tmp_path / "status.xml")]) == 1
    assert JUnitXml.fromfile(str(tmp_path / "status.xml")).tests == len(EXERCISES)
    capsys.readouterr()
    assert main(["learn", "check", "s1", "--impl", str(ws), "--gradescope", str(results), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["report"] == [str(results)]
    assert json.loads(results.read_text())["score"] == 1.0


@pytest.mark.parametrize(("args", "error"), [
    (["learn", "check"], "learn check: name a section (s1 … s9) or --all"),
    (["learn", "check", "s1", "--all"], "learn check: name a section (s1) or --all, not both"),
    (["learn", "check", "--all", "--junit", "{file}/junit.xml"], "cannot write --junit {file}/junit.xml: "
                                                                 "{file} is a file, not a folder"),
    (["learn", "status", "--gradescope", "{file}/a/b.json"], "cannot write --gradescope {file}/a/b.json: "
                                                             "{file} is a file, not a folder"),
    (["learn", "check", "s1", "--junit", "{dir}"], "cannot write --junit {dir}: {dir} is a folder"),
])
def test_the_cli_says_what_is_wrong_in_one_line(args: list[str], error: str, graded: tuple[Path, Grades],
                                                tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Neither a section nor --all, or both; a path under a file; a path that is a folder: one line, exit 2, before
    the grading (a workspace loaded or graded here fails the test) and with the file under the path untouched."""
    def graded_first(*args: object, **kwargs: object) -> None:
        raise AssertionError("graded before the command line was checked")

    for name in ("load_workspace", "check_section", "status"):
        monkeypatch.setattr(learn, name, graded_first, raising=False)
    (tmp_path / "file").write_text("mine")
    names = {"file": str(tmp_path / "file"), "dir": str(tmp_path)}
    argv = [a.format(**names) for a in args] + ["--impl", str(graded[0])]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == f"torchmech: error: {error.format(**names)}\n"
    assert (tmp_path / "file").read_text() == "mine"


def test_an_unwritable_folder_is_one_line_and_leaves_nothing(graded: tuple[Path, Grades], tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """A folder the grades cannot be written into (here: the rename refused, as a read-only folder refuses it) is
    one line naming the option, the file and the reason, exit 2, and no file or temporary file is left."""
    ws, _ = graded

    def refuse(src: object, dst: object) -> None:
        raise PermissionError(13, "Permission denied", str(src))

    monkeypatch.setattr(os, "replace", refuse)
    out = tmp_path / "results.json"
    assert main(["learn", "check", "s1", "--impl", str(ws), "--gradescope", str(out)]) == 2
    assert capsys.readouterr().err == f"torchmech: error: cannot write --gradescope {out}: Permission denied\n"
    assert list(tmp_path.iterdir()) == []
