"""The commands of ``torchmech``, each returning an object with ``table()``, ``to_json()``, ``write(out)``
and ``exit_code`` (:class:`Output` for the runs' key=value lines;
:class:`~torchmech.report.chapter.ChapterReport`, :class:`~torchmech.check.conformance.Matrix`,
:class:`~torchmech.check.diverge.Divergence`, :class:`~torchmech.learn.Grades` for the others), and raising
:class:`CommandError` — one line, an exit status — for what the user must fix.
:func:`torchmech.cli.main` is the one place that prints them.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torchmech import SECTIONS
from torchmech.runtime.console import Progress, quiet
from torchmech.runtime.threads import POLICY, applied, threads

if TYPE_CHECKING:
    import torch


class CommandError(Exception):
    """A one-line error for the user; ``code`` is the exit status (2: the command line or a file; 1: data missing)."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class Output:
    """A run command's result: its JSON object, and on the console its key=value line (or ``text``)."""

    data: dict[str, Any]
    text: str | None = None
    files: list[Path] = field(default_factory=list)
    exit_code: int = 0

    def table(self) -> str:
        if self.text is not None:
            return self.text
        return "  ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in self.data.items()
                         if not isinstance(v, list | dict))

    def to_json(self) -> dict[str, Any]:
        return self.data

    def write(self, out: Path) -> list[Path]:
        """The files the command wrote (it writes them as it runs)."""
        return list(self.files)


@dataclass
class Written:
    """A report and the files it wrote: its table with a closing line, its JSON with the files' paths."""

    report: Any
    files: list[Path]
    closing: str

    @property
    def exit_code(self) -> int:
        return self.report.exit_code

    def table(self) -> str:
        return f"{self.report.table()}\n\n{self.closing}"

    def to_json(self) -> dict[str, Any]:
        return self.report.to_json() | {"report": [str(f) for f in self.files]}

    def write(self, out: Path) -> list[Path]:
        return list(self.files)


def _folder(path: Path, what: str = "the report folder") -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CommandError(f"cannot create {what} {path}: {err.strerror or err}") from None


def _progress(total: int, desc: str, leave: bool = False, unit: str = "", overlapping: bool = False) -> Progress:
    """The command's progress on stderr (:class:`~torchmech.runtime.console.Progress`): a bar on a terminal, one
    line per finished step (``unit``: per ``total`` ticks) in a log."""
    return Progress(total, desc, unit=unit, leave=leave, overlapping=overlapping)


def _mpg(args: argparse.Namespace, device: torch.device) -> dict:
    from torchmech.chapter.runs import mpg_run

    with _progress(args.epochs, "mpg", unit="epochs") as bar:
        def log(epoch: int, history) -> None:
            bar.update()
            if epoch % 20 == 0 and not args.json:
                bar.write(f"Epoch {epoch}  Loss {history.train_loss[-1]:.4f}", file=sys.stdout)

        r = mpg_run(epochs=args.epochs, seed=args.seed, device=device, on_epoch_end=log)
    return {"epochs": args.epochs, "seed": args.seed, "device": str(device),
            "loss": {e: r.history.train_loss[e] for e in range(0, args.epochs, 20)},
            "test_mse": r.test_mse, "test_mae": r.test_mae}


def _mnist(args: argparse.Namespace, device: torch.device) -> dict:
    from torchmech.chapter.runs import mnist_run

    start = time.perf_counter()
    with _progress(args.epochs, "mnist", unit="epochs") as bar:
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
    from torchmech.chapter.lit import fit

    run = fit(args.epochs, logdir=args.logdir, data_path=args.data, resume=args.resume,
              accelerator=args.accelerator, devices=args.devices, strategy=args.strategy, seed=args.seed,
              num_nodes=args.num_nodes)
    return {"epochs": args.epochs, "test_acc": run.test_acc, "epoch": run.trainer.current_epoch,
            "global_step": run.trainer.global_step, "log_dir": str(run.log_dir),
            "best_checkpoint": str(run.best_checkpoint), "last_checkpoint": str(run.last_checkpoint)}


