"""Learner mode (torchmech/learn.py, exercises.py, mistakes.py): the learner writes the chapter's code
and the same specification grades it; every classic mistake of the catalogue is caught."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from torchmech.claims import Implementation, book
from torchmech.cli import main
from torchmech.exercises import EXERCISES, exercise
from torchmech.learn import MODULES, WorkspaceError, board, check_section, grade, hint, init_workspace, load_workspace
from torchmech.mistakes import MISTAKES, catch

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
    assert all(len(e.hints) == 3 and (e.claims or e.checks) for e in EXERCISES)
    assert all(e.name in Implementation.REFERENCE for e in EXERCISES)


def test_init_writes_a_stub_per_exercise_and_never_overwrites(tmp_path: Path) -> None:
    """`learn init` writes one module per section (each exercise's signature, a body raising
    NotImplementedError) and a README; run again, it keeps every file the learner touched."""
    written, kept = init_workspace(tmp_path)
    assert sorted(p.name for p in written) == sorted([f"{m}.py" for m in MODULES.values()] + ["README.md"])
    assert kept == []
    for e in EXERCISES:
        assert e.stub in (tmp_path / f"{MODULES[e.section]}.py").read_text()
    (tmp_path / "s1_graph.py").write_text("# mine\n")
    written, kept = init_workspace(tmp_path)
    assert written == [] and len(kept) == 10
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
    """`pytest --impl DIR` runs the registry's claims and the property tests on a workspace: a reference
    copy passes §1 and §4 and the summary names where each piece came from; a wrong compute_z fails §1's
    four claims, its property test (against NumPy) and its graph test."""
    ws = _reference_copy(tmp_path / "ws")
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "s1 or s4", f"--impl={ws}"]
    done = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "implementation under test" in done.stdout and "compute_z" in done.stdout
    (ws / "s1_graph.py").write_text("import torch\n\n\ndef compute_z(a, b, c):\n    return 2 * a - b + c\n")
    done = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=300, check=False)
    assert done.returncode == 1 and "6 failed" in done.stdout, done.stdout[-3000:]
    for failing in ("s1.compute_z.rank0", "test_compute_z_is_2_times_a_minus_b_plus_c",
                    "test_compute_z_graph_is_sub_then_mul_then_add"):
        assert failing in done.stdout


def test_every_mistake_of_the_catalogue_is_caught() -> None:
    """At least 20 classic mistakes, each a small variant of the reference; the specification catches
    every one (a claim or a check fails), and each exercise of §1–§8 has at least one."""
    assert len(MISTAKES) >= 20 and len({m.name for m in MISTAKES}) == len(MISTAKES)
    survivors = [m.name for m in MISTAKES if not catch(m.name)]
    assert survivors == []
    assert {m.exercise for m in MISTAKES} >= {e.name for e in EXERCISES if e.section != "s9"}


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
    assert json.loads(capsys.readouterr().out)["survivors"] == []
    assert main(["learn", "check", "s1", "--impl", str(tmp_path / "absent")]) == 2
    assert "no workspace at" in capsys.readouterr().err
    (ws / "s2_init.py").write_text("def fans(shape:\n")
    assert main(["learn", "check", "s2", "--impl", str(ws)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("torchmech: error: s2_init.py line 1") and len(err.splitlines()) == 1


def test_a_broken_module_is_a_workspace_error(tmp_path: Path) -> None:
    """A module that raises on import is named with the error, not a traceback."""
    (tmp_path / "s1_graph.py").write_text("import no_such_module_here\n")
    with pytest.raises(WorkspaceError, match=r"s1_graph\.py does not import: ModuleNotFoundError"):
        load_workspace(tmp_path)


def test_a_started_exercise_that_raises_is_failing_not_started(tmp_path: Path) -> None:
    """A body that does more than raise NotImplementedError counts as started: its error is the failure."""
    (tmp_path / "s2_init.py").write_text("def fans(shape):\n    x = shape[5]\n    return x, x\n")
    g = grade(exercise("fans"), load_workspace(tmp_path))
    assert g.status == "failing" and "IndexError" in g.failure
