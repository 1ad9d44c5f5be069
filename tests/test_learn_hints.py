"""Hints and solutions per exercise (torchmech/learn/hints.py): any exercise's ladder at any time, from the
command line and from a notebook; the reference only once the exercise is done."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.learners import RIGHT_Z, STUB_Z
from torchmech.cli import main
from torchmech.learn import NotDone, WorkspaceError, hint, solution
from torchmech.learn import hints as hints_module
from torchmech.learn.exercises import exercise

pytestmark = pytest.mark.chapter

WRONG_Z = "return torch.add(torch.mul(torch.sub(a, b), 3), c)"


@pytest.fixture
def ws(fresh_workspace: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh workspace, standing in it."""
    monkeypatch.chdir(fresh_workspace)
    return fresh_workspace


def _write_z(ws: Path, body: str) -> None:
    path = ws / "s1_graph.py"
    path.write_text(path.read_text().replace(STUB_Z, body))


def test_any_exercise_climbs_its_own_ladder_from_the_command_line(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`learn check --hint NoisyLinear` while every earlier exercise is unwritten: NoisyLinear's rungs, one per
    request; another exercise's ladder is its own."""
    for rung in (1, 2, 3, 3):
        assert main(["learn", "check", "--hint", "NoisyLinear"]) == 1  # §6 is not done: the board's exit status
        out = capsys.readouterr().out
        assert f"hint {rung}/3 for `NoisyLinear`" in out and exercise("NoisyLinear").hints[rung - 1] in out
    main(["learn", "check", "--hint", "compute_z"])
    assert "hint 1/3 for `compute_z`" in capsys.readouterr().out
    main(["learn", "check", "s1", "--hint"])  # alone: the section's first unfinished exercise
    assert "hint 2/3 for `compute_z`" in capsys.readouterr().out


def test_a_hint_for_no_exercise_is_one_line(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["learn", "check", "--hint", "compute_zz"]) == 2
    err = capsys.readouterr().err.strip()
    assert "compute_zz" in err and "compute_z" in err and len(err.splitlines()) == 1
    with pytest.raises(WorkspaceError, match="no exercise"):
        hint(lambda: None)


def test_a_notebook_asks_by_the_piece_itself_and_the_session_keeps_the_rung(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside any workspace (a notebook's folder) `hint(NoisyLinear)` climbs too: the session keeps the rung."""
    monkeypatch.delenv("TORCHMECH_IMPL", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(hints_module, "_SESSION", {})

    class NoisyLinear(torch.nn.Module):
        pass

    got = [hint(NoisyLinear) for _ in range(2)]
    assert got[0].startswith("hint 1/3 for `NoisyLinear`") and got[1].startswith("hint 2/3 for `NoisyLinear`")
    assert repr(got[0]) == str(got[0])  # shown as text in a notebook
    assert not (tmp_path / ".hints.json").exists()


def test_the_solution_opens_only_once_the_exercise_is_done(ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Not started and failing: one line, exit 1, no code shown. Done: the reference's code and the book's values."""
    for body in (None, WRONG_Z):
        if body:
            _write_z(ws, body)
        assert main(["learn", "solution", "compute_z"]) == 1
        captured = capsys.readouterr()
        status = "not started" if body is None else "failing"
        assert f"`compute_z` is {status}" in captured.err and len(captured.err.strip().splitlines()) == 1
        assert "def compute_z" not in captured.out + captured.err
    path = ws / "s1_graph.py"
    path.write_text(path.read_text().replace(WRONG_Z, RIGHT_Z))
    assert main(["learn", "solution", "compute_z"]) == 0
    out = capsys.readouterr().out
    assert "def compute_z" in out and "torch.sub" in out and "s1.compute_z.rank0" in out and "book:" in out


def test_a_notebooks_piece_gets_its_solution_once_it_is_right() -> None:
    def compute_z(a, b, c):
        return torch.add(torch.mul(torch.sub(a, b), 2), c)

    assert "def compute_z" in solution(compute_z)

    def wrong(a, b, c):
        return a - b + c

    wrong.__name__ = "compute_z"
    with pytest.raises(NotDone, match="failing here"):
        solution(wrong)


def test_a_workspace_ladder_starts_at_its_own_first_rung(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rungs a notebook session climbed outside any workspace do not carry into a workspace's ladder."""
    monkeypatch.setattr(hints_module, "_SESSION", {"compute_z": 2})
    assert hint("compute_z", ws).startswith("hint 1/3 for `compute_z`")
    assert hints_module._SESSION == {"compute_z": 2}
