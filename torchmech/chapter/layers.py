"""§6 A custom layer: ``NoisyLinear``, a linear layer that adds Gaussian noise to its input in training."""

from __future__ import annotations

import torch
from torch import nn


class NoisyLinear(nn.Module):
    r"""Linear map of a noisy input: :math:`y = (x + \epsilon)\,W + b`, :math:`\epsilon \sim \mathcal{N}(0, \sigma^2)`.

    The noise is drawn afresh per element on every call in training and is absent in
    evaluation, so for a fixed input the training output has mean :math:`xW + b` and
    covariance :math:`\sigma^2 W^\top W`.

    Args:
        input_size: features of the input, :math:`n_{in}`.
        output_size: features of the output, :math:`n_{out}`.
        noise_stddev: :math:`\sigma \ge 0` (0 makes it a plain linear layer).

    Shape:
        input ``(*, input_size)``, output ``(*, output_size)``.

    Attributes:
        w: weight of shape ``(input_size, output_size)`` — transposed with respect to
            ``nn.Linear.weight`` — initialised Xavier-uniform.
        b: bias of shape ``(output_size,)``, initialised to zeros.

    Differences from the book: ``forward(x, training=None)`` follows ``module.training``
    when ``training`` is ``None`` (the book's default was ``False``, "no noise", while
    PyTorch modules start in training mode); an explicit bool overrides it. The noise is
    drawn on ``x``'s device and in its dtype (the book's ``torch.normal(0, σ, x.shape)``
    always drew float32 on the CPU), from the same generator call, so on the CPU in float32
    the book's numbers come out unchanged.

    Example::

        >>> _ = torch.manual_seed(1)
        >>> layer = NoisyLinear(4, 2)
        >>> x = torch.zeros(1, 4)
        >>> torch.equal(layer(x, training=True), layer(x, training=True))  # fresh noise per call
        False
        >>> layer(x, training=False)  # no noise: x·w + b with b = 0
        tensor([[0., 0.]], grad_fn=<AddBackward0>)

    With this seed the training calls print the book's numbers: the claims ``s6.noisy_linear.*``.
    """

    def __init__(self, input_size: int, output_size: int, noise_stddev: float = 0.1) -> None:
        super().__init__()
        if input_size <= 0 or output_size <= 0:
            raise ValueError(f"sizes must be positive, got input_size={input_size}, output_size={output_size}")
        if not noise_stddev >= 0:
            raise ValueError(f"noise_stddev must be >= 0, got {noise_stddev}")
        self.input_size, self.output_size, self.noise_stddev = input_size, output_size, float(noise_stddev)
        self.w = nn.Parameter(torch.empty(input_size, output_size))
        self.b = nn.Parameter(torch.empty(output_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.w)
        nn.init.zeros_(self.b)

    def noise(self, x: torch.Tensor) -> torch.Tensor:
        """One draw of :math:`\\epsilon`, shaped like ``x``, on its device and in its dtype."""
        return torch.normal(0.0, self.noise_stddev, x.shape, dtype=x.dtype, device=x.device)

    def forward(self, x: torch.Tensor, training: bool | None = None) -> torch.Tensor:
        if x.dim() == 0 or x.shape[-1] != self.input_size:
            got = x.shape[-1] if x.dim() else "a scalar"
            raise ValueError(f"NoisyLinear expects inputs of width input_size={self.input_size}, got {got} "
                             f"(input shape {tuple(x.shape)})")
        if training is None:
            training = self.training
        x_new = torch.add(x, self.noise(x)) if training else x
        return torch.add(torch.matmul(x_new, self.w), self.b)

    def extra_repr(self) -> str:
        return f"input_size={self.input_size}, output_size={self.output_size}, noise_stddev={self.noise_stddev}"
