"""The chapter's implementable pieces, as exercises a learner writes and the specification grades.

Each :class:`Exercise` names one piece of :class:`torchmech.chapter.implementation.Implementation` (``compute_z``,
``NoisyLinear``, ``train``…), its fixed signature, the task in the chapter's terms, the registry
claims that grade it, and — as PyTorch's OpInfo entries are data — its **samples** (drawn inputs:
batch 1, odd and large; non-square and broadcast shapes; several seeds and dtypes; several epochs
where state matters) and its **observer**: what a caller can see of one call (values, shapes, dtypes,
types, parameters, modes, the inputs after the call, the random generators afterwards). The grader
(:func:`check_piece`) runs the learner's piece and the reference on the same samples from the same
seeds and reports the first difference and how the values differ; laws (the noise's variance,
Glorot's law) are observables too, where random draws cannot be matched. The entries, their samples and
observers live per section (``torchmech/learn/exercises/s1.py`` … ``s9.py``, as OpInfo's definitions live apart
from its core); the machinery in :mod:`torchmech.learn.exercises.core`.
"""

from __future__ import annotations

from torchmech.learn.exercises import s1, s2, s3, s4, s5, s6, s7, s8, s9
from torchmech.learn.exercises.core import Exercise, Finding, check_piece, failures, observations

#: Every exercise, in chapter order.
EXERCISES: tuple[Exercise, ...] = (*s1.EXERCISES, *s2.EXERCISES, *s3.EXERCISES, *s4.EXERCISES, *s5.EXERCISES,
                                   *s6.EXERCISES, *s7.EXERCISES, *s8.EXERCISES, *s9.EXERCISES)


def exercise(name: str) -> Exercise:
    for e in EXERCISES:
        if e.name == name:
            return e
    raise KeyError(f"no exercise {name!r}: choose from {', '.join(e.name for e in EXERCISES)}")


def exercises(section: str | None = None) -> list[Exercise]:
    return [e for e in EXERCISES if section is None or e.section == section]


__all__ = ["EXERCISES", "Exercise", "Finding", "check_piece", "exercise", "exercises", "failures",
           "observations"]
