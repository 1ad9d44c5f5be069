"""``torchmech conformance --seeds K`` on this machine: what the seeds add to the matrix, and their verdicts.

For each K asked (default 32 and 64), the training claims of §5–§7 are judged over K seeds on the five CPU backends
(:func:`torchmech.check.seeds.judge_seeds`: cpu, cpu-fp64, compile, cpu-bf16, deterministic) on one torch thread;
the wall time of each backend's batched runs, the total, the cells that differ and each claim's design (the
relative shift seen with power 0.8) are written to one JSON file (docs/checking-a-backend.md's table comes from it).

Run from the repository root::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/seeds_table.py benchmarks/results/cpu-2core/seeds.json 32 64

``--mnist K`` instead judges §8's claims (MNIST's first ``MNIST_EPOCHS`` epochs) over K seeds on the same five
backends and adds them to the file under the key ``mnist`` (its other runs kept)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/seeds_table.py benchmarks/results/cpu-2core/seeds.json --mnist 16
"""

from __future__ import annotations

import datetime
import json
import sys
import time
from pathlib import Path

CPU_BACKENDS = ["cpu", "cpu-fp64", "compile", "cpu-bf16", "deterministic"]


def measure(ks: list[int]) -> dict:
    import torch

    from torchmech.check.seeds import judge_seeds
    from torchmech.runtime.devices import environment
    from torchmech.runtime.threads import applied

    out: dict = {"date": datetime.date.today().isoformat(), "environment": environment("cpu"),
                 "backends": CPU_BACKENDS, "sections": ["s5", "s6", "s7"], "runs": []}
    with applied(1):
        out["threads"] = torch.get_num_threads()
        for k in ks:
            start = time.perf_counter()
            report = judge_seeds(CPU_BACKENDS, k, sections=out["sections"])
            wall = time.perf_counter() - start
            js = report.to_json()
            out["runs"].append({"k": k, "wall_s": round(wall, 1), "seconds": js["seconds"], "failed": js["failed"],
                                "design": {c["id"]: {b: {"p": cell["p"], "shift_for_power": cell["shift_for_power"]}
                                                     for b, cell in c["cells"].items()} for c in js["claims"]},
                                "table": report.table()})
            print(report.table(), f"\nK = {k}: {wall:.0f} s", flush=True)
    return out


def measure_mnist(k: int) -> dict:
    import torch

    from torchmech.check.seeds import MNIST_EPOCHS, judge_seeds
    from torchmech.runtime.threads import applied

    with applied(1):
        start = time.perf_counter()
        report = judge_seeds(CPU_BACKENDS, k, sections=["s8"])
        wall = time.perf_counter() - start
        js = report.to_json()
        print(report.table(), f"\nK = {k}: {wall:.0f} s", flush=True)
        return {"date": datetime.date.today().isoformat(), "threads": torch.get_num_threads(), "k": k,
                "epochs": MNIST_EPOCHS, "wall_s": round(wall, 1), "seconds": js["seconds"], "failed": js["failed"],
                "design": {c["id"]: {b: {"p": cell["p"], "shift_for_power": cell["shift_for_power"]}
                                     for b, cell in c["cells"].items()} for c in js["claims"]},
                "table": report.table()}


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("seeds.json")
    if sys.argv[2:3] == ["--mnist"]:
        old = json.loads(target.read_text()) if target.exists() else {}
        target.write_text(json.dumps(old | {"mnist": measure_mnist(int(sys.argv[3]))}, indent=2))
    else:
        ks = [int(a) for a in sys.argv[2:]] or [32, 64]
        target.write_text(json.dumps(measure(ks), indent=2))
