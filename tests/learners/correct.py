"""Right answers written differently from torchmech's own (other operators, a DataLoader inside, no_grad by
hand, randn_like for the noise…): the grader must accept each one (a test)."""

# ruff: noqa: E701, E702
from __future__ import annotations

import numpy as np
import torch
from torch import nn


def compute_z(a, b, c): return 2 * (a - b) + c
def fans(shape):
    r = 1
    for k in shape[2:]: r *= k
    return shape[1] * r, shape[0] * r
def glorot_bound(fan_in, fan_out, gain=1.0): return float(gain * np.sqrt(6 / (fan_in + fan_out)))
def mse_grad(pred, y): return 2 * (pred - y) / y.numel()
def bce_logit_grad(z, y): return (1 / (1 + torch.exp(-z)) - y) / z.numel()
def cross_entropy_logit_grad(logits, target):
    p = logits.softmax(-1); p = p.clone(); p[torch.arange(len(target)), target] -= 1; return p / len(target)
def l1_penalty(weight, strength=0.01): return strength * torch.sum(torch.abs(weight))
def linear_loss_grad(w, b, x, y):
    with torch.no_grad():
        r = y - (w * x + b)
        return -2 * torch.sum(x * r), -2 * torch.sum(r)
class NoisyLinear(nn.Module):
    def __init__(self, input_size, output_size, noise_stddev=0.1):
        super().__init__()
        self.w = nn.Parameter(torch.empty(input_size, output_size)); nn.init.xavier_uniform_(self.w)
        self.b = nn.Parameter(torch.zeros(output_size)); self.noise_stddev = noise_stddev
    def forward(self, x, training=None):
        if training is None: training = self.training
        if training:
            x = x + torch.randn_like(x) * self.noise_stddev
        return x @ self.w + self.b
def bucketize_year(years): return torch.bucketize(years, torch.tensor([73, 76, 79]), right=True)
class ShuffledBatches:
    def __init__(self, x, y, batch_size):
        from torch.utils.data import DataLoader, TensorDataset
        self.loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True)
    def __len__(self): return len(self.loader)
    def __iter__(self): return iter(self.loader)
def make_xor(n=200, seed=1):
    from torchmech.chapter.data.xor import XorData
    np.random.seed(seed)
    x = np.random.uniform(low=-1, high=1, size=(n, 2))
    y = (x[:, 0] * x[:, 1] >= 0).astype(float)
    h = n // 2
    t = lambda a: torch.from_numpy(a).float()  # noqa: E731
    return XorData(x, y, t(x[:h]), t(y[:h]), t(x[h:]), t(y[h:]))
def mnist_mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 10))
class ModuleListModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.module_list = nn.ModuleList([nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 1),
                                          nn.Sigmoid()])
    def forward(self, x):
        for f in self.module_list: x = f(x)
        return x
    def predict(self, x):
        is_np = isinstance(x, np.ndarray)
        x = torch.tensor(x, dtype=torch.float32) if is_np else x
        with torch.no_grad():
            p = (self(x)[:, 0] >= 0.5).float()
        return p.numpy() if is_np else p

#: Every right answer above, by exercise name.
CORRECT = {f.__name__: f for f in (compute_z, fans, glorot_bound, mse_grad, bce_logit_grad, cross_entropy_logit_grad,
                                   l1_penalty, linear_loss_grad, NoisyLinear, bucketize_year, ShuffledBatches,
                                   make_xor, mnist_mlp, ModuleListModel)}
