"""Learner mode (torchmech/learn/workspace.py, exercises.py, mistakes.py): the learner writes the chapter's code
and the same specification grades it; every classic mistake of the catalogue is caught."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.learners.correct import CORRECT, LATER
from tests.learners.examples import EXAMPLES, HEAD
from torchmech.chapter.implementation import Implementation
from torchmech.cli import main
from torchmech.learn import (
    MARKER,
    MODULES,
    WorkspaceError,
    board,
    check,
    check_section,
    grade,
    hint,
    init_workspace,
    load_workspace,
)
from torchmech.learn.exercises import EXERCISES, exercise
from torchmech.learn.mistakes import MISTAKES, catch
from torchmech.spec.claims import book

pytestmark = pytest.mark.chapter

ROOT = Path(__file__).resolve().parents[1]


def _reference_copy(directory: Path) -> Path:
    """A workspace whose every exercise is torchmech's own piece, imported (a learner may reuse code)."""
    directory.mkdir(parents=True, exist_ok=True)
    for section, module in MODULES.items():
        lines = []
        for e in EXERCISES:
            if e.section == section:
                where, name = Implementation.REFERENCE[e.name].split(":")
                lines.append(f"from {where} import {name}\n")
        (directory / f"{module}.py").write_text("".join(lines))
    return directory


def _write(ws: Path, module: str, old: str, new: str) -> None:
    path = ws / f"{module}.py"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_the_exercises_cover_every_section() -> None:
    """At least 20 exercises, at least one per section, each with three hints and a claim or check."""
    assert len(EXERCISES) >= 20
    assert {e.section for e in EXERCISES} == set(MODULES)
    assert all(len(e.hints) == 3 and e.sample_list for e in EXERCISES)
    assert all(e.name in Implementation.REFERENCE for e in EXERCISES)


def test_init_writes_a_stub_per_exercise_and_never_overwrites(tmp_path: Path) -> None:
    """`learn init` writes one module per section (each exercise's signature, a body raising
    NotImplementedError), a README and the marker commands find it by; run again, it keeps every file the learner
    touched."""
    written, kept = init_workspace(tmp_path)
    assert sorted(p.name for p in written) == sorted([f"{m}.py" for m in MODULES.values()] + ["README.md", MARKER])
    assert kept == []
    for e in EXERCISES:  # a long signature is wrapped: the same words
        assert " ".join(e.stub.split()) in " ".join((tmp_path / f"{MODULES[e.section]}.py").read_text().split())
    (tmp_path / "s1_graph.py").write_text("# mine\n")
    written, kept = init_workspace(tmp_path)
    assert written == [] and len(kept) == 11
    assert (tmp_path / "s1_graph.py").read_text() == "# mine\n"


def test_a_fresh_workspace_is_not_started_everywhere(tmp_path: Path) -> None:
    """Every exercise of a fresh workspace is `not started` (no wall of tracebacks), and its pieces fall
    back to the reference."""
    init_workspace(tmp_path)
    ws = load_workspace(tmp_path)
    grades = [g for s in MODULES for g in check_section(s, ws)]
    assert [g.status for g in grades] == ["not started"] * len(EXERCISES)
    assert ws.impl.source("compute_z") == "reference"
    assert "Next: write `compute_z`" in board(grades[:1])


def test_compute_z_written_is_done_and_a_wrong_one_names_the_book_value_and_the_mistake(tmp_path: Path) -> None:
    """Writing compute_z turns §1 done; a wrong compute_z (2a − b + c) fails with the book's value beside
    the learner's and the catalogue's name for the mistake."""
    init_workspace(tmp_path)
    stub = 'raise NotImplementedError("compute_z: not started (see the docstring)")'
    _write(tmp_path, "s1_graph", stub, "return torch.add(torch.mul(torch.sub(a, b), 2), c)")
    assert [g.status for g in check_section("s1", load_workspace(tmp_path))] == ["done"]
    _write(tmp_path, "s1_graph", "return torch.add(torch.mul(torch.sub(a, b), 2), c)", "return 2 * a - b + c")
    (g,) = check_section("s1", load_workspace(tmp_path))
    assert g.status == "failing"
    assert f"book: {book('s1.compute_z.rank0')}" in g.failure and "yours: tensor(3)" in g.failure
    assert g.mistake == next(m.what for m in MISTAKES if m.name == "compute_z_precedence")


