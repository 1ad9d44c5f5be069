"""torchmech: Chapter 13, "Going Deeper - The Mechanics of PyTorch", as executable claims.

The package is a few rooms, each one job, imported one way (``tests/test_house.py`` holds the rule):
``cli → report | check | learn → spec → chapter → runtime``. ``docs/architecture.md`` draws it.

The modules a reader of the chapter imports by their first names (``torchmech.layers``, ``torchmech.train``,
``torchmech.data.xor``, ``torchmech.init``…, as learners' workspaces do) still import: they are the modules of
:mod:`torchmech.chapter` (and the two of :mod:`torchmech.runtime` the chapter's users name), the same objects.
"""

import importlib
import importlib.abc
import importlib.machinery
import sys
from types import ModuleType

__version__ = "0.1.0"

#: The chapter's sections, keyed by the pytest marker that tags their tests.
SECTIONS: dict[str, str] = {
    "s1": "§1 Computation graphs",
    "s2": "§2 Tensors that hold parameters",
    "s3": "§3 Gradients by automatic differentiation",
    "s4": "§4 torch.nn: Sequential, losses, optimizers",
    "s5": "§5 XOR and model capacity",
    "s6": "§6 nn.Module subclasses and custom layers",
    "s7": "§7 Project one: fuel efficiency (Auto MPG)",
    "s8": "§8 Project two: MNIST digits",
    "s9": "§9 PyTorch Lightning and TensorBoard",
    "chapter": "Whole chapter: CLI and report",
}

#: A module's first name → where it lives (its submodules follow: ``torchmech.data.xor``).
MOVED: dict[str, str] = {
    **{f"torchmech.{m}": f"torchmech.chapter.{m}" for m in (
        "graph", "autodiff", "losses", "layers", "models", "train", "capacity", "recipes", "captured", "lit",
        "ignite_bonus", "implementation", "data")},
    "torchmech.init": "torchmech.chapter.glorot",
    "torchmech.backends": "torchmech.runtime.backends",
    "torchmech.devices": "torchmech.runtime.devices",
}


def moved(name: str) -> str | None:
    """Where the module ``name`` lives now (``None``: it has not moved)."""
    for old, new in MOVED.items():
        if name == old or name.startswith(old + "."):
            return new + name[len(old):]
    return None


class _FirstNames(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports a moved module under its first name as the very module object of its new home (never a
    second copy: ``torchmech.layers.NoisyLinear is torchmech.chapter.layers.NoisyLinear``)."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> importlib.machinery.ModuleSpec | None:
        if moved(name) is None:
            return None
        return importlib.machinery.ModuleSpec(name, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None

    def exec_module(self, module: ModuleType) -> None:
        # the import system reads sys.modules back after this call: the real module takes the placeholder's place
        sys.modules[module.__name__] = importlib.import_module(moved(module.__name__))  # type: ignore[arg-type]


if not any(isinstance(f, _FirstNames) for f in sys.meta_path):
    sys.meta_path.insert(0, _FirstNames())  # first: a path finder would load a second copy under the old name
