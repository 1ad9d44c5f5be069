"""The learner's latency benchmark (benchmarks/learn_latency.py) runs: one section, once (`make test`'s smoke run);
the full table is `.venv/bin/python benchmarks/learn_latency.py FILE` on a quiet machine."""

from __future__ import annotations

from benchmarks.learn_latency import measure, table


def test_learn_latency_measures_every_part() -> None:
    found = measure(sections=["s1"], repeat=1)
    assert set(found["cold_check_s"]) == set(found["warm_check_s"]) == set(found["watch_save_to_board_s"]) == {"s1"}
    assert all(v > 0 for v in (found["status_remembered_s"], found["pytest_m_s1_s"], found["cold_check_s"]["s1"]))
    assert "learn status" in table(found)
