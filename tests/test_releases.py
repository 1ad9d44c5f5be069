"""The release sweep's view (torchmech/check/releases.py): rows joined into one table, the claims that move between
releases and the first release where they do, and the chapter's verdict on a torch newer than measured."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from torchmech.check.releases import first_change, load, main, moving, table
from torchmech.report.chapter import ChapterReport
from torchmech.runtime.devices import NEWEST_MEASURED, newer_than_measured
from torchmech.spec.core import Result

pytestmark = pytest.mark.chapter


def _row(directory: Path, name: str, torch: str, values: dict[str, tuple[str, str]], console: list[str]) -> None:
    versions = {"torch": torch, "numpy": "2.4.6", "torchvision": "0", "lightning": "2.6.6"}
    claims = [{"id": i, "ours": o, "holds": h} for i, (o, h) in values.items()]
    (directory / f"{name}.json").write_text(json.dumps({"row": name, "versions": versions, "claims": claims,
                                                         "console": console, "seconds": 60, "exit_code": 0}))


def test_rows_join_into_one_table_with_the_claims_that_move(tmp_path: Path) -> None:
    """Rows sort by torch release (2.10 after 2.9); a claim whose value differs is listed with each row's
    value and the first row that differs; a steady claim is not; console lines are counted."""
    _row(tmp_path, "b", "2.10.0", {"s1.x": ("1", "exact"), "s7.y": ("9.59", "band")}, [])
    _row(tmp_path, "a", "2.9.1", {"s1.x": ("1", "exact"), "s7.y": ("9.58", "band")}, ["UserWarning: x"])
    _row(tmp_path, "c", "2.15.0", {"s1.x": ("1", "exact"), "s7.y": ("9.59", "no")}, [])
    rows = load(tmp_path)
    assert [r.name for r in rows] == ["a", "b", "c"] and [r.holding for r in rows] == [2, 2, 1]
    moved = moving(rows)
    assert list(moved) == ["s7.y"] and first_change(moved["s7.y"]) == "b"
    text = table(rows)
    assert "| a | 2.9.1 |" in text and "1 lines" in text and "`s7.y` | 9.58 | 9.59 | 9.59 | b |" in text
    assert "differs between rows: 1 of 2" in text


def test_the_view_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m torchmech.check.releases view DIR --png F` prints the table and draws the heat map; no rows is a
    one-line error."""
    _row(tmp_path, "a", "2.9.1", {"s1.x": ("1", "exact")}, [])
    assert main(["view", str(tmp_path), "--png", str(tmp_path / "r.png")]) == 0
    assert "| a |" in capsys.readouterr().out and (tmp_path / "r.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["view", str(tmp_path / "none")]) == 2
    assert capsys.readouterr().err.startswith("python -m torchmech.check.releases: error: no rows")


def test_a_torch_newer_than_measured_is_one_line_of_the_verdict() -> None:
    """The chapter's verdict says so when torch is newer than the newest release measured (not a failure)."""
    assert newer_than_measured("2.99.0+cu130") and not newer_than_measured(NEWEST_MEASURED)
    assert not newer_than_measured("2.4.1")
    result = Result(id="s1.x", section="s1", statement="", book="1", ours="1", holds="exact", rule="")
    env = {"torch": "2.99.0", "device": "cpu", "device_name": "x", "torchmech": "0", "python": "3", "threads": "2"}
    report = ChapterReport([result], env)
    assert "torch 2.99.0 is newer than the newest release measured" in report.summary()
    assert report.exit_code == 0
    assert "newer than" not in ChapterReport([result], env | {"torch": NEWEST_MEASURED}).summary()


# --- the recorded sweep (benchmarks/results/releases, made by `make releases`) ----------------------------
RECORDED = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "releases"


def test_the_recorded_table_covers_every_claim_on_every_row() -> None:
    """At least five rows from the lowest supported torch to the newest measured; each row measured every
    claim of the registry, and printed nothing on the console beside its JSON."""
    from torchmech.spec.claims import claims

    rows = load(RECORDED)
    assert len(rows) >= 5
    ids = [c.id for c in claims()]
    assert {r.name: sorted(r.claims) for r in rows} == {r.name: sorted(ids) for r in rows}
    assert {r.name: r.console for r in rows} == {r.name: [] for r in rows}
    assert NEWEST_MEASURED in {r.versions["torch"] for r in rows}
    assert not any(newer_than_measured(r.versions["torch"]) for r in rows)


def test_pyprojects_lower_bounds_are_the_lowest_rows_measured_to_pass() -> None:
    """Each dependency's lower bound in pyproject.toml is the lowest release of it on a row where every claim
    holds and the §1–§4 suite passes."""
    import re

    import tomllib

    deps = tomllib.loads((RECORDED.parents[2] / "pyproject.toml").read_text())["project"]["dependencies"]
    bounds = dict(m.groups() for d in deps if (m := re.fullmatch(r"([\w-]+)>=([\w.]+)", d)))
    passing = [r for r in load(RECORDED) if r.holding == len(r.claims) and r.tests.get("failed", 1) == 0
               and r.tests.get("passed", 0) > 0]
    for name, bound in bounds.items():
        measured = sorted({r.versions[name] for r in passing if name in r.versions},
                          key=lambda v: tuple(int(p) for p in re.findall(r"\d+", v)[:3]))
        assert measured and measured[0].startswith(bound), (name, bound, measured)


def test_measure_leaves_the_chapters_progress_lines_out_of_the_console(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A row's console is what the chapter printed besides its JSON: a library's warning counts; the chapter's own
    progress lines (its stderr is a pipe there: a log, so it writes them) do not."""
    import subprocess

    from torchmech.check import releases

    stderr = ("[run] mnist 20 epochs on cpu: 212.4 s\n[chapter] §8 done: 9 claims in 215.0 s (8/9)\n"
              "UserWarning: a library's warning\n")
    done = subprocess.CompletedProcess([], 0, stdout=json.dumps({"claims": [], "counts": {}}), stderr=stderr)
    monkeypatch.setattr(releases.subprocess, "run", lambda *args, **kwargs: done)
    assert releases.measure("torch-x", tmp_path / "row.json")["console"] == ["UserWarning: a library's warning"]