def test_a_copy_of_the_reference_is_done_everywhere(tmp_path: Path) -> None:
    """The reference itself, as a learner's workspace, passes every exercise's claims and checks."""
    ws = load_workspace(_reference_copy(tmp_path))
    grades = [g for s in MODULES for g in check_section(s, ws)]
    assert [g.exercise for g in grades if g.status != "done"] == []
    assert all(ws.impl.source(e.name) != "reference" for e in EXERCISES)


def test_pytest_impl_runs_the_claims_on_the_workspace(tmp_path: Path) -> None:
    """`pytest --impl DIR` runs the registry's claims and the exercises' checks on a workspace: a reference
    copy passes §1 and §4 and the summary names where each piece came from; a wrong compute_z fails §1's
    four claims and its exercise, with the diagnosis `learn check` prints; the hand-written property tests
    pin the reference down and pass."""
    ws = _reference_copy(tmp_path / "ws")
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "s1 or s4", f"--impl={ws}"]
    done = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "implementation under test" in done.stdout and "compute_z" in done.stdout
    (ws / "s1_graph.py").write_text("import torch\n\n\ndef compute_z(a, b, c):\n    return 2 * a - b + c\n")
    done = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=300, check=False)
    assert done.returncode == 1 and "5 failed" in done.stdout, done.stdout[-3000:]
    for failing in ("s1.compute_z.rank0", "test_exercise[compute_z]"):
        assert failing in done.stdout
    assert "test_compute_z_is_2_times_a_minus_b_plus_c" not in done.stdout.split("short test summary")[-1]


def test_every_mistake_of_the_catalogue_is_caught() -> None:
    """At least 60 classic mistakes, each a small variant of the reference; the specification catches
    every one, and every exercise has at least one (each is also named as itself and as nothing else:
    `test_exercise` on the reference, in each section's file)."""
    assert len(MISTAKES) >= 60 and len({m.name for m in MISTAKES}) == len(MISTAKES)
    survivors = [m.name for m in MISTAKES if not catch(m.name)]
    assert survivors == []
    assert {m.exercise for m in MISTAKES} == {e.name for e in EXERCISES}


def test_hint_rungs_stop_short_of_the_answer_until_the_last() -> None:
    """The first two rungs of every ladder hold no code line of the answer: no `return`, no assignment of
    the reference's line; the last rung is the reference's line."""
    for e in EXERCISES:
        for rung in e.hints[:2]:
            assert "return " not in rung and e.hints[2] not in rung, (e.name, rung)


def test_hints_climb_one_rung_per_request(tmp_path: Path) -> None:
    """The ladder: the chapter's idea, then the formula, then the reference's line, then it stays there."""
    e = exercise("glorot_bound")
    got = [hint("glorot_bound", tmp_path) for _ in range(4)]
    assert [g.split(": ", 1)[1] for g in got] == [*e.hints, e.hints[-1]]
    assert got[0].startswith("hint 1/3") and got[2].startswith("hint 3/3")


