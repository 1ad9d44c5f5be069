"""Every hypothesis strategy of the learning path, in one place."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

FLOAT_DTYPES = (torch.float32, torch.float64)
INT_DTYPES = (torch.int32, torch.int64)
NUMPY_DTYPE = {
    torch.float32: np.float32, torch.float64: np.float64,
    torch.int32: np.int32, torch.int64: np.int64,
}

#: Seeds for torch's generator, drawn by hypothesis so a failing example replays exactly.
torch_seeds = st.integers(min_value=0, max_value=2**32 - 1)


def reals(low: float, high: float, dtype: torch.dtype = torch.float64) -> st.SearchStrategy[float]:
    """Finite, normal (no subnormal) floats in [low, high], representable in ``dtype``."""
    width = 32 if dtype == torch.float32 else 64
    return st.floats(low, high, allow_nan=False, allow_infinity=False,
                     allow_subnormal=False, width=width)


def tensors(
    shape: tuple[int, ...],
    dtype: torch.dtype,
    device: str = "cpu",
    low: float = -1e3,
    high: float = 1e3,
) -> st.SearchStrategy[torch.Tensor]:
    """Tensors of ``shape`` and ``dtype`` with elements in [low, high], built on ``device``."""
    if dtype.is_floating_point:
        elements = reals(low, high, dtype)
    else:
        elements = st.integers(int(low), int(high))
    return hnp.arrays(NUMPY_DTYPE[dtype], shape, elements=elements).map(
        lambda a: torch.tensor(a, device=device)
    )


def shapes(min_dims: int = 1, max_dims: int = 3, max_side: int = 5) -> st.SearchStrategy[tuple[int, ...]]:
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=max_side)


#: Three shapes that broadcast together, rank 0 (scalars) included.
broadcastable_triples = hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3, max_side=4)

#: The dtypes §1's property runs over.
arith_dtypes = st.sampled_from(FLOAT_DTYPES + INT_DTYPES)
