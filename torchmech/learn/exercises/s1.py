"""§1 Computation graphs: its exercises, their sample inputs and observers."""

from __future__ import annotations

import torch

from torchmech.learn.exercises.core import (
    Exercise,
    Sample,
    _fresh,
    _gen,
)
from torchmech.learn.grader import call


def compute_z_samples() -> tuple[Sample, ...]:
    i64, i32, f32, f64 = torch.int64, torch.int32, torch.float32, torch.float64
    same = [((), (), (), i64), ((1,), (1,), (1,), f32), ((3,), (3,), (3,), i64), ((2, 2), (2, 2), (2, 2), f32),
            ((3, 1), (1, 4), (4,), f64), ((2, 3, 5), (5,), (1, 3, 1), f32), ((65, 7), (65, 7), (7,), f64)]
    # mixed dtypes (type promotion, a 0-d tensor counting less), c or b alone setting the result's shape (so
    # a − b cannot hold the result in place), empty
    mixed = [(((2, 3), f32), ((2, 3), f32), ((2, 3), f64)), (((3,), i64), ((3,), i64), ((2, 3), f32)),
             (((), i32), ((), i32), ((4,), i64)), (((3,), f32), ((2, 3), f32), ((), f64)),
             (((0,), f32), ((0,), f32), ((3, 1), f32))]
    cases = [((sa, dtype), (sb, dtype), (sc, dtype)) for sa, sb, sc, dtype in same] + mixed
    out = []
    for i, args in enumerate(cases):
        g = _gen(i)
        a, b, c = (torch.randn(s, generator=g, dtype=d) if d.is_floating_point
                   else torch.randint(-9, 10, s, generator=g, dtype=d) for s, d in args)
        out.append(Sample(_fresh(a, b, c), ("a", "b", "c"), seed=i))
    return tuple(out)


EXERCISES: tuple[Exercise, ...] = (
    Exercise("compute_z", "s1", "def compute_z(a, b, c):",
             "Return z = 2·(a − b) + c built from torch.sub, torch.mul and torch.add, so that PyTorch records "
             "the graph Sub → Mul → Add. a, b, c are tensors of any shapes that broadcast together (0-d and "
             "empty ones too; any of the three may be the one that sets the result's shape) and of any dtypes, "
             "int or float, mixed too; z has their broadcast shape and the dtype of PyTorch's type promotion (in "
             "which a 0-d tensor counts less than one with dimensions); a, b, c are left unchanged.",
             ("s1.compute_z.rank0", "s1.compute_z.rank1", "s1.compute_z.rank2", "s1.graph.dag"),
             compute_z_samples, call,
             ("§1: a computation graph is built while the code runs, one node per operation.",
              "z = 2 × (a − b) + c, in that order: subtract, multiply, add.",
              "r1 = torch.sub(a, b); r2 = torch.mul(r1, 2); return torch.add(r2, c)"),
             spans=("0-d", "rank ≥ 3", "empty", "broadcasting", "several dtypes", "dtype promotion")),
)
