"""``torchmech compare A.json B.json``: two records of the same kind side by side — two machines, or two runs.

A record is a file a command wrote: the chapter's ``results.json``, ``conformance.json``, ``bench.json``,
``bench-backends.json`` or ``bench-to-accuracy.json`` (:func:`kind_of` tells them apart by their keys). The
comparison shows the claims whose value or verdict moved, and every timing's B/A ratio, raw and normalised: divided
by the B/A ratio of the two records' calibrations (:func:`torchmech.runtime.devices.calibration`, measured in the
same run as the timings), so a machine twice as slow, or a run beside other work, is not read as a regression.

It fails (exit 1) when a claim fails in B that did not fail in A (it held, was not checked, or is new: a claim
failing in both is each record's own news), or, with ``fail_slower``, when a timing's normalised ratio (raw, where a
record has no calibration) is more than that many percent slower.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torchmech.runtime.console import text_table
from torchmech.runtime.devices import noisy

#: The kinds of record, and the keys that tell each apart (all must be present), tried in this order.
KINDS: dict[str, tuple[str, ...]] = {
    "conformance": ("claims", "backends", "failed"),
    "chapter": ("claims", "counts"),
    "bench": ("records", "gemm_peak_tflops"),
    "bench-backends": ("records", "verdicts"),
    "bench-to-accuracy": ("rows", "targets"),
}

#: A verdict that fails.
FAILING = ("no", "error")


def read_record(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``. Raises ValueError (one line) for a missing, unreadable or non-object file."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as err:
        raise ValueError(f"cannot read {path}: {err.strerror or err}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not JSON ({err}): pass a record torchmech wrote") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a torchmech record (not a JSON object)")
    return data


def kind_of(data: dict[str, Any], path: Path | str = "the record") -> str:
    """The record's kind (a key of :data:`KINDS`). Raises ValueError when none fits."""
    for kind, keys in KINDS.items():
        if all(k in data for k in keys):
            return kind
    raise ValueError(f"{path} is not a record torchmech compares (results.json, conformance.json, bench.json, "
                     "bench-backends.json, bench-to-accuracy.json)")


def claims_of(kind: str, data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Claim (``id``, or ``id @ backend`` in a conformance matrix) → its ``ours``, ``holds`` and ``rule``."""
    if kind == "chapter":
        return {c["id"]: {"ours": c.get("ours"), "holds": c.get("holds"), "rule": c.get("rule", "")}
                for c in data["claims"]}
    if kind == "conformance":
        return {f"{row['id']} @ {b}": {"ours": cell.get("ours"), "holds": cell.get("holds"),
                                        "rule": cell.get("rule", "")}
                for row in data["claims"] for b, cell in row.get("cells", {}).items()}
    return {}


def _step(kind: str, row: dict[str, Any]) -> str:
    """A timed row's name: ``cpu fp32 width 32 batch 1`` (bench), ``compile mnist`` (the backends' benches)."""
    if kind == "bench":
        return f"{row['device']} {row['precision']} width {row['width']} batch {row['batch']}"
    return f"{row['backend']} {row['model']}"


def timings_of(kind: str, data: dict[str, Any]) -> dict[str, float]:
    """Each timed step of the record → its seconds (a median where the record has one)."""
    if kind == "chapter":
        return {f"§ {s}": t for s, t in data.get("seconds", {}).items()}
    if kind == "conformance":
        return {f"column {b}": v["seconds"] for b, v in data["backends"].items() if v.get("seconds")}
    if kind == "bench":
        return {_step(kind, r): r["median_s"] for r in data["records"]}
    if kind == "bench-backends":
        return {_step(kind, r): r.get("step_s", r["median_s"]) for r in data["records"]}
    return {_step(kind, r): r["seconds"] for r in data["rows"] if r.get("seconds")}


def noisy_of(kind: str, data: dict[str, Any]) -> set[str]:
    """The timed steps of :func:`timings_of` whose repeats spread over
    :data:`~torchmech.runtime.devices.NOISY_SPREAD` of their median (from the record's median and IQR, so records
    written before the ``noisy`` mark are read alike); steps timed once (a chapter's sections, a matrix's columns)
    have no spread."""
    if kind in ("bench", "bench-backends"):
        return {_step(kind, r) for r in data["records"] if noisy(r.get("median_s", 0.0), r.get("iqr_s", 0.0))}
    if kind == "bench-to-accuracy":
        return {_step(kind, r) for r in data["rows"]
                if r.get("seconds") and noisy(r.get("epoch_s") or 0.0, r.get("epoch_iqr_s", 0.0))}
    return set()


def calibration_seconds(data: dict[str, Any]) -> float | None:
    """The record's calibration as one number (the geometric mean of its GEMM's and its training step's median
    seconds), or ``None`` for a record written before calibrations were."""
    cal = data.get("calibration")
    if not isinstance(cal, dict) or not cal.get("gemm_s") or not cal.get("step_s"):
        return None
    return math.sqrt(cal["gemm_s"] * cal["step_s"])


@dataclass
class ClaimChange:
    """A claim whose value or verdict differs between A and B (``None``: absent from that record)."""

    claim: str
    a: str | None
    b: str | None
    a_holds: str | None
    b_holds: str | None
    rule: str

    @property
    def regression(self) -> bool:
        """It fails in B and did not fail in A."""
        return self.b_holds in FAILING and self.a_holds not in FAILING


@dataclass
class Speed:
    """One timed step in both records: seconds, B/A raw, and B/A over the calibrations' B/A."""

    step: str
    a_s: float
    b_s: float
    raw: float
    normalised: float | None
    slower: bool = False
    noisy: bool = False  # either record's timing spread over NOISY_SPREAD: its ratio may be the noise


