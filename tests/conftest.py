"""Fixtures shared by the sections that use MNIST (§8, §9) and by the chapter's report."""

from __future__ import annotations

from pathlib import Path

import pytest

from torchmech.data.mnist import data_root, fetch_mnist
from torchmech.lit import LightningRun, fit
from torchmech.projects import MnistResult, mnist_run


@pytest.fixture(scope="session")
def mnist_root() -> Path:
    """The data root, MNIST verified there without touching the network (`make test` fetched it)."""
    fetch_mnist(sources=[])
    return data_root()


class BookRuns:
    """The chapter's two long trainings, each run at most once per session on each device.

    §8's golden and FGSM tests, §9's ten epochs and the chapter report's full rows all read the
    same runs: the same call with the same seeds gives the same numbers, so training twice
    would check nothing more (``make chapter`` trains both afresh).
    """

    def __init__(self, root: Path, logdir: Path) -> None:
        self.root, self.logdir = root, logdir
        self._mnist: dict[str, MnistResult] = {}
        self._lightning: dict[str, LightningRun] = {}

    def mnist(self, device: str) -> MnistResult:
        """§8: the book's MLP, 20 epochs, seed 1 (``mnist_run``'s defaults)."""
        if device not in self._mnist:
            self._mnist[device] = mnist_run(self.root, epochs=20, device=device)
        return self._mnist[device]

    def lightning(self, accelerator: str) -> LightningRun:
        """§9: ten epochs on one device, tested with the best checkpoint."""
        if accelerator not in self._lightning:
            self._lightning[accelerator] = fit(10, logdir=self.logdir / accelerator, data_path=self.root,
                                               accelerator=accelerator, devices=1, progress=False)
        return self._lightning[accelerator]


@pytest.fixture(scope="session")
def book_runs(mnist_root: Path, tmp_path_factory: pytest.TempPathFactory) -> BookRuns:
    return BookRuns(mnist_root, tmp_path_factory.mktemp("book_runs"))
