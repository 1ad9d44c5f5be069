"""§1 Computation graphs: the catalogue's wrong pieces of this section's exercises, and their rows."""

from __future__ import annotations

from collections.abc import Callable

import torch

from torchmech.learn.mistakes.core import Mistake


def _compute_z_precedence() -> Callable:
    return lambda a, b, c: torch.add(torch.sub(torch.mul(a, 2), b), c)  # 2a − b + c


def _compute_z_in_place() -> Callable:
    return lambda a, b, c: torch.add(torch.mul(a.sub_(b), 2), c)  # sub_: a − b written into a


def _compute_z_in_place_result() -> Callable:
    return lambda a, b, c: torch.sub(a, b).mul_(2).add_(c)  # a − b holds z: it cannot take c's shape or dtype


def _compute_z_float_two() -> Callable:
    return lambda a, b, c: torch.add(torch.mul(torch.sub(a, b), 2.0), c)  # 2.0: integer inputs give floats


MISTAKES: tuple[Mistake, ...] = (
    Mistake("compute_z_precedence", "compute_z", "2·a − b + c: the parentheses around a − b lost",
            _compute_z_precedence),
    Mistake("compute_z_in_place", "compute_z", "a.sub_(b): a − b written into the caller's a (an in-place op)",
            _compute_z_in_place),
    Mistake("compute_z_float_two", "compute_z", "torch.mul(…, 2.0): integer inputs come back as floats",
            _compute_z_float_two),
    Mistake("compute_z_in_place_result", "compute_z", "mul_ and add_ on a − b: z is computed in place in a − b, "
            "which keeps a − b's dtype and shape (c's larger dtype or shape is lost or raises)",
            _compute_z_in_place_result),
)
