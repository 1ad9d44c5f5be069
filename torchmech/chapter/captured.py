r"""§8's MNIST training with the whole step captured once as a CUDA graph and replayed per batch.

An eager CUDA step of §8's small MLP is dozens of kernel launches, each paid on the host (about 1.7 ms
per step on an H200, 1.6 s an epoch): the GPU waits for Python. Here the data sit on the GPU, and one
training step — the batch gathered through the epoch's permutation, forward, ``CrossEntropyLoss``,
backward, Adam's update, the epoch's loss and accuracy sums — is recorded once as a CUDA graph
(:class:`torch.cuda.CUDAGraph`) and replayed 938 times an epoch: one launch per step.

The batches are those of ``DataLoader(TensorDataset(x, y), batch_size, shuffle=True)``, in its order:
each epoch draws its permutation as :meth:`torchmech.chapter.train.ShuffledBatches.order` does, and the graph
reads batch *i* as ``perm[start : start + B]`` with ``start`` a counter on the GPU that the graph itself
advances (a graph's shapes and addresses are fixed; a counter is the one thing that moves). The last,
shorter batch (60,000 = 937·64 + 32) is a second graph. ``steps_per_graph`` records several
consecutive steps in one graph (``None``: the whole epoch, one replay an epoch), for when the host's
launches, not the GPU's kernels, set the pace. The epoch's numbers are
:func:`torchmech.chapter.train.train`'s: the mean of the per-batch losses and the share of right answers on the
training batches' own forward passes.

Adam runs with ``capturable=True`` (its step count on the GPU) and ``fused=True`` on CUDA: the same
update rule as the book's ``Adam(lr=0.001)``, rounded in another order. Capturing needs a few warm-up
steps first; they run on the model and optimiser, which are then put back exactly as they were, so
the first replayed step is the book's first step.

``capture=False`` runs the same step without a graph (any device): on the CPU it is
:func:`~torchmech.chapter.train.train` over :class:`~torchmech.chapter.train.ShuffledBatches` to the last bit, which is
how the tests pin the step down where there is no GPU.

Example::

    >>> import torch
    >>> from torchmech.chapter.models import mnist_mlp
    >>> _ = torch.manual_seed(1)
    >>> x, y = torch.rand(100, 1, 28, 28), torch.randint(0, 10, (100,))
    >>> epochs = CapturedEpochs(mnist_mlp(), x, y, batch_size=64, capture=False)
    >>> len(epochs), epochs.batch_sizes
    (2, (64, 36))
    >>> loss, acc = epochs.epoch()
    >>> 0.0 <= acc <= 1.0
    True
"""

from __future__ import annotations

import time

import torch
from torch import nn

from torchmech.chapter.recipes import RECIPES
from torchmech.chapter.train import History, ShuffledBatches