@dataclass
class Comparison:
    """Two records side by side (the ``CommandResult`` of ``torchmech compare``)."""

    a: Path
    b: Path
    kind: str
    environments: tuple[dict[str, Any], dict[str, Any]]
    calibrations: tuple[float | None, float | None]
    changes: list[ClaimChange] = field(default_factory=list)
    speeds: list[Speed] = field(default_factory=list)
    fail_slower: float | None = None
    claims_compared: int = 0

    @property
    def calibration_ratio(self) -> float | None:
        a, b = self.calibrations
        return b / a if a and b else None

    @property
    def regressions(self) -> list[ClaimChange]:
        return [c for c in self.changes if c.regression]

    @property
    def slower(self) -> list[Speed]:
        return [s for s in self.speeds if s.slower]

    @property
    def exit_code(self) -> int:
        """1 if a claim fails in B that did not fail in A, or a step is slower than ``fail_slower``; else 0."""
        return 1 if self.regressions or self.slower else 0

    def _note(self) -> str:
        missing = [name for name, cal in zip("AB", self.calibrations, strict=True) if cal is None]
        if missing:
            return (f"{' and '.join(missing)} has no calibration (an older record): speeds compared raw, "
                    "not normalised")
        return f"normalised: B/A divided by the calibrations' B/A {self.calibration_ratio:.3g}"

    def verdict(self) -> str:
        parts = []
        if self.regressions:
            parts.append(f"{len(self.regressions)} claim(s) fail in B that did not in A: "
                         + ", ".join(c.claim for c in self.regressions))
        if self.slower:
            parts.append(f"{len(self.slower)} step(s) more than {self.fail_slower:g}% slower: "
                         + ", ".join(s.step for s in self.slower))
        return "; ".join(parts) if parts else "no claim fails anew" + (
            f", no step more than {self.fail_slower:g}% slower" if self.fail_slower is not None else "")

    def table(self) -> str:
        def who(name: str, env: dict[str, Any], cal: float | None) -> str:
            return (f"{name}: torch {env.get('torch', '?')}, {env.get('device', '?')} ({env.get('device_name', '?')}), "
                    f"{env.get('threads', '?')} threads, load {env.get('load_average', 'n/a')}, calibration "
                    + (f"{cal * 1e3:.3g} ms" if cal is not None else "none"))

        lines = [f"{self.kind} records: A = {self.a}, B = {self.b}",
                 who("A", self.environments[0], self.calibrations[0]),
                 who("B", self.environments[1], self.calibrations[1]), ""]
        if self.claims_compared:
            lines.append(f"claims that moved: {len(self.changes)} of {self.claims_compared}")
            if self.changes:
                show = lambda v: "–" if v is None else " ".join(str(v).split())[:40]  # noqa: E731
                lines.append(text_table(("claim", "A", "B", "A holds", "B holds", "rule"),
                                        [(c.claim + (" ← FAILS" if c.regression else ""), show(c.a), show(c.b),
                                          show(c.a_holds), show(c.b_holds), show(c.rule)) for c in self.changes]))
            lines.append("")
        if self.speeds:
            lines.append(f"speed, B/A (above 1: B slower); {self._note()}")
            lines.append(text_table(("step", "A s", "B s", "B/A", "normalised", ""),
                                    [(s.step, f"{s.a_s:.4g}", f"{s.b_s:.4g}", f"{s.raw:.3g}",
                                      "–" if s.normalised is None else f"{s.normalised:.3g}",
                                      " ".join(["SLOWER"] * s.slower + ["noisy"] * s.noisy))
                                     for s in self.speeds], right={1, 2, 3, 4}))
        else:
            lines.append("no timed step in both records")
        return "\n".join([*lines, "", self.verdict()])

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "a": str(self.a), "b": str(self.b),
                "calibration_seconds": {"a": self.calibrations[0], "b": self.calibrations[1]},
                "calibration_ratio": self.calibration_ratio, "normalised": self.calibration_ratio is not None,
                "fail_slower": self.fail_slower, "claims_compared": self.claims_compared,
                "changes": [c.__dict__ | {"regression": c.regression} for c in self.changes],
                "speeds": [s.__dict__ for s in self.speeds], "verdict": self.verdict(), "exit_code": self.exit_code}

    def write(self, out: Path) -> list[Path]:
        """Nothing: a comparison is read on the console (or ``--json``)."""
        return []


