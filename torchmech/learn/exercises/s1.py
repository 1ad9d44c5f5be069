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
    cases = [((), (), (), torch.int64), ((1,), (1,), (1,), torch.float32), ((3,), (3,), (3,), torch.int64),
             ((2, 2), (2, 2), (2, 2), torch.float32), ((3, 1), (1, 4), (4,), torch.float64),
             ((2, 3, 5), (5,), (1, 3, 1), torch.float32), ((65, 7), (65, 7), (7,), torch.float64)]
    out = []
    for i, (sa, sb, sc, dtype) in enumerate(cases):
        g = _gen(i)
        if dtype.is_floating_point:
            a, b, c = (torch.randn(s, generator=g, dtype=dtype) for s in (sa, sb, sc))
        else:
            a, b, c = (torch.randint(-9, 10, s, generator=g, dtype=dtype) for s in (sa, sb, sc))
        out.append(Sample(_fresh(a, b, c), ("a", "b", "c"), seed=i))
    return tuple(out)


EXERCISES: tuple[Exercise, ...] = (
    Exercise("compute_z", "s1", "def compute_z(a, b, c):",
             "Return z = 2·(a − b) + c built from torch.sub, torch.mul and torch.add, so that PyTorch records "
             "the graph Sub → Mul → Add. a, b, c are tensors of any shapes that broadcast together and of any "
             "dtype (int or float); z has their broadcast shape and dtype; a, b, c are left unchanged.",
             ("s1.compute_z.rank0", "s1.compute_z.rank1", "s1.compute_z.rank2", "s1.graph.dag"),
             compute_z_samples, call,
             ("§1: a computation graph is built while the code runs, one node per operation.",
              "z = 2 × (a − b) + c, in that order: subtract, multiply, add.",
              "r1 = torch.sub(a, b); r2 = torch.mul(r1, 2); return torch.add(r2, c)")),
)
