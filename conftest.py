"""The learning path's machinery: section markers, devices, hypothesis profiles, summary.

* Every test under ``tests/`` carries exactly one section marker (``s1`` … ``s9`` or
  ``chapter``), checked at collection; tests under ``benchmarks/`` get ``bench``.
* ``slow`` tests are deselected unless ``--runslow``.
* A test that takes a ``device`` argument runs once per device: ``cpu``, ``cuda`` (skipped,
  with the reason, where there is no GPU) and ``mps`` where present. Golden values are
  asserted on the CPU; on other devices the same test asserts the law or band.
  ``--backend=NAME`` (:mod:`torchmech.runtime.backends`: ``compile``, ``cpu-bf16``, ``cuda-tf32``…) runs them
  once, on that backend's device, and the registry's claims on that backend (judged against the
  float64 arbiter).
* Hypothesis profiles ``dev`` (default), ``ci`` (the built-in one plus ``deadline=None``;
  loaded when ``CI`` is set), ``thorough``; choose with ``HYPOTHESIS_PROFILE`` or
  ``--hypothesis-profile``. Each prints the ``@reproduce_failure`` line of a failure and skips
  hypothesis' ``explain`` phase (it lists lines inside NumPy and torch, no help to a learner).
  Torch's global RNG is registered with hypothesis, and tests that need randomness draw their
  torch seed from hypothesis, so a failure replays.
* ``--impl`` and ``--backend`` are checked before collection: a folder that holds no workspace, or an
  unknown backend, stops the run with one line (:func:`chosen_impl`, :func:`chosen_backend`).
* At the end, a summary of passed/failed/skipped per chapter section.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

import pytest
import torch
from hypothesis import Phase, register_random, settings

from torchmech import SECTIONS
from torchmech.runtime.devices import is_available

SECTION_MARKERS: tuple[str, ...] = tuple(SECTIONS)

# --- hypothesis -----------------------------------------------------------------------------
# print_blob: the `@reproduce_failure` line docs/learning-path.md promises; no explain phase: its "always and only
# run by failing test cases" lines point into NumPy's and torch's own files
PHASES = tuple(p for p in Phase if p is not Phase.explain)
settings.register_profile("dev", deadline=None, max_examples=50, print_blob=True, phases=PHASES)
settings.register_profile("ci", parent=settings.get_profile("ci"), deadline=None, print_blob=True, phases=PHASES)
settings.register_profile("thorough", deadline=None, max_examples=1000, print_blob=True, phases=PHASES)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))


class TorchGlobalRandom:
    """Torch's global generators seen as a ``random.Random`` so hypothesis can seed and restore them."""

    def seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def getstate(self) -> tuple[torch.Tensor, list[torch.Tensor] | None]:
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
        return torch.get_rng_state(), cuda

    def setstate(self, state: tuple[torch.Tensor, list[torch.Tensor] | None]) -> None:
        cpu, cuda = state
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


TORCH_RANDOM = TorchGlobalRandom()  # hypothesis keeps only a weak reference
register_random(TORCH_RANDOM)


# --- options and markers --------------------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", default=False,
                     help="also run tests marked slow (full-length trainings)")
    parser.addoption("--impl", default=os.environ.get("TORCHMECH_IMPL"), metavar="DIR",
                     help="grade a learner's workspace (`torchmech learn init DIR`; write --impl=DIR): the registry's "
                          "claims and the exercises' property tests run on it, the reference where an exercise is not "
                          "started (default $TORCHMECH_IMPL)")
    parser.addoption("--backend", default=None, metavar="NAME",
                     help="run the device-parametrised tests and the registry's claims on this backend (write "
                          "--backend=NAME): compile, cpu-fp64, cpu-bf16, deterministic, cuda-tf32, …")


def pytest_configure(config: pytest.Config) -> None:
    for marker, title in SECTIONS.items():
        config.addinivalue_line("markers", f"{marker}: {title}")
    config.addinivalue_line("markers", "bench: a benchmark (benchmarks/), timed by pytest-benchmark")
    config.addinivalue_line("markers", "slow: a long run; deselected unless --runslow")
    config.addinivalue_line("markers", "cuda: runs on a CUDA device; skipped without one")
    config.addinivalue_line("markers", "mps: runs on an Apple MPS device")
    chosen_backend(config)  # an unknown --backend, or a --impl that is no workspace: one line, before collection
    chosen_impl(config)


def chosen_impl(config: pytest.Config) -> str | None:
    """``--impl``'s folder (or ``$TORCHMECH_IMPL``'s), checked: one that holds no workspace stops the run with
    one line (the :class:`~torchmech.learn.WorkspaceError`'s), naming where the folder came from."""
    path = config.getoption("--impl", default=None)
    if not path:
        return None
    from torchmech.learn import WorkspaceError, cached_workspace

    try:
        cached_workspace(str(path))
    except WorkspaceError as err:
        given = any(a == "--impl" or a.startswith("--impl=") for a in config.invocation_params.args)
        raise pytest.UsageError(f"{'--impl' if given else 'TORCHMECH_IMPL'}={path}: {err}") from None
    return str(path)


# --- devices --------------------------------------------------------------------------------
def chosen_backend(config: pytest.Config) -> str | None:
    """``--backend``'s name, checked: an unknown or unavailable backend stops the run with one line."""
    name = config.getoption("--backend")
    if name is None:
        return None
    from torchmech.runtime.backends import usable

    try:
        usable(name)
    except ValueError as err:
        raise pytest.UsageError(f"--backend={name}: {err}") from None
    return name


