"""One §8 MNIST epoch (938 steps of batch 64, the DataLoader's order) three ways on one device, and the
captured run's 20 epochs judged by the chapter's test-accuracy band; writes ``mnist-epoch.json``.

1. the book's pipeline: ``MNIST(transform=ToTensor())`` + ``DataLoader(shuffle=True)`` through ``train``;
2. the eager fast path: the whole set on the device, :class:`~torchmech.chapter.train.ShuffledBatches`;
3. the captured step: :class:`~torchmech.chapter.captured.CapturedEpochs` (CUDA: one graph replay per step).

Each path trains from the book's seeds. The book's pipeline runs once (it is slow, and steady), the fast
path once to warm up and then three times (median), the captured path 20 epochs (its median epoch, its
first, and its capture apart). On a machine without CUDA, ``--device cpu`` runs the same code with the
step run eagerly (a dry run: ``--epochs 2 --book-batches 50``).

    python benchmarks/gpu/mnist_epoch.py --device cuda --out OUT
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch


def _seconds(fn, device: torch.device) -> tuple[float, object]:
    from torchmech.runtime.devices import synchronize

    synchronize(device)
    start = time.perf_counter()
    out = fn()
    synchronize(device)
    return time.perf_counter() - start, out


def _one_epoch(batches, device: torch.device) -> float:
    """§8's first epoch through ``train`` from the book's seeds: its training accuracy."""
    from torchmech.chapter.recipes import RECIPES
    from torchmech.chapter.train import multiclass_correct, train

    recipe = RECIPES["mnist"]
    torch.manual_seed(recipe.seed)
    model = recipe.build()
    optimizer = recipe.make_optimizer(model.parameters())
    torch.manual_seed(recipe.seed)
    return train(model, recipe.loss(), optimizer, batches, 1, correct=multiclass_correct,
                 device=device).train_acc[0]


def measure(device: torch.device, data: Path | None, epochs: int, book_batches: int | None) -> dict:
    from torchmech.chapter.captured import captured_mnist
    from torchmech.chapter.data.mnist import load_mnist, to_float_images
    from torchmech.chapter.runs import mnist_train_batches
    from torchmech.chapter.train import FirstBatches
    from torchmech.runtime.devices import environment
    from torchmech.spec.claims import claim

    torch.manual_seed(1)
    book = mnist_train_batches(data, False, device)
    if book_batches is not None:
        book = FirstBatches(book, book_batches)
    book_s, book_acc = _seconds(lambda: _one_epoch(book, device), device)
    fast = mnist_train_batches(data, True, device)
    _seconds(lambda: _one_epoch(fast, device), device)  # warm-up: first launches, allocator
    eager = [_seconds(lambda: _one_epoch(fast, device), device) for _ in range(3)]
    eager_s, eager_acc = statistics.median(t for t, _ in eager), eager[0][1]

    images, labels = load_mnist(data, train=True)
    x, y = to_float_images(images).to(device), labels.to(device)
    test_images, test_labels = load_mnist(data, train=False)
    test_x, test_y = to_float_images(test_images).to(device), test_labels.to(device)
    variants = {}
    for name, per_graph in (("step", 1), ("epoch", None)):  # a graph per step; the whole epoch in one graph
        total_s, (model, history, runner) = _seconds(
            lambda per_graph=per_graph: captured_mnist(x, y, epochs, steps_per_graph=per_graph), device)
        with torch.no_grad():
            model.eval()
            test_acc = (model(test_x).argmax(dim=1) == test_y).float().mean().item()
        variants[name] = (total_s, history, runner, test_acc)
    band = claim("s8.mnist.test_acc")
    full_book = book_batches is None
    env = environment(device) | {"cuda": torch.version.cuda or "", "platform": platform.platform(),
                                 "date": time.strftime("%Y-%m-%d")}
    book_epoch_s = book_s * len(fast) / len(book)

    def captured(total_s: float, history, runner, test_acc: float) -> dict:
        steady = statistics.median(runner.epoch_s[1:]) if len(runner.epoch_s) > 1 else runner.epoch_s[0]
        return {"graph": runner.capture, "graphs": len(runner.graphs), "capture_s": runner.capture_s,
                "epoch_s": steady, "first_epoch_s": runner.epoch_s[0], "epochs_s": runner.epoch_s, "epochs": epochs,
                "total_s": total_s, "step_us": steady / len(runner) * 1e6,
                "ratio_book_to_captured": book_epoch_s / steady, "ratio_eager_to_captured": eager_s / steady,
                "train_acc_epoch0": history.train_acc[0], "train_acc": history.train_acc,
                "train_loss": history.train_loss, "test_acc": test_acc,
                "test_acc_holds": band.rule.cpu.judge(band.book, test_acc, None).holds if epochs == 20
                else "not judged (epochs != 20)"}

    return {
        "environment": env, "steps_per_epoch": len(fast), "batch_size": 64,
        "book_pipeline_s": book_s if full_book else None, "book_pipeline_batches": len(book),
        "book_pipeline_epoch_estimate_s": book_epoch_s,
        "eager_fast_path_s": eager_s, "eager_fast_path_runs_s": [t for t, _ in eager],
        "ratio_book_to_eager": book_epoch_s / eager_s,
        "train_acc_epoch0": {"book": claim("s8.mnist.train_acc.epoch0").book,
                             "book_pipeline": book_acc if full_book else None, "eager_fast_path": eager_acc},
        "test_acc_claim": {"id": band.id, "book": band.book, "rule": band.rule.cpu.describe(None)},
        "captured": {name: captured(*v) for name, v in variants.items()},
    }


def table(r: dict) -> str:
    book = r["book_pipeline_s"]
    lines = [
        f"MNIST epoch ({r['steps_per_epoch']} steps of {r['batch_size']}) on {r['environment']['device_name']}:",
        f"  book pipeline      {book:8.3f} s" if book is not None else
        f"  book pipeline      {r['book_pipeline_epoch_estimate_s']:8.3f} s "
        f"(from {r['book_pipeline_batches']} batches)",
        f"  eager fast path    {r['eager_fast_path_s']:8.3f} s   (train acc epoch 0: "
        f"{r['train_acc_epoch0']['eager_fast_path']:.4f}; the book's {r['train_acc_epoch0']['book']})"]
    for name, c in r["captured"].items():
        lines.append(
            f"  captured, {name:5}  {c['epoch_s']:8.3f} s   ({c['step_us']:.0f} us a step, {c['graphs']} graphs, "
            f"capture {c['capture_s']:.2f} s; book/this {c['ratio_book_to_captured']:.1f}x, "
            f"eager/this {c['ratio_eager_to_captured']:.1f}x; train acc epoch 0 {c['train_acc_epoch0']:.4f}; "
            f"test acc after {c['epochs']} epochs {c['test_acc']:.4f}: {c['test_acc_holds']})")
    lines.append(f"  test-accuracy band: {r['test_acc_claim']['rule']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--book-batches", type=int, default=None, help="time only this many batches of the book's "
                        "pipeline (default: the whole epoch)")
    parser.add_argument("--out", type=Path, default=Path("reports"))
    args = parser.parse_args(argv)
    from torchmech.runtime.devices import resolve_device

    try:
        device = resolve_device(args.device)
    except ValueError as err:
        print(f"mnist_epoch: error: {err}", file=sys.stderr)
        return 2
    result = measure(device, args.data, args.epochs, args.book_batches)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "mnist-epoch.json").write_text(json.dumps(result, indent=2))
    print(table(result))
    print(f"wrote {args.out / 'mnist-epoch.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
