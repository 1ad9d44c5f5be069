"""The house: torchmech is a few rooms, one job each, stacked in floors; a module imports its own room and the
floors below, never sideways or up (type-only and function-level imports included: no cycle can hide); no
module grows past a screenful of screens (600 lines); the top level keeps at most four modules; the names
readers and learners' workspaces import by their first names still import, as the same objects."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.chapter

ROOT = Path(__file__).resolve().parents[1]


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module → the package's modules it imports anywhere in its source (top level, ``TYPE_CHECKING`` blocks,
    inside functions); ``from pkg import sub`` counts as importing ``pkg.sub`` when that is a module."""
    modules: dict[str, Path] = {}
    for file in package.rglob("*.py"):
        parts = file.relative_to(package.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = file
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, file in modules.items():
        is_package = file.name == "__init__.py"
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = name.split(".")
                if node.level:
                    base = base[: len(base) - node.level + (1 if is_package else 0)]
                    mod = ".".join([*base, node.module] if node.module else base)
                else:
                    mod = node.module or ""
                targets = [mod, *(f"{mod}.{a.name}" for a in node.names)]
            else:
                continue
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


#: Each room of torchmech/ and its floor. A module may import its own room, the floors below, and the package
#: itself (its version and the sections); report, check and learn stand side by side and never import one
#: another. ``cli → report | check | learn → spec → chapter → runtime``.
LAYERS: dict[str, int] = {"runtime": 0, "chapter": 1, "spec": 2, "learn": 3, "check": 3, "report": 3, "cli": 4,
                          "__main__": 5}


def room(module: str) -> str | None:
    """``torchmech.spec.claims`` → ``spec``; the package itself → ``None``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def against_the_floors(graph: dict[str, set[str]]) -> list[str]:
    """Every import that goes up a floor or sideways on one, as ``a → b``; a room not in :data:`LAYERS` is one."""
    wrong = []
    for a, targets in sorted(graph.items()):
        for b in sorted(targets):
            ra, rb = room(a), room(b)
            if rb is None or ra == rb:
                continue
            if ra is None or ra not in LAYERS or rb not in LAYERS or LAYERS[rb] >= LAYERS[ra]:
                wrong.append(f"{a} → {b}")
    return wrong


def test_every_import_goes_down_the_floors() -> None:
    """cli → report | check | learn → spec → chapter → runtime: no import up or sideways, and every module of
    torchmech/ stands in a room of the table (a new room is added to it on purpose)."""
    graph = import_graph(ROOT / "torchmech")
    assert {room(m) for m in graph} - {None} == set(LAYERS)
    assert against_the_floors(graph) == []


def test_the_floor_check_finds_planted_upward_and_sideways_imports(tmp_path: Path) -> None:
    """A chapter module importing the specification (up), a report module importing a check (sideways) and the
    package's root importing a room are found; a downward import and one within a room are not."""
    pkg = tmp_path / "torchmech"
    for room_ in ("runtime", "chapter", "spec", "check", "report"):
        (pkg / room_).mkdir(parents=True)
        (pkg / room_ / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("from torchmech.runtime import devices\n")
    (pkg / "runtime" / "devices.py").write_text("import torchmech\n")
    (pkg / "chapter" / "train.py").write_text("from torchmech.runtime import devices\nfrom . import models\n")
    (pkg / "chapter" / "models.py").write_text("def f():\n    from torchmech.spec import claims\n")
    (pkg / "spec" / "claims.py").write_text("from torchmech.chapter import train\n")
    (pkg / "check" / "bench.py").write_text("from torchmech.spec import claims\n")
    (pkg / "report" / "page.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                            "    from torchmech.check.bench import x\n")
    assert against_the_floors(import_graph(pkg)) == [
        "torchmech → torchmech.runtime", "torchmech → torchmech.runtime.devices",
        "torchmech.chapter.models → torchmech.spec", "torchmech.chapter.models → torchmech.spec.claims",
        "torchmech.report.page → torchmech.check.bench"]


def test_the_top_level_keeps_at_most_four_modules() -> None:
    """The rooms hold the modules; at the top only the package's own files."""
    top = sorted(f.name for f in (ROOT / "torchmech").glob("*.py"))
    assert len(top) <= 4, top


def test_first_names_import_the_modules_of_their_new_rooms() -> None:
    """``torchmech.layers``, ``torchmech.train``, ``torchmech.data.xor``, ``torchmech.init`` (now glorot)… import as
    the very modules of torchmech.chapter (one copy: a class is the same object under both names), and
    ``from torchmech import learn`` is learner mode's package."""
    import importlib

    import torchmech

    for old, new in torchmech.MOVED.items():
        assert importlib.import_module(old) is importlib.import_module(new)
    from torchmech.data.mnist import load_mnist
    from torchmech.data.xor import XorData
    from torchmech.layers import NoisyLinear
    from torchmech.train import train

    from torchmech.chapter.data import mnist, xor

    assert XorData is xor.XorData and load_mnist is mnist.load_mnist
    assert NoisyLinear.__module__ == "torchmech.chapter.layers" and train.__module__ == "torchmech.chapter.train"
    from torchmech import learn

    assert learn.check.__module__ == "torchmech.learn.workspace"
    assert torchmech.moved("torchmech.data.auto_mpg") == "torchmech.chapter.data.auto_mpg"
    assert torchmech.moved("torchmech.spec") is None and torchmech.moved("torchmech.database") is None


def test_every_command_result_keeps_the_one_protocol() -> None:
    """Each class a command returns has ``table()``, ``to_json()``, ``write(out)`` returning the files, and an
    ``exit_code``, with those signatures (CommandResult): the entry point prints any of them the same way."""
    import inspect

    from torchmech.check.compare import Comparison
    from torchmech.check.conformance import Matrix
    from torchmech.check.diverge import Divergence
    from torchmech.check.ladder import Ladder
    from torchmech.cli.commands import Output, Written
    from torchmech.learn import Grades
    from torchmech.report.chapter import ChapterReport
    from torchmech.runtime.console import CommandResult

    expected = {name: inspect.signature(getattr(CommandResult, name)) for name in ("table", "to_json", "write")}
    for cls in (ChapterReport, Matrix, Ladder, Divergence, Grades, Output, Written, Comparison):
        for name, signature in expected.items():
            mine = inspect.signature(getattr(cls, name))
            assert list(mine.parameters) == list(signature.parameters), (cls, name)
        assert hasattr(cls, "exit_code") or "exit_code" in getattr(cls, "__dataclass_fields__", {}), cls
    assert isinstance(Output({"a": 1}), CommandResult) and not isinstance(object(), CommandResult)


#: Libraries slow to import (Lightning ~3 s, matplotlib, scikit-learn, pandas…) or optional: a module of torchmech
#: that imports one at its top is itself imported inside the functions that need it.
HEAVY = ("lightning", "matplotlib", "ignite", "tensorboard", "sklearn", "pandas", "torchvision", "mlxtend", "scipy",
         "nbformat", "nbclient")


def _top_level_imports(file: Path) -> set[str]:
    names = set()
    for node in ast.parse(file.read_text()).body:
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def late_imports(package: Path) -> list[str]:
    """Each import of one of the package's own modules made inside a function, as ``module:line → target``, but
    in ``cli/`` (a command imports what it runs: ``--help`` stays instant) and of a module that imports a
    :data:`HEAVY` library at its top (imported when needed)."""
    files = {}
    for file in package.rglob("*.py"):
        parts = file.relative_to(package.parent).with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = file
    heavy = {m for m, f in files.items() if any(i.split(".")[0] in HEAVY for i in _top_level_imports(f))}
    found = []
    for name, file in sorted(files.items()):
        if room(name) == "cli":
            continue
        for fn in ast.walk(ast.parse(file.read_text())):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
                elif isinstance(node, ast.Import):
                    targets = [a.name for a in node.names]
                else:
                    continue
                own = [t for t in targets if t in files]
                if own and not heavy & set(own) and own[0].split(".")[0] == package.name:
                    found.append(f"{name}:{node.lineno} → {max(own, key=len)}")
    return found


def test_own_modules_are_imported_at_the_top() -> None:
    """An import of one of torchmech's modules stands at its importer's top, where it shows the dependency; only
    cli/ and heavy modules (Lightning's, matplotlib's, pandas'…) are imported inside the functions that use them."""
    assert late_imports(ROOT / "torchmech") == []


def test_the_late_import_finder_finds_a_planted_one(tmp_path: Path) -> None:
    """A function-level import of a light module is found; of a heavy one, or in cli/, it is not."""
    pkg = tmp_path / "torchmech"
    for room_ in ("chapter", "report", "cli"):
        (pkg / room_).mkdir(parents=True)
        (pkg / room_ / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "chapter" / "models.py").write_text("import torch\n")
    (pkg / "report" / "plots.py").write_text("import matplotlib\n")
    (pkg / "report" / "page.py").write_text("def f():\n    from torchmech.report import plots\n"
                                            "    from torchmech.chapter.models import x\n")
    (pkg / "cli" / "commands.py").write_text("def g():\n    from torchmech.chapter import models\n")
    assert late_imports(pkg) == ["torchmech.report.page:3 → torchmech.chapter.models"]


def test_torchmech_has_no_import_cycle() -> None:
    """No module of torchmech/ reaches itself through imports of any kind."""
    graph = import_graph(ROOT / "torchmech")
    assert len(graph) > 30 and graph["torchmech.spec.claims"] >= {"torchmech.spec.core"}
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_planted_cycle(tmp_path: Path) -> None:
    """A type-only import that closes a circle (a → b at the top, b → a under TYPE_CHECKING) and a relative
    function-level one (c → a) are both found."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg import b\n")
    (pkg / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import x\n")
    (pkg / "c.py").write_text("def f():\n    from . import a\n")
    (pkg / "d.py").write_text("from .c import f\n")
    graph = import_graph(pkg)
    assert graph["pkg.c"] == {"pkg", "pkg.a"} and graph["pkg.d"] == {"pkg.c"}
    assert cycles(graph) == [["pkg.a", "pkg.b"]]


def test_no_module_is_longer_than_600_lines() -> None:
    """Every module of torchmech/ fits in 600 lines (tables split by section, machinery apart)."""
    long = {str(f.relative_to(ROOT)): n for f in (ROOT / "torchmech").rglob("*.py")
            if (n := len(f.read_text().splitlines())) > 600}
    assert long == {}


#: Modules a command imports before it knows it needs torch: `torchmech --help`, `learn status` answered from the
#: remembered grades, finding a workspace, writing a course's grade files.
LIGHT = ("torchmech.cli", "torchmech.learn", "torchmech.learn.where", "torchmech.learn.grades",
         "torchmech.learn.course")


def test_light_modules_import_no_torch() -> None:
    """Each of :data:`LIGHT` imports without torch (a fresh interpreter per module, so none hides another's)."""
    for name in LIGHT:
        done = subprocess.run([sys.executable, "-c", f"import sys, {name}; print('torch' in sys.modules)"],
                              capture_output=True, text=True, check=False, cwd=ROOT)
        assert done.stdout.strip() == "False", (name, done.stdout, done.stderr[-2000:])
