"""The catalogue's building blocks: a :class:`Mistake` row and :func:`ref`, the reference piece a wrong one
varies."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torchmech.chapter.implementation import Implementation


@dataclass(frozen=True)
class Mistake:
    """One classic wrong implementation: ``make()`` builds the wrong piece for ``exercise``."""

    name: str
    exercise: str
    what: str
    make: Callable[[], Any]

    def implementation(self) -> Implementation:
        return Implementation(f"mistake {self.name}", {self.exercise: self.make()})


def ref(name: str) -> Any:
    """The reference's piece ``name`` (a wrong piece is written as a small variant of it)."""
    return getattr(Implementation(), name)
