"""Fixtures shared by the sections: the MNIST data root, and the registry's context.

The chapter's expensive runs (XOR models and ensembles, MPG, MNIST 20 epochs, Lightning 10
epochs) are the process's shared runs (:data:`torchmech.spec.runs.SHARED`): the claims, the
hand-written tests and ``torchmech chapter`` called in-process all read the same results.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from torchmech.chapter.data.mnist import data_root, fetch_mnist
from torchmech.chapter.implementation import REFERENCE, Implementation
from torchmech.learn import Workspace
from torchmech.spec.core import Context
from torchmech.spec.runs import SHARED, Runs


@pytest.fixture(scope="session")
def mnist_root() -> Path:
    """The data root, MNIST verified there without touching the network (`make test` fetched it)."""
    fetch_mnist(sources=[])
    return data_root()


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    """The shared runs, their files (Lightning's logs) in this session's temporary folder."""
    SHARED.use_workdir(tmp_path_factory.mktemp("runs"))
    return SHARED


@pytest.fixture(scope="session")
def workspace(pytestconfig: pytest.Config) -> Workspace | None:
    """The learner's workspace under test (``pytest --impl=DIR``), or ``None``: torchmech itself."""
    path = pytestconfig.getoption("--impl")
    if not path:
        return None
    from torchmech.learn import cached_workspace

    return cached_workspace(str(path))


@pytest.fixture(scope="session")
def under_test(workspace: Workspace | None) -> Implementation:
    """The implementation under test: torchmech itself, or the workspace's (the registry's claims take it)."""
    return REFERENCE if workspace is None else workspace.impl


@pytest.fixture(scope="session")
def implementation() -> Implementation:
    """The reference, for the hand-written property tests: they pin torchmech's own pieces down. A learner's
    pieces are graded by ``test_exercise`` (the differential check of ``torchmech learn check``) and by the
    claims, so that ``pytest --impl`` and ``learn check`` give one verdict per exercise."""
    return REFERENCE


@pytest.fixture(scope="session")
def backend(pytestconfig: pytest.Config) -> str:
    """The backend under test: ``--backend=NAME``, else ``"eager"`` (the plain backend of each device)."""
    return pytestconfig.getoption("--backend") or "eager"


@pytest.fixture
def spec(device: str, runs: Runs, under_test: Implementation, backend: str) -> Context:
    """The registry's context on ``device``: the implementation under test, the backend, not quick."""
    return Context(device=torch.device(device), backend=backend, runs=runs, impl=under_test)


@pytest.fixture
def saved_figures(monkeypatch: pytest.MonkeyPatch) -> list:
    """Every matplotlib ``Figure`` saved during the test, in order: to read back what a plot drew."""
    from matplotlib.figure import Figure

    saved: list[Figure] = []
    savefig = Figure.savefig

    def keep(fig: Figure, *args: object, **kwargs: object) -> object:
        saved.append(fig)
        return savefig(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    return saved


@pytest.fixture
def fresh_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh workspace, ``tmp_path/ch13``, as `torchmech learn init` makes it, and no $TORCHMECH_IMPL to help."""
    from torchmech.learn import init_workspace

    monkeypatch.delenv("TORCHMECH_IMPL", raising=False)
    path = tmp_path / "ch13"
    init_workspace(path)
    return path