def test_learn_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`torchmech learn init | check | status | mistakes`: a fresh workspace is not started (exit 1), the
    JSON board lists every exercise, the catalogue has no survivor; a missing or broken workspace is a
    one-line error (exit 2)."""
    ws = tmp_path / "ch13"
    assert main(["learn", "init", str(ws)]) == 0
    assert "wrote" in capsys.readouterr().out
    assert main(["learn", "check", "s1", "--impl", str(ws)]) == 1
    assert "compute_z" in capsys.readouterr().out
    assert main(["learn", "status", "--impl", str(ws), "--json"]) == 1
    board_json = json.loads(capsys.readouterr().out)
    assert [e["exercise"] for e in board_json["exercises"]] == [e.name for e in EXERCISES]
    assert main(["learn", "mistakes", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["mistakes"]) == len(MISTAKES)
    assert main(["learn", "check", "s1", "--impl", str(tmp_path / "absent")]) == 2
    assert "no torchmech workspace in" in capsys.readouterr().err
    (ws / "s2_init.py").write_text("def fans(shape:\n")
    assert main(["learn", "check", "s2", "--impl", str(ws)]) == 1
    out = capsys.readouterr().out
    assert "s2_init.py:1: SyntaxError" in out and "✗ failing" in out


def test_a_broken_module_fails_its_section_only(tmp_path: Path) -> None:
    """A module that raises on import, or does not parse, fails its own section's exercises with the file,
    line and error in one line; the other sections still grade."""
    init_workspace(tmp_path)
    _write(tmp_path, "s1_graph", 'raise NotImplementedError("compute_z: not started (see the docstring)")',
           "return torch.add(torch.mul(torch.sub(a, b), 2), c)")
    (tmp_path / "s3_autodiff.py").write_text("import no_such_module_here\n")
    (tmp_path / "s2_init.py").write_text("import math\n\ndef fans(shape)\n    return 1, 2\n")
    ws = load_workspace(tmp_path)
    (s1,) = check_section("s1", ws)
    assert s1.status == "done"
    s2, s3 = check_section("s2", ws), check_section("s3", ws)
    assert {g.status for g in s2 + s3} == {"failing"}
    assert s2[0].failure.startswith("s2_init.py:3: SyntaxError") and len(s2[0].failure.splitlines()) == 1
    assert "s3_autodiff.py does not import: ModuleNotFoundError" in s3[0].failure
    assert s2[0].mistake == s3[0].mistake == ""
    with pytest.raises(WorkspaceError, match=r"no torchmech workspace in .* \(make one with `torchmech learn init"):
        load_workspace(tmp_path / "nothing")


def test_a_started_exercise_that_raises_is_failing_not_started(tmp_path: Path) -> None:
    """A body that does more than raise NotImplementedError counts as started: its error is the failure."""
    (tmp_path / "s2_init.py").write_text("def fans(shape):\n    x = shape[5]\n    return x, x\n")
    g = grade(exercise("fans"), load_workspace(tmp_path))
    assert g.status == "failing" and "IndexError" in g.failure


# --- the grader on code nobody listed ---------------------------------------------------------------------
def _plant(ws: Path, module: str, source: str) -> Path:
    (ws / f"{module}.py").write_text(HEAD + source)
    return ws


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_the_issues_wrong_answers_fail_with_a_diagnosis(name: str, tmp_path: Path) -> None:
    """Each wrong answer the grader issue lists (written as a learner writes it, in a scratch workspace)
    fails, and the board says what is wrong in the words of what the code does."""
    module, source, words = EXAMPLES[name]
    ws = load_workspace(_plant(tmp_path, module, source))
    graded = [g for g in check_section(module.split("_")[0], ws) if g.status != "not started"]
    assert len(graded) == 1 and graded[0].status == "failing", graded
    assert words in graded[0].failure, graded[0].failure


@pytest.mark.parametrize("name", sorted(CORRECT) + sorted(LATER))
def test_right_answers_written_differently_are_done(name: str) -> None:
    """A right answer need not be torchmech's code: other operators, a DataLoader inside ShuffledBatches,
    randn_like for the noise, no_grad by hand, a metric reset at the epoch's start — each is done (no false
    alarm)."""
    (g,) = check(CORRECT[name] if name in CORRECT else LATER[name]()).grades
    assert g.status == "done", g.failure


def test_an_unlisted_mistake_gets_no_label_and_its_line(tmp_path: Path) -> None:
    """A typo raising AttributeError is no catalogued mistake: no label; the failure names the learner's
    file and line and the exception."""
    ws = load_workspace(_plant(tmp_path, "s1_graph", "def compute_z(a, b, c):\n    return torch.ad(a, c)\n"))
    (g,) = check_section("s1", ws)
    assert g.status == "failing" and g.mistake == ""
    assert "AttributeError" in g.failure and "s1_graph.py:8" in g.failure, g.failure


def test_an_endless_loop_and_a_long_sleep_fail_within_the_limit(tmp_path: Path) -> None:
    """An endless loop and a 30-s sleep each fail with "took longer than 1 s" (the limit, here 1 s): the
    loop after 1 s of computing, the sleep at the wall backstop (3 s); the section's other exercises still
    grade. More in tests/test_learn_limits.py."""
    _plant(tmp_path, "s2_init", "import time\n\ndef fans(shape):\n    while True:\n        pass\n\n\n"
                                "def glorot_bound(fan_in, fan_out, gain=1.0):\n    time.sleep(30)\n\n\n"
                                "def glorot_std(fan_in, fan_out, gain=1.0):\n"
                                "    return gain * math.sqrt(2.0 / (fan_in + fan_out))\n")
    start = time.perf_counter()
    report = check("s2", tmp_path, timeout=1)
    elapsed = time.perf_counter() - start
    by = {g.exercise: g for g in report.grades}
    assert by["fans"].status == by["glorot_bound"].status == "failing"
    assert all("took longer than 1 s" in by[n].failure for n in ("fans", "glorot_bound"))
    assert by["glorot_std"].status == "done" and by["ParameterModule"].status == "not started"
    assert elapsed < 10


def test_a_module_that_hangs_on_import_fails_its_section(tmp_path: Path) -> None:
    """A module whose import never ends fails its section with the time limit; the others still load."""
    _plant(tmp_path, "s1_graph", "while True:\n    pass\n")
    _plant(tmp_path, "s4_nn", "def l1_penalty(weight, strength=0.01):\n    return strength * weight.abs().sum()\n")
    ws = load_workspace(tmp_path, timeout=1)
    assert "took longer than 1 s" in ws.errors["s1"]
    assert grade(exercise("l1_penalty"), ws).status == "done"


def test_check_a_piece_from_a_notebook_cell() -> None:
    """`learn.check(fn)` grades a function by its name; its repr is the board, its HTML a table."""

    def fans(shape):
        return shape[0], shape[1]  # swapped, no receptive field

    report = check(fans)
    assert report.grades[0].status == "failing" and report.exit_code == 1
    assert "0/1 done" in repr(report) and "<table" in report._repr_html_()
    with pytest.raises(WorkspaceError, match="is no exercise"):
        check(sorted)


def test_the_html_board_is_left_aligned_and_keeps_the_diagnosis_indented() -> None:
    """JupyterLab's CSS right-aligns every table cell, and a front end's CSS beats classes: each th and td of the
    notebook board inlines `text-align:left` (and top alignment), and the diagnosis, indented, is in a `<pre>`
    with `white-space:pre-wrap`, as it is in the text board."""
    from html.parser import HTMLParser

    def fans(shape):
        return shape[1], shape[0]  # no receptive field

    class Board(HTMLParser):
        cells: list[str]
        pres: list[list[str]]

        def reset(self) -> None:
            super().reset()
            self.cells, self.pres, self.open = [], [], None

        def handle_starttag(self, tag: str, attrs: list) -> None:
            style = (dict(attrs).get("style") or "").replace(" ", "")
            if tag in ("td", "th"):
                self.cells.append(style)
            elif tag == "pre":
                self.open = [style, ""]
                self.pres.append(self.open)

        def handle_data(self, data: str) -> None:
            if self.open is not None:
                self.open[1] += data

        def handle_endtag(self, tag: str) -> None:
            if tag == "pre":
                self.open = None

    report = check(fans)
    failure = report.grades[0].failure
    assert "\n  " in failure  # the diagnosis is indented under its first line
    board = Board()
    board.feed(report._repr_html_())
    assert len(board.cells) == 8
    assert all("text-align:left" in s and "vertical-align:top" in s for s in board.cells), board.cells
    assert [text for style, text in board.pres if "white-space:pre-wrap" in style] == [failure]


def test_json_output_into_a_closed_pipe_is_quiet(tmp_path: Path) -> None:
    """`torchmech learn status --json | head -1` prints one line and no traceback."""
    init_workspace(tmp_path)
    done = subprocess.run(f"'{sys.executable}' -m torchmech learn status --impl '{tmp_path}' --json | head -1",
                          shell=True, capture_output=True, text=True, timeout=120, check=False)
    assert done.stdout.strip() == "{" and "Traceback" not in done.stderr and "Error" not in done.stderr


def _round_workspace(directory: Path, pieces: dict[str, str]) -> Path:
    """A workspace whose exercises are the named catalogue mistakes (exercise → mistake name)."""
    directory.mkdir(parents=True, exist_ok=True)
    for section, module in MODULES.items():
        lines = ["from torchmech.learn.mistakes import mistake\n"]
        lines += [f"{e.name} = mistake({pieces[e.name]!r}).make()\n" for e in EXERCISES
                  if e.section == section and e.name in pieces]
        (directory / f"{module}.py").write_text("".join(lines))
    return directory


@pytest.mark.slow
def test_learn_check_and_pytest_impl_agree_on_every_mistake(tmp_path: Path, pytester: pytest.Pytester) -> None:
    """Round by round, a workspace holds one catalogued mistake per exercise (then the reference itself):
    `learn check` and `pytest --impl -k test_exercise` (run in this process, so the reference's observations
    are computed once) give the same verdict on every exercise."""
    by_exercise: dict[str, list[str]] = {}
    for m in MISTAKES:
        by_exercise.setdefault(m.exercise, []).append(m.name)
    rounds = [{e: names[i] for e, names in by_exercise.items() if i < len(names)}
              for i in range(max(len(v) for v in by_exercise.values()))]
    for k, pieces in enumerate([*rounds, None]):
        ws = _reference_copy(tmp_path / "ref") if pieces is None else _round_workspace(tmp_path / f"r{k}", pieces)
        learn_verdict = {g.exercise: g.status for g in check(None, ws).grades}
        result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-k", "test_exercise", f"--impl={ws}",
                                              f"--rootdir={ROOT}", "-c", str(ROOT / "pyproject.toml"),
                                              str(ROOT / "tests"))
        status = {"passed": "done", "failed": "failing", "skipped": "not started"}
        pytest_verdict = {}
        for rep in result.reprec.getreports("pytest_runtest_logreport"):
            if "::test_exercise[" in rep.nodeid and (rep.when == "call" or rep.outcome == "skipped"):
                pytest_verdict[rep.nodeid.split("::test_exercise[")[1].rstrip("]")] = status[rep.outcome]
        assert pytest_verdict == learn_verdict, k
        expected = {e.name: "done" if pieces is None else "failing" if e.name in pieces else "not started"
                    for e in EXERCISES}
        assert learn_verdict == expected


def test_the_example_notebook_runs() -> None:
    """docs/learn.ipynb (learn.check on a cell's function, a hint, a workspace) runs top to bottom in a kernel;
    its boards come out as HTML tables; and it shows exactly what its committed outputs show (they are real:
    `python -m tests.notebook` rewrites them)."""
    import nbformat

    from tests.notebook import NOTEBOOK, execute, texts

    nb = execute()
    html = [o["data"]["text/html"] for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if "data" in o and "text/html" in o["data"]]
    assert len(html) == 3 and "1/1 done" in html[0] and "failing" in html[1] and "not started" in html[2]
    assert texts(nb) == texts(nbformat.read(NOTEBOOK, as_version=4)), (
        "docs/learn.ipynb's committed outputs differ from a fresh run's: rewrite them with `python -m tests.notebook`")


def test_the_committed_notebook_is_executed_and_clean() -> None:
    """docs/learn.ipynb is committed executed and clean: nbformat ≥ 4.5 with an id on every cell, valid with no
    warning (no MissingIDFieldWarning), outputs (and no error) on every code cell, counted 1, 2, 3…, no timings,
    and no output that shows a path of the machine that ran it or a memory address."""
    import warnings

    import nbformat

    from tests.notebook import MACHINE, NOTEBOOK, texts

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nb = nbformat.read(NOTEBOOK, as_version=4)
        nbformat.validate(nb)
    raw = json.loads(NOTEBOOK.read_text())  # as committed, before nbformat could fill anything in
    assert (raw["nbformat"], raw["nbformat_minor"]) >= (4, 5)
    ids = [c.get("id") for c in raw["cells"]]
    assert all(ids) and len(set(ids)) == len(ids)
    code = [c for c in raw["cells"] if c["cell_type"] == "code"]
    assert all(c["outputs"] for c in code)
    assert not [o for c in code for o in c["outputs"] if o["output_type"] == "error"]
    assert [c["execution_count"] for c in code] == list(range(1, len(code) + 1))
    assert not [c for c in raw["cells"] if "execution" in c["metadata"]]
    assert not [t for cell in texts(nb) for t in cell if MACHINE.search(t)]


def test_a_workspace_made_by_the_previous_release_still_grades(tmp_path: Path) -> None:
    """The stubs `torchmech learn init` wrote in torchmech 0.1.0 (tests/fixtures/workspace-0.1.0.json: before the
    package moved into subpackages; they import ``torchmech.data.xor``, ``torchmech.train`` and
    ``torchmech.data.auto_mpg`` by their first names) load, grade as not started, and a piece written into them
    is graded: done when right, failing when wrong; §5's and §7's stubs, written from their imports, grade too."""
    fixture = json.loads((Path(__file__).parent / "fixtures" / "workspace-0.1.0.json").read_text())
    for name, text in fixture["files"].items():
        (tmp_path / name).write_text(text.replace("WORKSPACE", str(tmp_path)))
    ws = load_workspace(tmp_path)
    assert [g.status for s in MODULES for g in check_section(s, ws)] == ["not started"] * len(EXERCISES)
    stub = 'raise NotImplementedError("compute_z: not started (see the docstring)")'
    _write(tmp_path, "s1_graph", stub, "return torch.add(torch.mul(torch.sub(a, b), 2), c)")
    assert [g.status for g in check_section("s1", load_workspace(tmp_path))] == ["done"]
    _write(tmp_path, "s1_graph", "return torch.add(torch.mul(torch.sub(a, b), 2), c)", "return 2 * a - b + c")
    assert [g.status for g in check_section("s1", load_workspace(tmp_path))] == ["failing"]
    # the stubs' own imports at work: §5's make_xor returns their XorData, §7's reads their load_auto_mpg
    _write(tmp_path, "s5_xor", 'raise NotImplementedError("make_xor: not started (see the docstring)")',
           "from torchmech.chapter.data.xor import make_xor as reference\n    d = reference(n, seed)\n"
           "    return XorData(d.x, d.y, d.x_train, d.y_train, d.x_valid, d.y_valid)")
    grades = {g.exercise: g.status for g in check_section("s5", load_workspace(tmp_path))}
    assert grades["make_xor"] == "done"


def test_the_learners_line_is_found_past_torchmechs_own_frames(tmp_path: Path) -> None:
    """An error raised inside torchmech (any room: the chapter's train here) from a learner's call is placed at
    the learner's own line, not at torchmech's; an error with no frame of the learner's has no place."""
    import importlib.util

    from torchmech.learn.grader import learner_frame

    mine = tmp_path / "s5_mine.py"
    mine.write_text("from torchmech.chapter.train import train\n\n\n"
                    "def fit():\n    return train(None, None, None, [], 0)\n")
    spec = importlib.util.spec_from_file_location("s5_mine", mine)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(ValueError) as raised:
        module.fit()
    assert learner_frame(raised.value) == "s5_mine.py:5"
    from torchmech.chapter.train import train

    with pytest.raises(ValueError) as inside:
        train(None, None, None, [], 0)
    assert learner_frame(inside.value).startswith("test_learn.py:")  # this test is the caller here