def _ignite(args: argparse.Namespace, device: torch.device) -> dict:
    try:
        from torchmech.chapter.ignite_bonus import ignite_fit

        run = ignite_fit(args.epochs, logdir=args.logdir, data_path=args.data, device=device, seed=args.seed)
    except ImportError as err:
        raise CommandError(f"{err.name or 'pytorch-ignite'} is not installed: pip install 'torchmech[ignite]'") from err
    return {"epochs": args.epochs, "valid_acc": run.valid_acc, "valid_loss": run.valid_loss,
            "log_dir": str(run.log_dir), "best_checkpoint": str(run.best_checkpoint)}


def _bench(args: argparse.Namespace, device: torch.device) -> Output:
    """``torchmech bench``: the width × batch sweep, or with ``--backends`` the chapter's models per backend
    beside each backend's conformance status (``--threads`` holds for this command only: :func:`run` applies it)."""
    import torch

    from torchmech.check import bench, speed
    from torchmech.runtime.devices import available_devices, calibration, environment, resolve_device

    warning = bench.busy()  # measured before anything is timed: someone else's work would share the cores
    if args.to_accuracy:
        return _warned(_to_accuracy(args), warning)
    devices = [str(resolve_device(d)) for d in args.device] if args.device else available_devices()
    # the fingerprint (its load average) and the yardstick `compare` divides by: before anything else is timed
    env, cal = environment("cpu" if args.backends is not None else devices[-1]), calibration("cpu")
    if args.backends is not None:
        try:
            matrix = speed.read_conformance(args.conformance)  # read first: a bad file fails before timing
            with _progress(len(dict.fromkeys(["cpu", *args.backends])), "bench") as bar:
                records = speed.time_backends(
                    args.backends, args.models or speed.BACKEND_MODELS, min_run_time=0.05 if args.quick else 0.2,
                    epoch_batches=100 if args.quick else None, repeats=1 if args.quick else 3, data=args.data,
                    progress=bar.done)
        except ValueError as err:  # an unknown or unavailable backend, an unknown model, a bad conformance file
            raise CommandError(str(err)) from None
        status = speed.conformance_status(matrix, dict.fromkeys(r.backend for r in records))
        path = speed.write_backend_results(records, status, args.out, env, args.quick, args.conformance, cal)
        text = (speed.format_backend_table(records, status)
                + "\n\ncompile s: under torch.compile, the first call (compiling) minus the steady-state median "
                "(– where nothing compiles: the first call's warm-up is first_s in the file); "
                "step ms: median of one training step (forward, backward, optimizer step); × cpu: against "
                "the cpu backend; mnist epoch: §8's MLP on the exact-order fast path; "
                f"{torch.get_num_threads()} CPU threads; inductor caches {speed.inductor_caches()} "
                f"(TORCHINDUCTOR_FORCE_DISABLE_CACHES=1: cold compiles).\nwrote {path}")
        return _warned(Output({"backends": list(status), "quick": args.quick, "conformance": status,
                               "files": [str(path)], "records": [r.__dict__ | {"step_s": r.step_s} for r in records]},
                              text, [path]), warning)
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
    files = bench.write_results(records, peaks, args.out, env, cal)
    text = "\n".join([bench.format_table(records, peaks), "",
                      bench.describe_peaks(peaks, {d.split(":")[0]: gemm_size(d) for d in devices}),
                      "CUDA was not available: CPU only, no crossover to mark."
                      if not any(d.startswith("cuda") for d in devices)
                      else f"crossover (smallest batch where CUDA wins), per width: {bench.crossover(records)}",
                      "wrote " + ", ".join(map(str, files))])
    return _warned(Output({"devices": devices, "files": [str(f) for f in files],
                           "crossover_batch": {str(k): v for k, v in bench.crossover(records).items()},
                           "gemm_peak_tflops": {f"{d}/{p}": v for (d, p), v in peaks.items()}}, text, list(files)),
                   warning)


def _warned(output: Output, warning: str | None) -> Output:
    """A timing command's ``output`` with ``warning`` (the machine was busy when the timings began) in its JSON and
    as its text's line before the last (the files written)."""
    if warning is not None:
        lines = (output.text or "").splitlines()
        output.text = "\n".join([*lines[:-1], warning, *lines[-1:]])
        output.data["warning"] = warning
    return output


