"""Where the workspace is (torchmech/learn/where.py): found as git finds a repository, so that every command
torchmech prints runs as printed from the workspace's root and from any folder inside it; never made inside a
torchmech checkout; fresh stubs that the linter accepts."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.learners import STUB_Z
from torchmech.cli import main
from torchmech.learn import MARKER, WorkspaceError, find_workspace, init_workspace
from torchmech.learn.grades import board
from torchmech.learn.workspace import check_section, load_workspace

pytestmark = pytest.mark.chapter

ROOT = Path(__file__).resolve().parents[1]
COMMAND = re.compile(r"`(torchmech [^`]+)`")


@pytest.fixture
def fresh(fresh_workspace: Path) -> Path:
    return fresh_workspace


def test_found_from_the_root_and_from_any_folder_inside(fresh: Path, tmp_path: Path) -> None:
    """From the root, a sub-folder and a sub-sub-folder the same workspace; from outside none (one line naming
    where it looked); a given --impl or $TORCHMECH_IMPL wins over the folder one stands in, as in git."""
    deep = fresh / "notes" / "day1"
    deep.mkdir(parents=True)
    for start in (fresh, fresh / "notes", deep):
        assert find_workspace(start=start) == fresh.resolve()
    with pytest.raises(WorkspaceError) as outside:
        find_workspace(start=tmp_path)
    assert str(tmp_path) in str(outside.value) and "\n" not in str(outside.value)
    other = tmp_path / "other"
    init_workspace(other)
    assert find_workspace(other, start=deep) == other
    assert find_workspace(deep) == fresh.resolve()  # a folder inside a workspace means that workspace


def test_environment_comes_between_the_option_and_the_folder(fresh: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "other"
    init_workspace(other)
    monkeypatch.setenv("TORCHMECH_IMPL", str(other))
    assert find_workspace(start=fresh) == other
    assert find_workspace(fresh, start=tmp_path) == fresh
    monkeypatch.setenv("TORCHMECH_IMPL", str(tmp_path / "nowhere"))
    with pytest.raises(WorkspaceError, match=r"TORCHMECH_IMPL"):
        find_workspace(start=fresh)


def test_a_workspace_of_an_earlier_release_without_the_marker_is_found_when_named(fresh: Path) -> None:
    (fresh / MARKER).unlink()
    assert find_workspace(fresh) == fresh
    with pytest.raises(WorkspaceError):
        find_workspace(start=fresh)
    init_workspace(fresh)  # init again adds what is missing (the marker), keeps the learner's files
    assert find_workspace(start=fresh) == fresh.resolve()


def _printed_commands(ws: Path, capsys: pytest.CaptureFixture[str]) -> set[str]:
    """Every command torchmech prints for a learner: `learn init`'s Next, the board's Next, each stub's module
    line and "Stuck?" line, the workspace README, a solution refused."""
    texts = [(ws / "README.md").read_text(), *(p.read_text() for p in sorted(ws.glob("s*_*.py")))]
    loaded = load_workspace(ws, sections=["s1"])
    texts.append(board(check_section("s1", loaded)))
    assert main(["learn", "solution", "compute_z", "--impl", str(ws)]) == 1
    texts.append(capsys.readouterr().err)
    init_out = ws.parent / "again"
    assert main(["learn", "init", str(init_out)]) == 0
    texts.append(capsys.readouterr().out)
    commands = {c for text in texts for c in COMMAND.findall(text)}
    commands |= {line.split("#")[0].strip() for line in texts[0].splitlines() if line.startswith("    torchmech ")}
    return {c for c in commands if not c.startswith(("torchmech learn init", "torchmech learn watch"))}


def test_every_printed_command_runs_as_printed_from_the_root_and_from_inside(
        fresh: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Each command found in what torchmech prints runs verbatim from the root and from a sub-folder: none ends
    in a usage error or "no torchmech workspace" (a fresh workspace's checks end 1: nothing is done yet).
    `learn watch` stays open, so it is run in test_learn_watch.py; `learn init` is run above."""
    commands = _printed_commands(fresh, capsys)
    assert {"torchmech learn status", "torchmech learn check s1", "torchmech learn check --hint compute_z",
            "torchmech learn check --hint NoisyLinear", "torchmech learn solution compute_z"} <= commands, commands
    assert not any("--impl" in c for c in commands), commands  # nothing to type that depends on where one stands
    inside = fresh / "notes"
    inside.mkdir()
    for folder in (fresh, inside):
        monkeypatch.chdir(folder)
        for command in sorted(commands):
            code = main(command.split()[1:])
            err = capsys.readouterr().err
            assert code in (0, 1) and "no torchmech workspace" not in err and "usage" not in err, (folder, command,
                                                                                                   err)


def test_init_refuses_a_torchmech_checkout_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Inside a checkout (here: a copy of its pyproject beside a torchmech/ folder) `learn init` writes nothing
    and says, in one line, why and where to go instead."""
    checkout = tmp_path / "torchmech-checkout"
    (checkout / "torchmech").mkdir(parents=True)
    (checkout / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    assert main(["learn", "init", str(checkout / "ch13")]) == 2
    err = capsys.readouterr().err.strip()
    assert "inside the torchmech checkout" in err and "learn init" in err and len(err.splitlines()) == 1
    assert not (checkout / "ch13").exists()
    assert main(["learn", "init", str(tmp_path / "ch13")]) == 0  # beside it: fine


def test_fresh_stubs_are_ruff_clean_under_the_projects_rules(fresh: Path) -> None:
    """The stubs as written pass `ruff check` with this project's configuration, run where the learner works (their
    workspace, where torchmech is an installed library): unused imports included, since the stubs import what the
    chapter's code will use."""
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--config",
                           str(ROOT / "pyproject.toml"), "."], capture_output=True, text=True, check=False, cwd=fresh)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_file_saved_twice_within_a_second_is_loaded_as_saved(fresh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The modules are run from their text, not from a cached .pyc (which a same-size save within the same second
    would leave stale), and nothing is cached into the learner's folder (on a machine that writes bytecode)."""
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    path = fresh / "s1_graph.py"
    stub = path.read_text()
    for k in (2, 3, 2):
        path.write_text(stub.replace(STUB_Z,
                                     f"return torch.add(torch.mul(torch.sub(a, b), {k}), c)"))
        ws = load_workspace(fresh, sections=["s1"])
        assert float(ws.impl.compute_z(torch.tensor(1.0), torch.tensor(0.0), torch.tensor(0.0))) == k
    assert not (fresh / "__pycache__").exists()
