"""The mitigation ladder on this machine: planted failing backends climbed, and what each rung costs.

Two parts, written to one JSON file (docs/checking-a-backend.md's ladder tables come from it):

* ``planted``: §7 and §8 (MNIST trimmed to 2 epochs) judged on backends that fail — TF32 rounding emulated
  on every Linear and judged as float32 (tests/planted.py), and bf16 autocast judged as float32 — and the
  ladder climbed for every failing claim (:func:`torchmech.check.ladder.climb`);
* ``costs``: every rung that applies to the CPU backends, the step time of §8's MNIST MLP before and after.

Run from the repository root::

    .venv/bin/python benchmarks/ladder_table.py benchmarks/results/cpu-2core/ladder.json
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path


def measure() -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.planted import EmulatedTF32
    from torchmech.check.conformance import run_conformance
    from torchmech.check.ladder import RUNGS, climb
    from torchmech.check.speed import time_step
    from torchmech.runtime.backends import BACKENDS

    planted = [EmulatedTF32("tf32-emulated", "TF32 rounding of every Linear, judged as float32", tf32=True),
               replace(BACKENDS["cpu-bf16"], name="bf16-as-fp32", precision="fp32")]
    out: dict = {"planted": {}, "costs": []}
    for be in planted:
        BACKENDS[be.name] = be
        matrix = run_conformance([be.name], sections=["s7", "s8"], quick=True)
        failing = [matrix.cell(i, b) for i, b in matrix.failed()]
        ladder = climb(failing, quick=True)
        out["planted"][be.name] = {"failing": len(failing), "table": ladder.table(), "ladder": ladder.to_json()}
        print(ladder.table(), flush=True)
    for name in ("compile", "cpu-bf16", "deterministic"):
        be = BACKENDS[name]
        base = time_step(be, "mnist").median_s
        for rung in RUNGS:
            if not rung.applies(be) or rung.name == "module_fp32":
                continue
            after = time_step(rung.changed(be, "s8.mnist.test_acc"), "mnist").median_s
            out["costs"].append({"backend": name, "rung": rung.name, "step_before_s": base, "step_after_s": after})
            print(out["costs"][-1], flush=True)
    return out


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("ladder.json")
    target.write_text(json.dumps(measure(), indent=2))
