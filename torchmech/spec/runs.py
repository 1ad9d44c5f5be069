"""The chapter's runs by name, each computed at most once per process (:class:`Runs`, :data:`SHARED`), and
keyed by the implementation whose pieces they use: the book's procedures themselves are
:mod:`torchmech.chapter.runs`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torchmech.chapter.ignite_bonus import ignite_fit
from torchmech.chapter.implementation import Implementation, pieces_of
from torchmech.chapter.recipes import RECIPES
from torchmech.chapter.runs import accepts, ensemble_run, mnist_run, mpg_run, xor_notebook_run, xor_run
from torchmech.runtime.backends import Backend, resolve
from torchmech.runtime.console import run_finished


# --- named runs, computed once per process ---------------------------------------------------------
def run_pieces(name: str, **kwargs: Any) -> tuple[str, ...]:
    """The pieces of the implementation under test that the run ``name`` with these arguments uses: ``train``
    and the data's piece where the run trains through them, and its recipe's (:attr:`Recipe.pieces`)."""
    if name == "xor":
        return ("train", "make_xor", *RECIPES[str(kwargs.get("model", "logistic"))].pieces)
    if name == "xor_notebook":
        return "train", "make_xor", *RECIPES["modulelist"].pieces
    if name == "ensemble":
        return ("make_xor", *RECIPES["noisy"].pieces) if kwargs.get("arch") in ("noisy", "noisy0") else ("make_xor",)
    if name == "mpg":
        return "train", "mpg_features", *RECIPES["mpg"].pieces
    if name == "mnist":
        return ("train", *RECIPES["mnist"].pieces, *(("ShuffledBatches",) if kwargs.get("fast", True) else ()))
    if name == "lightning":
        return ("MultiLayerPerceptron",)
    return ()  # ignite: its own model and loop


class _Same:
    """A part of a cache key equal only to the very same object (a piece: a function or class, hashable
    or not). It holds the object, so its id cannot be reused while the entry lives."""

    __slots__ = ("obj",)

    def __init__(self, obj: object) -> None:
        self.obj = obj

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Same) and other.obj is self.obj

    def __hash__(self) -> int:
        return id(self.obj)

    def __repr__(self) -> str:
        return getattr(self.obj, "__qualname__", type(self.obj).__name__)


def _own_pieces(name: str, impl: Implementation | None, kwargs: dict[str, Any]) -> tuple[tuple[str, _Same], ...]:
    """The pieces of ``impl`` that the run uses and that are not the reference's: what keys its own cache entry."""
    if impl is None:
        return ()
    reference = pieces_of(None)
    own = []
    for piece in run_pieces(name, **kwargs):
        mine = getattr(impl, piece)
        if mine is not getattr(reference, piece):
            own.append((piece, _Same(mine)))
    return tuple(own)


class Runs:
    """The chapter's expensive computations by name, each computed at most once per process.

    A claim asks ``runs.get("mnist", device="cpu", epochs=20)``; the first ask trains, every later
    ask with the same arguments (a pytest session's §8 tests, the chapter report, the CLI) reads the
    same result. The same call with the same seeds gives the same numbers, so training twice would
    check nothing more. Runs that write files (Lightning's logs and checkpoints) write them under
    :attr:`workdir` (a temporary folder unless :meth:`use_workdir` named one first).

    ``runs.get(..., impl=ws)`` runs with the pieces of an implementation under test: where the run uses
    none of them (only the reference's pieces) it reads the reference's entry; otherwise it trains once
    for that implementation's own pieces (the same function or class objects), kept apart.

    Example::

        >>> runs = Runs()
        >>> first = runs.get("xor", model="logistic", epochs=2)
        >>> runs.get("xor", model="logistic", epochs=2) is first
        True
    """

    def __init__(self) -> None:
        self._cache: dict[tuple, object] = {}
        self._workdir: Path | None = None

    @property
    def workdir(self) -> Path:
        if self._workdir is None:
            import atexit
            import shutil
            import tempfile

            self._workdir = Path(tempfile.mkdtemp(prefix="torchmech-runs-"))
            atexit.register(shutil.rmtree, self._workdir, ignore_errors=True)
        return self._workdir

    def use_workdir(self, path: Path) -> None:
        """Write the runs' files (Lightning's logs) under ``path``, if no run has written any yet."""
        if self._workdir is None:
            self._workdir = Path(path)

    def get(self, name: str, *, impl: Implementation | None = None, **kwargs: object) -> object:
        """The result of the run ``name`` (a key of :data:`RUN_FUNCTIONS`) with these arguments (``device=``
        stands for that device's plain backend: ``backend=``), with the pieces of ``impl`` (``None`` or
        :data:`~torchmech.chapter.implementation.REFERENCE`: the reference; a run function without an ``impl``
        parameter, Ignite's, uses no piece and is not given it)."""
        if name not in RUN_FUNCTIONS:
            raise ValueError(f"unknown run {name!r}: choose from {', '.join(RUN_FUNCTIONS)}")
        if "device" in kwargs and "backend" not in kwargs:  # a device names its plain backend: one cache entry
            kwargs["backend"] = resolve(None, kwargs.pop("device"))  # type: ignore[arg-type]
        key: tuple = (name, tuple(sorted((k, str(v)) for k, v in kwargs.items())))
        own = _own_pieces(name, impl, kwargs)
        if own:  # the reference's key stays as it was: one entry for every implementation that uses its pieces
            key = (*key, own)
        if key not in self._cache:
            run = RUN_FUNCTIONS[name]
            start = time.perf_counter()
            self._cache[key] = run(self, **kwargs, impl=impl) if accepts(run, "impl") else run(self, **kwargs)
            run_finished(describe_run(name, kwargs), time.perf_counter() - start)  # a line in a command's log
        return self._cache[key]


