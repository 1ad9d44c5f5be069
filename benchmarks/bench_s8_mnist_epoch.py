"""One MNIST training epoch (§8): the book's pipeline (torchvision dataset, PIL → ToTensor per
sample, DataLoader) against the fast path (device-resident tensors, the same batches in the
same order), on each device, in the same run. Only the epoch is timed (data already loaded,
model built); ``extra_info`` holds both times, samples per second and the ratio.

``make test`` runs it once (``--benchmark-disable``); ``make bench`` times it.
"""

from __future__ import annotations

import statistics

import pytest
import torch
from torch import nn

from torchmech.data.mnist import data_root, fetch_mnist
from torchmech.devices import resolve_device, synced_perf_counter
from torchmech.models import mnist_mlp
from torchmech.projects import mnist_train_batches
from torchmech.train import multiclass_correct, train


def _epoch(batches, device: torch.device) -> float:
    torch.manual_seed(1)
    model = mnist_mlp()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    torch.manual_seed(1)
    history = train(model, nn.CrossEntropyLoss(), optimizer, batches, 1, correct=multiclass_correct, device=device)
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
    if timed:
        _seconds(fast_batches, dev)  # warm-up (first kernel launches, allocator)
    book = _seconds(book_batches, dev)
    fast = statistics.median(_seconds(fast_batches, dev) for _ in range(3 if timed else 1))
    benchmark.extra_info.update({
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        "book_pipeline_s": round(book, 3), "fast_path_s": round(fast, 3),
        "samples_per_s_book": round(60_000 / book), "samples_per_s_fast": round(60_000 / fast),
        "ratio": round(book / fast, 2),
    })
    print(f"\nMNIST epoch on {device}: book pipeline {book:.2f} s, fast path {fast:.2f} s, ratio {book / fast:.1f}x")
    accuracy = benchmark.pedantic(_epoch, args=(fast_batches, dev), rounds=1, iterations=1)
    assert accuracy == pytest.approx(0.8531, abs=1e-3)
