"""One MNIST training epoch (§8): the book's pipeline (torchvision dataset, PIL → ToTensor per
sample, DataLoader) against the fast path (device-resident tensors, the same batches in the
same order), on each device, in the same run. Only the epoch is timed (data already loaded,
model built); ``extra_info`` holds both times, samples per second and the ratio.

``make test`` runs it once (``--benchmark-disable``) as a smoke test on the first
:data:`SMOKE_BATCHES` batches of each path; ``make bench`` times whole epochs.
"""

from __future__ import annotations

import statistics

import pytest
import torch

from torchmech.chapter.data.mnist import data_root, fetch_mnist
from torchmech.chapter.recipes import RECIPES
from torchmech.chapter.runs import mnist_train_batches
from torchmech.chapter.train import FirstBatches, multiclass_correct, train
from torchmech.runtime.devices import resolve_device, synced_perf_counter
from torchmech.spec.claims import claim

SMOKE_BATCHES = 100


def _epoch(batches, device: torch.device) -> float:
    recipe = RECIPES["mnist"]  # mnist_run's model, loss and optimizer (Adam, lr 0.001), on both paths
    torch.manual_seed(recipe.seed)
    model = recipe.build()
    optimizer = recipe.make_optimizer(model.parameters())
    torch.manual_seed(recipe.seed)
    history = train(model, recipe.loss(), optimizer, batches, 1, correct=multiclass_correct, device=device)
    return history.train_acc[0]


def _seconds(batches, device: torch.device) -> float:
    start = synced_perf_counter()
    _epoch(batches, device)
    return synced_perf_counter() - start


@pytest.mark.benchmark(group="s8 MNIST epoch, batch 64", timer=synced_perf_counter)
def test_mnist_epoch_book_pipeline_vs_fast_path(benchmark, device: str) -> None:
    fetch_mnist(sources=[])  # verified offline; `make bench` fetched it
    dev = resolve_device(device)
    book_batches = mnist_train_batches(data_root(), False, dev)
    fast_batches = mnist_train_batches(data_root(), True, dev)
    timed = not benchmark.disabled  # `make test` runs each path once: a smoke run, not a measure
    if not timed:
        book_batches = FirstBatches(book_batches, SMOKE_BATCHES)
        fast_batches = FirstBatches(fast_batches, SMOKE_BATCHES)
    else:
        _seconds(fast_batches, dev)  # warm-up (first kernel launches, allocator)
    book = _seconds(book_batches, dev)
    fast = statistics.median(_seconds(fast_batches, dev) for _ in range(3 if timed else 1))
    samples = 60_000 if timed else SMOKE_BATCHES * 64
    benchmark.extra_info.update({
        "batches": len(fast_batches),
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        "book_pipeline_s": round(book, 3), "fast_path_s": round(fast, 3),
        "samples_per_s_book": round(samples / book), "samples_per_s_fast": round(samples / fast),
        "ratio": round(book / fast, 2),
    })
    print(f"\nMNIST epoch ({len(fast_batches)} batches) on {device}: book pipeline {book:.2f} s, "
          f"fast path {fast:.2f} s, ratio {book / fast:.1f}x")
    accuracy = benchmark.pedantic(_epoch, args=(fast_batches, dev), rounds=1, iterations=1)
    if timed:  # a whole epoch: the book's first epoch accuracy, to its printed digits
        assert f"{accuracy:.4f}" == claim("s8.mnist.train_acc.epoch0").book
    else:  # the first batches: both paths give the same accuracy (the same batches, the same steps)
        assert accuracy == _epoch(book_batches, dev)