class CapturedEpochs:
    """§8's training epochs, each step one replay of a captured CUDA graph.

    Args:
        model: the classifier (§8's ``mnist_mlp``), on ``x``'s device; trained in place.
        x, y: the whole training set on one device (images as floats, labels as int64).
        batch_size: samples per step (the book's 64); the last batch holds the rest.
        lr: Adam's learning rate (the book's 0.001).
        capture: record the step as a CUDA graph (default: when ``x`` is on a CUDA device); ``False``
            runs the same step eagerly.
        steps_per_graph: consecutive steps recorded in one graph (1: a graph per step, replayed per batch;
            ``None``: the whole epoch in one graph, replayed once an epoch).

    Shape:
        - x: :math:`(N, *)`, y: :math:`(N)`; ``N > 0``.

    Attributes:
        capture_s: seconds spent warming up and capturing (0 without capture).
        epoch_s: each epoch's seconds so far, the device drained (:meth:`epoch` ends by reading its sums).
    """

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 64,
                 lr: float = 0.001, capture: bool | None = None, steps_per_graph: int | None = 1) -> None:
        self.order = ShuffledBatches(x, y, batch_size)  # checks the sizes and devices; draws the epoch's order
        if len(x) == 0:
            raise ValueError("the training set is empty")
        self.device = x.device
        self.capture = self.device.type == "cuda" if capture is None else capture
        if self.capture and self.device.type != "cuda":
            raise ValueError(f"a CUDA graph needs a CUDA device, got {self.device}")
        self.model, self.x, self.y = model, x, y
        self.loss_fn = nn.CrossEntropyLoss()
        cuda = self.device.type == "cuda"
        self.optimizer = torch.optim.Adam(model.parameters(), lr=lr, capturable=cuda, fused=cuda or None)
        if steps_per_graph is not None and steps_per_graph <= 0:
            raise ValueError(f"steps_per_graph must be > 0 (or None: the whole epoch), got {steps_per_graph}")
        full, rest = divmod(len(x), batch_size)
        self.batch_sizes = (batch_size,) * full + ((rest,) if rest else ())
        k = steps_per_graph or len(self.batch_sizes)
        #: the epoch as runs of consecutive steps, each run one graph's replay (runs alike share one graph)
        self.runs = [self.batch_sizes[i:i + k] for i in range(0, len(self.batch_sizes), k)]
        # The state the graphs read and write: fixed addresses, changed in place.
        self.perm = torch.zeros(len(x), dtype=torch.int64, device=self.device)
        self.start = torch.zeros((), dtype=torch.int64, device=self.device)
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        self.right = torch.zeros((), dtype=torch.int64, device=self.device)
        self.offsets = {b: torch.arange(b, device=self.device) for b in set(self.batch_sizes)}
        self.graphs: dict[tuple[int, ...], torch.cuda.CUDAGraph] = {}
        self.capture_s = 0.0
        self.epoch_s: list[float] = []
        if self.capture:
            self._capture()

    def __len__(self) -> int:
        """Steps (batches) per epoch."""
        return len(self.batch_sizes)

    def _step(self, b: int) -> None:
        """One training step on the next ``b`` samples of the permutation; advances the counter."""
        idx = self.perm[self.start + self.offsets[b]]
        xb, yb = self.x[idx], self.y[idx]
        logits = self.model(xb)
        loss = self.loss_fn(logits, yb)
        loss.backward()
        self.optimizer.step()
        # set to None (train()'s zero_grad): the next backward allocates .grad and writes it, in a graph too
        self.optimizer.zero_grad(set_to_none=True)
        self.loss_sum += loss.detach()
        self.right += (logits.detach().argmax(dim=1) == yb).sum()
        self.start += b

    def _capture(self) -> None:
        """Warm up on a side stream (as capturing requires), put the model and optimiser back as they were,
        then record one graph per distinct run of steps (:attr:`runs`). Each step ends with ``.grad`` unset,
        so every captured backward allocates its own gradients and writes them, never sums stale ones."""
        torch.cuda.synchronize(self.device)
        began = time.perf_counter()
        params = [p.detach().clone() for p in self.model.parameters()]
        self.perm.copy_(torch.arange(len(self.x), device=self.device))
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(3):
                for b in set(self.batch_sizes):
                    self.start.zero_()
                    self._step(b)
        torch.cuda.current_stream(self.device).wait_stream(side)
        with torch.no_grad():  # the warm-up's updates undone: parameters as built, Adam as new
            for p, saved in zip(self.model.parameters(), params, strict=True):
                p.copy_(saved)
            for state in self.optimizer.state.values():
                for value in state.values():
                    if isinstance(value, torch.Tensor):
                        value.zero_()
        for run in dict.fromkeys(self.runs):
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                for b in run:
                    self._step(b)
            self.graphs[run] = graph
        torch.cuda.synchronize(self.device)
        self.capture_s = time.perf_counter() - began

    def epoch(self) -> tuple[float, float]:
        """Train one epoch in the DataLoader's order; return (mean batch loss, training accuracy)."""
        began = time.perf_counter()
        order = self.order.order()
        self.perm.copy_(order)
        for t in (self.start, self.loss_sum, self.right):
            t.zero_()
        self.model.train()
        for run in self.runs:
            if self.capture:
                self.graphs[run].replay()
            else:
                for b in run:
                    self._step(b)
        loss, right = self.loss_sum.item(), self.right.item()
        self.epoch_s.append(time.perf_counter() - began)
        return loss / len(self), right / len(self.x)


def captured_mnist(x: torch.Tensor, y: torch.Tensor, epochs: int, seed: int = 1, capture: bool | None = None,
                   steps_per_graph: int | None = 1) -> tuple[nn.Module, History, CapturedEpochs]:
    """§8's training as the book seeds it (seed, model, reseed), every step a graph replay: the trained
    model, its :class:`~torchmech.chapter.train.History` (train loss and accuracy per epoch) and the epochs' runner.

    ``x``, ``y``: the training images (as floats, e.g. :func:`torchmech.chapter.data.mnist.to_float_images`) and
    labels, on the device to train on."""
    if epochs <= 0:
        raise ValueError(f"epochs must be > 0, got {epochs}")
    recipe = RECIPES["mnist"]
    torch.manual_seed(seed)
    model = recipe.build().to(x.device)
    runner = CapturedEpochs(model, x, y, recipe.batch_size, recipe.lr, capture=capture,
                            steps_per_graph=steps_per_graph)
    torch.manual_seed(seed)
    history = History()
    for _ in range(epochs):
        loss, acc = runner.epoch()
        history.train_loss.append(loss)
        history.train_acc.append(acc)
    return model, history, runner
