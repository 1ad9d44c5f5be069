"""The chapter on every supported release: one nox session per row of the release matrix (`make releases`).

Each row installs torchmech into a fresh uv venv with its torch release (and the matching torchvision) and
each other dependency at its lowest supported or newest version, then runs `torchmech chapter --json` (its
console captured, so the sweep sees any third-party warning) and the fast part of the suite (§1–§4), and
writes `benchmarks/results/releases/<row>.json`. A torch venv is 3–6 GB with its CUDA libraries: each is
deleted after its row (`--no-reuse-existing-virtualenvs`, and the session removes its own folder).

    nox -f benchmarks/noxfile.py                    # every row
    nox -f benchmarks/noxfile.py -s 'release(row="lowest")'
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv"
nox.options.reuse_existing_virtualenvs = False
nox.options.envdir = str(Path(tempfile.gettempdir()) / "torchmech-nox")  # 3–6 GB each: outside the checkout

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "releases"

#: The lowest release of each dependency that the sweep measures (pyproject's lower bounds are these). Lightning
#: below 2.4 imports ``pkg_resources`` (setuptools), which a fresh uv or Python ≥ 3.12 venv does not have.
LOWEST = {"lightning": "2.4.0", "torchmetrics": "1.0.3", "pandas": "2.0.3", "numpy": "1.26.4",
          "scikit-learn": "1.3.2", "matplotlib": "3.7.5"}
#: row → (torch, torchvision, the other dependencies pinned: {} = the newest of each).
ROWS: dict[str, tuple[str, str, dict[str, str]]] = {
    "lowest": ("2.4.1", "0.19.1", LOWEST),
    "torch-2.4.1": ("2.4.1", "0.19.1", {}),
    "torch-2.9.1": ("2.9.1", "0.24.1", {}),
    "torch-2.14.1-lowest-others": ("2.14.1", "0.29.1", LOWEST),
    "torch-2.14.1": ("2.14.1", "0.29.1", {}),
    "newest": ("2.15.0", "0.29.2", {}),
}


@nox.session(python="3.11")
@nox.parametrize("row", list(ROWS))
def release(session: nox.Session, row: str) -> None:
    torch, torchvision, pins = ROWS[row]
    env = {"PIP_CONFIG_FILE": "/dev/null", "UV_CONSTRAINT": ""}  # this machine's local torch cap lifted here only
    try:
        session.install("-e", f"{ROOT}[test]", f"torch=={torch}", f"torchvision=={torchvision}",
                        *(f"{name}=={version}" for name, version in pins.items()), env=env)
        session.run("torchmech", "data", "fetch")
        OUT.mkdir(parents=True, exist_ok=True)
        session.run("python", "-m", "torchmech.check.releases", "measure", row, str(OUT / f"{row}.json"), "--tests",
                    str(ROOT / "tests"))
    finally:
        shutil.rmtree(session.virtualenv.location, ignore_errors=True)
