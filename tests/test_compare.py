"""`torchmech compare A.json B.json`: two records side by side — claims that moved, verdicts that changed, speed
ratios raw and normalised by each run's calibration — and the fingerprint and calibration every timing record holds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from torchmech.cli import main

pytestmark = pytest.mark.chapter


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real records made here: two quick benches and a quick chapter of §1 (one thread each)."""
    root = tmp_path_factory.mktemp("records")
    for name in ("a", "b"):
        assert main(["bench", "--quick", "--device", "cpu", "--threads", "1", "--out", str(root / name)]) == 0
    main(["chapter", "--sections", "s1", "--quick", "--threads", "1", "--out", str(root / "chapter")])
    return {"bench_a": root / "a" / "bench.json", "bench_b": root / "b" / "bench.json",
            "chapter": root / "chapter" / "results.json"}


def _edited(source: Path, target: Path, edit: Any) -> Path:
    data = json.loads(source.read_text())
    edit(data)
    target.write_text(json.dumps(data))
    return target


def _compare(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, dict]:
    code = main(["compare", *argv])
    out = capsys.readouterr().out
    main(["compare", *argv, "--json"])
    return code, out, json.loads(capsys.readouterr().out)


def test_every_timing_record_holds_a_fingerprint_and_a_calibration(records: dict[str, Path]) -> None:
    for path in records.values():
        data = json.loads(path.read_text())
        env, cal = data["environment"], data["calibration"]
        assert {"cpu", "logical_cores", "load_average", "cudnn", "torch", "device_name", "threads"} <= env.keys()
        assert cal["gemm_n"] == 512 and cal["step_mlp"] == "784-32-16-10" and cal["step_batch"] == 64
        assert 0 < cal["gemm_s"] < 1 and 0 < cal["step_s"] < 1 and cal["gemm_gflops"] > 0
    assert "s1" in json.loads(records["chapter"].read_text())["seconds"]


def test_two_real_runs_compare_normalised(records: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, data = _compare(capsys, str(records["bench_a"]), str(records["bench_b"]))
    assert code == 0 and data["kind"] == "bench" and data["normalised"] is True
    assert "cpu fp32 width 32 batch 1" in out and "normalised: B/A divided by the calibrations' B/A" in out
    assert len(data["speeds"]) == 4 and all(s["normalised"] is not None for s in data["speeds"])


def test_a_planted_slowdown_fails_and_names_the_step(records: dict[str, Path], tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    def slower(data: dict) -> None:
        data["records"][1]["median_s"] *= 2  # cpu fp32 width 32 batch 64

    b = _edited(records["bench_a"], tmp_path / "b.json", slower)
    code, out, data = _compare(capsys, str(records["bench_a"]), str(b), "--fail-slower", "50")
    assert code == 1 and data["exit_code"] == 1
    assert [s["step"] for s in data["speeds"] if s["slower"]] == ["cpu fp32 width 32 batch 64"]
    assert "1 step(s) more than 50% slower: cpu fp32 width 32 batch 64" in out
    assert main(["compare", str(records["bench_a"]), str(b), "--fail-slower", "150"]) == 0  # within 150%
    assert main(["compare", str(records["bench_a"]), str(b)]) == 0  # without --fail-slower speed never fails


def test_the_calibration_normalises(records: dict[str, Path], tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    """B three times as slow everywhere, its calibration too (a slower machine): normalised ≈ 1, no failure;
    without calibrations (older records) the same B compares raw, says so, and fails."""
    def machine_three_times_slower(data: dict) -> None:
        for r in data["records"]:
            r["median_s"] *= 3
        data["calibration"]["gemm_s"] *= 3
        data["calibration"]["step_s"] *= 3

    b = _edited(records["bench_a"], tmp_path / "b.json", machine_three_times_slower)
    code, _, data = _compare(capsys, str(records["bench_a"]), str(b), "--fail-slower", "50")
    assert code == 0 and data["calibration_ratio"] == pytest.approx(3)
    assert all(s["raw"] == pytest.approx(3) and s["normalised"] == pytest.approx(1) for s in data["speeds"])

    old_a = _edited(records["bench_a"], tmp_path / "old_a.json", lambda d: d.pop("calibration"))
    old_b = _edited(b, tmp_path / "old_b.json", lambda d: d.pop("calibration"))
    code, out, data = _compare(capsys, str(old_a), str(old_b), "--fail-slower", "50")
    assert code == 1 and data["normalised"] is False and len([s for s in data["speeds"] if s["slower"]]) == 4
    assert "A and B has no calibration (an older record): speeds compared raw" in out


def test_a_changed_verdict_and_value_show_and_fail(records: dict[str, Path], tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    def plant(data: dict) -> None:
        data["claims"][0] |= {"ours": "tensor(2)", "holds": "no"}  # the value moved and the claim fails
        data["claims"][1]["ours"] = "a value that moved"  # the value moved, the verdict did not

    a = records["chapter"]
    first, second = (c["id"] for c in json.loads(a.read_text())["claims"][:2])
    b = _edited(a, tmp_path / "results.json", plant)
    code, out, data = _compare(capsys, str(a), str(b))
    assert code == 1 and data["kind"] == "chapter"
    changes = {c["claim"]: c for c in data["changes"]}
    assert changes.keys() == {first, second}
    assert changes[first]["regression"] and changes[first]["a"] == "tensor(1)" and changes[first]["b_holds"] == "no"
    assert not changes[second]["regression"]
    assert f"{first} ← FAILS" in out and "tensor(2)" in out and "a value that moved" in out
    assert f"1 claim(s) fail in B that did not in A: {first}" in out
    # a claim failing in both records is each record's own news: only the moved value shows, exit 0
    code, _, data = _compare(capsys, str(b), str(_edited(b, tmp_path / "c.json",
                                                        lambda d: d["claims"][0].update(ours="tensor(3)"))))
    assert code == 0 and [c["claim"] for c in data["changes"]] == [first]


def test_a_conformance_cell_that_fails_anew(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def matrix(holds: str, seconds: float) -> dict:
        return {"environment": {}, "backends": {"cpu": {"seconds": seconds}, "compile": {"seconds": seconds}},
                "failed": [], "claims": [{"id": "s7.x", "cells": {"cpu": {"ours": "1", "holds": "within",
                                                                          "rule": "band"},
                                                                  "compile": {"ours": "1", "holds": holds,
                                                                              "rule": "band"}}}]}

    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(matrix("within", 2.0)))
    b.write_text(json.dumps(matrix("no", 2.0)))
    code, out, data = _compare(capsys, str(a), str(b))
    assert code == 1 and data["kind"] == "conformance" and [c["claim"] for c in data["changes"]] == ["s7.x @ compile"]
    assert "compared raw" in out and len(data["speeds"]) == 2


def test_records_of_two_kinds_or_no_record_are_one_line_errors(records: dict[str, Path], tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", str(records["bench_a"]), str(records["chapter"])]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a bench record and" in err and "a chapter record" in err
    (tmp_path / "junk.json").write_text("{not json")
    (tmp_path / "other.json").write_text(json.dumps({"hello": 1}))
    shutil.copy(records["bench_a"], tmp_path / "bench.json")
    for other in ("junk.json", "other.json", "missing.json"):
        assert main(["compare", str(tmp_path / "bench.json"), str(tmp_path / other)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("torchmech: error: "), err
