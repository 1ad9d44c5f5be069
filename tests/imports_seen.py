"""A pytest plugin for tests/test_learn_pytest.py: prints, after collection, the top-level packages imported."""

from __future__ import annotations

import sys


def pytest_collection_finish(session: object) -> None:
    print("IMPORTED:", " ".join(sorted({name.split(".")[0] for name in sys.modules})))