def device_params(backend: str | None = None) -> list:
    """``cpu`` always, ``cuda`` always (skipped with a reason when absent), ``mps`` where present; under
    ``--backend`` only that backend's device, with the backend's name as the id."""
    if backend is not None:
        from torchmech.runtime.backends import BACKENDS

        return [pytest.param(BACKENDS[backend].device, id=backend)]
    params = [pytest.param("cpu", id="cpu")]
    params.append(pytest.param("cuda", id="cuda", marks=[
        pytest.mark.cuda,
        pytest.mark.skipif(not is_available("cuda"), reason="no CUDA device on this machine"),
    ]))
    if is_available("mps"):
        params.append(pytest.param("mps", id="mps", marks=[pytest.mark.mps]))
    return params


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "device" in metafunc.fixturenames:
        metafunc.parametrize("device", device_params(chosen_backend(metafunc.config)))


@pytest.fixture(autouse=True)
def _seed_torch() -> None:
    """Each test starts from the same torch RNG state, whatever ran before it."""
    torch.manual_seed(0)


# --- collection: section markers, bench, slow -----------------------------------------------
_MODULE_MARK = re.compile(r"^pytestmark = pytest\.mark\.(\w+)\s*$", re.MULTILINE)
_ANY_SECTION_MARK = re.compile(r"pytest\.mark\.(s[1-9]|chapter)\b")


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """``-m sN`` (one section's marker, the learning path's lesson) imports only that section's test files: a file
    whose one section marker is its module's ``pytestmark`` and names another section is not even imported, nor
    are the benchmarks (so §1's lesson does not wait for Lightning's import). Any other ``-m`` collects all."""
    wanted = (config.getoption("markexpr", default="") or "").strip()
    if wanted not in SECTION_MARKERS:
        return None
    if collection_path.is_dir():
        return True if collection_path.name == "benchmarks" and collection_path.parent == config.rootpath else None
    if collection_path.suffix != ".py" or not collection_path.name.startswith("test_"):
        return None
    text = collection_path.read_text(errors="replace")
    marks = _MODULE_MARK.findall(text)
    if len(marks) == 1 and marks[0] != wanted and len(_ANY_SECTION_MARK.findall(text)) == 1:
        return True
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = Path(config.rootpath)
    unmarked = []
    for item in items:
        try:
            top = Path(item.path).resolve().relative_to(root.resolve()).parts[0]
        except ValueError:
            continue
        if top == "benchmarks":
            item.add_marker(pytest.mark.bench)
        elif top == "tests":
            found = sorted({m.name for m in item.iter_markers()} & set(SECTION_MARKERS))
            if len(found) != 1:
                unmarked.append(f"  {item.nodeid}: {', '.join(found) or 'no section marker'}")
    if unmarked:
        raise pytest.UsageError(
            "every test under tests/ needs exactly one section marker "
            f"({', '.join(SECTION_MARKERS)}):\n" + "\n".join(unmarked)
        )
    if not config.getoption("--runslow"):
        kept = [i for i in items if i.get_closest_marker("slow") is None]
        deselected = [i for i in items if i.get_closest_marker("slow") is not None]
        if deselected:
            config.hook.pytest_deselected(items=deselected)
            items[:] = kept


# --- the closing summary ----------------------------------------------------------------------
def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """Per chapter section: its title and how many of its tests passed, failed, were skipped."""
    worst: dict[str, tuple[str, str]] = {}
    rank = {"passed": 0, "skipped": 1, "failed": 2}
    for key, reports in terminalreporter.stats.items():
        outcome = {"passed": "passed", "xpassed": "passed", "failed": "failed", "error": "failed",
                   "skipped": "skipped", "xfailed": "skipped"}.get(key)
        if outcome is None:
            continue
        for rep in reports:
            keywords = getattr(rep, "keywords", None) or {}
            section = next((m for m in (*SECTION_MARKERS, "bench") if m in keywords), None)
            if section is None:
                continue
            seen = worst.get(rep.nodeid)
            if seen is None or rank[outcome] > rank[seen[1]]:
                worst[rep.nodeid] = (section, outcome)
    impl = config.getoption("--impl", default=None)
    if impl:
        from torchmech.learn import cached_workspace

        ws = cached_workspace(str(impl))
        mine = sorted(n for n, src in ws.source.items() if src == "workspace")
        terminalreporter.section("implementation under test")
        terminalreporter.write_line(f"{ws.path}: from the workspace: {', '.join(mine) or 'nothing yet'}")
        terminalreporter.write_line("every other piece (not started, or not an exercise): torchmech's reference")
    if not worst:
        return
    counts: dict[str, Counter] = {}
    for section, outcome in worst.values():
        counts.setdefault(section, Counter())[outcome] += 1
    titles = {**SECTIONS, "bench": "Benchmarks (each case once unless --benchmark-only)"}
    width = max(len(t) for t in titles.values())
    terminalreporter.section("learning path: Chapter 13, section by section")
    for section, title in titles.items():
        c = counts.get(section)
        if c is None:
            terminalreporter.write_line(f"{title:<{width}}  (no tests ran)")
        else:
            terminalreporter.write_line(
                f"{title:<{width}}  {c['passed']:3d} passed  {c['failed']:3d} failed  {c['skipped']:3d} skipped",
                red=bool(c["failed"]), green=not c["failed"],
            )