def describe_run(name: str, kwargs: dict[str, object]) -> str:
    """A run in a few words, for a log: its name, the arguments that say what it trains, its backend (a quick
    run's epochs are its own, not ``epochs``).

    Example::

        >>> describe_run("mnist", {"backend": "cpu", "epochs": 20, "data": None, "quick": False})
        'mnist 20 epochs on cpu'
        >>> describe_run("lightning", {"epochs": 10, "quick": True})
        'lightning quick'
    """
    words, quick = [name], kwargs.get("quick") is True
    for key, value in kwargs.items():
        if key in ("backend", "data", "impl") or value is None or value is False or (key == "epochs" and quick):
            continue
        words.append(f"{value} epochs" if key == "epochs" else key if value is True else str(value))
    backend = kwargs.get("backend")
    return " ".join(words) + (f" on {getattr(backend, 'name', backend)}" if backend is not None else "")


#: The process's runs, shared by pytest and ``torchmech chapter``.
SHARED = Runs()


def _ensemble(runs: Runs, arch: str, **kwargs: Any) -> object:
    """The 256-seed ensemble of ``arch`` (:func:`~torchmech.chapter.runs.ensemble_run`)."""
    return ensemble_run(arch, **kwargs)


def _plain_device(backend: Backend | str | None, device: str, run: str) -> str:
    """The device of a run that trains in its own loop (Lightning, Ignite): only plain backends."""
    if backend is None:
        return device
    be = resolve(backend)
    if not be.is_plain:
        raise ValueError(f"{run} trains in its own loop: it runs on plain backends only, not {be.name!r}")
    return be.device


def _lightning(runs: Runs, epochs: int = 10, device: str = "cpu", quick: bool = False,
               data: str | None = None, backend: Backend | str | None = None,
               impl: Implementation | None = None) -> object:
    """§9's run: ``epochs`` epochs on one device, tested with the best checkpoint; ``quick``: one
    short epoch. ``epochs`` beyond 10 resume the 10-epoch run from its best checkpoint, as the book
    resumes to 15 (its ``resume_from_checkpoint`` was the best checkpoint's path). ``impl``: where
    ``MultiLayerPerceptron`` comes from (``None``: the reference); its logs go to a folder of their own."""
    from torchmech.chapter.lit import fit

    device = _plain_device(backend, device, "Lightning")
    accelerator = "gpu" if device.startswith("cuda") else device
    trim = {"limit_train_batches": 100, "limit_val_batches": 20, "limit_test_batches": 20} if quick else {}
    model_class = pieces_of(impl).MultiLayerPerceptron
    own = "" if model_class is pieces_of(None).MultiLayerPerceptron else "-" + _slug(getattr(impl, "name", "impl"))
    logdir = runs.workdir / f"lightning-{device}{'-quick' if quick else ''}{own}"
    resume = None
    if epochs > 10 and not quick:
        resume = runs.get("lightning", epochs=10, quick=quick, data=data, backend=backend, impl=impl).best_checkpoint
    return fit(1 if quick else epochs, logdir=logdir, data_path=data, accelerator=accelerator, devices=1,
               progress=False, resume=resume, model_class=model_class, **trim)


def _slug(name: str) -> str:
    """``name`` as a folder name's part (letters, digits, ``_``)."""
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")[-40:] or "impl"


def _ignite(runs: Runs, epochs: int = 5, device: str = "cpu", quick: bool = False, data: str | None = None,
            backend: Backend | str | None = None) -> object:
    """§9's pointer: the same classifier on PyTorch-Ignite, 5 epochs as the bonus notebook (``quick``: 1
    epoch of 100 batches)."""

    device = _plain_device(backend, device, "Ignite")
    logdir = runs.workdir / f"ignite-{device}{'-quick' if quick else ''}"
    return ignite_fit(1 if quick else epochs, logdir=logdir, data_path=data, device=device,
                      max_batches=100 if quick else None)


#: name → function(runs, **kwargs): every run a claim may ask for.
RUN_FUNCTIONS: dict[str, Callable[..., object]] = {
    "xor": lambda runs, **kw: xor_run(**kw),
    "xor_notebook": lambda runs, **kw: xor_notebook_run(**kw),
    "ensemble": _ensemble,
    "mpg": lambda runs, **kw: mpg_run(**kw),
    "mnist": lambda runs, data=None, **kw: mnist_run(data, **kw),
    "lightning": _lightning,
    "ignite": _ignite,
}
