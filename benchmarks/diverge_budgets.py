"""The measurements behind diverge's tensor budget (written beside ``TOLERANCES`` in torchmech/runtime/backends.py).

For every training run diverge follows and the CPU backends, and for planted faults (tests/planted.py),
the largest error ratio of the first steps' operations under the scaled budget
(``k·rmse(a, x₆₄) + max(tol·rms(x₆₄), eps·max|x₆₄|)``) and under the former one
(``k·rmse(a, x₆₄) + tol·max(1, rms(x₆₄))``), and the operation each names first. Run from the repository root:

    .venv/bin/python benchmarks/diverge_budgets.py benchmarks/results/cpu-2core/diverge-budgets.json
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any


def _old_budget(tolerance: Any, e_ref: float, x64: Any) -> float:
    """The former rule, for comparison: ``k·e_ref + tol·max(1, rms(x₆₄))``."""
    rms = x64.pow(2).mean().sqrt().item() if x64.numel() else 0.0
    return tolerance.k * e_ref + tolerance.tol * max(1.0, rms)


def measure(steps: int = 3) -> list[dict]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.planted import EmulatedTF32, GradientOff, OneMatmulOff, UlpNoise
    from torchmech.check.diverge import _rmse, diverge
    from torchmech.runtime.backends import BACKENDS

    runs = ["s5.logistic.accuracy", "s5.mlp.notebook_order", "s6.modulelist.accuracy", "s6.noisy_module.accuracy",
            "s7.mpg.test_mse", "s8.mnist.test_acc"]
    tf32 = EmulatedTF32("tf32-emulated", "TF32 rounding of every Linear, judged as float32", tf32=True)
    cases = [(b, c) for b in ("deterministic", "compile", "cpu-bf16") for c in runs]
    cases += [(UlpNoise("ulp-noise", "±1 ulp on every Linear"), c) for c in runs]
    cases += [(tf32, c) for c in runs] + [(replace(tf32, name="tf32-emulated-as-tf32", precision="tf32"), c)
                                          for c in runs]
    cases += [(GradientOff("bias-grad-1%", "first-layer bias gradient × 1.01"), "s8.mnist.test_acc"),
              (OneMatmulOff("matmul-0.1%", "second Linear × 1.001"), "s7.mpg.test_mse")]
    rows = []
    for be, claim_id in cases:
        be = BACKENDS.get(be, be)
        start = time.perf_counter()
        found = diverge("cpu", be, claim_id, steps=steps)
        ea, eb, e64 = found.events
        old = [_rmse(b.value, c.value) / budget if (budget := _old_budget(be.tolerance, _rmse(a.value, c.value),
                                                                             c.value)) > 0 else 0.0
               for a, b, c in zip(ea, eb, e64, strict=True)]
        worst = max(found.ratios, key=lambda r: r[1])
        rows.append({"backend": be.name, "precision": be.precision, "claim": claim_id, "events": len(found.ratios),
                     "first": found.ratios[found.first][0] if found.found else None,
                     "largest_ratio": worst[1], "at": worst[0],
                     "first_old": next((found.ratios[i][0] for i, r in enumerate(old) if r > 1), None),
                     "largest_ratio_old": max(old), "note": found.note,
                     "seconds": round(time.perf_counter() - start, 1)})
        print(json.dumps(rows[-1]), flush=True)
    return rows


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("diverge-budgets.json")
    out.write_text(json.dumps(measure(), indent=2))
