"""Fixtures shared by the sections that use MNIST (§8, §9)."""

from __future__ import annotations

from pathlib import Path

import pytest

from torchmech.data.mnist import data_root, fetch_mnist


@pytest.fixture(scope="session")
def mnist_root() -> Path:
    """The data root, MNIST verified there without touching the network (`make test` fetched it)."""
    fetch_mnist(sources=[])
    return data_root()
