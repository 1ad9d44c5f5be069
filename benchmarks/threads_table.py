"""Torch's thread count against the chapter's runs: one thread or two, on a quiet CPU and beside one busy process.

The measurement behind the thread policy (torchmech/runtime/threads.py: one torch thread for the chapter's runs).
Each run below is timed at 1 and at 2 torch threads, first on a quiet machine, then beside one process that
spins a core (``while True: pass``, killed after). Every timing is a fresh process (the count set before torch
starts, through ``$TORCHMECH_THREADS`` and ``$OMP_NUM_THREADS``, so nothing carries over between cells); the
seconds are the run's own, its imports and data loading apart.

* ``xor``: §5's 2×4 MLP, 200 epochs (``xor_run("mlp")``);
* ``mpg``: §7's regressor, 200 epochs (``mpg_run``);
* ``mnist_epoch``: one §8 epoch on the fast path (``mnist_run(epochs=1)``);
* ``lightning_epoch``: one §9 epoch with Lightning, not tested (``fit(1, test=False)``);
* ``ensemble``: §5's 256-seed ensemble of 2×4 MLPs, 200 epochs (``ensemble_run("4x4")``);
* ``learn_checks``: the learner's checks of §1–§8 on a workspace of the reference's pieces (the drawn samples
  and the trimmed chapter runs of every exercise: ``check_section``).

Beside the busy process a cell may take many times as long as quiet: it is stopped at ``CAP_FACTOR`` times the
quiet one-thread seconds (plus the process's start) and recorded as ``timed_out`` with its cap, so the whole
script stays near 5 minutes on the 2-core machine.

Run from the repository root, on a quiet machine::

    .venv/bin/python benchmarks/threads_table.py benchmarks/results/cpu-2core/threads.json

``--smoke``: XOR for 5 epochs only, at both counts, quiet and busy (seconds; what the benchmark suite runs).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COUNTS = (1, 2)
CONDITIONS = ("quiet", "busy")
#: A busy cell is stopped at this many times the quiet one-thread seconds (plus START_S for the process's start).
CAP_FACTOR = 4.0
START_S = 20.0
#: The longest a quiet cell may take (a run that hangs must not stall the table).
QUIET_CAP_S = 180.0


# --- the runs: each prepares (imports, data, a workspace) and returns what to time --------------------------------
def _xor(smoke: bool) -> Callable[[], object]:
    from torchmech.chapter.runs import xor_run

    return lambda: xor_run("mlp", epochs=5 if smoke else 200)


def _mpg(smoke: bool) -> Callable[[], object]:
    from torchmech.chapter.runs import mpg_run

    mpg_run(epochs=1)  # the data read and cached
    return lambda: mpg_run(epochs=200)


def _mnist_epoch(smoke: bool) -> Callable[[], object]:
    from torchmech.chapter.data.mnist import load_mnist
    from torchmech.chapter.runs import mnist_run

    load_mnist(train=True), load_mnist(train=False)  # the files read once (the page cache warm)
    return lambda: mnist_run(epochs=1)


def _lightning_epoch(smoke: bool) -> Callable[[], object]:
    from torchmech.chapter.lit import fit

    logdir = tempfile.mkdtemp(prefix="threads-lightning-")
    return lambda: fit(1, logdir=logdir, accelerator="cpu", devices=1, progress=False, test=False)


def _ensemble(smoke: bool) -> Callable[[], object]:
    from torchmech.chapter.runs import ensemble_run

    return lambda: ensemble_run("4x4")


def _learn_checks(smoke: bool) -> Callable[[], object]:
    sys.path.insert(0, str(ROOT))
    from benchmarks.learn_latency import reference_workspace
    from torchmech.learn.workspace import check_section, load_workspace

    ws = reference_workspace(Path(tempfile.mkdtemp(prefix="threads-learn-")) / "ch13")
    sections = [f"s{i}" for i in range(1, 9)]
    load_workspace(ws, sections=sections)  # the learner's modules imported once
    return lambda: [check_section(s, load_workspace(ws, sections=[s])) for s in sections]


RUNS: dict[str, Callable[[bool], Callable[[], object]]] = {
    "xor": _xor, "mpg": _mpg, "mnist_epoch": _mnist_epoch, "lightning_epoch": _lightning_epoch,
    "ensemble": _ensemble, "learn_checks": _learn_checks,
}


def child(name: str, smoke: bool) -> dict:
    """In the fresh process: the count from the environment (the policy's own reading), the run prepared, then
    timed; the count torch really had."""
    import torch

    from torchmech.runtime.console import quiet
    from torchmech.runtime.threads import applied, threads

    with quiet(import_lightning=name == "lightning_epoch"), applied(threads()) as count:
        go = RUNS[name](smoke)
        start = time.perf_counter()
        go()
        seconds = time.perf_counter() - start
        assert torch.get_num_threads() == count
    return {"seconds": round(seconds, 3), "threads": count}


# --- the table ----------------------------------------------------------------------------------------------------
def _cell(name: str, count: int, smoke: bool, cap: float) -> dict:
    env = {**os.environ, "TORCHMECH_THREADS": str(count), "OMP_NUM_THREADS": str(count), "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, str(Path(__file__).resolve()), "--child", name, *(["--smoke"] if smoke else [])]
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=cap, check=False)
    except subprocess.TimeoutExpired:  # subprocess.run killed it
        return {"seconds": None, "timed_out": True, "cap_s": round(cap, 1)}
    if done.returncode != 0:
        raise RuntimeError(f"{name} at {count} threads failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(runs: tuple[str, ...] | None = None, smoke: bool = False,
            conditions: tuple[str, ...] = CONDITIONS) -> dict:
    """Every run at each count, quiet then busy: ``rows`` of run, condition, threads, seconds (``None`` and
    ``timed_out`` past the cap)."""
    from torchmech.runtime.devices import environment

    names = runs or (("xor",) if smoke else tuple(RUNS))
    result: dict = {"machine": environment() | {"cores": str(os.cpu_count())}, "date": time.strftime("%Y-%m-%d"),
                    "smoke": smoke, "cap_factor": CAP_FACTOR, "rows": []}
    quiet_one: dict[str, float] = {}
    for condition in conditions:
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if condition == "busy" else None
        try:
            for name in names:
                for count in COUNTS:
                    cap = QUIET_CAP_S if condition == "quiet" or name not in quiet_one else \
                        START_S + CAP_FACTOR * quiet_one[name]
                    row = {"run": name, "condition": condition, "threads": count} | _cell(name, count, smoke, cap)
                    if condition == "quiet" and count == 1 and row["seconds"] is not None:
                        quiet_one[name] = row["seconds"]
                    result["rows"].append(row)
                    print(row, flush=True)
        finally:
            if busy is not None:
                busy.kill()
                busy.wait()
    result["table"] = table(result)
    return result


def table(result: dict) -> str:
    """One line per run: its seconds at each condition × count (``> cap`` where it was stopped)."""
    cells = {(r["run"], r["condition"], r["threads"]): r for r in result["rows"]}
    columns = [(c, n) for c in CONDITIONS for n in COUNTS if any(k[1:] == (c, n) for k in cells)]
    lines = [f"{'run':16s}" + "".join(f"{f'{c} {n}t':>12s}" for c, n in columns)]
    for name in dict.fromkeys(r["run"] for r in result["rows"]):
        shown = []
        for key in columns:
            r = cells.get((name, *key))
            shown.append("" if r is None else f"> {r['cap_s']:.0f}" if r.get("timed_out") else f"{r['seconds']:.2f}")
        lines.append(f"{name:16s}" + "".join(f"{s:>12s}" for s in shown))
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=None,
                        help="the JSON to write (default benchmarks/results/cpu-2core/threads.json; --smoke: none)")
    parser.add_argument("--smoke", action="store_true", help="XOR for 5 epochs only: that the script works")
    parser.add_argument("--runs", nargs="+", choices=sorted(RUNS), default=None, help="only these runs")
    parser.add_argument("--child", choices=sorted(RUNS), default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.child:
        print(json.dumps(child(args.child, args.smoke)))
        sys.exit(0)
    found = measure(tuple(args.runs) if args.runs else None, smoke=args.smoke)
    print(found["table"])
    target = args.out or (None if args.smoke else ROOT / "benchmarks" / "results" / "cpu-2core" / "threads.json")
    if target is not None:
        target.write_text(json.dumps(found, indent=2) + "\n")
        print(f"wrote {target}")
