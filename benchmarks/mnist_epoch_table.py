"""One §8 MNIST epoch on the CPU: the book's pipeline (torchvision dataset, PIL → ToTensor per sample, DataLoader)
against the fast path (``ShuffledBatches``: the same batches in the same order, sliced from one tensor), at 1 and
2 torch threads, written as one JSON record (the machine, the date, the seconds, the ratio).

The epoch timed is ``bench_s8_mnist_epoch.py``'s (``make bench``): data loaded and model built before the clock,
the recipe's model, loss and optimizer on both paths. Per thread count: one fast epoch to warm up, the book's
pipeline once, then the fast path's median of ``--repeats``.

Run from the repository root, on a quiet machine::

    .venv/bin/python benchmarks/mnist_epoch_table.py benchmarks/results/cpu-2core/mnist-epoch.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_s8_mnist_epoch import _seconds  # the benchmark's own timed epoch

from torchmech.chapter.data.mnist import data_root
from torchmech.chapter.runs import mnist_train_batches
from torchmech.runtime.devices import environment


def measure(threads: int, repeats: int) -> dict[str, object]:
    torch.set_num_threads(threads)
    dev = torch.device("cpu")
    book_batches = mnist_train_batches(data_root(), False, dev)
    fast_batches = mnist_train_batches(data_root(), True, dev)
    _seconds(fast_batches, dev)  # warm-up
    book = _seconds(book_batches, dev)
    fast = [_seconds(fast_batches, dev) for _ in range(repeats)]
    median = statistics.median(fast)
    row = {"threads": threads, "book_pipeline_s": round(book, 3), "fast_path_s": round(median, 3),
           "fast_path_runs_s": [round(s, 3) for s in fast], "fast_path_ms_per_step": round(1000 * median / 938, 3),
           "ratio": round(book / median, 2)}
    print(f"{threads} thread(s): book pipeline {book:.2f} s, fast path {median:.3f} s, ratio {book / median:.1f}x",
          flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the JSON record to write")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    machine = environment("cpu")
    rows = [measure(n, args.repeats) for n in args.threads]
    record = {"what": "one §8 MNIST epoch (938 batches of 64) on the CPU: the book's pipeline and the fast path",
              "machine": machine, "date": datetime.date.today().isoformat(), "rows": rows}
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