def compare(a: Path, b: Path, fail_slower: float | None = None) -> Comparison:
    """Compare the records in files ``a`` and ``b``. Raises ValueError (one line) for an unreadable file, a file
    that is no record, or two records of different kinds."""
    da, db = read_record(a), read_record(b)
    ka, kb = kind_of(da, a), kind_of(db, b)
    if ka != kb:
        raise ValueError(f"{a} is a {ka} record and {b} a {kb} record: compare two records of the same kind")
    result = Comparison(Path(a), Path(b), ka, (da.get("environment", {}), db.get("environment", {})),
                        (calibration_seconds(da), calibration_seconds(db)), fail_slower=fail_slower)
    ca, cb = claims_of(ka, da), claims_of(kb, db)
    result.claims_compared = len(ca.keys() | cb.keys())
    for claim in [*ca, *(k for k in cb if k not in ca)]:
        old, new = ca.get(claim, {}), cb.get(claim, {})
        if old.get("ours") != new.get("ours") or old.get("holds") != new.get("holds"):
            result.changes.append(ClaimChange(claim, old.get("ours"), new.get("ours"), old.get("holds"),
                                              new.get("holds"), new.get("rule") or old.get("rule") or ""))
    ta, tb = timings_of(ka, da), timings_of(kb, db)
    shaky = noisy_of(ka, da) | noisy_of(kb, db)
    ratio = result.calibration_ratio
    for step in (s for s in ta if s in tb and ta[s] > 0):
        raw = tb[step] / ta[step]
        normalised = raw / ratio if ratio is not None else None
        judged = normalised if normalised is not None else raw
        result.speeds.append(Speed(step, ta[step], tb[step], raw, normalised,
                                   fail_slower is not None and judged > 1 + fail_slower / 100, step in shaky))
    return result
