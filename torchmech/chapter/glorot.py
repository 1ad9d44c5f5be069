r"""§2 Tensors that hold parameters: Glorot (Xavier) initialisation and the chapter's ``MyModule``
(:class:`RawTensorModule` as printed, :class:`ParameterModule` repaired).

Glorot & Bengio (2010) keep the variance of activations and gradients roughly equal
across layers by drawing a weight of fan-in :math:`n_{in}` and fan-out :math:`n_{out}` from

.. math::
    \mathcal{U}(-a, a),\ a = g\sqrt{\frac{6}{n_{in} + n_{out}}}
    \qquad\text{or}\qquad
    \mathcal{N}(0, \sigma^2),\ \sigma = g\sqrt{\frac{2}{n_{in} + n_{out}}},

both of variance :math:`g^2 \cdot 2 / (n_{in} + n_{out})`; :math:`g` is the gain.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn


def fans(shape: Sequence[int] | torch.Size) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of ``shape``, in PyTorch's convention.

    A weight is ``(out_features, in_features, *kernel)``: ``fan_in = shape[1] * receptive``,
    ``fan_out = shape[0] * receptive``, with ``receptive`` the product of the kernel dims
    (1 for a Linear layer). So ``Linear(3, 5).weight`` (5×3) has fans (3, 5) and a
    ``Conv2d(3, 8, 5)`` weight (8×3×5×5) has fans (75, 200).

    Example::

        >>> fans(nn.Linear(3, 5).weight.shape), fans((8, 3, 5, 5))
        ((3, 5), (75, 200))

    Raises:
        ValueError: fewer than 2 dimensions, or a dimension that is not a non-negative int.
    """
    dims = tuple(shape)
    if len(dims) < 2:
        raise ValueError(
            f"fan in and fan out need a shape of at least 2 dimensions, got {dims}"
        )
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, int) or d < 0:
            raise ValueError(f"shape dimensions must be non-negative ints, got {dims}")
    receptive = math.prod(dims[2:])
    return dims[1] * receptive, dims[0] * receptive


def _check(fan_in: int, fan_out: int, gain: float) -> None:
    if fan_in < 0 or fan_out < 0:
        raise ValueError(f"fans must be non-negative, got fan_in={fan_in}, fan_out={fan_out}")
    if fan_in + fan_out == 0:
        raise ValueError("fan_in + fan_out is 0: Glorot's scale is undefined for an empty weight")
    if not (gain >= 0 and math.isfinite(gain)):
        raise ValueError(f"gain must be a finite number >= 0, got {gain}")


def glorot_bound(fan_in: int, fan_out: int, gain: float = 1.0) -> float:
    """Half-width ``a = gain * sqrt(6 / (fan_in + fan_out))`` of Glorot's uniform law.

    ``nn.init.xavier_uniform_`` draws from ``U(-a, a)`` with this ``a``: for a (2, 4) weight,
    fans (4, 2) and ``a = 1``.

    Example::

        >>> glorot_bound(4, 2)
        1.0
        >>> w = nn.init.xavier_uniform_(torch.empty(2, 4))
        >>> bool(w.abs().max() <= glorot_bound(*fans(w.shape)))
        True
    """
    _check(fan_in, fan_out, gain)
    return gain * math.sqrt(6.0 / (fan_in + fan_out))


def glorot_std(fan_in: int, fan_out: int, gain: float = 1.0) -> float:
    """Standard deviation ``gain * sqrt(2 / (fan_in + fan_out))`` of Glorot's normal law."""
    _check(fan_in, fan_out, gain)
    return gain * math.sqrt(2.0 / (fan_in + fan_out))


class RawTensorModule(nn.Module):
    """The book's §2 ``MyModule`` exactly as printed: two Xavier-normal tensors ``w1`` (2×3), ``w2`` (1×2).

    **The trap.** ``torch.empty(..., requires_grad=True)`` makes plain tensor attributes,
    not registered parameters: ``parameters()`` is empty, so no optimizer sees them, and
    ``state_dict()`` and ``.to()`` pass them by. :class:`ParameterModule` is the repair.

    Example::

        >>> m = RawTensorModule()
        >>> list(m.parameters()), m.w1.requires_grad
        ([], True)
    """

    def __init__(self) -> None:
        super().__init__()
        self.w1 = torch.empty(2, 3, requires_grad=True)
        nn.init.xavier_normal_(self.w1)
        self.w2 = torch.empty(1, 2, requires_grad=True)
        nn.init.xavier_normal_(self.w2)


class ParameterModule(nn.Module):
    """The book's §2 ``MyModule`` repaired with ``nn.Parameter``: the same draws as
    :class:`RawTensorModule`, now registered as parameters.

    Example::

        >>> [name for name, _ in ParameterModule().named_parameters()]
        ['w1', 'w2']
    """

    def __init__(self) -> None:
        super().__init__()
        self.w1 = nn.Parameter(torch.empty(2, 3))
        self.w2 = nn.Parameter(torch.empty(1, 2))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_normal_(self.w1)
        nn.init.xavier_normal_(self.w2)
