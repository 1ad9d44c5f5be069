"""Sizes for the benchmark suite: all of them when timing (`make bench`), a few when each case
only runs once as a smoke test (`make test`, ``--benchmark-disable``)."""

from __future__ import annotations

import pytest

FULL = {"cpu": {"widths": [32, 128, 512, 1024], "batches": [1, 64, 4096]},
        "cuda": {"widths": [32, 128, 512, 1024, 4096], "batches": [1, 64, 4096]}}
SMOKE = {"widths": [32, 256], "batches": [1, 64]}

#: The release sweep's nox file is run by nox (`make releases`), not collected (nox is no test dependency).
collect_ignore = ["noxfile.py"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if {"width", "batch"} <= set(metafunc.fixturenames):
        config = metafunc.config
        smoke = config.getoption("benchmark_disable", default=False) and not config.getoption(
            "benchmark_enable", default=False)
        widths = SMOKE["widths"] if smoke else sorted(set(FULL["cpu"]["widths"] + FULL["cuda"]["widths"]))
        batches = SMOKE["batches"] if smoke else FULL["cpu"]["batches"]
        metafunc.parametrize("width", widths)
        metafunc.parametrize("batch", batches)
