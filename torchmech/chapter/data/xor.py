"""§5 The XOR data: 200 points uniform on [−1, 1]², label 1 unless x0·x1 < 0, half for validation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class XorData:
    """The book's NumPy draw ``x`` (n, 2) and labels ``y`` (n,), both float64, and its split as
    float32 tensors: ``x_*`` of shape (n/2, 2), ``y_*`` of shape (n/2,)."""

    x: np.ndarray
    y: np.ndarray
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_valid: torch.Tensor
    y_valid: torch.Tensor


def make_xor(n: int = 200, seed: int = 1) -> XorData:
    """The book's XOR draw, exactly: ``np.random.seed(seed)``, ``uniform(-1, 1, (n, 2))``.

    Labels are 1 unless ``x0 * x1 < 0``; the first ``n/2`` rows train, the rest validate.
    With the defaults the first row and the class counts are the book's printed ones (the claims
    ``s5.data.*``).

    Raises:
        ValueError: ``n`` is not a positive even integer (the split takes half).
    """
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0 or n % 2:
        raise ValueError(f"n must be a positive even integer (half train, half validation), got {n!r}")
    np.random.seed(seed)  # the book seeds NumPy's global generator; kept for exactness
    x = np.random.uniform(low=-1, high=1, size=(n, 2))
    y = np.ones(len(x))
    y[x[:, 0] * x[:, 1] < 0] = 0
    half = n // 2
    as_t = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
    return XorData(x, y, as_t(x[:half]), as_t(y[:half]), as_t(x[half:]), as_t(y[half:]))