def _to_accuracy(args: argparse.Namespace) -> Output:
    """``torchmech bench --to-accuracy``: per backend, the seconds of training to the chapter's quality."""
    import torch

    from torchmech.check import speed, to_accuracy
    from torchmech.runtime.backends import available_backends
    from torchmech.runtime.devices import calibration, environment

    names = args.backends or available_backends()
    env, cal = environment("cpu"), calibration("cpu")  # before anything is timed
    try:
        matrix = speed.read_conformance(args.conformance)  # read first: a bad file fails before training
        with _progress(len(dict.fromkeys(["cpu", *names])), "to accuracy") as bar, quiet(False):
            rows = to_accuracy.time_to_accuracy(names, args.models or to_accuracy.MODELS, args.data,
                                                progress=bar.done)
    except ValueError as err:  # an unknown or unavailable backend, an unknown model, a bad conformance file
        raise CommandError(str(err)) from None
    status = speed.conformance_status(matrix, dict.fromkeys(r.backend for r in rows))
    path = to_accuracy.write(rows, status, args.out, env, args.conformance, cal)
    text = (to_accuracy.format_table(rows, status)
            + "\n\nseconds: training time through the first epoch that reaches the target, each epoch timed, the "
            "first counted as the median of the others (its extra, compiling under compile, apart); the quality "
            f"is measured after each epoch, off the clock; {torch.get_num_threads()} CPU threads.\nwrote {path}")
    return Output({"backends": list(status), "conformance": status, "files": [str(path)],
                   "targets": {m: t.describe() for m, t in to_accuracy.TARGETS.items()},
                   "rows": [r.__dict__ for r in rows]}, text, [path])


def _fetch(args: argparse.Namespace, device: None) -> dict:
    from torchmech.chapter.data.mnist import fetch_mnist

    return {"mnist": str(fetch_mnist(args.data))}


def _xor(args: argparse.Namespace, device: torch.device) -> dict:
    from torchmech.chapter.capacity import train_ensemble
    from torchmech.chapter.data.xor import make_xor
    from torchmech.chapter.runs import xor_model, xor_run

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
    with _progress(args.epochs, f"xor {args.model}", unit="epochs") as bar:
        model, history = xor_run(args.model, epochs=args.epochs, seed=args.seed, device=device, data=data,
                                 on_epoch_end=lambda *_: bar.update())
    out = {"model": args.model, "seed": args.seed, "epochs": args.epochs, "device": str(device),
           "train_acc": history.train_acc[-1], "valid_acc": history.valid_acc[-1],
           "train_loss": history.train_loss[-1], "valid_loss": history.valid_loss[-1],
           "seconds": round(time.perf_counter() - start, 3)}
    if args.plot is not None:
        from torchmech.report.plots import xor_figures

        out["figures"] = [str(p) for p in xor_figures(model, history, data, args.plot, args.model)]
    return out


#: Loggers whose INFO lines (Lightning's "GPU available", "💡 Tip", "LOCAL_RANK", "Restoring states") the
#: chapter keeps off its output.
@contextlib.contextmanager
def _steps(total: int, desc: str, import_lightning: bool, overlapping: bool = False) -> Iterator[Callable[..., None]]:
    """A long command's progress on stderr (a bar, or in a log a line per step); within it libraries' prints go
    to stderr and their logs and warnings stay quiet (:func:`quiet_libraries`), so stdout holds only the table.
    Yields ``done(step, detail="")``, to call after each step."""
    with _progress(total, desc, leave=True, overlapping=overlapping) as bar, quiet(import_lightning):
        yield bar.done




