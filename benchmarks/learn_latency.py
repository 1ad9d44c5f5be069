"""How long a learner waits: cold and warm `learn check` per section, `learn status`, `pytest -m s1`, and the
save-to-board latency of `learn watch`, on this machine.

* **cold**: a new process, as a learner types ``torchmech learn check sN`` in the workspace (a workspace whose
  every exercise is the reference's, so every check runs in full); the median of ``--repeat`` runs.
* **warm**: the same section graded again inside one process (what `learn watch` does on a save): the module
  loaded from its text again, every exercise checked.
* **status**: ``learn status`` from the remembered grades, and where there is no workspace at all.
* **pytest -m s1**: the first lesson of the learning path, from the checkout.
* **watch**: ``learn watch`` started in the workspace; each section file saved in turn; the time from the save to
  that section's board on stdout.

Run from the repository root (on a quiet machine; one torch thread, as the grader is single-threaded work)::

    .venv/bin/python benchmarks/learn_latency.py benchmarks/results/cpu-2core/learn-latency.json
"""

from __future__ import annotations

import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = [f"s{i}" for i in range(1, 10)]
ENV = {**{k: v for k, v in os.environ.items() if k != "TORCHMECH_IMPL"}, "OMP_NUM_THREADS": "1",
       "PYTHONUNBUFFERED": "1"}


def reference_workspace(path: Path) -> Path:
    """A workspace whose every exercise imports torchmech's own piece (each check runs in full and is done)."""
    from torchmech.chapter.implementation import Implementation
    from torchmech.learn import MARKER, MODULES
    from torchmech.learn.exercises import EXERCISES

    path.mkdir(parents=True, exist_ok=True)
    for section, module in MODULES.items():
        lines = [f"from {Implementation.REFERENCE[e.name].replace(':', ' import ')}\n" for e in EXERCISES
                 if e.section == section]
        (path / f"{module}.py").write_text("".join(lines))
    (path / MARKER).write_text("benchmark workspace\n")
    return path


def wall(command: list[str], cwd: Path, repeat: int) -> float:
    """The median wall time of a command, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, cwd=cwd, env=ENV, capture_output=True, check=False)
        times.append(time.perf_counter() - start)
    return round(statistics.median(times), 2)


def warm(ws: Path, section: str, repeat: int) -> float:
    from torchmech.learn.workspace import check_section, load_workspace

    check_section(section, load_workspace(ws, sections=[section]))  # imports and first-call costs paid
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        check_section(section, load_workspace(ws, sections=[section]))
        times.append(time.perf_counter() - start)
    return round(statistics.median(times), 2)


def watch_latency(ws: Path, sections: list[str]) -> dict[str, float]:
    """Save each section file in turn (its text plus a comment) and time the board's arrival."""
    from torchmech.learn import MODULES

    proc = subprocess.Popen([sys.executable, "-m", "torchmech", "learn", "watch"], cwd=ws, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    out: dict[str, float] = {}
    try:
        while "watching" not in lines.get(timeout=300):
            pass
        time.sleep(1.0)
        for section in sections:
            path = ws / f"{MODULES[section]}.py"
            start = time.perf_counter()
            path.write_text(path.read_text() + f"# saved {start}\n")
            while True:
                line = lines.get(timeout=300)
                if line.startswith("[") and "watching" in line:
                    break
            out[section] = round(time.perf_counter() - start, 2)
            time.sleep(0.5)
    finally:
        proc.kill()
    return out


def measure(sections: list[str] = SECTIONS, repeat: int = 3) -> dict:
    from torchmech.runtime.devices import environment

    torchmech = [sys.executable, "-m", "torchmech"]
    with tempfile.TemporaryDirectory() as tmp:
        ws = reference_workspace(Path(tmp) / "ch13")
        nowhere = Path(tmp) / "elsewhere"
        nowhere.mkdir()
        result: dict = {"machine": environment(), "date": time.strftime("%Y-%m-%d"), "repeat": repeat,
                        "cold_check_s": {s: wall([*torchmech, "learn", "check", s], ws, repeat) for s in sections}}
        result["status_remembered_s"] = wall([*torchmech, "learn", "status"], ws, repeat)
        result["status_no_workspace_s"] = wall([*torchmech, "learn", "status"], nowhere, repeat)
        result["mistakes_s"] = wall([*torchmech, "learn", "mistakes"], ws, repeat)
        result["pytest_m_s1_s"] = wall([sys.executable, "-m", "pytest", "-m", "s1", "-q", "-p", "no:cacheprovider"],
                                       ROOT, repeat)
        result["warm_check_s"] = {s: warm(ws, s, repeat) for s in sections}
        result["watch_save_to_board_s"] = watch_latency(ws, sections)
    return result


def table(result: dict) -> str:
    rows = [f"{'section':8s} {'cold check':>10s} {'warm check':>10s} {'watch save→board':>17s}"]
    for s, cold in result["cold_check_s"].items():
        rows.append(f"{s:8s} {cold:10.2f} {result['warm_check_s'].get(s, float('nan')):10.2f} "
                    f"{result['watch_save_to_board_s'].get(s, float('nan')):17.2f}")
    rows.append(f"learn status (remembered) {result['status_remembered_s']:.2f} s, without a workspace "
                f"{result['status_no_workspace_s']:.2f} s, learn mistakes {result['mistakes_s']:.2f} s, "
                f"pytest -m s1 {result['pytest_m_s1_s']:.2f} s")
    return "\n".join(rows)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    found = measure()
    print(table(found))
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text(json.dumps(found, indent=2) + "\n")
