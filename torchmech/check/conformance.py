"""The chapter on every backend: a matrix claim × backend, judged against the float64 arbiter.

:func:`run_conformance` judges the registry's claims on each backend (:mod:`torchmech.runtime.backends`). On the
reference (``cpu``) a claim holds by its own rule (the book's digits); on the arbiter (``cpu-fp64``) a
number is the yardstick; on any other backend a number holds when its error to the arbiter is within
``k`` times the reference's own error plus ``tol`` (:class:`torchmech.spec.claims.Arbiter`), and laws hold as
laws, measured on that backend. Claims whose value does not depend on the backend (the data, the CPU
generator's draws) are judged once, on the reference; Lightning's and Ignite's run only on plain backends.

``--quick`` (the default of :func:`run_conformance` is the whole chapter) trims the long runs as
``torchmech chapter --quick`` does: MNIST to 2 epochs, the 256-seed ensembles and Lightning's 10 epochs
skipped.

Each backend's column is measured on its own (:func:`measure_column`: every claim the column measures,
with the runs it needs), then every cell is judged from the measured values (the arbiter's rule takes
the reference's and the arbiter's values from their columns). So the columns can be measured in
parallel: ``workers`` processes, this process's torch threads (``--threads``) shared out among them, at least
one each (the chapter's runs are many small steps, bound by Python's overhead more than by arithmetic: two
processes of one thread each finish the five CPU columns in about half the time of one process of two threads).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torchmech.check.ladder import climb
from torchmech.runtime.backends import ARBITER, BACKENDS, REFERENCE_BACKEND, TOLERANCES, available_backends, usable
from torchmech.runtime.console import quiet, text_table
from torchmech.runtime.devices import calibration, environment
from torchmech.spec.claims import claims
from torchmech.spec.core import Context, Result

#: The cell of a claim that does not depend on the backend, off the reference.
SAME = "n/a"
#: The cells of a column whose measuring raised (a backend that blows up, a compiler that fails).
ERROR = "error"


@dataclass
class Matrix:
    """Every claim judged on every backend: ``cells[backend]`` lists the results in claim order."""

    backends: list[str]
    cells: dict[str, list[Result]]
    environment: dict[str, str]
    seconds: dict[str, float] = field(default_factory=dict)
    quick: bool = False
    wall_s: float = 0.0
    workers: int = 1
    ladder: Any = None  # a torchmech.check.ladder.Ladder once explain() ran
    seeds: Any = None  # a torchmech.check.seeds.SeedsReport under --seeds: the training claims over K seeds
    errors: dict[str, str] = field(default_factory=dict)  # backend → the one line its column raised
    cell_errors: dict[tuple[str, str], str] = field(default_factory=dict)  # (claim, backend) → what its measure raised
    known: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)  # the measured values
    calibration: dict[str, Any] | None = None  # runtime/devices.calibration, measured before the columns

    def explain(self, data: Path | None = None, progress: Callable[[str], None] | None = None) -> Any:
        """Climb the mitigation ladder for every failing cell (:func:`torchmech.check.ladder.climb`); kept in
        ``ladder``, shown under the table and written as ``ladder.json``."""

        failing = [r for r in (self.cell(i, b) for i, b in self.failed()) if r.holds == "no"]
        self.ladder = climb(failing, quick=self.quick, data=data, progress=progress, known=self.known)
        return self.ladder

    @property
    def ids(self) -> list[str]:
        return [r.id for r in self.cells[self.backends[0]]]

    def failed(self) -> list[tuple[str, str]]:
        """(claim id, backend) of every cell that fails (a column that raised fails in every cell it measures)."""
        return [(r.id, b) for b in self.backends for r in self.cells[b] if r.holds in ("no", ERROR)]

    @property
    def exit_code(self) -> int:
        """1 if any claim fails on any backend (or, under ``--seeds``, differs over seeds), else 0."""
        return 1 if self.failed() or (self.seeds is not None and self.seeds.exit_code) else 0

    def cell(self, claim_id: str, backend: str) -> Result:
        return next(r for r in self.cells[backend] if r.id == claim_id)

    def to_json(self) -> dict:
        """The matrix as one JSON object: environment, backends (with k, tol, seconds), claims × cells."""
        backends = {b: {"summary": BACKENDS[b].summary, "precision": BACKENDS[b].precision,
                        "k": BACKENDS[b].tolerance.k, "tol": BACKENDS[b].tolerance.tol,
                        "seconds": round(self.seconds.get(b, 0.0), 1)} for b in self.backends}
        rows = []
        for i, claim_id in enumerate(self.ids):
            first = self.cells[self.backends[0]][i]
            rows.append({"id": claim_id, "statement": first.statement, "book": first.book,
                         "cells": {b: {"ours": self.cells[b][i].ours, "holds": self.cells[b][i].holds,
                                       "ratio": self.cells[b][i].ratio, "rule": self.cells[b][i].rule}
                                   for b in self.backends}})
        return {"environment": self.environment, "quick": self.quick, "backends": backends,
                "wall_seconds": round(self.wall_s, 1), "workers": self.workers, "errors": self.errors,
                "cell_errors": [{"id": i, "backend": b, "error": e} for (i, b), e in self.cell_errors.items()],
                "claims": rows, "calibration": self.calibration,
                "failed": [{"id": i, "backend": b} for i, b in self.failed()]} | (
                    {"ladder": self.ladder.to_json()} if self.ladder is not None else {}) | (
                    {"seeds": self.seeds.to_json()} if self.seeds is not None else {})

    def table(self) -> str:
        """Claim per row, backend per column: how it holds, and off the reference the error ratio."""
        def text(r: Result) -> str:
            return r.holds + (f" {r.ratio:.2g}" if r.ratio is not None else "")

        rows = [(claim_id, *(text(self.cells[b][i]) for b in self.backends)) for i, claim_id in enumerate(self.ids)]
        times = ("seconds", *(f"{self.seconds.get(b, 0.0):.0f}" for b in self.backends))
        text = text_table(("claim", *self.backends), [*rows, times])
        text += f"\n\n{self.seeds.table()}" if self.seeds is not None else ""
        return text + (f"\n\n{self.ladder.table()}" if self.ladder is not None else "")

    def summary(self) -> str:
        """The closing line: how many judged cells hold, the largest error ratio, what failed or raised."""
        failed = self.failed()
        n = sum(1 for b in self.backends for r in self.cells[b] if r.holds not in (SAME, "quick", "skip", "arbiter"))
        worst = max(((r.ratio, r.id, b) for b in self.backends for r in self.cells[b] if r.ratio is not None),
                    default=None)
        text = f"{n - len(failed)}/{n} judged cells hold on {', '.join(self.backends)}"
        if worst is not None:
            text += f"; largest error ratio {worst[0]:.2g} ({worst[1]} on {worst[2]})"
        errors = [f"{b}'s column raised {e}" for b, e in self.errors.items()]
        errors += [f"{i} on {b} raised {e}" for (i, b), e in self.cell_errors.items()]
        if errors:
            text += "; ERROR: " + "; ".join(errors)
        failed = [(i, b) for i, b in failed if self.cell(i, b).holds == "no"]
        if failed:
            text += f"; FAIL: {', '.join(f'{i} on {b}' for i, b in failed)}"
        if self.seeds is not None and self.seeds.failed():
            text += f"; DIFFER over seeds: {', '.join(f'{i} on {b}' for i, b in self.seeds.failed())}"
        env = self.environment
        return text + (f" (torch {env['torch']}, {env['device_name']}; {self.wall_s:.0f} s, "
                       f"{self.workers} process{'es' if self.workers > 1 else ''})")

    def heatmap(self, path: Path) -> Path:
        """A heat map of the error ratios (claims with a ratio × backends off the reference), log colour
        scale, each cell printed; red above 1 (fails)."""
        import matplotlib

        matplotlib.use("Agg")
        import numpy as np
        from matplotlib.colors import LogNorm
        from matplotlib.figure import Figure

        cols = [b for b in self.backends if any(r.ratio is not None for r in self.cells[b])]
        rows = [i for i, _ in enumerate(self.ids) if any(self.cells[b][i].ratio is not None for b in cols)]
        fig = Figure(figsize=(2 + 1.3 * max(len(cols), 1), 1.5 + 0.28 * max(len(rows), 1)))
        ax = fig.subplots()
        if not rows:
            ax.text(0.5, 0.5, "no numbers off the reference (only cpu and cpu-fp64?)", ha="center")
            ax.set_axis_off()
        else:
            ratios = np.array([[self.cells[b][i].ratio if self.cells[b][i].ratio is not None else np.nan
                                for b in cols] for i in rows], dtype=float)
            shown = np.clip(np.nan_to_num(ratios, nan=1e-3), 1e-3, 1e3)
            image = ax.imshow(shown, cmap="RdYlGn_r", norm=LogNorm(1e-3, 1e3), aspect="auto")
            for (y, x), v in np.ndenumerate(ratios):
                label = "—" if math.isnan(v) else f"{v:.2g}"
                ax.text(x, y, label, ha="center", va="center", fontsize=7,
                        color="white" if not math.isnan(v) and v > 1 else "black")
            ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right")
            ax.set_yticks(range(len(rows)), [self.ids[i] for i in rows], fontsize=7)
            fig.colorbar(image, ax=ax, label="error / budget (≤ 1 holds)")
        env = self.environment
        ax.set_title(f"|x − x₆₄| / (k·|x₃₂ − x₆₄| + tol): torch {env['torch']}, {env['device_name']}", fontsize=9)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        fig.savefig(tmp, format="png", dpi=90, bbox_inches="tight")
        tmp.replace(path)
        return path

    def write(self, out: Path) -> list[Path]:
        """``conformance.json`` (:meth:`to_json`) and ``conformance.png`` (:meth:`heatmap`) in ``out``."""
        out.mkdir(parents=True, exist_ok=True)
        js = out / "conformance.json"
        js.write_text(json.dumps(self.to_json(), indent=2))
        return [js, self.heatmap(out / "conformance.png"), *(self.ladder.write(out) if self.ladder else [])]


def chosen_backends(names: Sequence[str] | None) -> list[str]:
    """The matrix's columns: the reference and the arbiter first (the rule needs both), then ``names``
    (default: every backend available here). Raises ``ValueError`` (one line) on an unknown or
    unavailable name."""

    names = list(names) if names else available_backends()
    for name in names:
        usable(name)
    return list(dict.fromkeys([REFERENCE_BACKEND, ARBITER, *names]))


def measure_column(name: str, sections: Sequence[str] | None = None, quick: bool = False,
                   data: Path | None = None) -> tuple[dict[tuple[str, str], Any], float, dict[str, str]]:
    """Measure every claim of ``sections`` that backend ``name``'s column measures (:meth:`Claim.measured_on`)
    — on the reference, also those the other columns judge on it — and return the values
    ``(claim id, backend) → value``, the seconds it took and, per claim whose measure raised (a run that blows
    up, a compiler that fails), the one line it raised: the column goes on with the next claim."""
    start = time.perf_counter()
    ctx = Context(quick=quick, data=data).on(name)
    errors: dict[str, str] = {}
    for claim in claims():
        if (sections is None or claim.section in sections) and claim.measured_on(ctx):
            try:
                claim.measured(ctx)
            except Exception as err:
                errors[claim.id] = _one_line(err)
    return ctx.known, time.perf_counter() - start, errors


def _worker_column(name: str, sections: Sequence[str] | None, quick: bool, data: Path | None,
                   threads: int) -> tuple[dict[tuple[str, str], Any], float, dict[str, str]]:
    """:func:`measure_column` in a worker process: ``threads`` torch threads, libraries quiet."""
    import torch

    torch.set_num_threads(threads)
    with quiet(import_lightning=sections is None or "s9" in sections):
        return measure_column(name, sections, quick, data)


def run_conformance(backends: Sequence[str] | None = None, sections: Sequence[str] | None = None,
                    quick: bool = False, data: Path | None = None,
                    progress: Callable[[str], None] | None = None, workers: int = 1) -> Matrix:
    """Judge the claims of ``sections`` (default: all) on each backend; ``progress(backend)`` after each
    column is measured. ``workers`` > 1: the columns are measured in that many processes (each with its
    share of torch's threads; the backends must be :data:`~torchmech.runtime.backends.BACKENDS` entries, which a
    fresh process knows); 1 measures them here, one after the other."""

    names = chosen_backends(backends)
    chosen = [c for c in claims() if sections is None or c.section in sections]
    matrix = Matrix(names, {}, environment("cpu") | {"tolerances": json.dumps(
        {p: [t.k, t.tol] for p, t in TOLERANCES.items()})}, quick=quick, calibration=calibration("cpu"))
    known = matrix.known
    start = time.perf_counter()
    matrix.workers = max(1, min(workers, len(names)))
    if matrix.workers > 1:  # the columns are measured with each worker's share: the environment names it
        matrix.environment["threads"] = str(worker_threads(matrix.workers))
    for name, outcome in _columns(names, sections, quick, data, matrix.workers):
        if isinstance(outcome, BaseException):  # the other columns are still measured and judged
            if name in (REFERENCE_BACKEND, ARBITER):
                raise RuntimeError(f"the {name} column raised {_one_line(outcome)}: nothing can be judged") \
                    from outcome
            matrix.errors[name] = _one_line(outcome)
        else:
            known.update(outcome[0])
            matrix.seconds[name] = outcome[1]
            matrix.cell_errors.update({(claim_id, name): e for claim_id, e in outcome[2].items()})
        if progress is not None:
            progress(name)
    for name in names:
        ctx = Context(quick=quick, data=data, known=known).on(name)
        matrix.cells[name] = [_cell(c, ctx, matrix) for c in chosen]
    matrix.wall_s = time.perf_counter() - start
    return matrix


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")


def _cell(claim: Any, ctx: Context, matrix: Matrix) -> Result:
    """``claim`` judged on ``ctx``'s backend from the measured values, or ``error`` where its measure raised: on
    this column (the whole column, or this claim's run), or on the reference or the arbiter that judge it."""
    name, measured = ctx.be.name, claim.measured_on(ctx)
    error = (f"the column raised {matrix.errors[name]}" if measured and name in matrix.errors
             else matrix.cell_errors.get((claim.id, name)))
    if error is None and (measured or claim.device_free):
        error = next((f"{b}'s measure raised {matrix.cell_errors[claim.id, b]}" for b in (REFERENCE_BACKEND, ARBITER)
                      if (claim.id, b) in matrix.cell_errors), None)
    if error is None:
        return claim.judge(ctx)
    return Result(id=claim.id, section=claim.section, statement=claim.statement, book=claim.book, ours=error,
                  holds=ERROR, rule=claim.rule.describe(ctx), backend=ctx.be.name)


def _columns(names: list[str], sections: Sequence[str] | None, quick: bool, data: Path | None,
             workers: int):  # -> Iterator[tuple[str, tuple[dict, float] | Exception]], as each column is measured
    if workers == 1:
        for name in names:
            try:
                yield name, measure_column(name, sections, quick, data)
            except Exception as err:  # a backend whose run blows up: named, the others still measured
                yield name, err
        return
    import concurrent.futures
    import multiprocessing

    threads = worker_threads(workers)
    slowest_first = sorted(names, key=lambda n: -_COST.get(n, 1.0))
    pool = concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        futures = {pool.submit(_worker_column, name, sections, quick, data, threads): name for name in slowest_first}
        for future in concurrent.futures.as_completed(futures):
            error = future.exception()
            yield futures[future], error if error is not None else future.result()
    finally:  # stopped early (an error above): the columns not started yet are not run
        pool.shutdown(wait=True, cancel_futures=True)


#: The columns' relative cost on this 2-core CPU (the full matrix, one process), so that the slowest start
#: first when they are shared out among processes.
_COST = {"cpu-bf16": 208, "compile": 197, "cpu": 194, "cpu-fp64": 149, "deterministic": 123}


def worker_threads(workers: int) -> int:
    """The torch threads of each of ``workers`` processes: this process's (``--threads``) shared out, at least one."""
    import torch

    return max(1, torch.get_num_threads() // workers)


def default_workers() -> int:
    """Processes for the columns: the CPU cores this process may use (at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)