def _learn(args: argparse.Namespace, device: None) -> Any:
    """``torchmech learn init | check | status | watch | solution | mistakes``: the learner's commands. The
    workspace is found before torch is imported, and ``status`` answers from the remembered grades where
    nothing changed."""
    from torchmech import learn

    if args.learn_command == "mistakes":
        return _mistakes(args)
    try:
        if args.learn_command == "init":
            return _init(args)
        ws_path = learn.find_workspace(args.impl)
        if args.learn_command == "solution":
            with quiet(import_lightning=False):
                return Output({"exercise": args.name}, learn.solution(args.name, ws_path, timeout=args.timeout))
        if args.learn_command == "watch":
            from torchmech.learn.watch import watch

            with applied(args.threads):
                return watch(ws_path, timeout=args.timeout, poll=args.poll)
        sections = _learn_sections(args)
        targets = _course_targets(args)  # a bad --junit/--gradescope path fails before the grading, not after
        if args.learn_command == "status":
            known = [learn.remembered(ws_path, s, full=args.full, timeout=args.timeout) for s in sections]
            if all(grades is not None for grades in known):  # nothing changed: no torch, no grading
                return _course_files(targets, learn.Grades([g for gs in known for g in gs or []], str(ws_path),
                                                           None, args.full))
            sections = [s for s, grades in zip(sections, known, strict=True) if grades is None]  # to grade
        with quiet(import_lightning="s9" in sections), applied(args.threads):
            if args.learn_command == "status":
                grades = learn.status(ws_path, full=args.full, timeout=args.timeout)
            else:
                ws = learn.load_workspace(ws_path, timeout=args.timeout, sections=sections)
                grades = [g for s in sections for g in learn.check_section(s, ws, full=args.full,
                                                                           timeout=args.timeout)]
            tip = _hint(args, grades, ws_path)
    except learn.WorkspaceError as err:
        raise CommandError(str(err), code=1 if isinstance(err, learn.NotDone) else 2) from None
    return _course_files(targets, learn.Grades(grades, str(ws_path), tip, args.full))


def _init(args: argparse.Namespace) -> Output:
    """``learn init DIR``: the stubs, the README and the marker (a torchmech checkout is refused)."""
    from torchmech import learn

    try:
        written, kept = learn.init_workspace(args.dir)
    except OSError as err:
        raise CommandError(f"cannot write the workspace {args.dir}: {err.strerror or err}") from None
    lines = [f"wrote {path}" for path in written] + [f"kept  {path} (yours: not overwritten)" for path in kept]
    lines.append(f"\nNext: `cd {args.dir}`, write `compute_z` in s1_graph.py, then `torchmech learn check s1` "
                 "(or `torchmech learn watch`, which grades each file you save).")
    return Output({"written": [str(p) for p in written], "kept": [str(p) for p in kept]}, "\n".join(lines), written)


def _hint(args: argparse.Namespace, grades: list, ws_path: Path) -> str | None:
    """``--hint NAME``: that exercise's next rung; ``--hint`` alone: the first unfinished exercise's."""
    from torchmech import learn

    if getattr(args, "hint", None) is None:
        return None
    if args.hint:
        return learn.hint(args.hint, ws_path)
    todo = next((g for g in grades if g.status != "done"), None)
    return learn.hint(todo.exercise, ws_path) if todo else "nothing left to hint: every exercise is done"


def _learn_sections(args: argparse.Namespace) -> list[str]:
    """The sections ``learn check sN`` or ``learn check --all`` (or ``learn status``) grades."""
    if args.learn_command != "check" or (getattr(args, "all", False) and args.section is None):
        return chapter_sections()
    if args.section is None and args.hint:  # `learn check --hint NoisyLinear`: that exercise's section
        from torchmech.learn.exercises import exercise

        try:
            return [exercise(args.hint).section]
        except KeyError as err:
            raise CommandError(err.args[0]) from None
    if args.section is None:
        raise CommandError("learn check: name a section (s1 … s9) or --all")
    if getattr(args, "all", False):
        raise CommandError(f"learn check: name a section ({args.section}) or --all, not both")
    return [args.section]


def _course_targets(args: argparse.Namespace) -> dict[str, tuple[Path, Callable[..., Path]]]:
    """``--junit FILE`` / ``--gradescope FILE`` → (the path, its writer), each path checked before grading."""
    from torchmech.learn import course

    chosen = {"--junit": (getattr(args, "junit", None), course.write_junit),
              "--gradescope": (getattr(args, "gradescope", None), course.write_gradescope)}
    targets = {}
    for option, (path, write) in chosen.items():
        if path is not None:
            try:
                targets[option] = (course.check_target(path), write)
            except OSError as err:
                raise CommandError(f"cannot write {option} {path}: {err.strerror or err}") from None
    return targets


