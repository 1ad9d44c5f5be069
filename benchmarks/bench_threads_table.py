"""The thread table (benchmarks/threads_table.py) runs: XOR's 5 epochs at 1 and 2 threads beside a busy process, each
in a fresh process (`make test`'s smoke run); the full table is `.venv/bin/python benchmarks/threads_table.py` on a
quiet machine."""

from __future__ import annotations

from benchmarks.threads_table import _cell, measure, table


def test_threads_table_times_each_count_in_a_fresh_process() -> None:
    found = measure(smoke=True, conditions=("busy",))
    rows = [(r["run"], r["condition"], r["threads"]) for r in found["rows"]]
    assert rows == [("xor", "busy", 1), ("xor", "busy", 2)]
    assert all(r["seconds"] > 0 for r in found["rows"])  # the threads: what each child had, as it was given
    assert "busy 2t" in table(found) and found["machine"]["cores"]


def test_a_cell_past_its_cap_is_recorded_as_such() -> None:
    row = _cell("xor", 1, smoke=True, cap=0.2)
    assert row == {"seconds": None, "timed_out": True, "cap_s": 0.2}
    assert "> 0" in table({"rows": [{"run": "xor", "condition": "busy", "threads": 1} | row]})
