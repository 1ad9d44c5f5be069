"""The mistake catalogue: classic wrong implementations of the exercises, each a small variant of the
reference, and the claims or checks of the specification that catch it. The rows live per section
(``torchmech/learn/mistakes/s1.py`` … ``s9.py``, as OpInfo's entries live apart from its core); this module
holds the machinery and :data:`MISTAKES`, all of them in chapter order.

It is the strongest proof that the specification can fail: :func:`catch` runs one mistake through
its exercise's claims and differential check, and ``make test`` fails if any mistake survives.
``torchmech learn check`` names a catalogued mistake only when the learner's piece *behaves exactly
like it* on every sample input of the exercise (:func:`named_mistakes`): a failure that merely fails
the same check gets no label, and the grader's own reading of the difference speaks instead.
"""

from __future__ import annotations

import functools
from typing import Any

from torchmech.learn.exercises import exercise, failures, observations
from torchmech.learn.grader import compare_observations
from torchmech.learn.mistakes import s1, s2, s3, s4, s5, s6, s7, s8, s9
from torchmech.learn.mistakes.core import Mistake

#: Every catalogued mistake, section by section.
MISTAKES: tuple[Mistake, ...] = (*s1.MISTAKES, *s2.MISTAKES, *s3.MISTAKES, *s4.MISTAKES, *s5.MISTAKES,
                                 *s6.MISTAKES, *s7.MISTAKES, *s8.MISTAKES, *s9.MISTAKES)


def mistake(name: str) -> Mistake:
    for m in MISTAKES:
        if m.name == name:
            return m
    raise KeyError(f"no mistake {name!r}")


@functools.cache
def catch(name: str) -> tuple[tuple[str, str], ...]:
    """(claim id or ``samples``, the failure) for every claim and check that catches the mistake ``name``."""
    m = mistake(name)
    return tuple(failures(exercise(m.exercise), m.implementation()))


@functools.cache
def _observed(name: str) -> tuple[dict, ...]:
    m = mistake(name)
    return tuple(observations(exercise(m.exercise), m.make()))


def named_mistakes(exercise_name: str, piece: Any) -> list[Mistake]:
    """The catalogued mistakes of the exercise that ``piece`` behaves exactly like, on every sample input
    (the same values, shapes, dtypes, modes and draws); usually none or one."""

    e = exercise(exercise_name)
    mine = observations(e, piece)
    return [m for m in MISTAKES if m.exercise == exercise_name
            and all(compare_observations(b, a) is None for a, b in zip(mine, _observed(m.name), strict=True))]


def likely_mistake(exercise_name: str, piece: Any) -> str:
    """What the catalogue calls the mistake ``piece`` makes, when it behaves exactly like one; else ``""``."""
    named = named_mistakes(exercise_name, piece)
    return named[0].what if len(named) == 1 else ""


__all__ = ["MISTAKES", "Mistake", "catch", "likely_mistake", "mistake", "named_mistakes"]