def _course_files(targets: dict[str, tuple[Path, Callable[..., Path]]], grades: Any) -> Any:
    """The grades written where ``--junit`` / ``--gradescope`` ask (:mod:`torchmech.learn.course`), atomically;
    the board then closes with the files' paths."""
    files = []
    for option, (path, write) in targets.items():
        try:
            files.append(write(grades, path))
        except OSError as err:
            raise CommandError(f"cannot write {option} {path}: {err.strerror or err}") from None
    return Written(grades, files, "wrote " + ", ".join(map(str, files))) if files else grades


def _mistakes(args: argparse.Namespace) -> Output:
    """The catalogue, one line each; ``--verify`` also runs every mistake through its exercise's checks."""
    from torchmech.learn.mistakes import MISTAKES, catch

    rows = [{"mistake": m.name, "exercise": m.exercise, "what": m.what} for m in MISTAKES]
    survivors: list[str] = []
    if args.verify:
        with quiet(import_lightning=True):
            for r in rows:
                r["caught_by"] = [k for k, _ in catch(r["mistake"])]
        survivors = [r["mistake"] for r in rows if not r["caught_by"]]
    width = max(len(r["mistake"]) for r in rows)
    lines = [f"{r['mistake']:<{width}}  {r['exercise']:<24}  {r['what']}"
             + (f"  [caught by {', '.join(r['caught_by']) or 'NOTHING'}]" if args.verify else "") for r in rows]
    tail = (f"{len(rows) - len(survivors)}/{len(rows)} mistakes caught" if args.verify
            else f"{len(rows)} mistakes (`--verify` runs each through its checks)")
    return Output({"mistakes": rows, "survivors": survivors if args.verify else None}, "\n".join([*lines, "", tail]),
                  exit_code=1 if survivors else 0)


def _chapter(args: argparse.Namespace, device: torch.device) -> Written:
    from torchmech.report import chapter as report
    from torchmech.spec.claims import claims

    _folder(args.out)
    chosen = args.sections or chapter_sections()
    with _steps(len(chosen), "chapter", import_lightning="s9" in chosen) as done:
        def section_done(section: str) -> None:  # `§5 done: 12 claims`
            done(SECTIONS[section].split(" ")[0], f"{len(claims(section))} claims")

        rep = report.run_chapter(device, args.sections, quick=args.quick, out=args.out, progress=section_done,
                                 data=args.data)
        files = rep.write(args.out)
    md, js, page = files  # the page, the report to read, is named last
    return Written(rep, files, f"{rep.summary()}\nwrote {md}, {js}\nreport: {page}")


def _conformance(args: argparse.Namespace, device: None) -> Written:
    from torchmech.check.conformance import chosen_backends, default_workers, run_conformance

    try:
        names = chosen_backends(args.backends)
    except ValueError as err:
        raise CommandError(str(err)) from None
    if args.seeds is not None:
        from torchmech.check.seeds import check_seeds

        try:  # before the matrix runs: a test that could never reach α
            check_seeds(args.seeds)
        except ValueError as err:
            raise CommandError(str(err)) from None
    _folder(args.out)
    sections = args.sections or chapter_sections()
    workers = args.workers or default_workers()
    with _steps(len(names), "conformance", import_lightning="s9" in sections,
                overlapping=min(workers, len(names)) > 1) as done:  # columns measured at once: time since the start
        matrix = run_conformance(names, args.sections, quick=args.quick, data=args.data, progress=done,
                                 workers=workers)
    if args.seeds is not None:
        from torchmech.check.seeds import judge_seeds

        with _steps(len(names), f"seeds ×{args.seeds}", import_lightning=False) as done:
            matrix.seeds = judge_seeds(names, args.seeds, args.sections, progress=done)
    files = matrix.write(args.out)  # the matrix is on disk before the ladder starts (a ladder can be long)
    if args.explain:
        with _steps(len(matrix.failed()), "ladder", import_lightning=False) as done:
            matrix.explain(args.data, progress=done)
        files = matrix.write(args.out)
    return Written(matrix, files, f"{matrix.summary()}; report: {files[0]}, heat map: {files[1]}"
                   + (f", ladder: {files[2]}" if len(files) > 2 else ""))


def _diverge(args: argparse.Namespace, device: None) -> Any:
    from torchmech.check.diverge import diverge, run_of
    from torchmech.runtime.backends import usable

    try:
        usable(args.a), usable(args.b), run_of(args.claim)
    except ValueError as err:
        raise CommandError(str(err)) from None
    _folder(args.out, "the folder")
    if args.layers:
        from torchmech.check.layers import attribute

        with quiet(import_lightning=False):
            split = attribute(args.a, args.b, args.claim, args.steps, args.data)
            split.write(args.out)
        return split
    with quiet(import_lightning=False):
        found = diverge(args.a, args.b, args.claim, args.steps, args.data)
        found.write(args.out)
    return found


def _compare(args: argparse.Namespace, device: None) -> Any:
    from torchmech.check.compare import compare

    try:
        return compare(args.a, args.b, args.fail_slower)
    except ValueError as err:  # unreadable, not a record, or two kinds
        raise CommandError(str(err)) from None


def chapter_sections() -> list[str]:
    """The sections the commands accept: s1 … s9, from ``torchmech.SECTIONS`` (no torch import)."""
    return [s for s in SECTIONS if s != "chapter"]


#: command → function(args, device) → a result (a dict is a run's key=value line: :class:`Output`).
COMMANDS: dict[str, Callable[[argparse.Namespace, Any], Any]] = {
    "chapter": _chapter, "conformance": _conformance, "diverge": _diverge, "learn": _learn, "xor": _xor,
    "mpg": _mpg, "mnist": _mnist, "lightning": _lightning, "ignite": _ignite, "bench": _bench, "data": _fetch,
    "compare": _compare,
}
#: Commands whose own prints (progress lines, libraries' tables) go to stderr under --json.
_RUNS = ("xor", "mpg", "mnist", "lightning", "ignite", "bench", "data")


def run(args: argparse.Namespace) -> Any:
    """Run the parsed command; every error the user must fix becomes one :class:`CommandError`."""
    try:
        count = _threads(args)  # a bad $TORCHMECH_THREADS fails before anything runs
        device = _device(args)
        if args.command == "xor" and args.seeds and args.plot is not None:
            raise CommandError("--plot draws one run: leave out --seeds")
        json_only = args.command in _RUNS and getattr(args, "json", False)  # stdout holds the one JSON object
        # learn applies the threads where it grades: `learn status` answered from remembered grades imports no torch
        held = count is not None and args.command != "learn"
        with contextlib.redirect_stdout(sys.stderr) if json_only else contextlib.nullcontext(), \
                applied(count) if held else contextlib.nullcontext():
            result = COMMANDS[args.command](args, device)
    except RuntimeError as err:
        if type(err).__name__ != "MnistDataError":  # its module imports torch: `learn status` must not
            raise
        raise CommandError(str(err), code=1) from None
    except ImportError as err:  # a dependency that is missing or broken in this environment: say which
        raise CommandError(f"a library does not import here: {type(err).__name__}: {err}") from None
    except FileNotFoundError as err:
        raise CommandError(str(err)) from None
    except OSError as err:
        raise CommandError(f"cannot write {err.filename or 'output'}: {err.strerror or err}") from None
    return Output(result) if isinstance(result, dict) else result


def _threads(args: argparse.Namespace) -> int | None:
    """The torch threads the command computes with (:func:`torchmech.runtime.threads.threads`: ``--threads``,
    else ``$TORCHMECH_THREADS``, else ``$OMP_NUM_THREADS``, else one; ``bench``: else torch's own), written back to
    ``args.threads``; ``None`` where the command takes no ``--threads`` or keeps torch's own count."""
    if not hasattr(args, "threads"):
        return None
    try:
        args.threads = threads(args.threads, default=None if args.command == "bench" else POLICY)
    except ValueError as err:
        raise CommandError(str(err)) from None
    return args.threads


def _device(args: argparse.Namespace) -> torch.device | None:
    """The command's device (every name of a list checked, the first used); ``None`` where it takes none."""
    if not hasattr(args, "device"):
        return None
    from torchmech.runtime.devices import resolve_device

    names = args.device if isinstance(args.device, list) else [args.device or "cpu"]
    try:
        devices = [resolve_device(name) for name in names]
    except ValueError as err:
        raise CommandError(str(err)) from None
    return devices[0]
